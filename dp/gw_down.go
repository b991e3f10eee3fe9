package dp

import (
	"samepath/dp/balance"
	"samepath/dp/header"
	"samepath/dp/rewrite"
	"samepath/nat"
)

// down handles a packet from a server to a key port. T5 finds the flow by
// the packet's destination (gateway address, key port); the packet must
// also come from the flow's server address and port (for ICMP echo, the
// identifier is the key): address- and port-dependent filtering (RFC
// 4787 section 5). Anything else is dropped as ReasonFiltered, so a host
// on the server side that guesses a key port cannot reach the mobile.
func (g *GW) down(pk *Packet, d *header.Decoded) {
	b := pk.Data
	switch d.Kind {
	case header.KindICMPError:
		g.downICMPError(pk, d)
		return
	case header.KindOpaque:
		pk.Drop = ReasonUnsupported
		return
	}
	t := &d.Tuple
	id, found := g.cfg.Flows.Down(t.Dst, t.DPort, d.Proto)
	if !found {
		pk.Drop = ReasonNoFlow
		return
	}
	bd := g.cfg.Flows.Binding(id)
	if !g.fromServer(id, bd, t.Src, t.SPort) || (g.flowTerm != nil && g.flowTerm[id]) {
		// A terminated flow's key port carries nothing (gw_term.go).
		pk.Drop = ReasonFiltered
		return
	}
	lb, ok := g.lbOf(id, bd)
	if !ok {
		pk.Drop = ReasonNoNextHop
		return
	}
	g.acctPacket(id, b, &d.Parsed, false)
	f := &bd.Flow
	to := header.Tuple{Src: f.Dst, Dst: f.Src, SPort: f.DPort, DPort: f.SPort}
	if d.Proto == header.ProtoICMPv4 || d.Proto == header.ProtoICMPv6 {
		to.SPort = 0 // an echo reply: the identifier is the destination "port"
	}
	if g.flowXlat[id] {
		g.forwardXlat(pk, d, &to, lb, g.cfg.LanMAC, g.cfg.Lan)
		if pk.Out < 0 {
			return
		}
	} else {
		// The flow's family is the packet's (it matched a key of it).
		rewrite.Flow(b, d, &to)
		e := header.Ethernet(b)
		e.SetDst(lb)
		e.SetSrc(g.cfg.LanMAC)
		pk.Out = g.cfg.Lan
	}
	g.cfg.Flows.Touch(id, false, d.IPEnd-d.L3Off, d.TCPFlags, g.now)
	if bd.Service != 0 && g.flowUnit[id] == balance.PacketUnit {
		g.cfg.Dist.Down(bd.Session, bd.Service-1)
	}
}

// downFlow finds the flow of a down ICMP error's quote (gateway
// address:key -> server:port) and checks that the quoted packet went to
// the flow's server.
func (g *GW) downFlow(q *header.Tuple) (uint32, Reason) {
	id, found := g.cfg.Flows.Down(q.Src, q.SPort, q.Proto)
	if !found {
		return 0, ReasonNoFlow
	}
	if !g.fromServer(id, g.cfg.Flows.Binding(id), q.Dst, q.DPort) {
		return 0, ReasonFiltered
	}
	return id, ReasonNone
}

// fromServer reports whether addr:port is the flow's server: the one of
// its latest up packet or, for a packet-unit flow (a new choice per up
// packet), any server of its service.
func (g *GW) fromServer(id uint32, bd *nat.Binding, addr nat.Addr16, port uint16) bool {
	if g.flowAddr[id] == addr && g.flowPort[id] == port {
		return true
	}
	return bd.Service != 0 && g.flowUnit[id] == balance.PacketUnit &&
		g.cfg.Services.HasServer(bd.Service-1, addr, port)
}
