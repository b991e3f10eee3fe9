package tcpproxy

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Request is a mobile's SYN, as Admit sees it.
type Request struct {
	// Mobile is the SYN's source: the mobile's address and port.
	Mobile netip.AddrPort
	// Rep is the SYN's destination: the representative address and port
	// the mobile connects to.
	Rep netip.AddrPort
}

// Decision is what Admit makes of a Request.
type Decision struct {
	// Refuse answers the SYN with a RST and makes no connection.
	Refuse bool
	// Session is the mobile's user session: the per-session limit counts
	// its connections and CloseSession ends them. 0 is no session: no
	// per-session limit, and CloseSession(0) ends nothing.
	Session uint64
	// Server is the actual server to connect to (T6/T7's choice).
	Server netip.AddrPort
	// Local, if valid, is the server-side connection's source. Otherwise
	// netstack picks the side's address of Server's family and a port in
	// Config.ServerPorts.
	Local netip.AddrPort
	// Data is the caller's, kept with the Conn (service, subscriber...).
	Data any
	// Risk, if set, lets the connection move to another server when
	// Server fails (risk.go, R-TCP-4).
	Risk *Risk
}

// Config configures a Terminator.
type Config struct {
	// MobileProfile and ServerProfile are each side's TCP profile.
	MobileProfile Profile
	ServerProfile Profile
	// MobileLink and ServerLink size each side's link queues.
	MobileLink LinkConfig
	ServerLink LinkConfig
	// ServerAddrs are the gateway addresses the server side connects
	// from (at most one per family is used unless Decision.Local names
	// another). Servers reply to them, so the dataplane must hand frames
	// to these addresses (and ServerPorts) to the server side's Link.
	ServerAddrs []netip.Addr
	// ServerPorts is the range of local ports the server side picks from.
	ServerPorts [2]uint16
	// MaxConns bounds the connections of this terminator (per gateway).
	MaxConns int
	// MaxConnsPerSession bounds each session's connections.
	MaxConnsPerSession int
	// MaxInFlight bounds the SYNs being admitted, dialled or handshaken at
	// once; SYNs beyond it are dropped and counted (CtrSYNInFlight).
	MaxInFlight int
	// DialTimeout bounds the server-side connect.
	DialTimeout time.Duration
	// IdleTimeout resets a connection that moved no payload either way
	// for this long.
	IdleTimeout time.Duration
	// SpliceBuffer is the bytes each direction of a connection holds at
	// most between reading one side and writing the other.
	SpliceBuffer int
	// SniffBytes is how many of the mobile's first bytes OnFirstBytes
	// gets; 0 turns it off.
	SniffBytes int

	// Admit decides on each SYN (required). It runs on the SYN's own
	// goroutine and may block briefly; the SYN waits.
	Admit func(Request) Decision
	// OnOpen, if set, runs when a connection is spliced.
	OnOpen func(*Conn)
	// OnFirstBytes, if set, gets the first bytes the mobile sent (up to
	// SniffBytes, from the first read) before they go to the server. b is
	// valid only during the call.
	OnFirstBytes func(c *Conn, b []byte)
	// OnClose, if set, runs exactly once for every Conn that Admit did not
	// refuse, after it ended (Conn.End says why), with final byte counts.
	OnClose func(*Conn)
	// OnServer, if set, runs each time risk balancing (risk.go) has
	// connected the Conn to another server than the one before: a
	// failover at the first connect (before OnOpen), before the first
	// response byte or for a mid-body resume (after OnOpen). server is
	// the new one (Conn.Server may already name a later attempt).
	OnServer func(c *Conn, server netip.AddrPort)
}

// DefaultConfig is wireless to the mobile, wired to the servers, and
// limits for one gateway. ServerAddrs and Admit are left to the caller.
func DefaultConfig() Config {
	return Config{
		MobileProfile:      Wireless(),
		ServerProfile:      Wired(),
		MobileLink:         DefaultLinkConfig(),
		ServerLink:         DefaultLinkConfig(),
		ServerPorts:        [2]uint16{32768, 60999},
		MaxConns:           65536,
		MaxConnsPerSession: 1024,
		MaxInFlight:        1024,
		DialTimeout:        10 * time.Second,
		IdleTimeout:        15 * time.Minute,
		SpliceBuffer:       64 << 10,
		SniffBytes:         1024,
	}
}

// Validate reports the first unusable field by name.
func (c Config) Validate() error {
	bad := func(field string, v any) error {
		return fmt.Errorf("tcpproxy %s %v: %w", field, v, ErrConfig)
	}
	if err := c.MobileProfile.Validate(); err != nil {
		return fmt.Errorf("mobile_profile: %w", err)
	}
	if err := c.ServerProfile.Validate(); err != nil {
		return fmt.Errorf("server_profile: %w", err)
	}
	if err := c.MobileLink.Validate(); err != nil {
		return fmt.Errorf("mobile_link: %w", err)
	}
	if err := c.ServerLink.Validate(); err != nil {
		return fmt.Errorf("server_link: %w", err)
	}
	if len(c.ServerAddrs) == 0 {
		return bad("server_addrs", "(none)")
	}
	for _, a := range c.ServerAddrs {
		if !a.IsValid() || a.IsUnspecified() || a.Is4In6() {
			return bad("server_addrs", a)
		}
	}
	switch {
	case c.ServerPorts[0] == 0 || c.ServerPorts[1] < c.ServerPorts[0]:
		return bad("server_ports", c.ServerPorts)
	case c.MaxConns < 1:
		return bad("max_conns", c.MaxConns)
	case c.MaxConnsPerSession < 1:
		return bad("max_conns_per_session", c.MaxConnsPerSession)
	case c.MaxInFlight < 1:
		return bad("max_in_flight", c.MaxInFlight)
	case c.DialTimeout <= 0:
		return bad("dial_timeout", c.DialTimeout)
	case c.IdleTimeout <= 0:
		return bad("idle_timeout", c.IdleTimeout)
	case c.SpliceBuffer < 1:
		return bad("splice_buffer", c.SpliceBuffer)
	case c.SniffBytes < 0:
		return bad("sniff_bytes", c.SniffBytes)
	case c.Admit == nil:
		return bad("admit", "nil")
	}
	return nil
}

// ErrClosed is returned by calls on a closed Terminator.
var ErrClosed = errors.New("tcpproxy closed")

// Terminator terminates the mobiles' TCP connections on one netstack and
// splices each to a connection of its own to the actual server on a
// second netstack. See doc.go.
type Terminator struct {
	cfg Config
	mob *side
	srv *side
	fwd atomic.Pointer[tcp.Forwarder]
	buf sync.Pool // *[]byte of cfg.SpliceBuffer

	mu        sync.Mutex
	closed    bool
	inFlight  map[stack.TransportEndpointID]struct{}
	conns     map[*Conn]struct{}
	bySession map[uint64]map[*Conn]struct{}
	ended     ConnStats // byte counts of the ended connections

	wg  sync.WaitGroup // one per goroutine of a SYN
	ctr [NumCounters]atomic.Uint64
}

// New builds both sides' stacks. The caller then feeds each side's Link
// (Link(Mobile), Link(Server)) and must Close the Terminator.
func New(cfg Config) (*Terminator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Terminator{
		cfg:       cfg,
		inFlight:  make(map[stack.TransportEndpointID]struct{}),
		conns:     make(map[*Conn]struct{}),
		bySession: make(map[uint64]map[*Conn]struct{}),
	}
	t.buf.New = func() any { b := make([]byte, cfg.SpliceBuffer); return &b }
	var err error
	if t.mob, err = newSide(Mobile, cfg.MobileProfile, cfg.MobileLink); err != nil {
		return nil, err
	}
	if t.srv, err = newSide(Server, cfg.ServerProfile, cfg.ServerLink); err != nil {
		t.mob.stack.Destroy()
		return nil, err
	}
	if err := t.setup(); err != nil {
		t.mob.stack.Destroy()
		t.srv.stack.Destroy()
		return nil, err
	}
	return t, nil
}

func (t *Terminator) setup() error {
	ms := t.mob.stack
	// Accept connections to any address (the representative addresses
	// are not the stack's own) and answer from it.
	if err := ms.SetPromiscuousMode(nicID, true); err != nil {
		return fmt.Errorf("mobile stack promiscuous: %s", err)
	}
	if err := ms.SetSpoofing(nicID, true); err != nil {
		return fmt.Errorf("mobile stack spoofing: %s", err)
	}
	t.mob.onProfile = t.newForwarder
	t.newForwarder(*t.mob.profile.Load())
	ms.SetTransportProtocolHandler(tcp.ProtocolNumber, t.handleSYN)

	for _, a := range t.cfg.ServerAddrs {
		if err := t.srv.addAddress(a); err != nil {
			return err
		}
	}
	if err := t.srv.stack.SetPortRange(t.cfg.ServerPorts[0], t.cfg.ServerPorts[1]); err != nil {
		return fmt.Errorf("server stack port range %v: %s: %w", t.cfg.ServerPorts, err, ErrConfig)
	}
	return nil
}

// newForwarder replaces the mobile side's forwarder: its receive window
// (the accepted endpoints' initial receive buffer) is fixed at creation.
// Requests of the old one complete on it.
func (t *Terminator) newForwarder(p Profile) {
	t.fwd.Store(tcp.NewForwarder(t.mob.stack, p.RecvBuf.Default, t.cfg.MaxInFlight, t.onRequest))
}

// handleSYN is the mobile stack's handler for segments no endpoint
// takes. It runs on the mobile Link's inbound goroutine only, so the
// goroutine the forwarder starts for a SYN is accounted in t.wg before it
// exists, and a SYN beyond MaxInFlight is counted here.
func (t *Terminator) handleSYN(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	f := t.fwd.Load()
	h := header.TCP(pkt.TransportHeader().Slice())
	if len(h) < header.TCPMinimumSize || h.Flags()&(header.TCPFlagSyn|header.TCPFlagAck) != header.TCPFlagSyn {
		// Not a SYN: the forwarder ignores it, netstack answers RST.
		return f.HandlePacket(id, pkt)
	}
	t.mu.Lock()
	if _, ok := t.inFlight[id]; ok {
		t.mu.Unlock()
		return true // a retransmitted SYN of a request under way
	}
	if t.closed {
		t.mu.Unlock()
		t.ctr[CtrSYNClosed].Add(1)
		return true
	}
	if len(t.inFlight) >= t.cfg.MaxInFlight {
		t.mu.Unlock()
		t.ctr[CtrSYNInFlight].Add(1)
		return true
	}
	t.inFlight[id] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	// Our in-flight set is never smaller than the forwarder's, so it
	// starts a goroutine for every SYN it takes.
	if !f.HandlePacket(id, pkt) {
		// A bad checksum: no goroutine.
		t.mu.Lock()
		delete(t.inFlight, id)
		t.mu.Unlock()
		t.wg.Done()
		return false
	}
	return true
}

// onRequest is a SYN's goroutine: admit, connect to the server, complete
// the mobile's handshake, splice until the end.
func (t *Terminator) onRequest(r *tcp.ForwarderRequest) {
	defer t.wg.Done()
	id := r.ID()
	complete := func(rst bool) {
		r.Complete(rst)
		t.mu.Lock()
		delete(t.inFlight, id)
		t.mu.Unlock()
	}
	t.ctr[CtrSYN].Add(1)
	req := Request{Mobile: addrPort(id.RemoteAddress, id.RemotePort), Rep: addrPort(id.LocalAddress, id.LocalPort)}
	d := t.cfg.Admit(req)
	if d.Refuse {
		t.ctr[CtrRefusedAdmit].Add(1)
		complete(true)
		return
	}
	c := newConn(t, req, d)
	if end := t.register(c); end != 0 {
		t.ctr[end].Add(1)
		complete(true)
		t.finish(c, end)
		return
	}
	sep, err := t.dialRisk(c, d)
	if err != nil {
		end := CtrDialFailed
		if c.killed() {
			end = Counter(c.killReason.Load())
		}
		t.ctr[end].Add(1)
		complete(true)
		t.finish(c, end)
		return
	}
	c.sep = sep
	if c.killed() {
		// Killed while connecting to the server: do not start the
		// mobile's handshake, which only ends on its own.
		complete(true)
		sep.Abort()
		sep.Close()
		end := Counter(c.killReason.Load())
		t.ctr[end].Add(1)
		t.finish(c, end)
		return
	}
	mep, terr := r.CreateEndpoint(&c.mq)
	complete(false)
	if terr == nil && c.killed() {
		// Killed during the handshake, which cannot be interrupted.
		mep.Abort()
		mep.Close()
		terr = &tcpip.ErrAborted{}
	}
	if terr != nil {
		end := CtrMobileHandshakeFailed
		if c.killed() {
			end = Counter(c.killReason.Load())
		}
		t.ctr[end].Add(1)
		sep.Abort()
		sep.Close()
		t.finish(c, end)
		return
	}
	c.mep = mep
	if err := t.mob.profile.Load().applyEndpoint(mep); err != nil {
		// Options of a profile that validated: netstack refused them.
		t.ctr[CtrMobileHandshakeFailed].Add(1)
		mep.Abort()
		mep.Close()
		sep.Abort()
		sep.Close()
		t.finish(c, CtrMobileHandshakeFailed)
		return
	}
	t.ctr[CtrSpliced].Add(1)
	if t.cfg.OnOpen != nil {
		t.cfg.OnOpen(c)
	}
	end := c.splice()
	t.ctr[end].Add(1)
	t.finish(c, end)
}

// register adds c to the connection tables unless a limit or Close
// refuses it; it returns the refusal's counter or 0.
func (t *Terminator) register(c *Conn) Counter {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return CtrRefusedClosed
	case len(t.conns) >= t.cfg.MaxConns:
		return CtrRefusedGatewayLimit
	case c.session != 0 && len(t.bySession[c.session]) >= t.cfg.MaxConnsPerSession:
		return CtrRefusedSessionLimit
	}
	t.conns[c] = struct{}{}
	if c.session != 0 {
		m := t.bySession[c.session]
		if m == nil {
			m = make(map[*Conn]struct{})
			t.bySession[c.session] = m
		}
		m[c] = struct{}{}
	}
	return 0
}

// finish records c's end, drops it from the tables and runs OnClose.
func (t *Terminator) finish(c *Conn, end Counter) {
	c.end.Store(int32(end))
	st := c.Stats()
	t.mu.Lock()
	t.ended.add(st)
	delete(t.conns, c)
	if m := t.bySession[c.session]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(t.bySession, c.session)
		}
	}
	t.mu.Unlock()
	if t.cfg.OnClose != nil {
		t.cfg.OnClose(c)
	}
}

var errDialTimeout = errors.New("dial timeout")

// dial connects c's server-side endpoint to d.Server, within DialTimeout,
// unless c is killed first.
func (t *Terminator) dial(c *Conn, d Decision) (tcpip.Endpoint, error) {
	if !d.Server.IsValid() {
		return nil, fmt.Errorf("server %v: %w", d.Server, ErrConfig)
	}
	ep, terr := t.srv.stack.NewEndpoint(tcp.ProtocolNumber, netProto(d.Server.Addr()), &c.sq)
	if terr != nil {
		return nil, fmt.Errorf("server endpoint: %s", terr)
	}
	fail := func(err error) (tcpip.Endpoint, error) {
		ep.Close()
		return nil, err
	}
	if err := t.srv.profile.Load().applyEndpoint(ep); err != nil {
		return fail(err)
	}
	if d.Local.IsValid() {
		if terr := ep.Bind(fullAddr(d.Local)); terr != nil {
			return fail(fmt.Errorf("bind %v: %s", d.Local, terr))
		}
	}
	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents | waiter.EventHUp | waiter.EventErr)
	c.sq.EventRegister(&entry)
	defer c.sq.EventUnregister(&entry)
	terr = ep.Connect(fullAddr(d.Server))
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		timer := time.NewTimer(t.cfg.DialTimeout)
		defer timer.Stop()
	wait:
		select {
		case <-ch:
			if !c.killed() && connecting(ep) {
				goto wait // another endpoint's event on c.sq (risk.go's switch)
			}
		case <-timer.C:
			return fail(errDialTimeout)
		case <-c.killCh:
		}
		if c.killed() {
			return fail(ErrClosed)
		}
		terr = ep.LastError()
	}
	if terr != nil {
		return fail(fmt.Errorf("connect %v: %s", d.Server, terr))
	}
	if la, terr := ep.GetLocalAddress(); terr == nil {
		c.local.Store(new(addrPort(la.Addr, la.Port)))
	}
	return ep, nil
}

// Link returns one side's link: the dataplane Injects that side's
// frames and Reads what netstack sends to that side.
func (t *Terminator) Link(s Side) *Link { return t.sideOf(s).link }

func (t *Terminator) sideOf(s Side) *side {
	if s == Server {
		return t.srv
	}
	return t.mob
}

// Profile returns the profile a side applies now.
func (t *Terminator) Profile(s Side) Profile { return *t.sideOf(s).profile.Load() }

// Profiles lists the profiles in use, indexed by Side.
func (t *Terminator) Profiles() []Profile { return []Profile{t.Profile(Mobile), t.Profile(Server)} }

// SetProfile changes a side's profile for the connections it accepts or
// makes from now on; established connections keep theirs.
func (t *Terminator) SetProfile(s Side, p Profile) error {
	if s != Mobile && s != Server {
		return fmt.Errorf("side %v: %w", s, ErrConfig)
	}
	return t.sideOf(s).setProfile(p)
}

// CloseSession resets both sides of every connection of session id and
// returns how many it reset. It does not wait for them to end; each one's
// OnClose reports CtrEndSession.
func (t *Terminator) CloseSession(id uint64) int {
	if id == 0 {
		return 0
	}
	t.mu.Lock()
	cs := make([]*Conn, 0, len(t.bySession[id]))
	for c := range t.bySession[id] {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	for _, c := range cs {
		c.kill(CtrEndSession)
	}
	return len(cs)
}

// Conns calls fn for each connection admitted and not yet ended (from a
// snapshot, so fn may call into the Terminator) until fn returns false.
func (t *Terminator) Conns(fn func(*Conn) bool) {
	t.mu.Lock()
	cs := make([]*Conn, 0, len(t.conns))
	for c := range t.conns {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	for _, c := range cs {
		if !fn(c) {
			return
		}
	}
}

// Counters returns a snapshot of the terminator's counters.
func (t *Terminator) Counters() Counters {
	var c Counters
	for i := range c.Conn {
		c.Conn[i] = t.ctr[i].Load()
	}
	t.mu.Lock()
	c.Active = len(t.conns)
	// Under t.mu a connection is either live or ended, never both nor
	// neither, so the totals only grow.
	c.Bytes = t.ended
	for cn := range t.conns {
		c.Bytes.add(cn.Stats())
	}
	t.mu.Unlock()
	for _, s := range []*side{t.mob, t.srv} {
		c.Link[s.which] = s.link.Counters()
		st := s.stack.Stats()
		c.Stack[s.which] = StackCounters{
			IPMalformed:          st.IP.MalformedPacketsReceived.Value(),
			IPInvalidDst:         st.IP.InvalidDestinationAddressesReceived.Value(),
			L4Malformed:          st.NICs.MalformedL4RcvdPackets.Value(),
			TCPChecksumErrors:    st.TCP.ChecksumErrors.Value(),
			TCPInvalidSegments:   st.TCP.InvalidSegmentsReceived.Value(),
			TCPForwardInFlight:   st.TCP.ForwardMaxInFlightDrop.Value(),
			TCPSegmentSendErrors: st.TCP.SegmentSendErrors.Value(),
			TCPResetsSent:        st.TCP.ResetsSent.Value(),
			TCPResetsReceived:    st.TCP.ResetsReceived.Value(),
			TCPRetransmits:       st.TCP.Retransmits.Value(),
			TCPEndpoints:         uint64(len(s.stack.RegisteredEndpoints())),
		}
	}
	return c
}

// Close resets every connection, waits for their goroutines and destroys
// both stacks. RSTs still queued on a Link when its stack goes are
// dropped and counted (OutClosed): Read them before Close to send them.
func (t *Terminator) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.closed = true
	cs := make([]*Conn, 0, len(t.conns))
	for c := range t.conns {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	for _, c := range cs {
		c.kill(CtrEndClose)
	}
	t.wg.Wait()
	t.mob.stack.Destroy()
	t.srv.stack.Destroy()
	return nil
}
