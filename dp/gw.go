package dp

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"samepath/dp/acct"
	"samepath/dp/balance"
	"samepath/dp/header"
	"samepath/dp/neigh"
	"samepath/dp/xlat"
	"samepath/nat"
)

// GWConfig configures the packet-gateway pipeline (FIG. 16-24, 32-40).
type GWConfig struct {
	// Lan and Servers are the worker port indexes of the side toward the
	// load balancers and the side toward the actual servers.
	Lan, Servers int
	// LanMAC and ServerMAC are the gateway's own MACs on each side.
	LanMAC, ServerMAC nat.MAC
	// Flows is the port-key NAT table (T5); the pipeline owns it: its
	// worker is the table's single writer.
	Flows *nat.PortTable
	// Services is T6+T11; Dist is T7. Both are shared with the control API.
	Services *balance.Table
	Dist     *balance.Dist
	// Neighbors resolves actual servers' MACs on the server side.
	Neighbors *neigh.Table
	// Authz, if set, authorizes every new user session (T8/T9, R-AUTH-1).
	Authz *Authz
	// RequireSession drops up packets from addresses with no session (T3,
	// R-GW-7, step S124). Off only for deployments without AAA.
	RequireSession bool
	// LBCacheSize bounds T12 (mobile -> LB MAC).
	LBCacheSize int64
	// ExpireBudget is how many flow records one poll round examines for
	// idle expiry.
	ExpireBudget int
	// Acct, if set, receives a T10 accounting record for every flow that
	// ends and, every AcctInterim (0: never), for every flow still open.
	// AcctAttrSlots bounds how many flows keep an attribute (URL, SNI);
	// 0 means a quarter of the flow table.
	Acct          *acct.Producer
	AcctInterim   time.Duration
	AcctAttrSlots int
	// OnEnd, if set, is called on the worker for every flow record that
	// ends.
	OnEnd func(b *nat.Binding, cause nat.Cause)
}

// Validate checks the config.
func (c GWConfig) Validate() error {
	switch {
	case c.Lan < 0 || c.Servers < 0 || c.Lan == c.Servers:
		return fmt.Errorf("gw: port indexes %d/%d: want two distinct ports", c.Lan, c.Servers)
	case c.LanMAC == (nat.MAC{}) || c.ServerMAC == (nat.MAC{}):
		return errors.New("gw: own MACs must be set")
	case c.Flows == nil || c.Services == nil || c.Dist == nil || c.Neighbors == nil:
		return errors.New("gw: flows, services, dist and neighbors are required")
	case c.LBCacheSize <= 0:
		return fmt.Errorf("gw: lb cache size %d", c.LBCacheSize)
	case c.ExpireBudget <= 0:
		return fmt.Errorf("gw: expire budget %d", c.ExpireBudget)
	}
	return nil
}

// Session is the gateway's copy of a T3 row.
type Session struct {
	ID       uint64
	Name     string // the control process's session id
	UserID   string
	DeviceID string
	IP       [16]byte
	Dormant  bool
	Seq      uint64
}

// SessionEvent changes the worker's T3 copy.
type SessionEvent struct {
	End     bool // remove the session and every record of it
	Session Session
}

// GW is the gateway pipeline. One GW belongs to one worker; Process and
// Tick run on it. Sessions are changed from other goroutines through
// Apply, which queues the change for the worker.
type GW struct {
	cfg   GWConfig
	now   int64
	clock atomic.Int64 // now, for other goroutines

	sessions map[[16]byte]Session // T3 copy, worker-owned
	events   chan SessionEvent    // control -> worker
	lbs      *ristretto.Cache[[]byte, nat.MAC]
	nh       *neigh.Cache // the worker's memo of its latest server MAC
	pre      []upPre      // processUp's first pass, per packet of the batch
	hs       []uint32     // the batch's T5 hashes, for TouchUp
	touched  uint32       // keeps TouchUp's loads from being optimized away

	// per flow record, indexed by binding id: the LB of its latest up
	// packet, the chosen server's index in its service (-1: not
	// balanced), and for packet-unit flows the server of the latest up
	// packet (the binding keeps the first).
	flowLB   []nat.MAC
	flowSrv  []int32
	flowAddr []nat.Addr16
	flowPort []uint16

	ticks   uint64
	key     [16]byte
	acct    *acctState
	p       *header.Parsed // the packet in hand: a processUp slot, or downP
	downP   header.Parsed
	scratch []byte
	onEnd   func(b *nat.Binding, cause nat.Cause)

	stats GWStats
}

// GWStats are the gateway's own counters beyond the per-queue ones,
// written by the worker and readable from any goroutine.
type GWStats struct {
	FlowsCreated, FlowsEnded, Exhausted, Denied, Replies atomic.Uint64
}

// NewGW makes the pipeline.
func NewGW(cfg GWConfig) (*GW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lbs, err := ristretto.NewCache(&ristretto.Config[[]byte, nat.MAC]{
		NumCounters: 10 * cfg.LBCacheSize, MaxCost: cfg.LBCacheSize, BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("gw: lb cache: %w", err)
	}
	n := cfg.Flows.Capacity()
	g := &GW{
		cfg:      cfg,
		sessions: map[[16]byte]Session{},
		events:   make(chan SessionEvent, 4096),
		lbs:      lbs,
		nh:       cfg.Neighbors.NewCache(),
		flowLB:   make([]nat.MAC, n),
		flowSrv:  make([]int32, n),
		flowAddr: make([]nat.Addr16, n),
		flowPort: make([]uint16, n),
		scratch:  make([]byte, 2048),
	}
	g.p = &g.downP
	g.onEnd = g.flowEnded
	if cfg.Acct != nil {
		slots := cfg.AcctAttrSlots
		if slots <= 0 {
			slots = max(n/4, 1)
		}
		g.acct = newAcctState(n, slots)
		g.acct.wall0 = wallAt(0)
	}
	return g, nil
}

// EndAll ends every open flow with cause nat.Shutdown, writing each
// one's final accounting record (waiting up to wait in all for room in
// the log's ring), and returns how many it ended. A gateway calls it when
// it stops, after its worker has returned: it runs on the caller's
// goroutine as the table's owner.
func (g *GW) EndAll(wait time.Duration) int {
	if g.acct != nil {
		g.acct.waitUntil = time.Now().Add(wait)
		defer func() { g.acct.waitUntil = time.Time{} }()
	}
	return g.cfg.Flows.DeleteAll(g.now, nat.Shutdown, g.onEnd)
}

// Close releases the LB cache.
func (g *GW) Close() { g.lbs.Close() }

// Apply queues a session change for the worker. It blocks while the queue
// is full, so no notification is lost.
func (g *GW) Apply(ev SessionEvent) { g.events <- ev }

// Clock returns the worker's clock (the time base of nat.Binding's
// Created and LastSeen).
func (g *GW) Clock() int64 { return g.clock.Load() }

// Stats returns the gateway counters.
func (g *GW) Stats() *GWStats { return &g.stats }

// Tick implements Ticker: control events and idle expiry.
func (g *GW) Tick(now int64) {
	g.now = now
	g.clock.Store(now)
	if g.ticks++; g.ticks&1023 == 0 {
		t := time.Now()
		g.cfg.Dist.SetNow(t)
		if g.acct != nil {
			g.acct.wall0 = t.UnixNano() - now // follow wall-clock steps
		}
	}
	g.acctTick()
	for {
		select {
		case ev := <-g.events:
			g.apply(ev)
			continue
		default:
		}
		break
	}
	g.cfg.Flows.Expire(now, g.cfg.ExpireBudget, g.onEnd)
}

func (g *GW) apply(ev SessionEvent) {
	s := ev.Session
	if ev.End {
		if old, ok := g.sessions[s.IP]; ok {
			// Records first: their accounting still names the session.
			g.cfg.Flows.DeleteSession(old.ID, g.now, g.onEnd)
			g.cfg.Dist.EndSession(old.ID)
			delete(g.sessions, s.IP)
		}
		return
	}
	if old, ok := g.sessions[s.IP]; ok && old.ID != s.ID {
		// The address went to a new session: the old one's records go.
		g.cfg.Flows.DeleteSession(old.ID, g.now, g.onEnd)
		g.cfg.Dist.EndSession(old.ID)
	}
	g.sessions[s.IP] = s
}

// flowEnded runs for every flow record the table removes, while the
// record is still in the table.
func (g *GW) flowEnded(b *nat.Binding, cause nat.Cause) {
	id, ok := g.cfg.Flows.Up(&b.Flow)
	if !ok {
		return // cannot happen: the table calls before removing
	}
	if b.Service != 0 {
		svc := b.Service - 1
		if t, _ := g.cfg.Services.Type(svc); t != balance.PacketUnit {
			if idx := g.flowSrv[id]; idx >= 0 {
				g.cfg.Dist.FlowEnd(b.Session, svc, int(idx))
			}
		}
	}
	if g.acct != nil {
		g.acctReport(id, b, true, cause)
	}
	g.flowLB[id] = nat.MAC{}
	g.stats.FlowsEnded.Add(1)
	if g.cfg.OnEnd != nil {
		g.cfg.OnEnd(b, cause)
	}
}

// Process implements Pipeline.
func (g *GW) Process(in int, pkts []Packet) {
	if in == g.cfg.Lan {
		g.processUp(pkts)
		return
	}
	g.p = &g.downP
	for i := range pkts {
		pk := &pkts[i]
		if v := header.Parse(pk.Data, g.p); v != header.OK {
			pk.Drop = ReasonMalformed
			continue
		}
		if g.p.IPVersion == 0 {
			pk.Drop = ReasonNotIP
			continue
		}
		g.down(pk)
	}
}

// upPre is what processUp's first pass learns of one up packet.
type upPre struct {
	p       header.Parsed
	v       header.Verdict
	icmpErr bool
	read    bool       // t has ports (xlat.Read accepted it) and h is set
	t       xlat.Tuple // addresses always (IP packets)
	h       uint32     // the flow key's hash in T5's up index
}

// processUp handles a batch of up packets in two passes. The first parses
// each one and hashes its flow key; then T5 loads the batch's up-index
// cells and bindings in tight loops (PortTable.TouchUp), so that with many
// flows their cache misses overlap instead of stalling one packet after
// another; the second pass does the work, with the parse and the hash of
// the first. Flows that a packet creates are found by later packets of the
// same batch, as the lookups themselves happen in the second pass.
// Measured in BENCHMARKS.md: gw-nat, and "Also tried" for what did not
// work (a touch right after each parse).
func (g *GW) processUp(pkts []Packet) {
	if cap(g.pre) < len(pkts) {
		g.pre = make([]upPre, len(pkts))
		g.hs = make([]uint32, 0, len(pkts))
	}
	pre := g.pre[:len(pkts)]
	hs := g.hs[:0]
	for i := range pkts {
		pr, b := &pre[i], pkts[i].Data
		pr.read = false
		if pr.v = header.Parse(b, &pr.p); pr.v != header.OK || pr.p.IPVersion == 0 {
			continue
		}
		pr.icmpErr = xlat.IsICMPError(b, &pr.p)
		if pr.read = !pr.icmpErr && xlat.Read(b, &pr.p, &pr.t); !pr.read {
			xlat.Read4or6(b, &pr.p, &pr.t)
			continue
		}
		k := upKey(&pr.t, pr.p.Proto)
		pr.h = g.cfg.Flows.UpHash(&k)
		hs = append(hs, pr.h)
	}
	g.touched ^= g.cfg.Flows.TouchUp(hs)
	for i := range pkts {
		pk, pr := &pkts[i], &pre[i]
		switch {
		case pr.v != header.OK:
			pk.Drop = ReasonMalformed
		case pr.p.IPVersion == 0:
			pk.Drop = ReasonNotIP
		default:
			g.p = &pr.p
			g.up(pk, pr)
		}
	}
}

// upKey is the T5 key of an up packet's tuple.
func upKey(t *xlat.Tuple, proto uint8) nat.FlowKey {
	return nat.FlowKey{Src: nat.Addr16(t.Src), Dst: nat.Addr16(t.Dst), SPort: t.SPort, DPort: t.DPort, Proto: proto}
}

// up handles a packet from a mobile (through an LB), with what
// processUp's first pass learned of it.
func (g *GW) up(pk *Packet, pr *upPre) {
	b := pk.Data
	t := &pr.t
	lb := nat.MAC(header.Ethernet(b).Src())
	icmpErr, read := pr.icmpErr, pr.read
	var k nat.FlowKey
	var id uint32
	found := false
	if read {
		k = upKey(t, g.p.Proto)
		id, found = g.cfg.Flows.UpHashed(&k, pr.h)
	}
	// A flow exists only while its session does (a session's end removes
	// its flows), so only packets without one need T3 (R-GW-7, step S124):
	// established flows skip the session lookup.
	var sess Session
	if !found {
		var ok bool
		if sess, ok = g.sessions[t.Src]; !ok && g.cfg.RequireSession {
			pk.Drop = ReasonNoSession
			return
		}
		if icmpErr {
			g.learnLB(t.Src, lb)
			g.upICMPError(pk, lb)
			return
		}
		if !read {
			pk.Drop = ReasonUnsupported
			return
		}
	}
	var tcpFlags uint8
	if g.p.Proto == header.ProtoTCP {
		tcpFlags = g.p.TCP(b).Flags()
	}
	if !found {
		if g.p.Proto == header.ProtoTCP && tcpFlags&(header.FlagSYN|header.FlagACK|header.FlagRST) != header.FlagSYN {
			pk.Drop = ReasonNoFlow // only a SYN opens a TCP flow
			return
		}
		var r Reason
		if id, r = g.create(&k, &sess, pk); r != ReasonNone {
			pk.Drop = r
			return
		}
	}
	bd := g.cfg.Flows.Binding(id)
	if g.flowLB[id] != lb {
		// A new flow, or the mobile moved to another LB: T12 learns the
		// LB of the mobile's latest up packet (R-GW-4). Checked per flow
		// so the cache is written only on change, not per packet.
		g.flowLB[id] = lb
		g.learnLB(t.Src, lb)
	}
	server, sport := bd.Server, bd.SPort
	if bd.Service != 0 {
		svc := bd.Service - 1
		if typ, _ := g.cfg.Services.Type(svc); typ == balance.PacketUnit {
			// Packet unit: a new choice for every up packet but the
			// first (create chose for it).
			if found {
				idx, ok := g.cfg.Dist.Decide(bd.Session, svc, balance.UpPacket)
				if !ok {
					pk.Drop = ReasonNoServer
					return
				}
				a, p, _ := g.cfg.Services.Server16(svc, idx)
				g.flowAddr[id], g.flowPort[id], g.flowSrv[id] = nat.Addr16(a), p, int32(idx)
			}
			server, sport = g.flowAddr[id], g.flowPort[id]
		}
	}
	mac, ok := g.nh.Lookup([16]byte(server))
	if !ok {
		pk.Drop = ReasonNoNextHop
		return
	}
	g.acctPacket(id, b, true)
	nt := xlat.Tuple{Src: [16]byte(bd.GwAddr), Dst: [16]byte(server), SPort: bd.GwPort, DPort: sport}
	if g.p.Proto == header.ProtoICMPv4 || g.p.Proto == header.ProtoICMPv6 {
		nt.DPort = 0
	}
	if !xlat.RewriteFrom(b, g.p, t, &nt) {
		pk.Drop = ReasonUnsupported
		return
	}
	g.cfg.Flows.Touch(id, true, g.p.IPEnd-g.p.L3Off, tcpFlags, g.now)
	e := header.Ethernet(b)
	e.SetDst(mac)
	e.SetSrc(g.cfg.ServerMAC)
	pk.Out = g.cfg.Servers
}

// create opens a flow record for the first packet of a user session's
// flow: the actual server by T6/T7 (R-GW-2, R-GW-6) or the destination
// itself when it is no representative address (R-GW-3), and a key port.
func (g *GW) create(k *nat.FlowKey, sess *Session, pk *Packet) (uint32, Reason) {
	session := sess.ID
	if g.cfg.Authz != nil {
		if _, ok := g.cfg.Authz.Check([16]byte(k.Dst), sess.DeviceID); !ok {
			g.stats.Denied.Add(1)
			g.refuse(pk)
			return 0, ReasonDenied
		}
	}
	server, sport := k.Dst, k.DPort
	var service uint32
	idx := -1
	svc, ok := g.cfg.Services.Lookup(k.Dst, k.DPort, k.Proto)
	echo := k.Proto == header.ProtoICMPv4 || k.Proto == header.ProtoICMPv6
	if !ok && echo {
		// An echo names no port: it goes to a server of a service at
		// that representative address (R-GW-1), balanced and kept as
		// that service's are.
		svc, ok = g.cfg.Services.LookupAddr(k.Dst)
	}
	if ok {
		i, ok := g.cfg.Dist.Decide(session, svc, balance.FlowStart)
		if !ok {
			return 0, ReasonNoServer
		}
		a, p, _ := g.cfg.Services.Server16(svc, i)
		server, sport = nat.Addr16(a), p
		if echo {
			sport = k.DPort
		}
		service, idx = svc+1, i
	}
	id, err := g.cfg.Flows.Create(k, server, sport, session, service, g.now)
	if err != nil {
		if idx >= 0 {
			// Give back what Decide counted for this flow.
			if t, _ := g.cfg.Services.Type(service - 1); t == balance.PacketUnit {
				g.cfg.Dist.Down(session, service-1)
			} else {
				g.cfg.Dist.FlowEnd(session, service-1, idx)
			}
		}
		g.stats.Exhausted.Add(1)
		g.refuse(pk)
		return 0, ReasonPortExhausted
	}
	g.flowSrv[id] = int32(idx)
	g.flowAddr[id], g.flowPort[id] = server, sport
	g.acctStart(id)
	g.stats.FlowsCreated.Add(1)
	return id, ReasonNone
}

// refuse answers a packet the gateway cannot carry: a RST for TCP, an
// ICMP destination unreachable (administratively prohibited) otherwise.
// The answer takes the packet's frame and goes back toward the LB, from
// the packet's destination; the caller sets the drop reason, which the
// engine counts although the frame leaves (as the reply).
func (g *GW) refuse(pk *Packet) {
	b := pk.Data
	var n int
	if g.p.Proto == header.ProtoTCP {
		n = xlat.TCPReset(b, g.p, g.scratch)
	} else {
		code := uint8(header.ICMPv4AdminProhibited)
		if g.p.IPVersion == 6 {
			code = header.ICMPv6AdminProhibited
		}
		n = xlat.Unreachable(b, g.p, g.scratch, code)
	}
	if n == 0 || n > len(pk.Room) {
		return
	}
	copy(pk.Room, g.scratch[:n])
	e := header.Ethernet(pk.Room)
	e.SetSrc(g.cfg.LanMAC)
	pk.Desc.Len = uint32(n)
	pk.Out = g.cfg.Lan
	g.stats.Replies.Add(1)
}

// upICMPError translates an ICMP error a mobile sends about a down packet.
func (g *GW) upICMPError(pk *Packet, lb nat.MAC) {
	b := pk.Data
	var q xlat.Tuple
	proto, ok := xlat.ReadError(b, g.p, &q)
	if !ok {
		pk.Drop = ReasonUnsupported
		return
	}
	// The quoted packet went representative -> mobile; its flow is the
	// reverse.
	k := nat.FlowKey{Src: nat.Addr16(q.Dst), Dst: nat.Addr16(q.Src), SPort: q.DPort, DPort: q.SPort, Proto: proto}
	id, found := g.cfg.Flows.Up(&k)
	if !found {
		pk.Drop = ReasonNoFlow
		return
	}
	bd := g.cfg.Flows.Binding(id)
	server, sport := g.flowAddr[id], g.flowPort[id]
	mac, ok := g.nh.Lookup([16]byte(server))
	if !ok {
		pk.Drop = ReasonNoNextHop
		return
	}
	nq := xlat.Tuple{Src: [16]byte(server), Dst: [16]byte(bd.GwAddr), SPort: sport, DPort: bd.GwPort}
	if !xlat.RewriteError(b, g.p, [16]byte(bd.GwAddr), [16]byte(server), &nq) {
		pk.Drop = ReasonUnsupported
		return
	}
	e := header.Ethernet(b)
	e.SetDst(mac)
	e.SetSrc(g.cfg.ServerMAC)
	pk.Out = g.cfg.Servers
}

// down handles a packet from a server to a key port.
func (g *GW) down(pk *Packet) {
	b := pk.Data
	if xlat.IsICMPError(b, g.p) {
		g.downICMPError(pk)
		return
	}
	var t xlat.Tuple
	if !xlat.Read(b, g.p, &t) {
		pk.Drop = ReasonUnsupported
		return
	}
	key := t.DPort
	id, found := g.cfg.Flows.Down(nat.Addr16(t.Dst), key, g.p.Proto)
	if !found {
		pk.Drop = ReasonNoFlow
		return
	}
	bd := g.cfg.Flows.Binding(id)
	lb, ok := g.lbOf(id, bd)
	if !ok {
		pk.Drop = ReasonNoNextHop
		return
	}
	g.acctPacket(id, b, false)
	f := &bd.Flow
	nt := xlat.Tuple{Src: [16]byte(f.Dst), Dst: [16]byte(f.Src), SPort: f.DPort, DPort: f.SPort}
	if g.p.Proto == header.ProtoICMPv4 || g.p.Proto == header.ProtoICMPv6 {
		nt.SPort = 0
	}
	if !xlat.RewriteFrom(b, g.p, &t, &nt) {
		pk.Drop = ReasonUnsupported
		return
	}
	var tcpFlags uint8
	if g.p.Proto == header.ProtoTCP {
		tcpFlags = g.p.TCP(b).Flags()
	}
	g.cfg.Flows.Touch(id, false, g.p.IPEnd-g.p.L3Off, tcpFlags, g.now)
	if bd.Service != 0 {
		if t, _ := g.cfg.Services.Type(bd.Service - 1); t == balance.PacketUnit {
			g.cfg.Dist.Down(bd.Session, bd.Service-1)
		}
	}
	e := header.Ethernet(b)
	e.SetDst(lb)
	e.SetSrc(g.cfg.LanMAC)
	pk.Out = g.cfg.Lan
}

// learnLB records in T12 that mobile's latest up packet came from lb.
func (g *GW) learnLB(mobile [16]byte, lb nat.MAC) {
	g.key = mobile // a key in the GW, so the cache's []byte does not escape a local
	cur, ok := g.lbs.Get(g.key[:])
	switch {
	case ok && cur != lb:
		g.lbs.Set(g.key[:], lb, 1) // an existing key is updated at once
	case !ok:
		// A new key goes through ristretto's buffers; wait until it is
		// in, or a move right after could find this older value
		// while the newer one waits (once per mobile, not per packet).
		g.lbs.Set(g.key[:], lb, 1)
		g.lbs.Wait()
	}
}

// lbOf is T12's answer for the flow's mobile, or the LB of the flow's own
// latest up packet while T12 has no entry (R-GW-4).
func (g *GW) lbOf(id uint32, bd *nat.Binding) (nat.MAC, bool) {
	g.key = [16]byte(bd.Flow.Src)
	if m, ok := g.lbs.Get(g.key[:]); ok {
		return m, true
	}
	m := g.flowLB[id]
	return m, m != (nat.MAC{})
}

// downICMPError translates an ICMP error about an up packet (quoting
// gateway address:key -> server).
func (g *GW) downICMPError(pk *Packet) {
	b := pk.Data
	var q xlat.Tuple
	proto, ok := xlat.ReadError(b, g.p, &q)
	if !ok {
		pk.Drop = ReasonUnsupported
		return
	}
	id, found := g.cfg.Flows.Down(nat.Addr16(q.Src), q.SPort, proto)
	if !found {
		pk.Drop = ReasonNoFlow
		return
	}
	bd := g.cfg.Flows.Binding(id)
	lb, ok := g.lbOf(id, bd)
	if !ok {
		pk.Drop = ReasonNoNextHop
		return
	}
	var outer xlat.Tuple
	xlat.Read4or6(b, g.p, &outer)
	f := &bd.Flow
	src := outer.Src
	if src == [16]byte(g.flowAddr[id]) {
		src = [16]byte(f.Dst) // the server itself: speak as the representative
	}
	nq := xlat.Tuple{Src: [16]byte(f.Src), Dst: [16]byte(f.Dst), SPort: f.SPort, DPort: f.DPort}
	if !xlat.RewriteError(b, g.p, src, [16]byte(f.Src), &nq) {
		pk.Drop = ReasonUnsupported
		return
	}
	e := header.Ethernet(b)
	e.SetDst(lb)
	e.SetSrc(g.cfg.LanMAC)
	pk.Out = g.cfg.Lan
}
