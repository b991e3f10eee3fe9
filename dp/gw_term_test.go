package dp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	gheader "gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"samepath/dp"
	"samepath/dp/acct"
	"samepath/dp/balance"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/neigh"
	"samepath/nat"
	"samepath/ring/memport"
	"samepath/tcpproxy"
)

// The terminating gateway under test (gw_term.go): the gateway of
// gw_test.go with terminate-mode services and a Terminator, between two
// netstacks in memory.
//
//	client netstack 10.101.0.5 --frames-- [lan memport | GW | srv memport] --frames-- server netstack a1, a2 :8080
//	                                        webt 10.30.0.1:81 terminate -> a1, a2 :8080
//	                                        webv 10.30.0.2:81 terminate (T9 video, denied by T8)
//	                                        terminator's own: 10.20.0.102 ports 40000-40999, T5 keys 1024-39999
var (
	rep2      = addr("10.30.0.2")
	termAddr  = addr("10.20.0.102")
	termPorts = [2]uint16{40000, 40999}
)

type termRig struct {
	t     *testing.T
	gw    *dp.GW
	w     *dp.Worker
	ports [2]*memport.Port
	flows *nat.PortTable
	term  *tcpproxy.Terminator
	hooks *dp.TermHooks
	authz *dp.Authz
	svcs  *balance.Table
}

// newTermRig makes the gateway, with a terminator (its config changed by
// mut) if withTerm.
func newTermRig(t *testing.T, withTerm bool, prod *acct.Producer, mut func(*tcpproxy.Config)) *termRig {
	return newTermRigInterim(t, withTerm, prod, 0, mut)
}

func newTermRigInterim(t *testing.T, withTerm bool, prod *acct.Producer, interim time.Duration, mut func(*tcpproxy.Config)) *termRig {
	t.Helper()
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs = []netip.Addr{key4, key6}
	pc.PortMin, pc.PortMax = 1024, termPorts[0]-1
	pc.Capacity = 1024
	pc.PortReuseDelay = time.Second
	flows, err := nat.NewPortTable(pc)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom
	svcs, err := balance.NewTable([]balance.ServiceConfig{
		{Name: "webt", Rep: ap(rep, 81), Proto: 6, Mode: balance.TerminateMode, ServiceType: "web",
			Servers: []balance.Server{{Addr: ap(a1, 8080), Up: true}, {Addr: ap(a2, 8080), Up: true}}},
		{Name: "webv", Rep: ap(rep2, 81), Proto: 6, Mode: balance.TerminateMode,
			Servers: []balance.Server{{Addr: ap(a1, 8080), Up: true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dist, err := balance.NewDist(svcs, 1024)
	if err != nil {
		t.Fatal(err)
	}
	authz, err := dp.NewAuthz([]dp.T9Row{{Rep: rep, ServiceType: "web"}, {Rep: rep2, ServiceType: "video"}},
		[]dp.T8Row{{Device: "IMEI-1", ServiceType: "web", Allowed: true}, {Device: "IMEI-1", ServiceType: "video", Allowed: false}})
	if err != nil {
		t.Fatal(err)
	}
	nb := neigh.New()
	nb.Set(map[[16]byte][6]byte{a1.As16(): a1MAC, a2.As16(): a2MAC})
	r := &termRig{t: t, flows: flows, authz: authz, svcs: svcs}
	if withTerm {
		cfg := tcpproxy.DefaultConfig()
		cfg.MobileProfile.TimeWait = 100 * time.Millisecond
		cfg.ServerProfile.TimeWait = 100 * time.Millisecond
		cfg.ServerAddrs = []netip.Addr{termAddr}
		cfg.ServerPorts = termPorts
		cfg.DialTimeout = 5 * time.Second
		if mut != nil {
			mut(&cfg)
		}
		r.hooks = &dp.TermHooks{}
		r.hooks.Install(&cfg)
		if r.term, err = tcpproxy.New(cfg); err != nil {
			t.Fatal(err)
		}
	}
	g, err := dp.NewGW(dp.GWConfig{Lan: 0, Servers: 1, LanMAC: gwLanMAC, ServerMAC: gwSrvMAC,
		Flows: flows, Services: svcs, Dist: dist, Neighbors: nb, RequireSession: true, LBCacheSize: 1024, ExpireBudget: 64,
		Authz: authz, Acct: prod, AcctInterim: interim, Terminator: r.term, TermHooks: r.hooks})
	if err != nil {
		t.Fatal(err)
	}
	r.gw = g
	u, _ := memport.NewUmem(4096)
	lan, _ := memport.New(memport.DefaultConfig("lan/q0"), u)
	srv, _ := memport.New(memport.DefaultConfig("srv/q0"), u)
	if r.w, err = dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{lan, srv}, g); err != nil {
		t.Fatal(err)
	}
	r.ports = [2]*memport.Port{lan, srv}
	s := testSession
	s.IP = mob.As16()
	g.Apply(dp.SessionEvent{Session: s})
	r.w.Poll()
	t.Cleanup(func() {
		if r.term != nil {
			r.term.Close()
		}
		g.Close()
	})
	return r
}

// peer is a plain netstack on a tcpproxy.Link with the given addresses.
func newPeer(t *testing.T, addrs ...netip.Addr) (*stack.Stack, *tcpproxy.Link) {
	t.Helper()
	link, err := tcpproxy.NewLink("peer", 1500, tcpproxy.DefaultLinkConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := s.CreateNIC(1, link); err != nil {
		t.Fatalf("nic: %s", err)
	}
	for _, a := range addrs {
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFromSlice(a.AsSlice()).WithPrefix()}
		if a.Is6() {
			pa.Protocol = ipv6.ProtocolNumber
		}
		if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
			t.Fatalf("address %v: %s", a, err)
		}
	}
	s.SetRouteTable([]tcpip.Route{{Destination: gheader.IPv4EmptySubnet, NIC: 1}, {Destination: gheader.IPv6EmptySubnet, NIC: 1}})
	t.Cleanup(s.Destroy)
	return s, link
}

func fa(a netip.Addr, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: port}
}

// wired is a termRig run by its worker's goroutine, with a client
// netstack behind lb1 and a server netstack holding a1 and a2, each
// wired to its memport by a pump goroutine that checks every frame the
// gateway sends: its MACs and checksums.
type wired struct {
	*termRig
	client, server *stack.Stack
	stop           func()
	mu             sync.Mutex
	bad            []string
	// dropEvery, if set, loses every k-th frame toward the mobile.
	dropEvery int
	// swapFirst, while set, holds the mobile's first segment with
	// payload and sends it after the next one (a radio link's
	// reordering), then clears itself.
	swapFirst atomic.Bool
	held      atomic.Bool // the first segment is held
	// unreachSYN, while set, answers the terminator's SYNs to a server
	// with an ICMP port unreachable from that server instead of
	// delivering them; unreachSent counts them.
	unreachSYN  atomic.Bool
	unreachSent atomic.Int32
	// extraUp are frames (under mu) the pump sends to the gateway's LAN
	// port as if from the mobile.
	extraUp [][]byte
	// frags counts IPv4 fragments the gateway sent toward the mobile.
	frags atomic.Int32
	// maxLan is the largest IP packet the gateway sent toward the mobile.
	maxLan atomic.Int32
}

func newWired(t *testing.T, prod *acct.Producer) *wired {
	return newWiredWith(t, prod, 0, 0)
}

func newWiredWith(t *testing.T, prod *acct.Producer, interim time.Duration, dropEvery int) *wired {
	return wireRig(t, newTermRigInterim(t, true, prod, interim, nil), dropEvery, mob)
}

// wireRig runs rig with a client netstack holding the client addresses.
func wireRig(t *testing.T, rig *termRig, dropEvery int, client ...netip.Addr) *wired {
	r := &wired{termRig: rig, dropEvery: dropEvery}
	var clink, slink *tcpproxy.Link
	r.client, clink = newPeer(t, client...)
	r.server, slink = newPeer(t, a1, a2)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := r.w.Run(ctx); err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		r.pump(ctx, clink, slink)
	}()
	r.stop = func() {
		cancel()
		wg.Wait()
	}
	t.Cleanup(func() {
		r.stop()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, b := range r.bad {
			t.Error(b)
		}
	})
	return r
}

func (r *wired) fail(s string) {
	r.mu.Lock()
	if len(r.bad) < 10 {
		r.bad = append(r.bad, s)
	}
	r.mu.Unlock()
}

// pump moves frames between the netstacks' Links and the memports.
func (r *wired) pump(ctx context.Context, clink, slink *tcpproxy.Link) {
	bufs := make([][]byte, 64)
	sizes := make([]int, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	ethType := func(b []byte) uint16 {
		if b[14]>>4 == 6 {
			return header.EtherTypeIPv6
		}
		return header.EtherTypeIPv4
	}
	var held []byte
	toGW := func(l *tcpproxy.Link, p *memport.Port, src func([]byte) nat.MAC, dst nat.MAC) bool {
		if l == clink {
			r.mu.Lock()
			extra := r.extraUp
			r.extraUp = nil
			r.mu.Unlock()
			for _, f := range extra {
				for !p.Inject(f) && ctx.Err() == nil {
					time.Sleep(50 * time.Microsecond)
				}
			}
		}
		n := l.Read(bufs, sizes, 14)
		for i := range n {
			f := bufs[i][:14+sizes[i]]
			e := header.Ethernet(f)
			e.SetDst(dst)
			e.SetSrc(src(f))
			e.SetType(ethType(f))
			send := [][]byte{f}
			if l == clink && r.swapFirst.Load() && tcpPayload(f) > 0 {
				if held == nil {
					held = append([]byte(nil), f...)
					r.held.Store(true)
					continue
				}
				send = append(send, held)
				held = nil
				r.swapFirst.Store(false)
			}
			for _, f := range send {
				for !p.Inject(f) {
					if ctx.Err() != nil {
						return false
					}
					time.Sleep(50 * time.Microsecond)
				}
			}
		}
		return n > 0
	}
	toMobile := 0
	var answers [][]byte
	fromGW := func(p *memport.Port, l *tcpproxy.Link, want func([]byte) nat.MAC, src nat.MAC, side string) bool {
		moved := false
		defer func() {
			for _, a := range answers {
				for !p.Inject(a) && ctx.Err() == nil {
					time.Sleep(50 * time.Microsecond)
				}
			}
			answers = answers[:0]
		}()
		for p.Take(func(f []byte) {
			moved = true
			if side == "lan" && r.dropEvery > 0 {
				if toMobile++; toMobile%r.dropEvery == 0 {
					return
				}
			}
			e := header.Ethernet(f)
			if e.Dst() != want(f) || e.Src() != src {
				r.fail(side + ": frame with MACs " + net.HardwareAddr(f[0:6]).String() + " <- " + net.HardwareAddr(f[6:12]).String())
				return
			}
			if err := dptest.VerifyChecksums(f); err != nil {
				r.fail(side + ": " + err.Error())
			}
			if side == "lan" && f[14]>>4 == 4 && (f[14+6]&0x20 != 0 || uint16(f[14+6]&0x1f)<<8|uint16(f[14+7]) != 0) {
				r.frags.Add(1)
			}
			if side == "lan" && int32(len(f)-14) > r.maxLan.Load() {
				r.maxLan.Store(int32(len(f) - 14))
			}
			if side == "srv" && r.unreachSYN.Load() && f[14]>>4 == 4 && f[14+9] == 6 {
				ihl := int(f[14]&0xf) * 4
				if f[14+ihl+13]&(0x02|0x10) == 0x02 {
					dst := netip.AddrFrom4([4]byte(f[14+16 : 14+20]))
					mac := a1MAC
					if dst == a2 {
						mac = a2MAC
					}
					answers = append(answers, dptest.Frame().Eth(mac, gwSrvMAC).IPv4(dst, termAddr).
						ICMPError(3, 3, 0, f[14:]).Bytes())
					r.unreachSent.Add(1)
					return
				}
			}
			for l.Inject([][]byte{f[14:]}) == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}) {
		}
		return moved
	}
	lb := func([]byte) nat.MAC { return lb1MAC }
	macOf := func(a netip.Addr) nat.MAC {
		if a == a2 {
			return a2MAC
		}
		return a1MAC
	}
	// A server's frame comes from its MAC; the gateway's to a server
	// goes to that server's MAC.
	srcMAC := func(f []byte) nat.MAC { return macOf(netip.AddrFrom4([4]byte(f[14+12 : 14+16]))) }
	dstMAC := func(f []byte) nat.MAC { return macOf(netip.AddrFrom4([4]byte(f[14+16 : 14+20]))) }
	for ctx.Err() == nil {
		m := toGW(clink, r.ports[0], lb, gwLanMAC)
		m = toGW(slink, r.ports[1], srcMAC, gwSrvMAC) || m
		m = fromGW(r.ports[0], clink, lb, gwLanMAC, "lan") || m
		m = fromGW(r.ports[1], slink, dstMAC, gwSrvMAC, "srv") || m
		if !m {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// tcpPayload is the TCP payload length of IPv4 frame f (0 for others).
func tcpPayload(f []byte) int {
	if len(f) < 14+20 || f[14]>>4 != 4 || f[14+9] != 6 {
		return 0
	}
	ihl := int(f[14]&0xf) * 4
	tot := int(f[16])<<8 | int(f[17])
	if len(f) < 14+ihl+20 {
		return 0
	}
	return tot - ihl - int(f[14+ihl+12]>>4)*4
}

func (r *wired) dial(to netip.Addr, port uint16) (*gonet.TCPConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return gonet.DialTCPWithBind(ctx, r.client, fa(mob, 0), fa(to, port), ipv4.ProtocolNumber)
}

// listen accepts on a1:8080 and a2:8080 and hands each connection to fn.
func (r *wired) listen(fn func(c net.Conn)) {
	for _, a := range []netip.Addr{a1, a2} {
		l, err := gonet.ListenTCP(r.server, fa(a, 8080), ipv4.ProtocolNumber)
		if err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go fn(c)
			}
		}()
	}
}

func (r *wired) waitFor(what string, cond func() bool) {
	r.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// flowsTo lists the T5 records of flows to the representative port.
func flowsTo(flows *nat.PortTable, port uint16) []nat.Binding {
	var out []nat.Binding
	flows.Snapshot(func(b nat.Binding) bool {
		if b.Flow.DPort == port {
			out = append(out, b)
		}
		return true
	})
	return out
}

// readRequest reads an HTTP request head.
func readRequest(c net.Conn) ([]byte, error) {
	var req []byte
	buf := make([]byte, 512)
	for !bytes.HasSuffix(req, []byte("\r\n\r\n")) {
		n, err := c.Read(buf)
		if err != nil {
			return req, err
		}
		req = append(req, buf[:n]...)
	}
	return req, nil
}

// TestGWTerminate: a curl-like request to a terminate-mode service goes
// through the terminator: the server sees a connection from the
// terminator's own address and port range, the response (300 KB)
// arrives byte for byte, the flow shows in T5 while it lasts, and its
// final T10 record carries the mobile connection's payload counts.
func TestGWTerminate(t *testing.T) {
	log, prod, path := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
	r := newWired(t, prod)
	req := []byte("GET /big HTTP/1.1\r\nHost: term.example\r\nUser-Agent: curl/8\r\n\r\n")
	body := make([]byte, 300_000)
	for i := range body {
		body[i] = byte(i*7 + i>>9)
	}
	type seen struct {
		req    []byte
		remote netip.AddrPort
		flows  []nat.Binding
	}
	seenCh := make(chan seen, 1)
	r.listen(func(c net.Conn) {
		defer c.Close()
		got, err := readRequest(c)
		if err != nil {
			t.Errorf("server read: %v", err)
			return
		}
		seenCh <- seen{got, netip.MustParseAddrPort(c.RemoteAddr().String()), flowsTo(r.flows, 81)}
		c.Write(body)
	})
	c, err := r.dial(rep, 81)
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, c, req, body)
	s := <-seenCh
	if !bytes.Equal(s.req, req) {
		t.Errorf("server got request %q", s.req)
	}
	if s.remote.Addr() != termAddr || s.remote.Port() < termPorts[0] || s.remote.Port() > termPorts[1] {
		t.Errorf("server connection from %v, want %v ports %v", s.remote, termAddr, termPorts)
	}
	if len(s.flows) != 1 || s.flows[0].Service == 0 || s.flows[0].Session != testSession.ID || s.flows[0].Flow.Src != nat.Addr16From(mob) {
		t.Errorf("T5 during the connection: %+v", s.flows)
	}
	r.waitFor("the flow record ends", func() bool { return r.gw.Stats().FlowsEnded.Load() == 1 })
	r.stop()
	if n := r.gw.Stats().Term.Flows.Load(); n != 1 {
		t.Errorf("terminated flows %d, want 1", n)
	}
	if len(flowsTo(r.flows, 81)) != 0 {
		t.Error("a record is left")
	}
	if tc := r.term.Counters(); tc.Conn[tcpproxy.CtrSpliced] != 1 || tc.Conn[tcpproxy.CtrEndFIN] != 1 {
		t.Errorf("terminator counters %v", tc.Conn)
	}
	c0 := r.w.Counters(0).Snapshot()
	if c0.Consumed == 0 || c0.Originated == 0 || c0.Dropped() != 0 {
		t.Errorf("lan port: consumed %d originated %d drops %v", c0.Consumed, c0.Originated, c0.Drops)
	}
	final := closeFinal(t, log, path)
	if final.Service != "webt" || final.Cause != "tcp-close" || final.URL != "term.example/big" || final.Rep != "10.30.0.1:81" {
		t.Errorf("record %+v", final)
	}
	if final.UpPayload == nil || *final.UpPayload != uint64(len(req)) || *final.DownPayload != uint64(len(body)) {
		t.Errorf("payload up %v down %v, want %d %d", final.UpPayload, final.DownPayload, len(req), len(body))
	}
	if final.UpPackets == 0 || final.DownPackets == 0 {
		t.Errorf("packets up %d down %d", final.UpPackets, final.DownPackets)
	}
}

// TestGWTerminateRefused (R-AUTH-1): a terminate-mode service that T8
// refuses gets the gateway's RST; nothing reaches the terminator and no
// decision or record is left.
func TestGWTerminateRefused(t *testing.T) {
	r := newWired(t, nil)
	_, err := r.dial(rep2, 81)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("dial a refused service: %v, want connection refused", err)
	}
	r.stop()
	if tc := r.term.Counters(); tc.Conn[tcpproxy.CtrSYN] != 0 || tc.Link[tcpproxy.Mobile].InPackets != 0 {
		t.Errorf("the terminator saw the refused SYN: %v, link %+v", tc.Conn, tc.Link[tcpproxy.Mobile])
	}
	if d := r.w.Counters(0).Snapshot().Drops[dp.ReasonDenied]; d == 0 {
		t.Error("denied not counted")
	}
	if r.flows.Len() != 0 || r.hooks.Pending() != 0 {
		t.Errorf("left %d records, %d decisions", r.flows.Len(), r.hooks.Pending())
	}
}

// TestGWTerminateSessionEnd (R-GW-7): the end of the session resets its
// terminated connection both ways and writes its record (cause
// session-end) with the payload moved until then.
func TestGWTerminateSessionEnd(t *testing.T) {
	log, prod, path := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
	r := newWired(t, prod)
	srvErr := make(chan error, 1)
	r.listen(func(c net.Conn) {
		defer c.Close()
		if _, err := readRequest(c); err != nil {
			srvErr <- err
			return
		}
		c.Write([]byte("hello"))
		_, err := c.Read(make([]byte, 16)) // until the reset
		srvErr <- err
	})
	c, err := r.dial(rep, 81)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET / HTTP/1.1\r\n\r\n")
	c.Write(req)
	if b, err := readN(c, 5); err != nil || string(b) != "hello" {
		t.Fatalf("client read %q, %v", b, err)
	}
	s := testSession
	s.IP = mob.As16()
	r.gw.Apply(dp.SessionEvent{End: true, Session: s})
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ne net.Error
	if _, err := c.Read(make([]byte, 16)); err == nil || errors.Is(err, io.EOF) || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("client after the session end: %v, want a reset", err)
	}
	if err := <-srvErr; err == nil || errors.Is(err, io.EOF) {
		t.Errorf("server after the session end: %v, want a reset", err)
	}
	r.waitFor("the connection ends", func() bool { return r.term.Counters().Active == 0 })
	r.stop()
	if n := r.term.Counters().Conn[tcpproxy.CtrEndSession]; n != 1 {
		t.Errorf("ends by session %d, want 1 (%v)", n, r.term.Counters().Conn)
	}
	log.Close()
	entries, _, err := acct.Query(path, acct.Filter{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Kind != "final" || entries[0].Cause != "session-end" ||
		entries[0].UpPayload == nil || *entries[0].UpPayload != uint64(len(req)) || *entries[0].DownPayload != 5 {
		t.Errorf("records %+v", entries)
	}
}

func readN(c net.Conn, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

// TestGWTerminateBackpressure: what the terminator's full mobile link
// refuses is dropped as term_full and counted, never lost silently.
func TestGWTerminateBackpressure(t *testing.T) {
	r := newTermRig(t, true, nil, func(c *tcpproxy.Config) { c.MobileLink.InQueue = 4 })
	up := func(flags uint8, seq uint32) []byte {
		return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(42000, 81).Flags(flags).Seq(seq).Payload([]byte("x")).Bytes()
	}
	r.ports[0].Inject(dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(42000, 81).Flags(header.FlagSYN).Seq(99).Bytes())
	r.w.Poll()
	if c := r.w.Counters(0).Snapshot(); c.Consumed != 1 || r.flows.Len() != 1 {
		t.Fatalf("SYN: consumed %d, %d records", c.Consumed, r.flows.Len())
	}
	const n = 32
	for i := range n {
		r.ports[0].Inject(up(header.FlagACK, 100+uint32(i)))
	}
	r.w.Poll()
	c := r.w.Counters(0).Snapshot()
	full := c.Drops[dp.ReasonTermFull]
	if full < n-4 || c.Consumed-1+full != n {
		t.Errorf("consumed %d term_full %d of %d (queue 4)", c.Consumed-1, full, n)
	}
	if in := r.term.Link(tcpproxy.Mobile).Counters().InFull; in != full {
		t.Errorf("link in_full %d, gateway term_full %d", in, full)
	}
	if c.Dropped() != full {
		t.Errorf("other drops: %v", c.Drops)
	}
}

// TestGWTerminateUnsupported: without a terminator a terminate-mode
// service is refused as unsupported, leaving no record.
func TestGWTerminateUnsupported(t *testing.T) {
	r := newTermRig(t, false, nil, nil)
	r.ports[0].Inject(dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(42000, 81).Flags(header.FlagSYN).Bytes())
	r.w.Poll()
	if c := r.w.Counters(0).Snapshot(); c.Drops[dp.ReasonUnsupported] != 1 || r.flows.Len() != 0 || r.gw.Stats().FlowsCreated.Load() != 0 {
		t.Errorf("drops %v, %d records", c.Drops, r.flows.Len())
	}
	if len(r.ports[0].TakeAll())+len(r.ports[1].TakeAll()) != 0 {
		t.Error("frames sent")
	}
}

// TestGWTermHooksRequired: a terminator needs its hooks.
func TestGWTermHooksRequired(t *testing.T) {
	r := newTermRig(t, true, nil, nil)
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs, pc.Capacity = []netip.Addr{key4}, 16
	flows, err := nat.NewPortTable(pc)
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := balance.NewTable(nil)
	dist, _ := balance.NewDist(svcs, 16)
	cfg := dp.GWConfig{Lan: 0, Servers: 1, LanMAC: gwLanMAC, ServerMAC: gwSrvMAC, Flows: flows, Services: svcs, Dist: dist,
		Neighbors: neigh.New(), LBCacheSize: 16, ExpireBudget: 1, Terminator: r.term}
	if _, err := dp.NewGW(cfg); err == nil {
		t.Error("NewGW took a terminator without hooks")
	}
	cfg.TermHooks = r.hooks
	if _, err := dp.NewGW(cfg); err == nil {
		t.Error("NewGW bound hooks a gateway already has")
	}
}

// TestGWTerminateEcho: an echo to a terminate-mode service's address is
// the NAT's, as for any service (only its TCP is terminated), with or
// without a terminator.
func TestGWTerminateEcho(t *testing.T) {
	for _, withTerm := range []bool{false, true} {
		r := newTermRig(t, withTerm, nil, nil)
		r.ports[0].Inject(dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).ICMPEcho(77, 1).Bytes())
		r.w.Poll()
		if out := r.ports[1].TakeAll(); len(out) != 1 || r.gw.Stats().Term.Flows.Load() != 0 {
			t.Errorf("terminator %v: %d echoes toward the servers, drops %v", withTerm, len(out), r.w.Counters(0).Snapshot().Drops)
		}
	}
}

// TestGWTerminateInterimPayload: interim records of a terminated flow
// carry the connection's payload counts too, never more than its final
// record, even when segments toward the mobile are lost and resent (a
// per-segment count would add the resent bytes).
func TestGWTerminateInterimPayload(t *testing.T) {
	log, prod, path := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
	r := newWiredWith(t, prod, time.Millisecond, 15)
	body := make([]byte, 400_000)
	r.listen(func(c net.Conn) {
		defer c.Close()
		if _, err := readRequest(c); err == nil {
			c.Write(body)
		}
	})
	c, err := r.dial(rep, 81)
	if err != nil {
		t.Fatal(err)
	}
	req := []byte("GET / HTTP/1.1\r\n\r\n")
	c.Write(req)
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || len(got) != len(body) {
		t.Fatalf("client read %d bytes, %v", len(got), err)
	}
	r.waitFor("the flow record ends", func() bool { return r.gw.Stats().FlowsEnded.Load() == 1 })
	r.stop()
	log.Close()
	entries, _, err := acct.Query(path, acct.Filter{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	interims := 0
	for _, e := range entries {
		if e.UpPayload == nil {
			t.Fatalf("%s record without payload counts", e.Kind)
		}
		if *e.UpPayload > uint64(len(req)) || *e.DownPayload > uint64(len(body)) {
			t.Errorf("%s record: payload %d/%d, beyond the %d/%d moved", e.Kind, *e.UpPayload, *e.DownPayload, len(req), len(body))
		}
		if e.Kind == "interim" {
			interims++
		}
	}
	if interims == 0 || entries[len(entries)-1].Kind != "final" {
		t.Fatalf("records: %d interim, last %+v", interims, entries[len(entries)-1])
	}
	// The final record's down bytes are every frame toward the mobile,
	// resent ones too, its payload the connection's, each byte once:
	// besides 40 to 60 header bytes per frame, the bytes exceed the
	// payload by at most one segment per retransmission, which the
	// terminator's mobile side counts (what testbed/accte2e's download
	// bounds them by).
	e := entries[len(entries)-1]
	re := r.term.Counters().Stack[tcpproxy.Mobile].TCPRetransmits
	const mss = 1460
	if *e.DownPayload != uint64(len(body)) || re == 0 {
		t.Fatalf("final down payload %d (want %d), %d retransmits (frames were lost)", *e.DownPayload, len(body), re)
	}
	if e.DownBytes < *e.DownPayload+40*e.DownPackets || e.DownBytes > *e.DownPayload+60*e.DownPackets+re*mss {
		t.Errorf("final record: %d bytes in %d frames for %d payload bytes, %d retransmits: want 40..60 header bytes per frame plus at most %d per retransmit",
			e.DownBytes, e.DownPackets, *e.DownPayload, re, mss)
	}
	t.Logf("down: %d frames, %d bytes, %d payload, %d retransmits: %.1f bytes per frame beyond the payload",
		e.DownPackets, e.DownBytes, *e.DownPayload, re, float64(e.DownBytes-*e.DownPayload)/float64(e.DownPackets))
}

// TestGWTerminateSniffStream: the T10 record's URL of a terminated flow
// comes from the mobile's stream as the terminator reads it, so a first
// segment overtaken by the second (reordering on the radio link) still
// yields it. The first segment the gateway sees carries no request line:
// a sniffer of packets finds nothing.
func TestGWTerminateSniffStream(t *testing.T) {
	log, prod, path := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
	r := newWired(t, prod)
	seg1 := []byte("GET /split HTTP/1.1\r\nHost: term.example\r\n")
	seg2 := []byte("User-Agent: curl/8\r\n\r\n")
	r.listen(func(c net.Conn) {
		defer c.Close()
		if _, err := readRequest(c); err != nil {
			t.Errorf("server read: %v", err)
			return
		}
		c.Write([]byte("ok"))
	})
	r.swapFirst.Store(true)
	c, err := r.dial(rep, 81)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(seg1); err != nil {
		t.Fatal(err)
	}
	r.waitFor("the first segment is held", r.held.Load)
	if _, err := c.Write(seg2); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ok" {
		t.Fatalf("client read %q: %v", got, err)
	}
	c.Close()
	if r.swapFirst.Load() {
		t.Fatal("the segments were not swapped")
	}
	r.waitFor("the flow record ends", func() bool { return r.gw.Stats().FlowsEnded.Load() == 1 })
	r.stop()
	final := closeFinal(t, log, path)
	if final.URL != "term.example/split" {
		t.Errorf("record URL %q, want term.example/split (%+v)", final.URL, final)
	}
	if final.UpPayload == nil || *final.UpPayload != uint64(len(seg1)+len(seg2)) {
		t.Errorf("payload up %v, want %d", final.UpPayload, len(seg1)+len(seg2))
	}
}

// TestGWTerminateServerUnreachable: an ICMP port unreachable from the
// server about the terminator's SYN reaches the terminator's server-side
// netstack (not dropped as no_flow), which fails the connect at once: the
// mobile's connect is refused by the gateway's RST with no second SYN
// to the server, and nothing is left behind.
func TestGWTerminateServerUnreachable(t *testing.T) {
	r := newWired(t, nil)
	r.unreachSYN.Store(true)
	_, err := r.dial(rep, 81)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("dial: %v, want connection refused", err)
	}
	r.waitFor("the flow record ends", func() bool { return r.gw.Stats().FlowsEnded.Load() == 1 })
	r.waitFor("the terminator's connection ends", func() bool { return r.term.Counters().Conn[tcpproxy.CtrDialFailed] == 1 })
	r.stop()
	if n := r.unreachSent.Load(); n != 1 {
		t.Errorf("%d SYNs to the server, want 1 (the unreachable fails the connect)", n)
	}
	if c1 := r.w.Counters(1).Snapshot(); c1.Dropped() != 0 {
		t.Errorf("server port drops %v, want none (the ICMP error is the terminator's)", c1.Drops)
	}
	tc := r.term.Counters()
	if tc.Active != 0 || tc.Stack[tcpproxy.Server].TCPEndpoints != 0 {
		t.Errorf("left: active %d, server endpoints %d", tc.Active, tc.Stack[tcpproxy.Server].TCPEndpoints)
	}
	if len(flowsTo(r.flows, 81)) != 0 || r.hooks.Pending() != 0 {
		t.Errorf("records %d, pending decisions %d", len(flowsTo(r.flows, 81)), r.hooks.Pending())
	}
}

// TestGWTerminateMobileICMPError: an ICMP error from the mobile about a
// segment of the terminator's mobile side (here fragmentation needed,
// MTU 1300) goes to that side's netstack, not dropped as unsupported;
// the connection goes on.
func TestGWTerminateMobileICMPError(t *testing.T) {
	r := newWired(t, nil)
	r.listen(func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
	})
	c, err := r.dial(rep, 81)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func(n int) {
		t.Helper()
		msg := bytes.Repeat([]byte("x"), n)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if got, err := readN(c, n); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes: %d, %v", n, len(got), err)
		}
	}
	echo(100)
	in := r.term.Counters().Link[tcpproxy.Mobile].InPackets
	port := netip.MustParseAddrPort(c.LocalAddr().String()).Port()
	quoted := dptest.IP(dptest.Frame().IPv4(rep, mob).TCP(81, port).Flags(header.FlagACK).Seq(1).Payload(make([]byte, 1360)).Bytes())
	r.mu.Lock()
	r.extraUp = append(r.extraUp, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).ICMPError(3, 4, 1300, quoted[:28]).Bytes())
	r.mu.Unlock()
	r.waitFor("the error reaches the terminator", func() bool { return r.term.Counters().Link[tcpproxy.Mobile].InPackets > in })
	echo(5000)
	if c0 := r.w.Counters(0).Snapshot(); c0.Dropped() != 0 {
		t.Errorf("lan port drops %v, want none", c0.Drops)
	}
}

// TestGWTerminateMSSLowered: a mobile-side MSS lowered under a live
// connection (samepathctl gw tcp-profile) keeps that connection's
// segments within the new MTU where the link segments netstack's GSO
// packets (it cuts them at the MTU, whatever MSS the connection chose);
// without GSO netstack fragments its full-sized segments to the new MTU
// and the gateway carries the fragments to the mobile, which reassembles
// them. Either way the transfer completes.
func TestGWTerminateMSSLowered(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(fmt.Sprintf("gso=%v", gso), func(t *testing.T) {
			mut := func(c *tcpproxy.Config) {
				if !gso {
					c.MobileLink.GSOMaxSize = 0
				}
			}
			r := wireRig(t, newTermRigInterim(t, true, nil, 0, mut), 0, mob)
			body := bytes.Repeat([]byte("0123456789abcdef"), 20000)
			r.listen(func(c net.Conn) {
				defer c.Close()
				if _, err := readN(c, 1); err != nil {
					return
				}
				c.Write(body[:1000])
				if _, err := readN(c, 1); err != nil {
					return
				}
				c.Write(body)
			})
			c, err := r.dial(rep, 81)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("a"))
			if _, err := readN(c, 1000); err != nil {
				t.Fatal(err)
			}
			p := r.term.Profile(tcpproxy.Mobile)
			p.MSS = 1240
			if err := r.term.SetProfile(tcpproxy.Mobile, p); err != nil {
				t.Fatal(err)
			}
			r.maxLan.Store(0)
			c.Write([]byte("b"))
			got, err := readN(c, len(body))
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("after the MSS change: %d of %d bytes, %v (lan drops %v)", len(got), len(body), err, r.w.Counters(0).Snapshot().Drops)
			}
			switch frags, largest := r.frags.Load(), r.maxLan.Load(); {
			case gso && frags != 0:
				t.Errorf("%d fragments toward the mobile: the link did not cut at the new MTU", frags)
			case !gso && frags == 0:
				t.Error("no fragment toward the mobile: the live connection kept segments within the new MTU")
			case largest > int32(p.MTU()):
				t.Errorf("a %d-byte packet toward the mobile, over the new MTU %d", largest, p.MTU())
			}
		})
	}
}

// exchange writes req on c, reads to EOF, closes c and fails t unless
// what came back is body.
func exchange(t *testing.T, c net.Conn, req, body []byte) {
	t.Helper()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("client read: %v (%d bytes)", err, len(got))
	}
	c.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("response: %d bytes, want the %d sent", len(got), len(body))
	}
}
