package tcpproxy

// The test topology, all in memory:
//
//	client netstack ==wire== [mobile Link | Terminator | server Link] ==wire== server netstack
//	10.0.0.2, 10.0.0.3        rep 198.51.100.80:80     gw 192.0.2.1          192.0.2.10:80
//	fd00::2                   rep 64:ff9b::c633:6450                          (IPv4 only)
//
// A wire moves packets between two Links the way the dataplane will: Read
// with a 14-byte offset (room for an Ethernet header), then Inject, keeping
// what Inject does not take. It holds every packet to a full checksum
// recomputation (header.VerifyChecksums) and records every SYN.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	gheader "gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"samepath/dp/header"
)

var (
	client1   = netip.MustParseAddr("10.0.0.2")
	client2   = netip.MustParseAddr("10.0.0.3")
	client6   = netip.MustParseAddr("fd00::2")
	repAddr   = netip.MustParseAddrPort("198.51.100.80:80")
	repAddr6  = netip.MustParseAddrPort("[64:ff9b::c633:6450]:80")
	gwAddr    = netip.MustParseAddr("192.0.2.1")
	srvAddr   = netip.MustParseAddrPort("192.0.2.10:80")
	waitLimit = 20 * time.Second // a test fails if an event takes longer
)

// syn is one SYN or SYN-ACK seen on a wire.
type syn struct {
	src, dst netip.AddrPort
	ack      bool
	opts     gheader.TCPSynOptions
	window   uint16
}

// wire connects Links a and b. Direction 0 is a->b, 1 is b->a.
type wire struct {
	t    testing.TB
	a, b *Link
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	frames [2]int
	errs   []error
	syns   [2][]syn
	rsts   [2]int
	// dropEvery, if set before traffic, drops every k-th frame of each
	// direction (a lossy link, deterministic); dropped counts them.
	dropEvery int
	dropped   [2]int
	// maxWindow is the largest window field (unscaled) of a segment
	// without SYN, per direction.
	maxWindow [2]uint16
}

func newWire(t testing.TB, a, b *Link) *wire {
	w := &wire{t: t, a: a, b: b, stop: make(chan struct{})}
	for dir, l := range []*Link{a, b} {
		ready := make(chan struct{}, 1)
		l.SetNotify(func() {
			select {
			case ready <- struct{}{}:
			default:
			}
		})
		dst := b
		if dir == 1 {
			dst = a
		}
		w.wg.Add(1)
		go w.run(dir, l, dst, ready)
	}
	return w
}

func (w *wire) close() {
	close(w.stop)
	w.wg.Wait()
	w.a.SetNotify(nil)
	w.b.SetNotify(nil)
}

const ethLen = 14

// maxSyns is how many SYNs a wire records per direction (the leak test
// makes thousands).
const maxSyns = 64

func (w *wire) run(dir int, src, dst *Link, ready <-chan struct{}) {
	defer w.wg.Done()
	const batch = 32
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, ethLen+65536)
	}
	sizes := make([]int, batch)
	pkts := make([][]byte, 0, batch)
	for {
		n := src.Read(bufs, sizes, ethLen)
		if n == 0 {
			select {
			case <-ready:
				continue
			case <-w.stop:
				return
			}
		}
		pkts = pkts[:0]
		for i := range n {
			frame := bufs[i][:ethLen+sizes[i]]
			if w.check(dir, frame) {
				pkts = append(pkts, frame[ethLen:])
			}
		}
		for len(pkts) > 0 {
			k := dst.Inject(pkts)
			pkts = pkts[k:]
			if len(pkts) > 0 {
				// Backpressure: keep the rest and retry.
				select {
				case <-w.stop:
					return
				case <-time.After(50 * time.Microsecond):
				}
			}
		}
	}
}

// check writes an Ethernet header in front of the packet, recomputes every
// checksum and records SYNs and RSTs. It reports whether to pass the frame
// on (false: the lossy link drops it).
func (w *wire) check(dir int, frame []byte) (pass bool) {
	et := uint16(0x0800)
	if frame[ethLen]>>4 == 6 {
		et = 0x86dd
	}
	copy(frame[0:6], []byte{2, 0, 0, 0, 0, 1})
	copy(frame[6:12], []byte{2, 0, 0, 0, 0, 2})
	binary.BigEndian.PutUint16(frame[12:14], et)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frames[dir]++
	if w.dropEvery > 0 && w.frames[dir]%w.dropEvery == 0 {
		w.dropped[dir]++
		defer func() { pass = false }()
	}
	if err := header.VerifyChecksums(frame); err != nil {
		w.errs = append(w.errs, fmt.Errorf("dir %d frame %d: %w", dir, w.frames[dir], err))
		return true
	}
	var p header.Parsed
	if v := header.Parse(frame, &p); v != header.OK || p.Proto != 6 || p.L4Off == 0 {
		w.errs = append(w.errs, fmt.Errorf("dir %d frame %d: not TCP (verdict %v, proto %d)", dir, w.frames[dir], v, p.Proto))
		return true
	}
	h := gheader.TCP(frame[p.L4Off:])
	var src, dst netip.Addr
	if p.IPVersion == 4 {
		ip := gheader.IPv4(frame[p.L3Off:])
		src, _ = netip.AddrFromSlice(ip.SourceAddressSlice())
		dst, _ = netip.AddrFromSlice(ip.DestinationAddressSlice())
	} else {
		ip := gheader.IPv6(frame[p.L3Off:])
		src, _ = netip.AddrFromSlice(ip.SourceAddressSlice())
		dst, _ = netip.AddrFromSlice(ip.DestinationAddressSlice())
	}
	if h.Flags().Contains(gheader.TCPFlagRst) {
		w.rsts[dir]++
	}
	if !h.Flags().Contains(gheader.TCPFlagSyn) && !h.Flags().Contains(gheader.TCPFlagRst) {
		w.maxWindow[dir] = max(w.maxWindow[dir], h.WindowSize())
	}
	if h.Flags().Contains(gheader.TCPFlagSyn) && len(w.syns[dir]) < maxSyns {
		ack := h.Flags().Contains(gheader.TCPFlagAck)
		w.syns[dir] = append(w.syns[dir], syn{
			src: netip.AddrPortFrom(src, h.SourcePort()), dst: netip.AddrPortFrom(dst, h.DestinationPort()),
			ack: ack, opts: gheader.ParseSynOptions(h.Options(), ack), window: h.WindowSize(),
		})
	}
	return true
}

func (w *wire) synsOf(dir int) []syn {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]syn(nil), w.syns[dir]...)
}

func (w *wire) counts() (frames, rsts [2]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.frames, w.rsts
}

func (w *wire) checkErrors(t testing.TB) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, err := range w.errs {
		t.Error(err)
	}
	if w.frames[0] == 0 && w.frames[1] == 0 {
		return
	}
}

// peerProfile is the test peers' TCP: Linux-like, short TIME-WAIT so the
// leak test's endpoints go.
func peerProfile() Profile {
	p := Wired()
	p.Name = "peer"
	p.TimeWait = 100 * time.Millisecond
	p.FinWait2 = time.Second
	return p
}

// env is a terminator between a client and a server netstack.
type env struct {
	t      testing.TB
	term   *Terminator
	client *side
	server *side
	mw, sw *wire

	mu      sync.Mutex
	nClosed int
	nOpened int
	sniffed [][]byte // the first 16
	untrack bool     // do not keep Conns (the leak test)

	closeOnce sync.Once
	refuse    func(Request) bool
	sessions  map[netip.Addr]uint64
	accepted  chan *srvConn
	closedCh  chan *Conn
}

// testConfig shortens TIME-WAIT on both sides and keeps the defaults
// otherwise.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.MobileProfile.TimeWait = 100 * time.Millisecond
	cfg.ServerProfile.TimeWait = 100 * time.Millisecond
	cfg.MobileProfile.FinWait2 = time.Second
	cfg.ServerProfile.FinWait2 = time.Second
	cfg.ServerAddrs = []netip.Addr{gwAddr}
	return cfg
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	e := &env{
		t:        t,
		sessions: map[netip.Addr]uint64{client1: 1, client2: 2, client6: 6},
		accepted: make(chan *srvConn, 1024),
		closedCh: make(chan *Conn, 1<<15),
	}
	cfg.Admit = e.admit
	cfg.OnOpen = func(c *Conn) {
		e.mu.Lock()
		e.nOpened++
		e.mu.Unlock()
	}
	cfg.OnClose = func(c *Conn) {
		e.mu.Lock()
		e.nClosed++
		untrack := e.untrack
		e.mu.Unlock()
		if !untrack {
			e.closedCh <- c
		}
	}
	cfg.OnFirstBytes = func(c *Conn, b []byte) {
		e.mu.Lock()
		if len(e.sniffed) < 16 {
			e.sniffed = append(e.sniffed, append([]byte(nil), b...))
		}
		e.mu.Unlock()
	}
	term, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.term = term
	e.client = newPeer(t, Mobile, client1, client2, client6)
	e.server = newPeer(t, Server, srvAddr.Addr())
	e.mw = newWire(t, e.client.link, term.Link(Mobile))
	e.sw = newWire(t, term.Link(Server), e.server.link)
	e.listen()
	t.Cleanup(e.close)
	return e
}

// newPeer is a plain netstack with the given addresses. It reuses the
// terminator's side setup (one NIC on a Link, default routes).
func newPeer(t testing.TB, which Side, addrs ...netip.Addr) *side {
	t.Helper()
	p, err := newSide(which, peerProfile(), DefaultLinkConfig())
	if err != nil {
		t.Fatalf("peer: %v", err)
	}
	for _, a := range addrs {
		if err := p.addAddress(a); err != nil {
			t.Fatalf("peer: %v", err)
		}
	}
	return p
}

func (e *env) admit(r Request) Decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refuse != nil && e.refuse(r) {
		return Decision{Refuse: true}
	}
	return Decision{Session: e.sessions[r.Mobile.Addr()], Server: srvAddr, Data: r.Rep}
}

func (e *env) close() { e.closeOnce.Do(e.doClose) }

func (e *env) doClose() {
	if err := e.term.Close(); err != nil && !errors.Is(err, ErrClosed) {
		e.t.Errorf("Close: %v", err)
	}
	e.mw.close()
	e.sw.close()
	e.client.stack.Destroy()
	e.server.stack.Destroy()
	e.mw.checkErrors(e.t)
	e.sw.checkErrors(e.t)
}

// srvConn is a connection the test server accepted.
type srvConn struct {
	ep tcpip.Endpoint
	c  *gonet.TCPConn
}

// listen accepts on srvAddr and hands each connection to e.accepted.
func (e *env) listen() {
	var wq waiter.Queue
	ep, terr := e.server.stack.NewEndpoint(tcp.ProtocolNumber, netProto(srvAddr.Addr()), &wq)
	if terr != nil {
		e.t.Fatalf("server endpoint: %s", terr)
	}
	if terr := ep.Bind(fullAddr(srvAddr)); terr != nil {
		e.t.Fatalf("server bind: %s", terr)
	}
	if terr := ep.Listen(1024); terr != nil {
		e.t.Fatalf("server listen: %s", terr)
	}
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&entry)
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nep, nwq, terr := ep.Accept(nil)
			if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
				select {
				case <-ch:
					continue
				case <-stop:
					return
				}
			}
			if terr != nil {
				return
			}
			e.accepted <- &srvConn{ep: nep, c: gonet.NewTCPConn(nwq, nep)}
		}
	}()
	e.t.Cleanup(func() {
		close(stop)
		<-done
		wq.EventUnregister(&entry)
		ep.Close()
		for {
			select {
			case sc := <-e.accepted:
				sc.c.Close()
			default:
				return
			}
		}
	})
}

// dial connects the client from src to rep through the terminator.
func (e *env) dial(src netip.Addr, rep netip.AddrPort) (*gonet.TCPConn, tcpip.Endpoint, error) {
	var wq waiter.Queue
	ep, terr := e.client.stack.NewEndpoint(tcp.ProtocolNumber, netProto(rep.Addr()), &wq)
	if terr != nil {
		return nil, nil, fmt.Errorf("endpoint: %s", terr)
	}
	if terr := ep.Bind(tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(src.AsSlice())}); terr != nil {
		ep.Close()
		return nil, nil, fmt.Errorf("bind: %s", terr)
	}
	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents | waiter.EventHUp | waiter.EventErr)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(fullAddr(rep))
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ch:
		case <-time.After(waitLimit):
			ep.Close()
			return nil, nil, errors.New("connect: no answer")
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, nil, fmt.Errorf("connect: %s", terr)
	}
	return gonet.NewTCPConn(&wq, ep), ep, nil
}

func (e *env) mustDial(src netip.Addr, rep netip.AddrPort) (*gonet.TCPConn, tcpip.Endpoint) {
	e.t.Helper()
	c, ep, err := e.dial(src, rep)
	if err != nil {
		e.t.Fatalf("dial %v -> %v: %v", src, rep, err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c, ep
}

func (e *env) nextAccepted() *srvConn {
	e.t.Helper()
	select {
	case sc := <-e.accepted:
		e.t.Cleanup(func() { sc.c.Close() })
		return sc
	case <-time.After(waitLimit):
		e.t.Fatal("server accepted nothing")
		return nil
	}
}

func (e *env) nextClosed() *Conn {
	e.t.Helper()
	select {
	case c := <-e.closedCh:
		return c
	case <-time.After(waitLimit):
		e.t.Fatal("no connection ended")
		return nil
	}
}

// readAll reads c until EOF or an error, within waitLimit.
func readAll(c *gonet.TCPConn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(waitLimit))
	defer c.SetReadDeadline(time.Time{}) // a pending timer would hold c
	return io.ReadAll(c)
}

// readN reads exactly n bytes.
func readN(c *gonet.TCPConn, n int) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(waitLimit))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

// isReset reports whether err is a connection reset from netstack.
func isReset(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("connection reset"))
}

// waitFor polls cond until it holds or waitLimit passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
