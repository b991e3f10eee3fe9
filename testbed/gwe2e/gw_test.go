package gwe2e

// The gateways' balancing, return path, user session types and session
// gating, on one FIG. 2 system:
//
//	                    +-- nas1 -- lb1 --+                      LAN2
//	mob1 10.101.0.10 ~~~+-- nas2 -- lb2 --+-- LAN1 --+-- gw1 --+--+-- a1 10.20.0.11 \ group A, rep 10.30.0.1
//	mob2 10.102.0.10 ~~~+-- nas3 -- lb3 --+          +-- gw2 --+  +-- a2 10.20.0.12 /
//	                                                 NAT keys on  +-- b1 10.20.0.21 \ group B, rep 10.30.0.2
//	                                            10.20.0.101/.102  +-- b2 10.20.0.22 /
//
//	services (both gateways): web-a 10.30.0.1:80 tcp connection unit rr,
//	dns-a 10.30.0.1:53 udp packet unit rr, web-b 10.30.0.2:80 tcp login
//	unit rr; added on gw1 at run time: web-a-login 10.30.0.1:8080 tcp
//	login unit rr over a1:80, a2:80.
//
// mob1's address belongs to gw1, mob2's to gw2. Only the wireless link to
// a mobile's current NAS is up (Move switches it). GET / answers the
// server's name and a TXT query to the DNS-like service answers it too, so
// every answer names the actual server the gateway chose.
//
// Every case runs over IPv4, then over IPv6 (family_test.go) on the same
// system: mob1 fd00:101::10, mob2 fd00:102::10, reps fd00:30::1 and ::2,
// servers fd00:20::11.., NAT keys on fd00:20::101/::102, services web-a6,
// dns-a6, web-b6 and web-a-login6. The IPv4 sessions stay open during
// the IPv6 run: each address has its own gate.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/dp/acct"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/systest"
	"samepath/testbed/topo"
)

func TestGateway(t *testing.T) {
	acctLog := demo.GWAccounting{Log: filepath.Join(t.TempDir(), "gw%d.acct"), Interim: time.Second, SyncInterval: 50 * time.Millisecond}
	sys := systest.Start(t, demo.Options{GWAccounting: acctLog})
	ctx := testCtx(t, 6*time.Minute)
	forFamilies(t, func(t *testing.T, f family) { testGateway(ctx, t, sys, f, acctLog) })
}

// testGateway runs the cases over family f: the IPv4 run leaves its
// sessions open, so that the IPv6 run also shows the gates per address.
func testGateway(ctx context.Context, t *testing.T, sys *demo.System, f family, acctLog demo.GWAccounting) {
	t.Cleanup(func() {
		if t.Failed() {
			logDrops(ctx, t, sys)
		}
	})
	// S124 (R-GW-7): mob2 has no session yet.
	t.Run("no_session", func(t *testing.T) {
		m := mobile(t, sys, "mob2")
		gw := sys.GWs[m.Gateway-1]
		before := drops(ctx, t, gw, "no_session")
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := topo.Dial(dctx, m.NS, "tcp", f.rep(sys, 0, fig2.HTTPPort))
		cancel()
		if err == nil {
			c.Close()
			t.Fatal("TCP connection to web-a opened without a session")
		}
		u, err := topo.Dial(ctx, m.NS, "udp", f.rep(sys, 0, fig2.DNSPort))
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		if name, err := askTXT(u, 1, time.Second); err == nil {
			t.Fatalf("dns-a answered %q without a session", name)
		}
		after := drops(ctx, t, gw, "no_session")
		// At least the SYN and the datagram; SYN retransmissions add more.
		if after-before < 2 {
			t.Errorf("gw%d no_session drops %d -> %d: want the SYN and the datagram counted", m.Gateway, before, after)
		}
		if fs := flowsOf(ctx, t, gw, f.addr(m)); len(fs) != 0 {
			t.Errorf("gw%d holds NAT records of %s without a session: %+v", m.Gateway, m.Name, fs)
		}
		// The same socket gets through once the session starts.
		if err := f.startSession(ctx, sys, m); err != nil {
			t.Fatal(err)
		}
		id := uint16(100)
		var name string
		if !eventually(10*time.Second, func() bool {
			id++
			name, err = askTXT(u, id, 500*time.Millisecond)
			return err == nil
		}) {
			t.Fatalf("no answer after the session started: %v", err)
		}
		if !strings.HasPrefix(name, "a") {
			t.Errorf("dns-a answered by %q, want a server of group A", name)
		}
	})

	m1 := mobile(t, sys, "mob1")
	gw1 := sys.GWs[m1.Gateway-1]
	if err := f.startSession(ctx, sys, m1); err != nil {
		t.Fatal(err)
	}

	// R-GW-1, R-GW-4: long-lived connections across moves.
	t.Run("moving_connections", func(t *testing.T) { testMoving(ctx, t, sys, m1, f) })

	// R-GW-2: round robin per connection.
	t.Run("round_robin_100", func(t *testing.T) {
		count := map[string]int{}
		for i := 0; i < 100; i++ {
			name, err := fetchName(ctx, m1.NS, f.rep(sys, 0, fig2.HTTPPort))
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			count[name]++
		}
		t.Logf("100 connections to web-a: %v", count)
		if len(count) != 2 || count["a1"]+count["a2"] != 100 {
			t.Fatalf("servers %v: want a1 and a2 only", count)
		}
		if d := count["a1"] - count["a2"]; d < -1 || d > 1 {
			t.Errorf("round robin spread %v: want even +-1", count)
		}
	})

	// R-GW-6 packet unit: a new choice for every datagram of one socket,
	// released by the answer.
	t.Run("packet_unit_udp", func(t *testing.T) {
		u, err := topo.Dial(ctx, m1.NS, "udp", f.rep(sys, 0, fig2.DNSPort))
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		const n = 20
		count := map[string]int{}
		var seq []string
		for i := 0; i < n; i++ {
			name, err := askTXT(u, uint16(1000+i), 5*time.Second)
			if err != nil {
				t.Fatalf("datagram %d: %v", i, err)
			}
			count[name]++
			seq = append(seq, name)
		}
		t.Logf("%d datagrams from one socket to dns-a answered by %v", n, seq)
		if len(count) != 2 || count["a1"]+count["a2"] != n {
			t.Fatalf("servers %v: want a1 and a2 only", count)
		}
		if d := count["a1"] - count["a2"]; d < -1 || d > 1 {
			t.Errorf("packet unit spread %v: want even +-1 (round robin per datagram)", count)
		}
		// One NAT record carries them all (the key is per socket). The
		// gateway publishes counters to its API once a second at most
		// (nat.PortTable): wait for that.
		local := u.LocalAddr().String()
		var recs []api.Flow
		settled(func() bool {
			recs = recs[:0]
			for _, fl := range flowsOf(ctx, t, gw1, f.addr(m1)) {
				if fl.Proto == "udp" && fl.Mobile == local {
					recs = append(recs, fl)
				}
			}
			return len(recs) == 1 && recs[0].UpPackets == n && recs[0].DownPackets == n
		})
		if len(recs) != 1 || recs[0].UpPackets != n || recs[0].DownPackets != n {
			t.Errorf("NAT records of %s: %+v, want one with %d packets each way", local, recs, n)
		}
		// Every choice was released by its answer (T7, FIG. 33).
		svcs, err := gw1.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range svcs.Services {
			if s.Name != f.svc("dns-a") {
				continue
			}
			for _, sv := range s.Servers {
				if sv.Active != 0 {
					t.Errorf("%s server %s holds %d choices after every datagram was answered", s.Name, sv.Addr, sv.Active)
				}
			}
		}
	})

	// R-GW-1: a real ping to a representative address is answered by an
	// actual server of a service there (web-a, connection unit, rr).
	t.Run("echo_to_representative", func(t *testing.T) {
		vip := f.vip(sys, 0)
		out, err := topo.CommandContext(ctx, m1.NS, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", vip.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("ping %s from %s: %v\n%s", vip, m1.Name, err, out)
		}
		if !strings.Contains(string(out), "3 received") {
			t.Fatalf("ping %s: want 3 replies:\n%s", vip, out)
		}
		// The gateway publishes new records to its API within a second.
		var echo []api.Flow
		settled(func() bool {
			echo = echo[:0]
			for _, fl := range flowsOf(ctx, t, gw1, f.addr(m1)) {
				if d, err := netip.ParseAddrPort(fl.Dest); err == nil && fl.Proto == "icmp" && d.Addr() == vip {
					echo = append(echo, fl)
				}
			}
			return len(echo) == 1
		})
		if len(echo) != 1 {
			t.Fatalf("echo NAT records to %s: %+v, want one (one identifier)", vip, echo)
		}
		srv, err := netip.ParseAddrPort(echo[0].Server)
		if err != nil {
			t.Fatal(err)
		}
		if name := sys.TB.Plan.ServerName(srv.Addr()); !strings.HasPrefix(name, "a") || echo[0].Service != f.svc("web-a") {
			t.Errorf("echo bound to %s (%q), service %q: want a server of group A through %s", echo[0].Server, name, echo[0].Service, f.svc("web-a"))
		}
	})

	// RFC 5508 section 4.2: a server's ICMP error about a mobile's packet
	// reaches the mobile, outer and quoted headers NATed back.
	t.Run("icmp_error_from_server", func(t *testing.T) { testICMPError(ctx, t, sys, m1, f) })

	// R-GW-6 login unit, R-GW-8 (FIG. 41).
	t.Run("login_unit_two_services", func(t *testing.T) { testLogin(ctx, t, sys, m1, f) })

	// R-GW-8 accounting (T10): a flow's records name the subscriber, the
	// service, the addresses and the URL asked for.
	t.Run("accounting_url", func(t *testing.T) { testAccounting(ctx, t, sys, m1, f, acctLog.Path(m1.Gateway)) })

	// R-AUTH-1 (FIG. 25): a service type the device may not use is
	// refused, one T9 does not name is not controlled.
	t.Run("authz_refusal", func(t *testing.T) { testAuthz(ctx, t, sys, m1, f) })
}

// testMoving holds four HTTP keep-alive connections from mob1 to web-a
// open while mob1 moves nas1 -> nas2 -> nas3 -> nas1, asking each for
// its server's name and some bytes in every phase: each connection keeps
// its actual server, and the phase's LB carries both directions while the
// others carry nothing (the down packets follow the latest up packet's LB,
// the only one with a live link to the mobile).
func testMoving(ctx context.Context, t *testing.T, sys *demo.System, m *fig2.Mobile, f family) {
	gw := sys.GWs[m.Gateway-1]
	if err := sys.TB.Move(m.Name, 1); err != nil {
		t.Fatal(err)
	}
	const nconn, size = 4, 100000
	var conns []*webConn
	var names []string
	for i := 0; i < nconn; i++ {
		c, err := dialWeb(ctx, m.NS, f.rep(sys, 0, fig2.HTTPPort))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		name, err := c.get("/")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		names = append(names, name)
	}
	t.Logf("connections opened on %v", names)
	if !strings.Contains(strings.Join(names, ","), "a1") || !strings.Contains(strings.Join(names, ","), "a2") {
		t.Errorf("%d connections all on one server %v (round robin per connection)", nconn, names)
	}
	for k, in := range []int{1, 2, 3, 1} {
		if k > 0 {
			if err := sys.TB.Move(m.Name, in); err != nil {
				t.Fatal(err)
			}
		}
		before := lbCounts(ctx, t, sys)
		for i, c := range conns {
			body, err := c.get(fmt.Sprintf("/bytes/%d", size))
			if err != nil {
				t.Fatalf("phase %d (nas%d): connection %d: %v", k+1, in, i, err)
			}
			if len(body) != size {
				t.Errorf("phase %d: connection %d got %d bytes, want %d", k+1, i, len(body), size)
			}
			name, err := c.get("/")
			if err != nil {
				t.Fatalf("phase %d (nas%d): connection %d: %v", k+1, in, i, err)
			}
			if name != names[i] {
				t.Errorf("phase %d (nas%d): connection %d answered by %s, opened on %s", k+1, in, i, name, names[i])
			}
		}
		after := lbCounts(ctx, t, sys)
		for n := range after {
			d := lbCount{after[n].Up - before[n].Up, after[n].Down - before[n].Down}
			t.Logf("phase %d (nas%d): lb%d carried up %d, down %d", k+1, in, n+1, d.Up, d.Down)
			switch {
			case n == in-1 && (d.Up < 2*nconn || d.Down < nconn*size/1500):
				t.Errorf("phase %d: lb%d (the mobile's) carried up %d, down %d packets: want at least %d up and %d down",
					k+1, n+1, d.Up, d.Down, 2*nconn, nconn*size/1500)
			case n != in-1 && (d.Up != 0 || d.Down != 0):
				t.Errorf("phase %d: lb%d (not the mobile's) carried up %d, down %d packets", k+1, n+1, d.Up, d.Down)
			}
		}
	}
	// The NAT records agree: one per connection, on the server named.
	fs := flowsOf(ctx, t, gw, f.addr(m))
	for i, c := range conns {
		fl, ok := flowFor(fs, "tcp", c.local(), f.rep(sys, 0, fig2.HTTPPort))
		if !ok {
			t.Errorf("connection %d (%v): no NAT record in %+v", i, c.local(), fs)
			continue
		}
		ap, err := netip.ParseAddrPort(fl.Server)
		if err != nil || sys.TB.Plan.ServerName(ap.Addr()) != names[i] || fl.Service != f.svc("web-a") || fl.State != "established" {
			t.Errorf("connection %d: record %+v, want server %s of %s, established", i, fl, names[i], f.svc("web-a"))
		}
	}
}

// loginA is a second login-unit service added at run time: group A's
// representative address on port 8080, balanced over a1 and a2's web
// servers, so that the mobile has two login-unit services open (web-b and
// this one), as in FIG. 41. The IPv6 run adds its twin, web-a-login6.
const loginA = "web-a-login"

// testLogin: with web-b and web-a-login open at once (held keep-alive
// connections plus new connections alternating between the services), a
// login keeps one actual server per service; round robin would alternate.
// The session's end removes every NAT record of the mobile, and the next
// login chooses again and again keeps its choices.
func testLogin(ctx context.Context, t *testing.T, sys *demo.System, m *fig2.Mobile, f family) {
	gw := sys.GWs[m.Gateway-1]
	webB, loginA := f.svc("web-b"), f.svc(loginA)
	a1, a2 := f.server(t, sys, "a1", fig2.HTTPPort), f.server(t, sys, "a2", fig2.HTTPPort)
	addService(ctx, t, gw, api.Service{Name: loginA, Rep: f.rep(sys, 0, 8080), Proto: "tcp", Type: "login",
		Policy: "rr", ServiceType: "web", Servers: []api.Server{{Addr: a1, State: api.StateUp}, {Addr: a2, State: api.StateUp}}})
	reps := map[string]string{webB: f.rep(sys, 1, fig2.HTTPPort), loginA: f.rep(sys, 0, 8080)}
	order := []string{webB, loginA}

	// A fresh login for this subtest.
	endSession(ctx, t, sys, m, f)
	if !eventually(10*time.Second, func() bool { _, ok := sessionID(ctx, t, gw, f.addr(m)); return !ok }) {
		t.Fatal("session still listed after its end")
	}
	if err := f.startSession(ctx, sys, m); err != nil {
		t.Fatal(err)
	}

	login := func(round string) map[string]string {
		var err error
		chosen := map[string]string{}
		held := map[string]*webConn{}
		for _, svc := range order {
			var c *webConn
			if !eventually(10*time.Second, func() bool { // the session start reaches the worker
				c, err = dialWeb(ctx, m.NS, reps[svc])
				return err == nil
			}) {
				t.Fatalf("%s: %s: %v", round, svc, err)
			}
			held[svc] = c
			name, err := c.get("/")
			if err != nil {
				t.Fatalf("%s: %s: %v", round, svc, err)
			}
			chosen[svc] = name
		}
		for i := 0; i < 6; i++ {
			for _, svc := range order {
				short, err := fetchName(ctx, m.NS, reps[svc])
				if err != nil {
					t.Fatalf("%s: %s connection %d: %v", round, svc, i, err)
				}
				kept, err := held[svc].get("/")
				if err != nil {
					t.Fatalf("%s: %s held connection: %v", round, svc, err)
				}
				if short != chosen[svc] || kept != chosen[svc] {
					t.Errorf("%s: %s answered by %s (new connection) and %s (held), chosen at login: %s", round, svc, short, kept, chosen[svc])
				}
			}
		}
		for _, c := range held {
			c.Close()
		}
		if !strings.HasPrefix(chosen[webB], "b") || !strings.HasPrefix(chosen[loginA], "a") {
			t.Errorf("%s: servers %v: want %s on group B, %s on group A", round, chosen, webB, loginA)
		}
		// Every NAT record of a service names the one server.
		for _, fl := range flowsOf(ctx, t, gw, f.addr(m)) {
			want, ok := chosen[fl.Service]
			ap, err := netip.ParseAddrPort(fl.Server)
			if ok && (err != nil || sys.TB.Plan.ServerName(ap.Addr()) != want) {
				t.Errorf("%s: record %+v: want server %s", round, fl, want)
			}
		}
		return chosen
	}
	first := login("first login")
	t.Logf("first login: %v", first)

	// Logout: T3 row and every record of the mobile go (R-GW-7).
	endSession(ctx, t, sys, m, f)
	var left []api.Flow
	if !eventually(10*time.Second, func() bool {
		left = flowsOf(ctx, t, gw, f.addr(m))
		return len(left) == 0
	}) {
		t.Errorf("after the session end gw%d still holds %d NAT records of %s: %+v", m.Gateway, len(left), m.Name, left)
	}
	if id, ok := sessionID(ctx, t, gw, f.addr(m)); ok {
		t.Errorf("session %s still listed after its end", id)
	}

	if err := f.startSession(ctx, sys, m); err != nil {
		t.Fatal(err)
	}
	second := login("second login")
	t.Logf("second login: %v (choices may change between logins)", second)
}

// addService adds svc to gateway gw's services at run time.
func addService(ctx context.Context, t *testing.T, gw *api.Client, svc api.Service) {
	t.Helper()
	svcs, err := gw.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table api.Services
	for _, s := range svcs.Services {
		s.Servers = plainServers(s.Servers)
		table.Services = append(table.Services, s)
	}
	table.Services = append(table.Services, svc)
	if err := gw.SetServices(ctx, table); err != nil {
		t.Fatal(err)
	}
}

// plainServers drops the read-only probe fields of servers read from the
// API, so that the table can be written back.
func plainServers(in []api.Server) []api.Server {
	out := make([]api.Server, 0, len(in))
	for _, s := range in {
		out = append(out, api.Server{Addr: s.Addr, Weight: s.Weight, State: s.State})
	}
	return out
}

// closedPort is a UDP port no server listens on.
const closedPort = 9999

// testICMPError adds a UDP service over a1 and a2's closed port: the
// servers' kernels answer each datagram with ICMP port unreachable, which
// the gateway translates back to the mobile, whose connected socket then
// reads ECONNREFUSED (not the EHOSTUNREACH or EACCES of the gateway's own
// refusal).
func testICMPError(ctx context.Context, t *testing.T, sys *demo.System, m *fig2.Mobile, f family) {
	gw := sys.GWs[m.Gateway-1]
	name := f.svc("closed-a")
	addService(ctx, t, gw, api.Service{Name: name, Rep: f.rep(sys, 0, closedPort), Proto: "udp", Type: "connection", Policy: "rr",
		ServiceType: "dns", Servers: []api.Server{
			{Addr: f.server(t, sys, "a1", closedPort), State: api.StateUp}, {Addr: f.server(t, sys, "a2", closedPort), State: api.StateUp}}})
	u, err := topo.Dial(ctx, m.NS, "udp", f.rep(sys, 0, closedPort))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	id := uint16(2000)
	if !eventually(10*time.Second, func() bool { // the new table reaches the worker
		id++
		_, err = askTXT(u, id, 500*time.Millisecond)
		return errors.Is(err, syscall.ECONNREFUSED)
	}) {
		t.Fatalf("datagrams to %s over closed ports: %v, want ECONNREFUSED (the servers' port unreachable)", name, err)
	}
	// The error went through the socket's own record (errors are not
	// counted as the flow's packets).
	fl, ok := flowFor(flowsOf(ctx, t, gw, f.addr(m)), "udp", u.LocalAddr().(*net.UDPAddr).AddrPort(), f.rep(sys, 0, closedPort))
	ap, err := netip.ParseAddrPort(fl.Server)
	if !ok || err != nil || fl.Service != name || !strings.HasPrefix(sys.TB.Plan.ServerName(ap.Addr()), "a") || ap.Port() != closedPort {
		t.Errorf("NAT record of %v -> %s: %+v (found %v), want one on a server of group A", u.LocalAddr(), name, fl, ok)
	}
}

// testAuthz names group B's representative address (both families) as
// "video" in T9 and forbids the mobile's device video in T8: a
// connection to web-b is refused with a RST and an echo to the address
// with an ICMP error, both counted as denied with no NAT record left,
// while web-a (not in T9) still answers. The tables are restored after.
func testAuthz(ctx context.Context, t *testing.T, sys *demo.System, m *fig2.Mobile, f family) {
	gw := sys.GWs[m.Gateway-1]
	old, err := gw.Authz(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gw.SetAuthz(ctx, api.Authz{T9: old.T9, T8: old.T8}); err != nil {
			t.Errorf("restore authz: %v", err)
		}
	})
	g := sys.TB.Plan.Groups[1]
	if err := gw.SetAuthz(ctx, api.Authz{
		T9: []api.T9Row{{Rep: g.VIPv4.String(), ServiceType: "video"}, {Rep: g.VIPv6.String(), ServiceType: "video"}},
		T8: []api.T8Row{{Device: "IMEI-" + m.Name, ServiceType: "video", Allowed: false}},
	}); err != nil {
		t.Fatal(err)
	}
	before := drops(ctx, t, gw, "denied")
	vip := f.vip(sys, 1)
	_, err = fetchName(ctx, m.NS, f.rep(sys, 1, fig2.HTTPPort))
	if !isRefused(err) {
		t.Errorf("connection to %s (video, not allowed): %v, want it refused", f.rep(sys, 1, fig2.HTTPPort), err)
	}
	if out, err := topo.CommandContext(ctx, m.NS, "ping", "-n", "-c", "1", "-W", "2", vip.String()).CombinedOutput(); err == nil {
		t.Errorf("ping %s (video, not allowed) answered:\n%s", vip, out)
	} else if !strings.Contains(string(out), "From "+vip.String()+" ") {
		// iputils prints the error's source and its meaning ("Packet
		// filtered" for ICMPv4 code 13, "Administratively prohibited"
		// for ICMPv6 code 1); the gateway speaks as the representative.
		t.Errorf("ping %s: want a destination unreachable from the representative:\n%s", vip, out)
	} else {
		t.Logf("ping %s: %s", vip, strings.Split(string(out), "\n")[1])
	}
	a, err := gw.Authz(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := drops(ctx, t, gw, "denied")
	t.Logf("denied drops %d -> %d, denied per type %v", before, after, a.Denied)
	if after-before < 2 {
		t.Errorf("denied drops %d -> %d: want the SYN and the echo counted", before, after)
	}
	if a.Denied["video"] < after-before {
		t.Errorf("denied[video] %d: want at least the %d refusals", a.Denied["video"], after-before)
	}
	for _, fl := range flowsOf(ctx, t, gw, f.addr(m)) {
		if d, err := netip.ParseAddrPort(fl.Dest); err == nil && d.Addr() == vip && fl.State != "time-wait" {
			t.Errorf("record of a refused flow: %+v", fl)
		}
	}
	if name, err := fetchName(ctx, m.NS, f.rep(sys, 0, fig2.HTTPPort)); err != nil || !strings.HasPrefix(name, "a") {
		t.Errorf("web-a (not in T9): %q, %v, want an answer from group A", name, err)
	}
}

// testAccounting fetches a URL no other case asks for from web-a and
// finds the flow's records (interim ones, each second) in the gateway's
// accounting log: the mobile's device, the family's service, its
// representative address, a server of group A and the URL.
func testAccounting(ctx context.Context, t *testing.T, sys *demo.System, m *fig2.Mobile, f family, log string) {
	path := "/bytes/4004"
	if f.v6 {
		path = "/bytes/6006"
	}
	w, err := dialWeb(ctx, m.NS, f.rep(sys, 0, fig2.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.get(path); err != nil {
		t.Fatal(err)
	}
	var got []acct.Entry
	if !eventually(10*time.Second, func() bool {
		es, _, err := acct.Query(log, acct.Filter{Device: "IMEI-" + m.Name, Service: f.svc("web-a")})
		if err != nil {
			return false
		}
		got = got[:0]
		for _, e := range es {
			if strings.HasSuffix(e.URL, path) {
				got = append(got, e)
			}
		}
		return len(got) > 0
	}) {
		t.Fatalf("no accounting record of %s from %s in %s", path, m.Name, log)
	}
	e := got[len(got)-1]
	t.Logf("record: %+v", e)
	rp, err1 := netip.ParseAddrPort(e.Rep)
	sv, err2 := netip.ParseAddrPort(e.Server)
	if err1 != nil || err2 != nil || rp != netip.MustParseAddrPort(f.rep(sys, 0, fig2.HTTPPort)) ||
		!strings.HasPrefix(sys.TB.Plan.ServerName(sv.Addr()), "a") || e.Proto != "tcp" {
		t.Errorf("record %+v: want tcp to %s on a server of group A", e, f.rep(sys, 0, fig2.HTTPPort))
	}
}
