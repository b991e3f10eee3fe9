package fig2

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

func TestCheckMobileAddr(t *testing.T) {
	p, err := NewPlan("sptbx", 2, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		gw   int
		err  string
	}{
		{"10.101.0.1", 1, ""},
		{"10.101.0.10", 1, ""}, // mob1's own address
		{"10.102.0.254", 2, ""},
		{"10.102.0.10", 0, "mob2 already has"},
		{"10.101.0.0", 0, "network or broadcast"},
		{"10.101.0.255", 0, "network or broadcast"},
		{"10.50.0.1", 0, "in no gateway's range"},
		{"fd00:101::5", 0, "want IPv4"},
	} {
		g, err := p.checkMobileAddr("mob1", netip.MustParseAddr(c.addr))
		if c.err == "" {
			if err != nil || g != c.gw {
				t.Errorf("%s: gateway %d, %v; want %d", c.addr, g, err, c.gw)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want %q", c.addr, err, c.err)
		}
	}
}

// TestSetMobileAddr re-addresses a mobile in a running testbed (kernel
// routers in the LBs and gateways) and checks that the new address
// reaches a server through the gateway whose range holds it, on the
// current ingress point and after a move, and that the old one is gone.
func TestSetMobileAddr(t *testing.T) {
	privtest.Require(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(privtest.Name("sptba", ""))
	cfg.StateDir = t.TempDir()
	cfg.ServeArgv = []string{exe, "serve"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tb, err := Up(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Down() })
	p := tb.Plan
	a1, _ := p.Server("a1")
	server := a1.LAN.IPv4.Addr()
	old := p.Mobiles[0].IPv4

	// reach pings the server from mob1 and says which gateway forwarded
	// the echo requests.
	reach := func(step string) int {
		t.Helper()
		before, err := tb.AllCounters()
		if err != nil {
			t.Fatal(err)
		}
		r, err := topo.Ping(p.Mobiles[0].NS, server, 3, 50*time.Millisecond, 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if r.Received == 0 {
			t.Fatalf("%s: no echo reply from %s", step, server)
		}
		after, err := tb.AllCounters()
		if err != nil {
			t.Fatal(err)
		}
		via := 0
		for g := range after {
			if after[g].Sub(before[g]).Up.Packets > 0 {
				if via != 0 {
					t.Fatalf("%s: gw%d and gw%d both forwarded", step, via, g+1)
				}
				via = g + 1
			}
		}
		return via
	}
	if g := reach("before"); g != 1 {
		t.Fatalf("before: forwarded by gw%d, want gw1", g)
	}

	newA := netip.MustParseAddr("10.101.0.77")
	if err := tb.SetMobileAddr("mob1", newA); err != nil {
		t.Fatal(err)
	}
	checkAddrs(t, tb, "mob1", newA, old)
	if g := reach("re-addressed"); g != 1 {
		t.Fatalf("re-addressed: forwarded by gw%d, want gw1", g)
	}
	if err := tb.Move("mob1", 2); err != nil {
		t.Fatal(err)
	}
	checkAddrs(t, tb, "mob1", newA, old)
	if g := reach("moved to ingress 2"); g != 1 {
		t.Fatalf("moved: forwarded by gw%d, want gw1", g)
	}

	// An address in gw2's range: the LBs' rules send it to gw2.
	other := netip.MustParseAddr("10.102.0.77")
	if err := tb.SetMobileAddr("mob1", other); err != nil {
		t.Fatal(err)
	}
	checkAddrs(t, tb, "mob1", other, newA)
	if m := p.Mobiles[0]; m.Gateway != 2 || m.IPv4 != other {
		t.Errorf("plan: %s gateway %d, want %s gateway 2", m.IPv4, m.Gateway, other)
	}
	if g := reach("gw2 address"); g != 2 {
		t.Fatalf("gw2 address: forwarded by gw%d, want gw2", g)
	}

	if err := tb.SetMobileAddr("mob1", p.Mobiles[1].IPv4); err == nil {
		t.Error("mob2's address given to mob1")
	}
	// Another process sees the new address.
	ld, err := Load(cfg.StateDir, cfg.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if m := ld.Plan.Mobiles[0]; m.IPv4 != other || m.Gateway != 2 || m.Ingress != 2 || m.Wireless[0].IPv4 != netip.PrefixFrom(other, 32) {
		t.Errorf("state file: %+v", m)
	}
}

// checkAddrs checks the mobile's wireless links and the routes in its
// current NAS and in the gateways: have is there, gone is not.
func checkAddrs(t *testing.T, tb *Testbed, mobile string, have, gone netip.Addr) {
	t.Helper()
	m, err := tb.Plan.Mobile(mobile)
	if err != nil {
		t.Fatal(err)
	}
	ip := func(ns string, args ...string) string {
		out, err := topo.Command(ns, "ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v in %s: %v\n%s", args, ns, err, out)
		}
		return string(out)
	}
	for _, w := range m.Wireless {
		out := ip(m.NS, "-4", "addr", "show", "dev", w.Name)
		if !strings.Contains(out, have.String()+"/32") || strings.Contains(out, gone.String()+"/") {
			t.Errorf("%s/%s: want %s and not %s:\n%s", m.NS, w.Name, have, gone, out)
		}
	}
	nas := m.NASSide[m.Ingress-1]
	out := ip(nas.NS, "-4", "route", "show", "dev", nas.Name)
	if !strings.Contains(out, have.String()) || strings.Contains(out, gone.String()) {
		t.Errorf("%s routes on %s: want %s and not %s:\n%s", nas.NS, nas.Name, have, gone, out)
	}
	lb := tb.Plan.Ingress[m.Ingress-1].LB.LAN.IPv4.Addr()
	for _, g := range tb.Plan.Gateways {
		out := ip(g.NS, "-4", "route", "show")
		if !strings.Contains(out, have.String()+" via "+lb.String()) || strings.Contains(out, gone.String()+" ") {
			t.Errorf("%s routes: want %s via %s and not %s:\n%s", g.NS, have, lb, gone, out)
		}
	}
}
