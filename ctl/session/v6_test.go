package session

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
)

// v6Env is an env whose gw1 also has the IPv6 prefix pool
// 2001:db8:50::/56 (a /64 per mobile); asked records the addresses the
// manager asked Substitutes about.
type v6Env struct {
	*env
	mu    sync.Mutex
	asked []netip.Addr
}

func newV6Env(t *testing.T) *v6Env {
	t.Helper()
	ve := &v6Env{}
	e := &env{t: t, dir: t.TempDir(), clk: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, gw: &fakeGW{}}
	e.srv = httptest.NewServer(e.gw)
	t.Cleanup(e.srv.Close)
	e.subs = func(ip netip.Addr) []string {
		ve.mu.Lock()
		ve.asked = append(ve.asked, ip)
		ve.mu.Unlock()
		return nil
	}
	ve.env = e
	e.open()
	if _, err := e.pool.PutGateway(aaa.GatewayConfig{Name: "gw1", Range: "10.50.0.0/24", Range6: "2001:db8:50::/56", API: e.srv.URL}); err != nil {
		t.Fatal(err)
	}
	return ve
}

func (e *env) acct6(r *aaa.AcctRequest) {
	e.t.Helper()
	r.NAS = "nas1"
	seq, err := e.m.Account(r)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.Wait(context.Background(), seq); err != nil {
		e.t.Fatal(err)
	}
}

// TestDualStackSession: a Start naming both addresses (Framed-IP-Address
// and Framed-IPv6-Prefix) makes one T3 row holding both; its events name
// both (IP, IP6), substitutes are asked for both; both stay across a
// restart and both go back to the pool when the session ends.
func TestDualStackSession(t *testing.T) {
	e := newV6Env(t)
	g, _, err := e.pool.AssignFamily("dev1", "u1", aaa.FamilyDual)
	if err != nil {
		t.Fatal(err)
	}
	e.acct6(&aaa.AcctRequest{Status: start, SessionID: "s1", Device: "dev1", User: "u1", IP: g.V4.IP, IP6: g.V6.Prefix()})
	s, ok := e.m.Get("s1")
	if !ok || s.IP != g.V4.IP || s.IP6 != g.V6.Prefix() || s.IP6.Bits() != 64 || s.Gateway != "gw1" {
		t.Fatalf("session %+v, grant %+v", s, g)
	}
	evs := waitFor(t, e.gw, 1)
	if evs[0].IP != "10.50.0.1" || evs[0].IP6 != "2001:db8:50::/64" {
		t.Fatalf("event %+v", evs[0])
	}
	e.mu.Lock()
	asked := append([]netip.Addr(nil), e.asked...)
	e.mu.Unlock()
	if !containsAddr(asked, g.V4.IP) || !containsAddr(asked, g.V6.IP) {
		t.Fatalf("substitutes asked for %v", asked)
	}
	if b := e.pool.DeviceGrant("dev1"); !b.V4.Bound || !b.V6.Bound || b.V6.Session != "s1" {
		t.Fatalf("bindings %+v", b)
	}
	e.stop()
	e.open()
	s2, ok := e.m.Get("s1")
	if !ok || s2.IP6 != s.IP6 || s2.Gen6 != s.Gen6 || s2.IP != s.IP {
		t.Fatalf("after restart %+v, before %+v", s2, s)
	}
	e.acct6(&aaa.AcctRequest{Status: stop, SessionID: "s1", Device: "dev1", Cause: rfc2866.AcctTerminateCause_Value_UserRequest})
	if st := e.state("s1"); st != None {
		t.Fatalf("state %s after logout", st)
	}
	if b := e.pool.DeviceGrant("dev1"); b.V4.IP.IsValid() || b.V6.IP.IsValid() {
		t.Fatalf("not released: %+v", b)
	}
	if gw, _ := e.pool.Gateway("gw1"); gw.Assigned != 0 || gw.Assigned6 != 0 {
		t.Fatalf("gateway %+v", gw)
	}
}

// TestIPv6OnlySession: a Start naming one address of the delegated /64
// (Framed-IPv6-Address) binds the /64; a Start naming no address takes
// the device's assignments, both families.
func TestIPv6OnlySession(t *testing.T) {
	e := newV6Env(t)
	g, _, err := e.pool.AssignFamily("dev6", "u6", aaa.FamilyIPv6)
	if err != nil {
		t.Fatal(err)
	}
	host := netip.MustParsePrefix("2001:db8:50::1234/128")
	e.acct6(&aaa.AcctRequest{Status: start, SessionID: "s6", Device: "dev6", IP6: host})
	s, ok := e.m.Get("s6")
	if !ok || s.IP != g.V6.IP || s.IP6 != g.V6.Prefix() || s.User != "u6" {
		t.Fatalf("session %+v, grant %+v", s, g)
	}
	if ev := waitFor(t, e.gw, 1)[0]; ev.IP != "2001:db8:50::" || ev.IP6 != "2001:db8:50::/64" {
		t.Fatalf("event %+v", ev)
	}
	gd, _, err := e.pool.AssignFamily("devd", "ud", aaa.FamilyDual)
	if err != nil {
		t.Fatal(err)
	}
	e.acct6(&aaa.AcctRequest{Status: start, SessionID: "sd", Device: "devd"})
	if s, _ := e.m.Get("sd"); s.IP != gd.V4.IP || s.IP6 != gd.V6.Prefix() {
		t.Fatalf("session without addresses %+v, grant %+v", s, gd)
	}
	// Another device's Start in dev6's prefix is refused, counted.
	e.acct6(&aaa.AcctRequest{Status: start, SessionID: "sx", Device: "other", IP6: netip.MustParsePrefix("2001:db8:50::9/128")})
	if _, ok := e.m.Get("sx"); ok {
		t.Fatal("a Start in another device's prefix made a session")
	}
	if c := e.m.Counters(); c.Other["start_bind_conflict"] != 1 {
		t.Fatalf("counters %+v", c.Other)
	}
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}
