package dp

import (
	"samepath/dp/header"
	"samepath/dp/rewrite"
)

// ICMP errors about a flow's packets (RFC 5508 section 4.2): the outer
// header is NATed like the flow's packets the other way, and the quoted
// packet is rewritten back to what its sender had sent.

// upICMPError translates an ICMP error a mobile sends about a down packet
// (quoting representative -> mobile); one about a terminated flow goes,
// as the flow's packets, to the terminator's mobile side (its netstack
// sent the quoted segment): packet i of this batch.
func (g *GW) upICMPError(pk *Packet, d *header.Decoded, i int) {
	b := pk.Data
	q := &d.Quote.Tuple
	// The quoted packet went representative -> mobile; its flow is the
	// reverse.
	k := header.Tuple{Src: q.Dst, Dst: q.Src, SPort: q.DPort, DPort: q.SPort, Proto: q.Proto}
	if g.cfg.RequireSession && q.Dst != d.Tuple.Src {
		// Sources are subscribers, each speaking only of its own flows:
		// an error about another mobile's flow is not passed on.
		pk.Drop = ReasonFiltered
		return
	}
	id, found := g.cfg.Flows.Up(&k)
	if !found {
		pk.Drop = ReasonNoFlow
		return
	}
	if g.flowTerm != nil && g.flowTerm[id] {
		// About the terminator's own segment: netstack validates it and
		// acts as a host (packet too big lowers the MSS; an unreachable
		// is a soft error on an established connection).
		g.termIn(b[d.L3Off:d.IPEnd], i)
		return
	}
	bd := g.cfg.Flows.Binding(id)
	server, sport := g.flowAddr[id], g.flowPort[id]
	mac, ok := g.nh.Lookup(server)
	if !ok {
		pk.Drop = ReasonNoNextHop
		return
	}
	nq := header.Tuple{Src: server, Dst: bd.GwAddr, SPort: sport, DPort: bd.GwPort}
	if g.flowXlat[id] {
		g.errorXlat(pk, d, bd.GwAddr, server, &nq, mac, g.cfg.ServerMAC, g.cfg.Servers)
		return
	}
	if !rewrite.ICMPError(b, d, bd.GwAddr, server, &nq) {
		pk.Drop = ReasonUnsupported
		return
	}
	e := header.Ethernet(b)
	e.SetDst(mac)
	e.SetSrc(g.cfg.ServerMAC)
	pk.Out = g.cfg.Servers
}

// downICMPError translates an ICMP error about an up packet (quoting
// gateway address:key -> server), from the server or a router between.
func (g *GW) downICMPError(pk *Packet, d *header.Decoded) {
	b := pk.Data
	id, r := g.downFlow(&d.Quote.Tuple)
	if r != ReasonNone {
		pk.Drop = r
		return
	}
	bd := g.cfg.Flows.Binding(id)
	lb, ok := g.lbOf(id, bd)
	if !ok {
		pk.Drop = ReasonNoNextHop
		return
	}
	f := &bd.Flow
	src := d.Tuple.Src
	if src == g.flowAddr[id] {
		src = f.Dst // the server itself: speak as the representative
	}
	nq := header.Tuple{Src: f.Src, Dst: f.Dst, SPort: f.SPort, DPort: f.DPort}
	if g.flowXlat[id] {
		if src != f.Dst {
			src = g.source6(src, f.Dst) // a router on the IPv4 side
		}
		g.errorXlat(pk, d, src, f.Src, &nq, lb, g.cfg.LanMAC, g.cfg.Lan)
		return
	}
	if !rewrite.ICMPError(b, d, src, f.Src, &nq) {
		pk.Drop = ReasonUnsupported
		return
	}
	e := header.Ethernet(b)
	e.SetDst(lb)
	e.SetSrc(g.cfg.LanMAC)
	pk.Out = g.cfg.Lan
}
