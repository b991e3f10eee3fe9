package tcpproxy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// isRefused reports whether a dial failed on a RST.
func isRefused(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection was refused") || strings.Contains(err.Error(), "connection reset"))
}

// An idle connection is reset both ways after IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	e := newEnv(t, cfg)
	c, _ := e.mustDial(client1, repAddr)
	c.Write([]byte("x"))
	sc := e.nextAccepted()
	readN(sc.c, 1)
	if _, err := readAll(c); !isReset(err) {
		t.Errorf("client read error %v, want a reset", err)
	}
	if _, err := readAll(sc.c); !isReset(err) {
		t.Errorf("server read error %v, want a reset", err)
	}
	if end := e.nextClosed().End(); end != CtrEndIdle {
		t.Errorf("end %v, want %v", end, CtrEndIdle)
	}
	if got := e.term.Counters().Conn[CtrEndIdle]; got != 1 {
		t.Errorf("end_idle %d, want 1", got)
	}
}

// Admit's refusal is a RST from the gateway, and no SYN reaches a server.
func TestAdmitRefuses(t *testing.T) {
	e := newEnv(t, testConfig())
	e.mu.Lock()
	e.refuse = func(r Request) bool { return r.Rep.Port() == 81 }
	e.mu.Unlock()
	_, _, err := e.dial(client1, netip.AddrPortFrom(repAddr.Addr(), 81))
	if !isRefused(err) {
		t.Fatalf("dial to a refused service: %v, want refused", err)
	}
	if n := len(e.sw.synsOf(0)); n != 0 {
		t.Errorf("%d SYNs reached the server side, want 0", n)
	}
	ctr := e.term.Counters()
	if ctr.Conn[CtrSYN] != 1 || ctr.Conn[CtrRefusedAdmit] != 1 || ctr.Active != 0 {
		t.Errorf("syn %d refused_admit %d active %d, want 1 1 0", ctr.Conn[CtrSYN], ctr.Conn[CtrRefusedAdmit], ctr.Active)
	}
	e.mu.Lock()
	closed := e.nClosed
	e.mu.Unlock()
	if closed != 0 {
		t.Errorf("OnClose ran %d times for a refused SYN, want 0", closed)
	}
	// The next service is not refused.
	exchange(t, e)
}

// A server that refuses the connection gets the mobile a RST.
func TestDialFailed(t *testing.T) {
	e := newEnv(t, testConfig())
	e.term.cfg.Admit = func(r Request) Decision {
		return Decision{Session: 1, Server: netip.AddrPortFrom(srvAddr.Addr(), 81)}
	}
	if _, _, err := e.dial(client1, repAddr); !isRefused(err) {
		t.Fatalf("dial: %v, want refused", err)
	}
	if end := e.nextClosed().End(); end != CtrDialFailed {
		t.Errorf("end %v, want %v", end, CtrDialFailed)
	}
	if got := e.term.Counters().Conn[CtrDialFailed]; got != 1 {
		t.Errorf("dial_failed %d, want 1", got)
	}
}

// Past MaxConns or MaxConnsPerSession the mobile gets a RST, the refusal is
// counted and reported to OnClose, and no SYN reaches a server.
func TestConnLimits(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 3
	cfg.MaxConnsPerSession = 2
	e := newEnv(t, cfg)
	open := func(src netip.Addr) func() {
		t.Helper()
		c, _ := e.mustDial(src, repAddr)
		c.Write([]byte("x"))
		sc := e.nextAccepted()
		readN(sc.c, 1)
		return func() { c.Close(); sc.c.Close() }
	}
	first := open(client1)
	open(client1)
	if _, _, err := e.dial(client1, repAddr); !isRefused(err) {
		t.Fatalf("third connection of session 1: %v, want refused", err)
	}
	if end := e.nextClosed().End(); end != CtrRefusedSessionLimit {
		t.Errorf("end %v, want %v", end, CtrRefusedSessionLimit)
	}
	open(client2)
	if _, _, err := e.dial(client2, repAddr); !isRefused(err) {
		t.Fatalf("fourth connection: %v, want refused", err)
	}
	if end := e.nextClosed().End(); end != CtrRefusedGatewayLimit {
		t.Errorf("end %v, want %v", end, CtrRefusedGatewayLimit)
	}
	ctr := e.term.Counters()
	if ctr.Conn[CtrRefusedSessionLimit] != 1 || ctr.Conn[CtrRefusedGatewayLimit] != 1 || ctr.Active != 3 {
		t.Errorf("refused_session_limit %d refused_gateway_limit %d active %d, want 1 1 3",
			ctr.Conn[CtrRefusedSessionLimit], ctr.Conn[CtrRefusedGatewayLimit], ctr.Active)
	}
	if n := len(e.sw.synsOf(0)); n != 3 {
		t.Errorf("%d SYNs reached the server side, want 3", n)
	}
	// A connection that ends makes room again.
	first()
	if end := e.nextClosed().End(); end != CtrEndFIN {
		t.Errorf("end %v, want %v", end, CtrEndFIN)
	}
	open(client1)
}

// CloseSession resets that session's connections both ways and leaves the
// others alone.
func TestCloseSession(t *testing.T) {
	e := newEnv(t, testConfig())
	type pair struct {
		c  *gonet.TCPConn
		sc *srvConn
	}
	open := func(src netip.Addr) pair {
		c, _ := e.mustDial(src, repAddr)
		c.Write([]byte("x"))
		sc := e.nextAccepted()
		readN(sc.c, 1)
		return pair{c, sc}
	}
	a, b, other := open(client1), open(client1), open(client2)
	if n := e.term.CloseSession(1); n != 2 {
		t.Fatalf("CloseSession(1) = %d, want 2", n)
	}
	for _, p := range []pair{a, b} {
		if _, err := readAll(p.c); !isReset(err) {
			t.Errorf("client read %v, want a reset", err)
		}
		if _, err := readAll(p.sc.c); !isReset(err) {
			t.Errorf("server read %v, want a reset", err)
		}
	}
	for range 2 {
		if end := e.nextClosed().End(); end != CtrEndSession {
			t.Errorf("end %v, want %v", end, CtrEndSession)
		}
	}
	// Session 2 still works.
	other.c.Write([]byte("still"))
	if got, err := readN(other.sc.c, 5); err != nil || string(got) != "still" {
		t.Errorf("session 2 after CloseSession(1): %q, %v", got, err)
	}
	if n := e.term.CloseSession(1); n != 0 {
		t.Errorf("CloseSession(1) again = %d, want 0", n)
	}
	if n := e.term.CloseSession(0); n != 0 {
		t.Errorf("CloseSession(0) = %d, want 0", n)
	}
	var live []netip.AddrPort
	e.term.Conns(func(c *Conn) bool { live = append(live, c.Mobile()); return true })
	if len(live) != 1 || live[0].Addr() != client2 {
		t.Errorf("Conns after CloseSession(1): %v, want only client2's", live)
	}
}

// SYNs beyond MaxInFlight are dropped and counted; the mobile's retransmit
// gets through once there is room.
func TestMaxInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.MaxInFlight = 1
	e := newEnv(t, cfg)
	release := make(chan struct{})
	admitted := make(chan struct{}, 2)
	e.term.cfg.Admit = func(r Request) Decision {
		admitted <- struct{}{}
		if r.Mobile.Addr() == client1 {
			<-release
		}
		return Decision{Session: 1, Server: srvAddr}
	}
	errs := make(chan error, 2)
	go func() { _, _, err := e.dial(client1, repAddr); errs <- err }()
	<-admitted
	go func() { _, _, err := e.dial(client2, repAddr); errs <- err }()
	waitFor(t, "a SYN dropped at max in flight", func() bool { return e.term.Counters().Conn[CtrSYNInFlight] > 0 })
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("dial: %v", err)
		}
	}
	if got := e.term.Counters().Stack[Mobile].TCPForwardInFlight; got != 0 {
		t.Errorf("netstack's own forwarder in-flight drops %d, want 0 (counted by the terminator first)", got)
	}
}

// Netstack checks every received checksum itself (no RX offload): a SYN
// with a bad TCP checksum is dropped and counted, never admitted.
func TestBadChecksumDropped(t *testing.T) {
	e := newEnv(t, testConfig())
	pkt := synPacket(client1.As4(), repAddr.Addr().As4(), 40000, repAddr.Port())
	bad := append([]byte(nil), pkt...)
	bad[20+16] ^= 0xff // the TCP checksum
	if n := e.term.Link(Mobile).Inject([][]byte{bad}); n != 1 {
		t.Fatalf("Inject = %d", n)
	}
	waitFor(t, "the checksum error", func() bool { return e.term.Counters().Stack[Mobile].L4Malformed == 1 })
	if got := e.term.Counters().Conn[CtrSYN]; got != 0 {
		t.Errorf("%d SYNs admitted, want 0", got)
	}
	// The same SYN with its checksum right is answered (SYN-ACK).
	good := synPacket(client1.As4(), repAddr.Addr().As4(), 40001, repAddr.Port())
	e.term.Link(Mobile).Inject([][]byte{good})
	waitFor(t, "the SYN admitted", func() bool { return e.term.Counters().Conn[CtrSYN] == 1 })
}

// Every frame the terminator emits on either side carries checksums that
// a full recomputation confirms (the wires check each one), over IPv4 and
// IPv6, data, FIN and RST, including the segments the links cut from
// netstack's GSO packets (each family makes some on both sides); and the
// segments the links merge on receive (GRO) reach netstack with nothing
// dropped as malformed or for a checksum.
func TestEmittedChecksums(t *testing.T) {
	e := newEnv(t, testConfig())
	var gso, gro [2]uint64
	for _, src := range []netip.Addr{client1, client6} {
		rep := repAddr
		if src.Is6() {
			rep = repAddr6
		}
		c, ep := e.mustDial(src, rep)
		c.Write(payload(200_000, 3))
		sc := e.nextAccepted()
		readN(sc.c, 200_000)
		sc.c.Write(payload(300_000, 4))
		readN(c, 300_000)
		ep.Abort()
		e.nextClosed()
		ctr := e.term.Counters()
		for s, lc := range ctr.Link {
			if lc.GSOFrames == gso[s] {
				t.Errorf("%v link cut no GSO packet over %v (frames %d)", Side(s), src, lc.GSOFrames)
			}
			gso[s] = lc.GSOFrames
			if lc.GROMerged == gro[s] {
				t.Errorf("%v link merged no segments over %v", Side(s), src)
			}
			gro[s] = lc.GROMerged
			if st := ctr.Stack[s]; st.IPMalformed+st.L4Malformed+st.TCPChecksumErrors+st.TCPInvalidSegments != 0 {
				t.Errorf("%v stack dropped segments: %+v", Side(s), st)
			}
		}
	}
	mf, mr := e.mw.counts()
	sf, sr := e.sw.counts()
	if mf[1] < 100 || sf[0] < 100 || mr[1] == 0 && sr[0] == 0 {
		t.Errorf("terminator emitted %d frames to the mobile, %d to the server, RSTs %d/%d: too few to judge", mf[1], sf[0], mr[1], sr[0])
	}
	if sr[0] == 0 {
		t.Errorf("no RST to the server after the mobile's RST")
	}
	e.mw.checkErrors(t)
	e.sw.checkErrors(t)
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig()
	ok.Admit = func(Request) Decision { return Decision{} }
	if err := ok.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	for _, tc := range []struct {
		field string
		mod   func(*Config)
	}{
		{"server_addrs", func(c *Config) { c.ServerAddrs = nil }},
		{"server_addrs", func(c *Config) { c.ServerAddrs = []netip.Addr{netip.IPv4Unspecified()} }},
		{"server_ports", func(c *Config) { c.ServerPorts = [2]uint16{2000, 1000} }},
		{"max_conns", func(c *Config) { c.MaxConns = 0 }},
		{"max_conns_per_session", func(c *Config) { c.MaxConnsPerSession = 0 }},
		{"max_in_flight", func(c *Config) { c.MaxInFlight = 0 }},
		{"dial_timeout", func(c *Config) { c.DialTimeout = 0 }},
		{"idle_timeout", func(c *Config) { c.IdleTimeout = 0 }},
		{"splice_buffer", func(c *Config) { c.SpliceBuffer = 0 }},
		{"sniff_bytes", func(c *Config) { c.SniffBytes = -1 }},
		{"admit", func(c *Config) { c.Admit = nil }},
		{"mobile_profile", func(c *Config) { c.MobileProfile.MSS = 0 }},
		{"server_link", func(c *Config) { c.ServerLink.Batch = 0 }},
	} {
		c := ok
		tc.mod(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Validate = %v, want ErrConfig naming it", tc.field, err)
		}
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", tc.field, err)
		}
	}
}

// A session that ends while its connection waits for a server that does
// not answer resets the mobile at once; so does Close.
func TestKillWhileDialing(t *testing.T) {
	for _, tc := range []struct {
		name string
		kill func(*Terminator)
		want Counter
	}{
		{"session", func(tm *Terminator) { tm.CloseSession(1) }, CtrEndSession},
		{"close", func(tm *Terminator) { tm.Close() }, CtrEndClose},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testConfig())
			silent := netip.MustParseAddrPort("192.0.2.99:80") // nobody answers
			e.term.cfg.Admit = func(Request) Decision { return Decision{Session: 1, Server: silent} }
			errs := make(chan error, 1)
			go func() { _, _, err := e.dial(client1, repAddr); errs <- err }()
			waitFor(t, "the server SYN", func() bool { return len(e.sw.synsOf(0)) > 0 })
			tc.kill(e.term)
			if end := e.nextClosed().End(); end != tc.want {
				t.Errorf("end %v, want %v", end, tc.want)
			}
			if tc.name == "session" {
				if err := <-errs; !isRefused(err) {
					t.Errorf("dial: %v, want refused", err)
				}
			} else {
				<-errs // the RST may have been dropped with the stack
			}
			if got := e.term.Counters().Conn[CtrDialFailed]; got != 0 {
				t.Errorf("dial_failed %d, want 0 (the kill is the reason)", got)
			}
		})
	}
}
