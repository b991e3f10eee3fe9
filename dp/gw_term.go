package dp

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"samepath/dp/acct"
	"samepath/dp/header"
	"samepath/nat"
	"samepath/tcpproxy"
)

// TCP termination (T11 mode terminate, R-TCP-1; the contract is
// tcpproxy/doc.go). A flow to a terminate-mode service opens as in NAT
// mode: its first SYN is authorized (T8/T9, R-AUTH-1: a refusal gets the
// gateway's RST and nothing reaches the terminator), balanced by T6/T7
// and given a T5 record, so the flow views, T7's counts, idle expiry and
// session ends treat it as any flow. The server is decided here, not in
// Admit: create leaves a Decision (server, session, this GW) keyed by the
// SYN's addresses in TermHooks, and Admit, on the SYN's goroutine, takes
// it; a SYN the gateway did not decide on is refused (RST).
//
// Then every frame of the flow from the mobile goes, Ethernet stripped,
// into the terminator's mobile Link (in one Inject per batch) instead of
// being rewritten: the packet is Consumed, or, if the Link's queue is
// full, dropped as ReasonTermFull (the mobile retransmits). The
// terminator's own connections to the servers leave from its
// ServerAddrs, ports ServerPorts, a range the daemon keeps apart from
// T5's key ports; the down path hands the servers' TCP segments to those
// ports to the server Link before any T5 lookup. A T5 key port of a
// terminated flow carries nothing: a down packet to one is ReasonFiltered.
//
// The GW is an Originator: each poll round the worker lends it free
// frames, which it fills from the Links (Read at offset 14) and gives an
// Ethernet header: toward the mobile from LanMAC to the flow's LB (T12,
// flowLB; a frame of no known flow, such as a RST to a refused SYN, to
// the mobile's LB in the T12 cache), toward a server from ServerMAC to
// the server's neighbor MAC. A frame without a next hop is dropped as
// ReasonNoNextHop. Frames to the mobile count on the T5 record (down)
// and its accounting.
//
// Accounting: the T10 record of a terminated flow is its T5 record's,
// written when the record ends, with the payload byte counts of the
// mobile's connection (tcpproxy.ConnStats: MobileRx up, MobileTx down:
// what the mobile sent and received, retransmissions not counted) in
// place of the per-packet ones. Its attribute (the HTTP Host and path,
// the TLS SNI) is sniffed from the first bytes of the mobile's stream as
// the terminator read them (OnFirstBytes: in order, without
// retransmissions), not from the first up segment the gateway sees,
// which may be a later one that overtook a lost first. OnOpen,
// OnFirstBytes, OnServer and OnClose run on connection goroutines: they
// only queue the Conn (termEvents, under a mutex; OnFirstBytes with a
// copy of at most acct.MaxScan bytes, OnServer with the new server), and
// Tick, on the worker, takes the queue in order: OnOpen ties the Conn to
// its flow record, OnFirstBytes sniffs the record's attribute, OnServer
// moves the record to the server risk balancing connected it to
// (termMoved, gw_risk.go), OnClose ends the record (cause from
// Conn.End). A record that ends first (idle expiry, an operator,
// shutdown) resets its Conn; a session's end (R-GW-7) also calls
// CloseSession, which reaches the connections still being set up.
//
// A T10 record of a terminated flow names the server the connection was
// on when the record was written. After a failover before the first
// response byte that is the substitute, which sent every byte of the
// response. After a resume mid-body the response came from two servers:
// the final record names the last one, which carried its end, and the
// byte counts, the mobile's, are the whole response's, not split by
// server; an interim record written before the resume names the first.
//
// ICMP errors about a terminated flow go to the netstack that sent the
// quoted segment, as a host's kernel would take them: from the mobile
// (quoting representative -> mobile) into the mobile Link, from a server
// or a router (quoting a terminator address and port -> server) into the
// server Link (termOwn). Netstack checks them (checksum, a quoted
// connection it has) and drops and counts what it cannot use; an
// unreachable fails a connect in progress at once (the mobile gets a
// RST: CtrDialFailed), is a soft error on an established connection,
// and packet too big lowers that connection's MSS. They are not
// translated to the other side: each side's TCP is its own.
//
// Not covered: the per-packet unit type (refused by
// balance.ServiceConfig.Validate), and more than one worker feeding one
// Terminator (each GW reads every frame of the Links; the daemon runs
// one gateway worker).

// TermHooks connects a tcpproxy.Terminator to the gateway that feeds it.
// Install it into the terminator's Config before tcpproxy.New, then give
// both to GWConfig; NewGW binds it.
type TermHooks struct {
	mu        sync.Mutex
	decisions map[termKey]tcpproxy.Decision
	addrs     []nat.Addr16
	ports     [2]uint16
	bound     atomic.Bool
}

type termKey struct{ mobile, rep netip.AddrPort }

// Install sets cfg's Admit, OnOpen, OnFirstBytes, OnServer and OnClose and takes its ServerAddrs
// and ServerPorts (the down path's test for the terminator's frames):
// call it once cfg is otherwise final.
func (h *TermHooks) Install(cfg *tcpproxy.Config) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.decisions = map[termKey]tcpproxy.Decision{}
	h.addrs = h.addrs[:0]
	for _, a := range cfg.ServerAddrs {
		h.addrs = append(h.addrs, nat.Addr16From(a))
	}
	h.ports = cfg.ServerPorts
	cfg.Admit, cfg.OnOpen, cfg.OnFirstBytes, cfg.OnClose = h.admit, h.open, h.first, h.close
	cfg.OnServer = h.server
}

// admit takes the gateway's decision for the SYN; none: refuse.
func (h *TermHooks) admit(r tcpproxy.Request) tcpproxy.Decision {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := termKey{r.Mobile, r.Rep}
	d, ok := h.decisions[k]
	if !ok {
		return tcpproxy.Decision{Refuse: true}
	}
	delete(h.decisions, k)
	return d
}

func (h *TermHooks) decide(k termKey, d tcpproxy.Decision) {
	h.mu.Lock()
	h.decisions[k] = d
	h.mu.Unlock()
}

func (h *TermHooks) forget(k termKey) {
	h.mu.Lock()
	delete(h.decisions, k)
	h.mu.Unlock()
}

// Pending is how many decisions wait for their SYN's Admit.
func (h *TermHooks) Pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.decisions)
}

func (h *TermHooks) open(c *tcpproxy.Conn) {
	if g, ok := c.Data().(*GW); ok {
		g.termQueue(termEvent{c: c, kind: termOpen})
	}
}

func (h *TermHooks) close(c *tcpproxy.Conn) {
	if g, ok := c.Data().(*GW); ok {
		g.termQueue(termEvent{c: c, kind: termClose})
	}
}

// server gets the server risk balancing connected c to (a failover or a
// resume): the worker moves the flow record there.
func (h *TermHooks) server(c *tcpproxy.Conn, to netip.AddrPort) {
	if g, ok := c.Data().(*GW); ok {
		g.termQueue(termEvent{c: c, kind: termServer, to: to})
	}
}

// first gets the first bytes of the mobile's stream, in order and
// without retransmissions, for the accounting sniffer (the URL or SNI of
// the T10 record): a copy goes to the worker, once per connection.
func (h *TermHooks) first(c *tcpproxy.Conn, b []byte) {
	if g, ok := c.Data().(*GW); ok && g.acct != nil {
		g.termQueue(termEvent{c: c, kind: termSniff, b: append([]byte(nil), b[:min(len(b), acct.MaxScan)]...)})
	}
}

// local reports whether addr:port is one of the terminator's own.
func (h *TermHooks) local(addr nat.Addr16, port uint16) bool {
	if port < h.ports[0] || port > h.ports[1] {
		return false
	}
	for _, a := range h.addrs {
		if a == addr {
			return true
		}
	}
	return false
}

// termEvent is a connection's open, first bytes, new server or close,
// queued for the worker.
type termEvent struct {
	c    *tcpproxy.Conn
	kind termKind
	b    []byte         // termSniff: the first bytes of the mobile's stream
	to   netip.AddrPort // termServer: the server it is connected to now
}

type termKind uint8

const (
	termOpen termKind = iota
	termSniff
	termServer
	termClose
)

// termState is the GW's side of termination.
type termState struct {
	t     *tcpproxy.Terminator
	hooks *TermHooks
	mob   *tcpproxy.Link
	srv   *tcpproxy.Link

	mu     sync.Mutex
	events []termEvent // from connection goroutines
	work   []termEvent // the worker's, swapped with events

	in    [][]byte // this batch's IP packets for a Link
	inIdx []int    // their packets' indexes in the batch
	bufs  [][]byte // Read buffers (the lent frames)
	sizes []int

	closing *tcpproxy.Conn // the Conn whose close ends a record now
	risk    riskTable      // per service (gw_risk.go)

	// gone keeps, for goneLinger, the LB of each mobile whose terminated
	// flow's record ended while its Conn lived (a session's end, which
	// also forgets T12): the Conn's RSTs still reach the mobile.
	gone      map[nat.Addr16]goneLB
	goneSweep int64
}

type goneLB struct {
	lb    nat.MAC
	until int64
}

// goneLinger is how long the LB of an ended terminated flow is kept for
// its Conn's last segments (RSTs: they leave at once).
const goneLinger = int64(5 * time.Second)

// TermStats count termination beyond the drop reasons.
type TermStats struct {
	// Flows counts terminated flows opened (records made for them).
	Flows atomic.Uint64
	// Late counts connection events whose flow record had already gone.
	Late atomic.Uint64
	// Moved counts flow records moved to another server (termMoved).
	Moved atomic.Uint64
}

var errTermHooks = errors.New("gw: a terminator needs the TermHooks installed in its config")

func (g *GW) termInit() error {
	if g.cfg.Terminator == nil {
		return nil
	}
	h := g.cfg.TermHooks
	if h == nil || h.decisions == nil {
		return errTermHooks
	}
	if !h.bound.CompareAndSwap(false, true) {
		return errors.New("gw: term hooks already bound to another gateway")
	}
	g.term = &termState{
		t: g.cfg.Terminator, hooks: h,
		mob: g.cfg.Terminator.Link(tcpproxy.Mobile), srv: g.cfg.Terminator.Link(tcpproxy.Server),
		gone: map[nat.Addr16]goneLB{},
	}
	g.flowTerm = make([]bool, len(g.flowLB))
	g.flowConn = make([]*tcpproxy.Conn, len(g.flowLB))
	return nil
}

// termQueue runs on a connection's goroutine.
func (g *GW) termQueue(ev termEvent) {
	ts := g.term
	ts.mu.Lock()
	ts.events = append(ts.events, ev)
	ts.mu.Unlock()
}

// termKeyOf is the terminator's name of flow k (mobile -> representative).
func termKeyOf(k *header.Tuple) termKey {
	return termKey{
		mobile: netip.AddrPortFrom(k.Src.Addr(), k.SPort),
		rep:    netip.AddrPortFrom(k.Dst.Addr(), k.DPort),
	}
}

// termCreated records the decision for a new terminated flow id.
func (g *GW) termCreated(id uint32, k *header.Tuple, session uint64) {
	g.flowTerm[id] = true
	g.flowConn[id] = nil
	g.term.hooks.decide(termKeyOf(k), tcpproxy.Decision{
		Server:  netip.AddrPortFrom(g.flowAddr[id].Addr(), g.flowPort[id]),
		Session: session,
		Data:    g,
		Risk:    g.termRisk(g.cfg.Flows.Binding(id).Service - 1),
	})
	g.stats.Term.Flows.Add(1)
}

// termUp takes an up packet of terminated flow id into this batch's
// Inject (termFlush).
func (g *GW) termUp(pk *Packet, d *header.Decoded, id uint32, i int) {
	b := pk.Data
	if g.acct != nil {
		// The attribute comes from the stream (TermHooks.first), not
		// from the first segment seen, which on a lossy or reordering
		// radio link may not be the stream's first.
		g.acct.sniffed[id] = true
	}
	g.acctPacket(id, b, &d.Parsed, true) // the payload counts are the Conn's
	g.cfg.Flows.Touch(id, true, d.IPEnd-d.L3Off, d.TCPFlags, g.now)
	g.termIn(b[d.L3Off:d.IPEnd], i)
}

// termOwn reports whether down packet d belongs to the terminator's
// server side: a TCP segment to one of its own ports, or an ICMP error
// (unreachable, packet too big, time exceeded) quoting a segment from
// one. Netstack validates the error and acts on it as a host does: an
// unreachable fails a connect in progress at once (the mobile gets a
// RST, CtrDialFailed); packet too big lowers the connection's MSS.
func (g *GW) termOwn(d *header.Decoded) bool {
	h := g.term.hooks
	switch d.Kind {
	case header.KindFlow:
		return d.Proto == header.ProtoTCP && h.local(d.Tuple.Dst, d.Tuple.DPort)
	case header.KindICMPError:
		q := &d.Quote.Tuple
		return q.Proto == header.ProtoTCP && q.Src == d.Tuple.Dst && h.local(q.Src, q.SPort)
	}
	return false
}

func (g *GW) termIn(ip []byte, i int) {
	ts := g.term
	ts.in = append(ts.in, ip)
	ts.inIdx = append(ts.inIdx, i)
}

// termFlush hands the batch's packets to link; those it refuses are
// dropped as ReasonTermFull, the others are Consumed.
func (g *GW) termFlush(pkts []Packet, link *tcpproxy.Link) {
	ts := g.term
	if ts == nil || len(ts.in) == 0 {
		return
	}
	n := link.Inject(ts.in)
	for j, i := range ts.inIdx {
		if j < n {
			pkts[i].Out = Consumed
		} else {
			pkts[i].Drop = ReasonTermFull
		}
	}
	clear(ts.in)
	ts.in, ts.inIdx = ts.in[:0], ts.inIdx[:0]
}

// termPending is how many of the terminator's frames wait for port out
// (Pending).
func (g *GW) termPending(out int) int {
	ts := g.term
	switch {
	case ts == nil:
		return 0
	case out == g.cfg.Lan:
		return ts.mob.Pending()
	case out == g.cfg.Servers:
		return ts.srv.Pending()
	}
	return 0
}

// termOriginate writes the terminator's frames for port out (Originate).
func (g *GW) termOriginate(out int, pkts []Packet) int {
	ts := g.term
	if ts == nil || (out != g.cfg.Lan && out != g.cfg.Servers) {
		return 0
	}
	link := ts.srv
	if out == g.cfg.Lan {
		link = ts.mob
	}
	ts.bufs, ts.sizes = ts.bufs[:0], ts.sizes[:0]
	for i := range pkts {
		ts.bufs = append(ts.bufs, pkts[i].Room)
		ts.sizes = append(ts.sizes, 0)
	}
	n := link.Read(ts.bufs, ts.sizes, header.EthernetLen)
	for i := range n {
		pk := &pkts[i]
		b := pk.Room[:header.EthernetLen+ts.sizes[i]]
		pk.Desc.Len = uint32(len(b))
		if out == g.cfg.Lan {
			g.termToMobile(pk, b)
		} else {
			g.termToServer(pk, b)
		}
	}
	clear(ts.bufs)
	return n
}

// termFrame writes frame b's EtherType from its IP version and decodes it.
func (g *GW) termFrame(b []byte) (*header.Decoded, bool) {
	if len(b) <= header.EthernetLen {
		return nil, false
	}
	e := header.Ethernet(b)
	switch b[header.EthernetLen] >> 4 {
	case 4:
		e.SetType(header.EtherTypeIPv4)
	case 6:
		e.SetType(header.EtherTypeIPv6)
	default:
		return nil, false
	}
	d := &g.downD
	if header.Decode(b, d) != header.OK || d.IPVersion == 0 {
		return nil, false
	}
	return d, true
}

func (g *GW) termToMobile(pk *Packet, b []byte) {
	d, ok := g.termFrame(b)
	if !ok {
		pk.Drop = ReasonMalformed
		return
	}
	t := &d.Tuple
	k := header.Tuple{Src: t.Dst, Dst: t.Src, SPort: t.DPort, DPort: t.SPort, Proto: t.Proto}
	var lb nat.MAC
	if id, found := g.cfg.Flows.Up(&k); found && g.flowTerm[id] {
		bd := g.cfg.Flows.Binding(id)
		if lb, ok = g.lbOf(id, bd); ok {
			g.acctPacket(id, b, &d.Parsed, false)
			g.cfg.Flows.Touch(id, false, d.IPEnd-d.L3Off, d.TCPFlags, g.now)
		}
	} else if gl, had := g.term.gone[t.Dst]; had {
		// The record ended under a live Conn: its RSTs.
		lb, ok = gl.lb, true
	} else {
		// No record (a RST to a SYN the terminator refused, a segment
		// after the record ended): the mobile's latest LB.
		g.key = t.Dst
		var e lbEntry
		e, ok = g.lbs.Get(g.key[:])
		lb = e.lb
	}
	if !ok || lb == (nat.MAC{}) {
		pk.Drop = ReasonNoNextHop
		return
	}
	e := header.Ethernet(b)
	e.SetDst(lb)
	e.SetSrc(g.cfg.LanMAC)
	pk.Out = g.cfg.Lan
}

func (g *GW) termToServer(pk *Packet, b []byte) {
	d, ok := g.termFrame(b)
	if !ok {
		pk.Drop = ReasonMalformed
		return
	}
	mac, ok := g.nh.Lookup(d.Tuple.Dst)
	if !ok {
		pk.Drop = ReasonNoNextHop
		return
	}
	e := header.Ethernet(b)
	e.SetDst(mac)
	e.SetSrc(g.cfg.ServerMAC)
	pk.Out = g.cfg.Servers
}

// termTick takes the connections' events (worker).
func (g *GW) termTick() {
	ts := g.term
	if ts == nil {
		return
	}
	if len(ts.gone) > 0 && g.now >= ts.goneSweep {
		ts.goneSweep = g.now + goneLinger
		for a, gl := range ts.gone {
			if g.now >= gl.until {
				delete(ts.gone, a)
			}
		}
	}
	ts.mu.Lock()
	ts.events, ts.work = ts.work[:0], ts.events
	ts.mu.Unlock()
	for i := range ts.work {
		ev := ts.work[i]
		ts.work[i] = termEvent{}
		g.termEvent(ev)
	}
}

func (g *GW) termEvent(ev termEvent) {
	c, open := ev.c, ev.kind == termOpen
	m, r := c.Mobile(), c.Rep()
	k := header.Tuple{
		Src: nat.Addr16From(m.Addr()), Dst: nat.Addr16From(r.Addr()),
		SPort: m.Port(), DPort: r.Port(), Proto: header.ProtoTCP,
	}
	id, found := g.cfg.Flows.Up(&k)
	if !found || !g.flowTerm[id] || (g.flowConn[id] != nil && g.flowConn[id] != c) {
		g.stats.Term.Late.Add(1)
		if open {
			c.Reset() // its record is gone: nothing would carry its packets
		}
		return
	}
	g.flowConn[id] = c
	switch ev.kind {
	case termOpen:
		return
	case termSniff:
		if g.acct != nil && g.acct.attrOf[id] < 0 {
			g.acctAttr(id, ev.b)
		}
		return
	case termServer:
		g.termMoved(id, ev.to)
		return
	}
	b := g.cfg.Flows.Binding(id)
	cause := termCause(c.End())
	g.term.closing = c
	g.flowEnded(b, cause)
	g.term.closing = nil
	g.cfg.Flows.Delete(id, cause)
}

// termCause is the T5 cause of a connection's end.
func termCause(end tcpproxy.Counter) nat.Cause {
	switch end {
	case tcpproxy.CtrEndFIN:
		return nat.TCPClose
	case tcpproxy.CtrEndIdle:
		return nat.IdleTimeout
	case tcpproxy.CtrEndSession:
		return nat.SessionEnd
	case tcpproxy.CtrEndClose:
		return nat.Admin
	}
	return nat.TCPReset // resets, failed connects and handshakes, limits
}

// termEnded is flowEnded's part for a terminated flow id, before its
// accounting record: the Conn's payload counts replace the per-packet
// ones, a Conn that outlives its record is reset, a decision its SYN
// never took is forgotten.
func (g *GW) termEnded(id uint32, b *nat.Binding, cause nat.Cause) {
	ts := g.term
	c := g.flowConn[id]
	if c != nil {
		if g.acct != nil {
			st := c.Stats()
			g.acct.upPay[id], g.acct.downPay[id] = st.MobileRx, st.MobileTx
		}
		if c != ts.closing {
			if cause != nat.SessionEnd {
				c.Reset() // a session's end resets its connections itself (CloseSession)
			}
			if lb := g.flowLB[id]; lb != (nat.MAC{}) {
				ts.gone[b.Flow.Src] = goneLB{lb, g.now + goneLinger}
			}
		}
	} else {
		ts.hooks.forget(termKeyOf(&b.Flow))
	}
	g.flowTerm[id], g.flowConn[id] = false, nil
}
