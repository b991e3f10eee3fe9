package balance

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// group returns n servers 10.1.0.1:80.. all up with the given weights (nil: 1).
func group(n int, weights ...int) []Server {
	out := make([]Server, n)
	for i := range out {
		out[i] = Server{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)}), 80), Up: true}
		if i < len(weights) {
			out[i].Weight = weights[i]
		}
	}
	return out
}

// group6 is group with IPv6 servers (2001:db8:1::1 and on).
func group6(n int) []Server {
	out := make([]Server, n)
	for i := range out {
		out[i] = Server{Addr: netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 15: byte(i + 1)}), 80), Up: true}
	}
	return out
}

// TestMixedFamily: a v6 representative address with v4 servers (or the
// reverse, or both kinds in one group) is a valid service: the gateway
// translates its flows (NAT64/NAT46, dp/gw_xlat.go).
func TestMixedFamily(t *testing.T) {
	for _, c := range []ServiceConfig{
		svcCfg("v6rep", "[2001:db8::1]:80", RoundRobin, LoginUnit, group(2)),
		svcCfg("v4rep", "10.30.0.1:80", RoundRobin, LoginUnit, group6(1)),
		svcCfg("mixed", "10.30.0.1:80", RoundRobin, LoginUnit, append(group(1), group6(1)...)),
	} {
		if _, err := NewTable([]ServiceConfig{c}); err != nil {
			t.Errorf("%s: NewTable = %v", c.Name, err)
		}
	}
}

func svcCfg(name string, rep string, p Policy, typ UnitType, servers []Server) ServiceConfig {
	return ServiceConfig{Name: name, Rep: ap(rep), Proto: ProtoTCP, Type: typ, Policy: p, Servers: servers}
}

func newTable(t testing.TB, svcs ...ServiceConfig) *Table {
	t.Helper()
	tb, err := NewTable(svcs)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func counts(t testing.TB, tb *Table, id uint32, n, picks int) []int {
	t.Helper()
	c := make([]int, n)
	for range picks {
		_, i, ok := tb.Pick(id)
		if !ok {
			t.Fatal("pick: no server")
		}
		c[i]++
	}
	return c
}

func TestParse(t *testing.T) {
	for p := range NumPolicies {
		got, err := ParsePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	for u := range NumUnitTypes {
		got, err := ParseUnitType(u.String())
		if err != nil || got != u {
			t.Errorf("ParseUnitType(%q) = %v, %v", u.String(), got, err)
		}
	}
	if _, err := ParsePolicy("random"); !errors.Is(err, ErrBadPolicy) {
		t.Errorf("ParsePolicy(random) err = %v", err)
	}
	if _, err := ParseUnitType("session"); !errors.Is(err, ErrBadUnitType) {
		t.Errorf("ParseUnitType(session) err = %v", err)
	}
	for m := range NumModes {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if m, err := ParseMode(""); err != nil || m != NATMode {
		t.Errorf("ParseMode(\"\") = %v, %v; want nat", m, err)
	}
	if _, err := ParseMode("proxy"); !errors.Is(err, ErrBadMode) {
		t.Errorf("ParseMode(proxy) err = %v", err)
	}
	if u, _ := ParseUnitType("Login-Unit"); u != LoginUnit {
		t.Errorf("ParseUnitType(Login-Unit) = %v", u)
	}
}

func TestValidate(t *testing.T) {
	good := svcCfg("web", "192.0.2.1:80", RoundRobin, ConnectionUnit, group(2))
	tests := []struct {
		name string
		mod  func(c *ServiceConfig)
	}{
		{"no name", func(c *ServiceConfig) { c.Name = "" }},
		{"no rep", func(c *ServiceConfig) { c.Rep = netip.AddrPort{} }},
		{"rep port 0", func(c *ServiceConfig) { c.Rep = ap("192.0.2.1:0") }},
		{"proto", func(c *ServiceConfig) { c.Proto = 1 }},
		{"type", func(c *ServiceConfig) { c.Type = NumUnitTypes }},
		{"policy", func(c *ServiceConfig) { c.Policy = NumPolicies }},
		{"no servers", func(c *ServiceConfig) { c.Servers = nil }},
		{"dup server", func(c *ServiceConfig) { c.Servers[1].Addr = c.Servers[0].Addr }},
		{"weight", func(c *ServiceConfig) { c.Servers[0].Weight = MaxWeight + 1 }},
		{"neg weight", func(c *ServiceConfig) { c.Servers[0].Weight = -1 }},
		{"check kind", func(c *ServiceConfig) { c.Check.Kind = "icmp" }},
		{"udp check no send", func(c *ServiceConfig) { c.Check.Kind = "udp" }},
		{"mode", func(c *ServiceConfig) { c.Mode = NumModes }},
		{"terminate udp", func(c *ServiceConfig) { c.Mode, c.Proto = TerminateMode, ProtoUDP }},
		{"terminate packet unit", func(c *ServiceConfig) { c.Mode, c.Type = TerminateMode, PacketUnit }},
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			c.Servers = append([]Server(nil), good.Servers...)
			tt.mod(&c)
			if err := c.Validate(); !errors.Is(err, ErrBadConfig) {
				t.Errorf("Validate = %v, want ErrBadConfig", err)
			}
			if _, err := NewTable([]ServiceConfig{c}); err == nil {
				t.Error("NewTable accepted it")
			}
		})
	}
	term := good
	term.Mode = TerminateMode
	tab, err := NewTable([]ServiceConfig{term})
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := tab.Mode(0); !ok || m != TerminateMode {
		t.Errorf("Mode(0) = %v, %v; want terminate", m, ok)
	}
	if _, ok := tab.Mode(7); ok {
		t.Error("Mode of an unknown service: ok")
	}
	if _, err := NewTable([]ServiceConfig{good, svcCfg("web2", "192.0.2.1:80", RoundRobin, 0, group(1))}); !errors.Is(err, ErrConflict) {
		t.Errorf("same representative key: err = %v, want ErrConflict", err)
	}
}

func TestLookup(t *testing.T) {
	tb := newTable(t,
		svcCfg("web", "192.0.2.1:80", RoundRobin, ConnectionUnit, group(2)),
		ServiceConfig{Name: "dns", Rep: ap("192.0.2.1:53"), Proto: ProtoUDP, Type: PacketUnit, Servers: group(2)},
		svcCfg("web6", "[2001:db8::1]:80", RoundRobin, LoginUnit, group6(1)),
	)
	tests := []struct {
		rep    string
		proto  uint8
		want   string
		wantOK bool
	}{
		{"192.0.2.1:80", ProtoTCP, "web", true},
		{"192.0.2.1:80", ProtoUDP, "", false},
		{"192.0.2.1:53", ProtoUDP, "dns", true},
		{"192.0.2.1:53", ProtoTCP, "", false},
		{"192.0.2.2:80", ProtoTCP, "", false},
		{"[2001:db8::1]:80", ProtoTCP, "web6", true},
		{"[::ffff:192.0.2.1]:80", ProtoTCP, "web", true}, // IPv4-mapped is the same key
	}
	for _, tt := range tests {
		a := ap(tt.rep)
		id, ok := tb.Lookup(a.Addr().As16(), a.Port(), tt.proto)
		if ok != tt.wantOK {
			t.Errorf("Lookup(%s/%d) ok = %v", tt.rep, tt.proto, ok)
			continue
		}
		if id2, ok2 := tb.LookupAddrPort(a, tt.proto); id2 != id || ok2 != ok {
			t.Errorf("LookupAddrPort(%s) = %d,%v want %d,%v", tt.rep, id2, ok2, id, ok)
		}
		if ok {
			if want, _ := tb.ID(tt.want); want != id {
				t.Errorf("Lookup(%s/%d) = %d, want %s (%d)", tt.rep, tt.proto, id, tt.want, want)
			}
		}
	}
}

// LookupAddr answers for a representative address as a whole (ICMP echo):
// the first service there with a server up, else the first one.
func TestLookupAddr(t *testing.T) {
	down := group(1)
	down[0].Up = false
	tb := newTable(t,
		svcCfg("dead", "192.0.2.1:99", RoundRobin, ConnectionUnit, down),
		svcCfg("web", "192.0.2.1:80", RoundRobin, ConnectionUnit, group(2)),
		ServiceConfig{Name: "dns", Rep: ap("192.0.2.1:53"), Proto: ProtoUDP, Type: PacketUnit, Servers: group(2)},
		svcCfg("other", "192.0.2.2:80", RoundRobin, ConnectionUnit, down),
	)
	lookup := func(addr string) string {
		t.Helper()
		id, ok := tb.LookupAddr(netip.MustParseAddr(addr).As16())
		if !ok {
			return ""
		}
		name, _, _ := tb.Labels(id)
		return name
	}
	check := func(when string, want map[string]string) {
		t.Helper()
		for addr, w := range want {
			if got := lookup(addr); got != w {
				t.Errorf("%s: LookupAddr(%s) = %q, want %q", when, addr, got, w)
			}
		}
	}
	check("start", map[string]string{"192.0.2.1": "web", "::ffff:192.0.2.1": "web", "192.0.2.2": "other", "192.0.2.3": ""})
	if err := tb.SetServerState("web", group(2)[0].Addr, false); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetServerState("web", group(2)[1].Addr, false); err != nil {
		t.Fatal(err)
	}
	check("web down", map[string]string{"192.0.2.1": "dns"})
	if err := tb.SetServerHealth("dead", down[0].Addr, true); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetServerState("dead", down[0].Addr, true); err != nil {
		t.Fatal(err)
	}
	check("dead up", map[string]string{"192.0.2.1": "dead"})
	for _, n := range []string{"dead", "dns"} {
		if err := tb.Delete(n); err != nil {
			t.Fatal(err)
		}
	}
	check("dead and dns deleted", map[string]string{"192.0.2.1": "web", "192.0.2.2": "other"})
	if _, err := tb.Put(svcCfg("web2", "192.0.2.3:8080", RoundRobin, LoginUnit, group(1))); err != nil {
		t.Fatal(err)
	}
	check("web2 added", map[string]string{"192.0.2.3": "web2"})
	rep := netip.MustParseAddr("192.0.2.1").As16()
	if a := testing.AllocsPerRun(1000, func() { tb.LookupAddr(rep) }); a != 0 {
		t.Errorf("LookupAddr allocs = %v", a)
	}
}

func TestPolicies(t *testing.T) {
	t.Run("rr even within 1", func(t *testing.T) {
		for _, n := range []int{1, 2, 3, 7} {
			tb := newTable(t, svcCfg("s", "192.0.2.1:80", RoundRobin, 0, group(n)))
			c := counts(t, tb, 0, n, 100)
			lo, hi := 100, 0
			for _, x := range c {
				lo, hi = min(lo, x), max(hi, x)
			}
			if hi-lo > 1 {
				t.Errorf("%d servers: counts %v differ by more than 1", n, c)
			}
		}
	})
	t.Run("wrr exact per cycle", func(t *testing.T) {
		tests := []struct {
			w   []int
			seq []int // one cycle
		}{
			{[]int{5, 1, 1}, []int{0, 0, 1, 0, 2, 0, 0}}, // nginx's example: a a b a c a a
			{[]int{2, 2}, []int{0, 1}},                   // reduced by the gcd
			{[]int{3, 1}, []int{0, 0, 1, 0}},
			{[]int{1, 256, 3}, nil},
		}
		for _, tt := range tests {
			tb := newTable(t, svcCfg("s", "192.0.2.1:80", WeightedRoundRobin, 0, group(len(tt.w), tt.w...)))
			g := 0
			sum := 0
			for _, w := range tt.w {
				g = gcd(g, w)
				sum += w
			}
			cycle := sum / g
			var seq []int
			c := make([]int, len(tt.w))
			for range 3 * cycle {
				_, i, ok := tb.Pick(0)
				if !ok {
					t.Fatal("no server")
				}
				c[i]++
				if len(seq) < cycle {
					seq = append(seq, i)
				}
			}
			for i, w := range tt.w {
				if c[i] != 3*w/g {
					t.Errorf("weights %v: counts %v over 3 cycles", tt.w, c)
					break
				}
			}
			if tt.seq != nil {
				if d := cmp.Diff(tt.seq, seq); d != "" {
					t.Errorf("weights %v: cycle (-want +got):\n%s", tt.w, d)
				}
			}
		}
	})
	t.Run("lc", func(t *testing.T) {
		tb := newTable(t, svcCfg("s", "192.0.2.1:80", LeastConn, 0, group(3)))
		for range 3 {
			tb.Acquire(0, 0)
		}
		tb.Acquire(0, 1)
		// 3,1,0: five more flows fill servers 1 and 2 up to 3 each, never 0.
		got := make([]int, 0, 5)
		for range 5 {
			_, i, _ := tb.Pick(0)
			tb.Acquire(0, i)
			got = append(got, i)
		}
		conns := []int64{}
		for _, s := range tb.Status()[0].Servers {
			conns = append(conns, s.Conns)
		}
		if d := cmp.Diff([]int64{3, 3, 3}, conns); d != "" {
			t.Errorf("conns after 5 least-conn picks (-want +got):\n%s (picks %v)", d, got)
		}
		if got[0] != 2 {
			t.Errorf("first pick = %d, want the idle server 2", got[0])
		}
		// Releases make server 0 the least loaded.
		tb.Release(0, 0)
		tb.Release(0, 0)
		if _, i, _ := tb.Pick(0); i != 0 {
			t.Errorf("after releases pick = %d, want 0", i)
		}
		// Release never goes negative.
		for range 10 {
			tb.Release(0, 1)
		}
		if c := tb.Status()[0].Servers[1].Conns; c != 0 {
			t.Errorf("conns after extra releases = %d, want 0", c)
		}
	})
	t.Run("lc weighted", func(t *testing.T) {
		tb := newTable(t, svcCfg("s", "192.0.2.1:80", LeastConn, 0, group(2, 3, 1)))
		c := make([]int, 2)
		for range 40 {
			_, i, _ := tb.Pick(0)
			tb.Acquire(0, i)
			c[i]++
		}
		if d := cmp.Diff([]int{30, 10}, c); d != "" {
			t.Errorf("weighted least-conn 3:1 (-want +got):\n%s", d)
		}
	})
	t.Run("fastest", func(t *testing.T) {
		tb := newTable(t, svcCfg("s", "192.0.2.1:80", FastestResponse, 0, group(3)))
		tb.ObserveRTT(0, 0, 5*time.Millisecond)
		tb.ObserveRTT(0, 1, 2*time.Millisecond)
		// 2 has no sample: measured servers first.
		if d := cmp.Diff([]int{0, 20, 0}, counts(t, tb, 0, 3, 20)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
		// EWMA: 1 gets slower samples until 0 is faster.
		for range 20 {
			tb.ObserveRTT(0, 1, 20*time.Millisecond)
		}
		if _, i, _ := tb.Pick(0); i != 0 {
			t.Errorf("after slow samples pick = %d, want 0", i)
		}
		tb.ObserveRTT(0, 2, time.Microsecond)
		if _, i, _ := tb.Pick(0); i != 2 {
			t.Errorf("pick = %d, want 2 (1µs)", i)
		}
	})
	t.Run("cpu", func(t *testing.T) {
		tb := newTable(t, svcCfg("s", "192.0.2.1:80", CPULoad, 0, group(3)))
		// No reports: all equal, rotation spreads.
		if d := cmp.Diff([]int{3, 3, 3}, counts(t, tb, 0, 3, 9)); d != "" {
			t.Errorf("no reports (-want +got):\n%s", d)
		}
		tb.ObserveLoad(0, 0, 80)
		tb.ObserveLoad(0, 1, 37.5)
		if d := cmp.Diff([]int{0, 10, 0}, counts(t, tb, 0, 3, 10)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
		tb.ObserveLoad(0, 2, 12)
		tb.ObserveLoad(0, 1, -1) // agent lost: unknown goes last
		if d := cmp.Diff([]int{0, 0, 10}, counts(t, tb, 0, 3, 10)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
		if l := tb.Status()[0].Servers[1].Load; l != -1 {
			t.Errorf("unknown load reported as %v", l)
		}
	})
}

func TestDownSkippedAndAllDown(t *testing.T) {
	for p := range NumPolicies {
		t.Run(p.String(), func(t *testing.T) {
			tb := newTable(t, svcCfg("s", "192.0.2.1:80", p, 0, group(3, 1, 2, 3)))
			srv := tb.Services()[0].Servers
			if err := tb.SetServerState("s", srv[1].Addr, false); err != nil {
				t.Fatal(err)
			}
			if err := tb.SetServerHealth("s", srv[2].Addr, false); err != nil {
				t.Fatal(err)
			}
			for range 20 {
				a, i, ok := tb.Pick(0)
				if !ok || i != 0 || a != srv[0].Addr {
					t.Fatalf("pick = %v,%d,%v; want only server 0", a, i, ok)
				}
			}
			if err := tb.SetServerState("s", srv[0].Addr, false); err != nil {
				t.Fatal(err)
			}
			if _, i, ok := tb.Pick(0); ok || i != -1 {
				t.Fatalf("all down: pick = %d,%v", i, ok)
			}
			// Health back on 2 (admin still up): it serves again.
			tb.SetServerHealth("s", srv[2].Addr, true)
			if _, i, ok := tb.Pick(0); !ok || i != 2 {
				t.Fatalf("pick = %d,%v want 2", i, ok)
			}
		})
	}
}

func TestControl(t *testing.T) {
	tb := newTable(t, svcCfg("a", "192.0.2.1:80", RoundRobin, LoginUnit, group(2)))
	s0 := tb.Services()[0].Servers[0].Addr
	if err := tb.SetPolicy("a", LeastConn); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetWeight("a", s0, 7); err != nil {
		t.Fatal(err)
	}
	errs := []error{
		tb.SetPolicy("nope", RoundRobin),
		tb.SetPolicy("a", NumPolicies),
		tb.SetServerState("a", ap("10.9.9.9:80"), false),
		tb.SetWeight("a", s0, 0),
		tb.Delete("nope"),
	}
	for i, want := range []error{ErrNoService, ErrBadPolicy, ErrNoServer, ErrBadConfig, ErrNoService} {
		if !errors.Is(errs[i], want) {
			t.Errorf("error %d = %v, want %v", i, errs[i], want)
		}
	}
	want := []ServiceConfig{{Name: "a", Rep: ap("192.0.2.1:80"), Proto: ProtoTCP, Type: LoginUnit, Policy: LeastConn,
		Servers: []Server{{Addr: s0, Weight: 7, Up: true}, {Addr: ap("10.1.0.2:80"), Weight: 1, Up: true}}}}
	if d := cmp.Diff(want, tb.Services(), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Errorf("Services (-want +got):\n%s", d)
	}

	// Put b, delete a, put c: c reuses a's index with a new generation.
	idb, err := tb.Put(svcCfg("b", "192.0.2.2:80", RoundRobin, 0, group(1)))
	if err != nil || idb != 1 {
		t.Fatalf("put b = %d, %v", idb, err)
	}
	gen := tb.load(0).gen
	if err := tb.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.LookupAddrPort(ap("192.0.2.1:80"), ProtoTCP); ok {
		t.Error("deleted service still found")
	}
	idc, err := tb.Put(svcCfg("c", "192.0.2.3:80", RoundRobin, 0, group(1)))
	if err != nil || idc != 0 || tb.load(0).gen == gen {
		t.Fatalf("put c = %d, %v (gen %d, was %d)", idc, err, tb.load(0).gen, gen)
	}
	// Replacing b keeps its index and carries run-time state by address.
	tb.Acquire(idb, 0)
	tb.ObserveRTT(idb, 0, time.Millisecond)
	if id, err := tb.Put(svcCfg("b", "192.0.2.2:80", WeightedRoundRobin, 0, []Server{{Addr: ap("10.7.0.1:80"), Up: true}, group(1)[0]})); err != nil || id != idb {
		t.Fatalf("replace b = %d, %v", id, err)
	}
	st := tb.Status()[1]
	if st.Name != "b" || st.Servers[1].Conns != 1 || st.Servers[1].RTT != time.Millisecond || st.Servers[0].Conns != 0 {
		t.Errorf("state not carried over by address: %+v", st)
	}
	if _, err := tb.Put(svcCfg("d", "192.0.2.2:80", RoundRobin, 0, group(1))); !errors.Is(err, ErrConflict) {
		t.Errorf("conflicting put err = %v", err)
	}
}

func TestChoicesCounted(t *testing.T) {
	tb := newTable(t,
		svcCfg("a", "192.0.2.1:80", RoundRobin, 0, group(2)),
		svcCfg("b", "192.0.2.2:80", CPULoad, 0, group(2)))
	counts(t, tb, 0, 2, 5)
	counts(t, tb, 1, 2, 3)
	want := [NumPolicies]uint64{RoundRobin: 5, CPULoad: 3}
	if tb.Choices() != want {
		t.Errorf("Choices = %v, want %v", tb.Choices(), want)
	}
	if p := tb.Status()[0].Servers[0].Picks + tb.Status()[0].Servers[1].Picks; p != 5 {
		t.Errorf("per-server picks sum %d, want 5", p)
	}
}

// TestConcurrentControl runs the owner's picks against run-time changes
// from another goroutine; run with -race.
func TestConcurrentControl(t *testing.T) {
	tb := newTable(t, svcCfg("s", "192.0.2.1:80", RoundRobin, LoginUnit, group(4, 1, 2, 3, 4)))
	d, err := NewDist(tb, 64)
	if err != nil {
		t.Fatal(err)
	}
	srv := tb.Services()[0].Servers
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tb.SetPolicy("s", Policy(i%int(NumPolicies)))
			tb.SetServerState("s", srv[i%4].Addr, i%3 != 0)
			tb.SetServerHealth("s", srv[(i+1)%4].Addr, i%5 != 0)
			tb.SetWeight("s", srv[i%4].Addr, 1+i%9)
			tb.ObserveRTT(0, i%4, time.Duration(i%7)*time.Millisecond)
			tb.ObserveLoad(0, i%4, float64(i%100))
			_ = tb.Status()
			_ = d.Snapshot()
			_ = d.Stats()
		}
	})
	for i := range 20000 {
		if _, idx, ok := tb.Pick(0); ok {
			tb.Acquire(0, idx)
			tb.Release(0, idx)
		}
		sess := uint64(i % 16)
		if idx, ok := d.Decide(sess, 0, FlowStart); ok {
			d.FlowEnd(sess, 0, idx)
		}
		if i%50 == 0 {
			d.EndSession(sess)
		}
	}
	close(stop)
	wg.Wait()
}

func TestZeroAllocs(t *testing.T) {
	tb := newTable(t,
		svcCfg("rr", "192.0.2.1:80", RoundRobin, LoginUnit, group(4)),
		svcCfg("wrr", "192.0.2.2:80", WeightedRoundRobin, ServiceUnit, group(4, 1, 2, 3, 4)),
		svcCfg("lc", "192.0.2.3:80", LeastConn, ConnectionUnit, group(4)),
		svcCfg("fast", "192.0.2.4:80", FastestResponse, PacketUnit, group(4)),
		svcCfg("cpu", "[2001:db8::4]:80", CPULoad, ServiceUnit, group6(4)))
	d, err := NewDist(tb, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rep := ap("192.0.2.3:80").Addr().As16()
	if a := testing.AllocsPerRun(1000, func() { tb.Lookup(rep, 80, ProtoTCP) }); a != 0 {
		t.Errorf("Lookup allocs = %v", a)
	}
	for id := range uint32(5) {
		t.Run(fmt.Sprint(id), func(t *testing.T) {
			if a := testing.AllocsPerRun(1000, func() {
				_, i, _ := tb.Pick(id)
				tb.Acquire(id, i)
				tb.Release(id, i)
			}); a != 0 {
				t.Errorf("Pick allocs = %v", a)
			}
			var sess uint64
			if a := testing.AllocsPerRun(1000, func() {
				sess++
				i, _ := d.Decide(sess%300, id, FlowStart)
				d.Decide(sess%300, id, UpPacket)
				d.Down(sess%300, id)
				d.FlowEnd(sess%300, id, i)
				if sess%7 == 0 {
					d.EndSession(sess % 300)
				}
			}); a != 0 {
				t.Errorf("Decide allocs = %v", a)
			}
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	var svcs []ServiceConfig
	for i := range 64 {
		svcs = append(svcs, svcCfg(fmt.Sprint(i), fmt.Sprintf("192.0.2.%d:80", i+1), RoundRobin, 0, group(4)))
	}
	tb := newTable(b, svcs...)
	rep := ap("192.0.2.17:80").Addr().As16()
	b.ReportAllocs()
	for b.Loop() {
		tb.Lookup(rep, 80, ProtoTCP)
	}
}

func BenchmarkPick(b *testing.B) {
	for p := range NumPolicies {
		b.Run(p.String(), func(b *testing.B) {
			tb := newTable(b, svcCfg("s", "192.0.2.1:80", p, 0, group(8, 1, 2, 3, 4, 5, 6, 7, 8)))
			b.ReportAllocs()
			for b.Loop() {
				tb.Pick(0)
			}
		})
	}
}
