package gwe2e

// Port exhaustion (R-GW-5) on a gateway whose key-port range holds four
// ports per protocol (40000-40003 on 10.20.0.101), short UDP idle timeout
// and reuse delay:
//
//	mob1 10.101.0.10 ~ nas1 -- lb1 -- LAN1 -- gw1 [keys 10.20.0.101:40000-40003] -- LAN2 -- a1 a2
//	                                            ^ 5th flow: counted drop + RST (TCP) / ICMP unreachable (UDP)
//
// The fifth TCP connection is refused with a RST and the fifth UDP socket
// gets ICMP destination unreachable, each counted as port_exhausted. The
// UDP flows expire after their idle timeout and, once their ports have
// rested the reuse delay, a new flow passes. TCP flows closed with FINs
// keep their ports through the time-wait linger (RFC 6146's 4 minutes,
// not configurable in samepathd); ending the session frees them. The
// cases run over IPv4 (keys on 10.20.0.101), then over IPv6 (keys on
// fd00:20::101, the same four ports).

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/systest"
	"samepath/testbed/topo"
)

const keyPorts = 4

func TestPortExhaustion(t *testing.T) {
	sys := systest.Start(t, demo.Options{GWNAT: demo.GWNAT{
		PortMin: 40000, PortMax: 40000 + keyPorts - 1,
		UDPTimeout: 2 * time.Second, PortReuseDelay: time.Second,
	}})
	ctx := testCtx(t, 5*time.Minute)
	forFamilies(t, func(t *testing.T, f family) { testExhaustion(ctx, t, sys, f) })
}

// testExhaustion exhausts the key ports of family f's NAT address; the
// IPv4 run leaves its TCP records lingering in time-wait, so the IPv6
// run also shows each address's ports are its own.
func testExhaustion(ctx context.Context, t *testing.T, sys *demo.System, f family) {
	m := mobile(t, sys, "mob1")
	gw := sys.GWs[m.Gateway-1]
	if err := f.startSession(ctx, sys, m); err != nil {
		t.Fatal(err)
	}
	web, dns := f.rep(sys, 0, fig2.HTTPPort), f.rep(sys, 0, fig2.DNSPort)
	nat := f.natAddr(m.Gateway)

	// keyPortOK checks that a record's key is in the configured range.
	keyPortOK := func(key string) bool {
		ap, err := netip.ParseAddrPort(key)
		return err == nil && ap.Addr() == nat && ap.Port() >= 40000 && ap.Port() < 40000+keyPorts
	}

	var conns []*webConn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	t.Run("tcp", func(t *testing.T) {
		for i := 0; i < keyPorts; i++ {
			var c *webConn
			var err error
			if !eventually(10*time.Second, func() bool { c, err = dialWeb(ctx, m.NS, web); return err == nil }) {
				t.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, c)
			if _, err := c.get("/"); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
		before := drops(ctx, t, gw, "port_exhausted")
		c, err := dialWeb(ctx, m.NS, web)
		if err == nil {
			name, gerr := c.get("/")
			c.Close()
			t.Fatalf("connection %d with %d key ports opened (answer %q, %v)", keyPorts+1, keyPorts, name, gerr)
		}
		if !isRefused(err) {
			t.Errorf("connection %d: %v, want it refused (RST from the gateway)", keyPorts+1, err)
		}
		after := drops(ctx, t, gw, "port_exhausted")
		if after == before {
			t.Errorf("port_exhausted drops stayed at %d", after)
		}
		t.Logf("connection %d: %v; port_exhausted %d -> %d", keyPorts+1, err, before, after)
		// The flows that hold the ports still work.
		for i, c := range conns {
			if _, err := c.get("/"); err != nil {
				t.Errorf("held connection %d: %v", i, err)
			}
		}
		n := 0
		for _, fl := range flowsOf(ctx, t, gw, f.addr(m)) {
			if fl.Proto != "tcp" {
				continue
			}
			n++
			if !keyPortOK(fl.Gateway) {
				t.Errorf("record %+v: key outside %s", fl, netip.AddrPortFrom(nat, 40000))
			}
		}
		if n != keyPorts {
			t.Errorf("%d TCP records, want %d", n, keyPorts)
		}
	})

	t.Run("udp", func(t *testing.T) {
		var socks []net.Conn
		defer func() {
			for _, s := range socks {
				s.Close()
			}
		}()
		id := uint16(0)
		for i := 0; i < keyPorts; i++ {
			u, err := topo.Dial(ctx, m.NS, "udp", dns)
			if err != nil {
				t.Fatal(err)
			}
			socks = append(socks, u)
			id++
			if _, err := askTXT(u, id, 5*time.Second); err != nil {
				t.Fatalf("socket %d: %v", i, err)
			}
		}
		u, err := topo.Dial(ctx, m.NS, "udp", dns)
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		before := drops(ctx, t, gw, "port_exhausted")
		id++
		name, err := askTXT(u, id, 5*time.Second)
		if err == nil {
			t.Fatalf("socket %d with %d key ports answered by %s", keyPorts+1, keyPorts, name)
		}
		if !isRefused(err) {
			t.Errorf("socket %d: %v, want ICMP destination unreachable from the gateway", keyPorts+1, err)
		}
		after := drops(ctx, t, gw, "port_exhausted")
		if after == before {
			t.Errorf("port_exhausted drops stayed at %d", after)
		}
		t.Logf("socket %d: %v; port_exhausted %d -> %d", keyPorts+1, err, before, after)
		// Recovery: the four records expire (2 s idle), their ports rest
		// 1 s, then the fifth socket's query opens a flow.
		if !eventually(30*time.Second, func() bool {
			id++
			name, err = askTXT(u, id, 500*time.Millisecond)
			return err == nil
		}) {
			t.Fatalf("no recovery after the UDP flows went idle: %v; records %+v", err, flowsOf(ctx, t, gw, f.addr(m)))
		}
		for _, fl := range flowsOf(ctx, t, gw, f.addr(m)) {
			if fl.Proto == "udp" && fl.Mobile != u.LocalAddr().String() {
				t.Errorf("idle UDP record still held after recovery: %+v", fl)
			}
		}
	})

	t.Run("tcp_recovery", func(t *testing.T) {
		if len(conns) != keyPorts {
			t.Skip("tcp subtest did not open its connections")
		}
		// Both sides close: the records linger in time-wait and keep
		// their ports (late segments never reach a new flow).
		for _, c := range conns {
			c.Close()
		}
		var states map[string]int
		if !eventually(10*time.Second, func() bool {
			states = map[string]int{}
			for _, fl := range flowsOf(ctx, t, gw, f.addr(m)) {
				if fl.Proto == "tcp" {
					states[fl.State]++
				}
			}
			return states["time-wait"] == keyPorts
		}) {
			t.Fatalf("TCP record states %v after both sides closed: want %d in time-wait", states, keyPorts)
		}
		if c, err := dialWeb(ctx, m.NS, web); err == nil {
			c.Close()
			t.Errorf("connection opened while every key port lingers in time-wait")
		} else if !isRefused(err) {
			t.Errorf("connection during time-wait: %v, want it refused", err)
		}
		// The session's end reclaims every record; after the reuse delay
		// the next login's connections get ports again.
		endSession(ctx, t, sys, m, f)
		if !eventually(10*time.Second, func() bool { return len(flowsOf(ctx, t, gw, f.addr(m))) == 0 }) {
			t.Fatalf("records left after the session end: %+v", flowsOf(ctx, t, gw, f.addr(m)))
		}
		if err := f.startSession(ctx, sys, m); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < keyPorts; i++ {
			var name string
			var err error
			if !eventually(30*time.Second, func() bool { name, err = fetchName(ctx, m.NS, web); return err == nil }) {
				t.Fatalf("connection %d after the ports were freed: %v", i, err)
			}
			if name != "a1" && name != "a2" {
				t.Errorf("connection %d answered by %q", i, name)
			}
		}
		t.Logf("%d connections passed after the session end freed the key ports", keyPorts)
	})
}
