package dp

import (
	"samepath/dp/balance"
	"samepath/dp/header"
	"samepath/dp/rewrite"
	"samepath/nat"
)

// upPre is one up packet of the batch, decoded by processUp's first pass.
type upPre struct {
	d header.Decoded
	v header.Verdict
	h uint32 // the tuple's hash in T5's up index (KindFlow only)
}

// processUp handles a batch of up packets in two passes. The first
// decodes each one and hashes its tuple; then T5 loads the batch's
// up-index cells and bindings in tight loops (PortTable.TouchUp), so that
// with many flows their cache misses overlap instead of stalling one
// packet after another; the second pass does the work, with the decode
// and the hash of the first. Flows that a packet creates are found by
// later packets of the same batch, as the lookups themselves happen in
// the second pass. Measured in BENCHMARKS.md: gw-nat, and "Also tried"
// for what did not work (a touch right after each parse).
func (g *GW) processUp(pkts []Packet) {
	if cap(g.pre) < len(pkts) {
		g.pre = make([]upPre, len(pkts))
		g.hs = make([]uint32, 0, len(pkts))
	}
	pre := g.pre[:len(pkts)]
	hs := g.hs[:0]
	for i := range pkts {
		pr := &pre[i]
		if pr.v = header.Decode(pkts[i].Data, &pr.d); pr.v != header.OK || pr.d.Kind != header.KindFlow {
			continue
		}
		pr.h = g.cfg.Flows.UpHash(&pr.d.Tuple)
		hs = append(hs, pr.h)
	}
	g.touched ^= g.cfg.Flows.TouchUp(hs)
	for i := range pkts {
		pk, pr := &pkts[i], &pre[i]
		switch {
		case pr.v != header.OK:
			pk.Drop = ReasonMalformed
		case pr.d.IPVersion == 0:
			pk.Drop = ReasonNotIP
		default:
			g.up(pk, pr, i)
		}
	}
	if g.term != nil {
		g.termFlush(pkts, g.term.mob)
	}
}

// up handles a packet from a mobile (through an LB), packet i of the
// batch.
func (g *GW) up(pk *Packet, pr *upPre, i int) {
	b, d := pk.Data, &pr.d
	lb := nat.MAC(header.Ethernet(b).Src())
	var id uint32
	found := false
	if d.Kind == header.KindFlow {
		id, found = g.cfg.Flows.UpHashed(&d.Tuple, pr.h)
	}
	var bd *nat.Binding
	if found {
		bd = g.cfg.Flows.Binding(id)
		if !g.peerHit.Load() && g.cfg.Flows.IsPeer(id) {
			g.peerHit.Store(true) // a peer's flow steered here: gw_sync.go
		}
		if g.flowLB[id] != lb {
			// The mobile moved to another LB (R-GW-4). Checked per
			// flow, so T12 is written only on change, not per packet.
			if bd.Session == 0 {
				g.flowLB[id] = lb
			}
			g.learnLB(d.Tuple.Src, bd.Session, lb, false)
		}
	} else {
		// A flow exists only while its session does (a session's end
		// removes its flows), so only packets without one need T3
		// (R-GW-7, step S124): established flows skip the session
		// lookup.
		sess, _, ok := g.session(d.Tuple.Src)
		if !ok && g.cfg.RequireSession {
			pk.Drop = ReasonNoSession
			return
		}
		switch d.Kind {
		case header.KindICMPError:
			g.upICMPError(pk, d, i)
			return
		case header.KindOpaque:
			pk.Drop = ReasonUnsupported
			return
		}
		if d.Proto == header.ProtoTCP && d.TCPFlags&(header.FlagSYN|header.FlagACK|header.FlagRST) != header.FlagSYN {
			pk.Drop = ReasonNoFlow // only a SYN opens a TCP flow
			return
		}
		var r Reason
		if id, r = g.create(pk, d, &sess); r != ReasonNone {
			pk.Drop = r
			return
		}
		bd = g.cfg.Flows.Binding(id)
		g.flowLB[id] = lb
		if sess.lbNow != lb && !g.learnLB(d.Tuple.Src, sess.ID, lb, false) {
			g.flowLB[id] = sess.lbNow // a late packet: the session is behind lbNow
		}
	}
	if g.flowTerm != nil && g.flowTerm[id] {
		g.termUp(pk, d, id, i)
		return
	}
	if bd.Service != 0 && g.flowUnit[id] == balance.PacketUnit && found {
		// Packet unit: a new choice for every up packet but the first
		// (create chose for it).
		svc := bd.Service - 1
		idx, ok := g.cfg.Dist.Decide(bd.Session, svc, balance.UpPacket)
		if !ok {
			pk.Drop = ReasonNoServer
			return
		}
		a, p, _ := g.cfg.Services.Server16(svc, idx)
		if d.Proto == header.ProtoICMPv4 || d.Proto == header.ProtoICMPv6 {
			p = 0 // as in create: an echo's key names no server port
		}
		g.flowAddr[id], g.flowPort[id], g.flowSrv[id] = nat.Addr16(a), p, int32(idx)
	}
	server := g.flowAddr[id]
	mac, ok := g.nh.Lookup(server)
	if !ok {
		pk.Drop = ReasonNoNextHop
		return
	}
	g.acctPacket(id, b, &d.Parsed, true)
	to := header.Tuple{Src: bd.GwAddr, Dst: server, SPort: bd.GwPort, DPort: g.flowPort[id]}
	if g.flowXlat[id] {
		g.forwardXlat(pk, d, &to, mac, g.cfg.ServerMAC, g.cfg.Servers)
		if pk.Out >= 0 {
			g.cfg.Flows.Touch(id, true, d.IPEnd-d.L3Off, d.TCPFlags, g.now)
		}
		return
	}
	// The family was checked when the flow opened: Flow cannot refuse.
	rewrite.Flow(b, d, &to)
	g.cfg.Flows.Touch(id, true, d.IPEnd-d.L3Off, d.TCPFlags, g.now)
	e := header.Ethernet(b)
	e.SetDst(mac)
	e.SetSrc(g.cfg.ServerMAC)
	pk.Out = g.cfg.Servers
}

// create opens a flow record for the first packet of a user session's
// flow: the actual server by T6/T7 (R-GW-2, R-GW-6) or the destination
// itself when it is no representative address (R-GW-3), and a key port.
// A refusal leaves nothing behind: no record, no T7 count.
func (g *GW) create(pk *Packet, d *header.Decoded, sess *Session) (uint32, Reason) {
	k := &d.Tuple
	if g.cfg.Authz != nil {
		_, ok := g.cfg.Authz.Check([16]byte(k.Dst), sess.DeviceID)
		if ok && g.xl != nil {
			// NAT64: T9 names the IPv4 address an RFC 6052 destination
			// embeds, as it does for an IPv4 mobile (R-AUTH-1, R-TCP-3).
			if v4, in := g.embedded4(k.Dst); in {
				_, ok = g.cfg.Authz.Check([16]byte(v4), sess.DeviceID)
			}
		}
		if !ok {
			g.stats.Denied.Add(1)
			g.refuse(pk, d)
			return 0, ReasonDenied
		}
	}
	server, sport := k.Dst, k.DPort
	var service uint32
	var unit balance.UnitType
	idx := -1
	svc, ok := g.cfg.Services.Lookup(k.Dst, k.DPort, k.Proto)
	echo := k.Proto == header.ProtoICMPv4 || k.Proto == header.ProtoICMPv6
	if !ok && echo {
		// An echo names no port: it goes to a server of a service at
		// that representative address (R-GW-1), balanced and kept as
		// that service's are.
		svc, ok = g.cfg.Services.LookupAddr(k.Dst)
	}
	if !ok && g.xl != nil {
		// An IPv6 destination inside the RFC 6052 prefix names the IPv4
		// address it embeds (NAT64, RFC 6146): a representative address
		// there is balanced as its service, any other is the server.
		if v4, in := g.embedded4(k.Dst); in {
			server = v4
			svc, ok = g.cfg.Services.Lookup(v4, k.DPort, k.Proto)
			if !ok && echo {
				svc, ok = g.cfg.Services.LookupAddr(v4)
			}
		}
	}
	term := false
	if ok {
		if m, _ := g.cfg.Services.Mode(svc); m == balance.TerminateMode && k.Proto == header.ProtoTCP {
			// T11 terminate (gw_term.go), only with a terminator. An
			// echo to the address is the NAT's, as for any service.
			if g.term == nil {
				return 0, ReasonUnsupported
			}
			term = true
		}
		unit, _ = g.cfg.Services.Type(svc)
		i, ok := g.cfg.Dist.Decide(sess.ID, svc, balance.FlowStart)
		if !ok {
			return 0, ReasonNoServer
		}
		a, p, _ := g.cfg.Services.Server16(svc, i)
		server, sport = nat.Addr16(a), p
		if echo {
			sport = 0 // the reply's identifier is the key; the request names no port
		}
		service, idx = svc+1, i
	}
	// Everything that can refuse comes before the record: the family
	// (services are validated single-family, but the table may change
	// under a flow) and the next hop.
	r := ReasonNone
	translate := server.Is4() != (d.IPVersion == 4) && !term // the terminator connects in the server's family
	if translate && g.xl == nil {
		r = ReasonUnsupported // no translator: the families cannot meet
	} else if _, ok := g.nh.Lookup(server); !ok {
		r = ReasonNoNextHop
	}
	var id uint32
	if r == ReasonNone {
		var err error
		if id, err = g.cfg.Flows.Create(k, server, sport, sess.ID, service, g.now); err != nil {
			g.stats.Exhausted.Add(1)
			g.refuse(pk, d)
			r = ReasonPortExhausted
		}
	}
	if r != ReasonNone {
		if idx >= 0 {
			// Give back what Decide counted for this flow.
			if unit == balance.PacketUnit {
				g.cfg.Dist.Down(sess.ID, service-1)
			} else {
				g.cfg.Dist.FlowEnd(sess.ID, service-1, idx)
			}
		}
		return 0, r
	}
	g.flowUnit[id] = unit
	g.flowXlat[id] = translate
	g.flowSrv[id] = int32(idx)
	g.flowAddr[id], g.flowPort[id] = server, sport
	if g.flowTerm != nil {
		g.flowTerm[id] = false
		if term {
			g.termCreated(id, k, sess.ID)
		}
	}
	g.acctStart(id)
	g.stats.FlowsCreated.Add(1)
	return id, ReasonNone
}
