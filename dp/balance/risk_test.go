package balance

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func riskTable(t *testing.T, p Policy) (*Table, uint32, []netip.AddrPort) {
	t.Helper()
	srv := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.2:80"), netip.MustParseAddrPort("10.0.0.3:80"),
	}
	c := ServiceConfig{Name: "web", Rep: netip.MustParseAddrPort("192.0.2.1:80"), Proto: ProtoTCP, Type: ConnectionUnit, Policy: p,
		Mode: TerminateMode, Risk: Risk{ReplayBuffer: 4096, HTTP: true, Resume: true}}
	for i, a := range srv {
		c.Servers = append(c.Servers, Server{Addr: a, Weight: i + 1, Up: true})
	}
	tb, err := NewTable([]ServiceConfig{c})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := tb.ID("web")
	return tb, id, srv
}

// PickExcept never returns an excluded or down server, under every
// policy, and says when none is left.
func TestPickExcept(t *testing.T) {
	for p := range NumPolicies {
		t.Run(p.String(), func(t *testing.T) {
			tb, id, srv := riskTable(t, p)
			if r, ok := tb.Risk(id); !ok || r != (Risk{ReplayBuffer: 4096, HTTP: true, Resume: true}) {
				t.Errorf("Risk: %+v %v", r, ok)
			}
			seen := map[netip.AddrPort]int{}
			for range 30 {
				a, i, ok := tb.PickExcept(id, srv[:1])
				if !ok || a == srv[0] || srv[i] != a {
					t.Fatalf("PickExcept(%v) = %v, %d, %v", srv[:1], a, i, ok)
				}
				seen[a]++
			}
			if p == RoundRobin && (seen[srv[1]] == 0 || seen[srv[2]] == 0) {
				t.Errorf("round robin without server 0 chose %v", seen)
			}
			if err := tb.SetServerState("web", srv[1], false); err != nil {
				t.Fatal(err)
			}
			if tb.ServerUp(id, srv[1]) || !tb.ServerUp(id, srv[2]) || tb.ServerUp(id, netip.MustParseAddrPort("10.9.9.9:80")) {
				t.Error("ServerUp disagrees with the states")
			}
			if a, _, ok := tb.PickExcept(id, srv[:1]); !ok || a != srv[2] {
				t.Errorf("with server 1 down: %v %v, want %v", a, ok, srv[2])
			}
			if a, _, ok := tb.PickExcept(id, []netip.AddrPort{srv[0], srv[2]}); ok {
				t.Errorf("every up server excluded: got %v", a)
			}
			if n := testing.AllocsPerRun(100, func() { tb.PickExcept(id, srv[:1]) }); n != 0 {
				t.Errorf("PickExcept allocates %v", n)
			}
		})
	}
}

func TestRiskValidate(t *testing.T) {
	for _, tc := range []struct {
		r    Risk
		want string
	}{
		{Risk{ReplayBuffer: -1}, "risk.replay_buffer"},
		{Risk{ReplayBuffer: MaxReplayBuffer + 1}, "risk.replay_buffer"},
		{Risk{Resume: true}, "risk.resume"},
	} {
		c := ServiceConfig{Name: "web", Rep: netip.MustParseAddrPort("192.0.2.1:80"), Proto: ProtoTCP, Mode: TerminateMode, Risk: tc.r,
			Servers: []Server{{Addr: netip.MustParseAddrPort("10.0.0.1:80"), Up: true}}}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s", tc.r, err, tc.want)
		}
	}
}

// A terminated connection that fails over moves its active-flow count:
// least connections then sees the new server busy and the old one free,
// FlowEnd gives back the new one's, and the T7 record stays the
// session's choice. Packet unit, as FlowEnd, counts nothing.
func TestFlowMove(t *testing.T) {
	tb, id, srv := riskTable(t, LeastConn)
	d, err := NewDist(tb, 8)
	if err != nil {
		t.Fatal(err)
	}
	conns := func() []int64 {
		var c []int64
		for _, s := range tb.Status()[id].Servers {
			c = append(c, s.Conns)
		}
		return c
	}
	first, ok := d.Decide(7, id, FlowStart)
	if !ok {
		t.Fatal("no choice")
	}
	to, ok := tb.ServerIndex(id, srv[(first+1)%3])
	if !ok || to != (first+1)%3 {
		t.Fatalf("ServerIndex(%v) = %d, %v", srv[(first+1)%3], to, ok)
	}
	if i, ok := tb.ServerIndex(id, netip.MustParseAddrPort("10.9.9.9:80")); ok || i != -1 {
		t.Errorf("ServerIndex of an unlisted server: %d, %v", i, ok)
	}
	d.FlowMove(7, id, first, to)
	want := []int64{0, 0, 0}
	want[to] = 1
	if got := conns(); !slices.Equal(got, want) {
		t.Errorf("conns after the move %v, want %v", got, want)
	}
	if r, _ := d.Lookup(7, id); r != first {
		t.Errorf("T7 record %d after the move, want the first choice %d", r, first)
	}
	for range 6 { // least connections avoids the busy server
		if _, i, _ := tb.Pick(id); i == to {
			t.Fatalf("least connections picked the busy server %d (conns %v)", i, conns())
		}
	}
	d.FlowMove(7, id, to, -1) // to a server no longer listed
	d.FlowMove(7, id, -1, to) // and back
	d.FlowEnd(7, id, to)
	if got := conns(); !slices.Equal(got, []int64{0, 0, 0}) {
		t.Errorf("conns after the end %v, want none", got)
	}
	if n := testing.AllocsPerRun(100, func() { d.FlowMove(7, id, 0, 1); d.FlowMove(7, id, 1, 0) }); n != 0 {
		t.Errorf("FlowMove allocates %v", n)
	}
}

// ServerServing is true for a draining server (its flows run on) and
// false for one in maint, unhealthy or not listed; ServerUp is false for
// all of them.
func TestServerServing(t *testing.T) {
	tb, id, srv := riskTable(t, RoundRobin)
	if _, err := tb.SetAdmin("web", srv[0], AdminDrain); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.SetAdmin("web", srv[1], AdminMaint); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetServerHealth("web", srv[2], false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a           netip.AddrPort
		serving, up bool
	}{
		{srv[0], true, false}, {srv[1], false, false}, {srv[2], false, false},
		{netip.MustParseAddrPort("10.9.9.9:80"), false, false},
	} {
		if got := tb.ServerServing(id, tc.a); got != tc.serving {
			t.Errorf("ServerServing(%v) = %v, want %v", tc.a, got, tc.serving)
		}
		if got := tb.ServerUp(id, tc.a); got != tc.up {
			t.Errorf("ServerUp(%v) = %v, want %v", tc.a, got, tc.up)
		}
	}
	if err := tb.SetServerHealth("web", srv[2], true); err != nil {
		t.Fatal(err)
	}
	if !tb.ServerServing(id, srv[2]) {
		t.Errorf("ServerServing(%v) false once healthy again", srv[2])
	}
}
