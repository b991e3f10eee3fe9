package aaa

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"layeh.com/radius/rfc2866"

	"samepath/ctl/store"
)

// TestRadclientIPv6Logins: a v6-only user gets a /64 (Framed-IPv6-Prefix)
// or an address (Framed-IPv6-Address) as its gateway's pool says, from
// the least-loaded gateway with an IPv6 pool; a dual-stack user gets one
// of each from one gateway; a re-login keeps both; a hint in the request
// picks the family for a user without a stack.
func TestRadclientIPv6Logins(t *testing.T) {
	ts := startServer(t, nil)
	for _, g := range []GatewayConfig{
		{Name: "gw1", Range: "10.20.1.0/24", Range6: "2001:db8:1::/108", Framed6: Framed6Address},
		{Name: "gw2", Range: "10.20.2.0/24", Range6: "2001:db8:2::/48"},
		{Name: "gw3", Range: "10.20.3.0/24"}, // no IPv6
	} {
		if _, err := ts.pool.PutGateway(g); err != nil {
			t.Fatal(err)
		}
	}
	// gw1 (first by name) carries one IPv6 address: the first v6-only login goes to gw2.
	if _, _, err := ts.pool.AssignFamily("busy1", "", FamilyIPv6); err != nil {
		t.Fatal(err)
	}
	for _, u := range []User{
		{ID: "six", Password: "pw", Stack: "ipv6"},
		{ID: "dual", Password: "pw", Stack: "dual"},
		{ID: "hint", Password: "pw"},
	} {
		if _, err := ts.users.Put(u); err != nil {
			t.Fatal(err)
		}
	}
	ma := ",Message-Authenticator=0x00"
	for _, tc := range []struct {
		name, attrs string
		want, not   []string
	}{
		{"v6-only prefix", "User-Name=six,User-Password=pw,Calling-Station-Id=dev-6" + ma,
			[]string{"Received Access-Accept", "Framed-IPv6-Prefix = 2001:db8:2::/64"}, []string{"Framed-IP-Address"}},
		{"v6-only keeps its prefix", "User-Name=six,User-Password=pw,Calling-Station-Id=dev-6" + ma,
			[]string{"Received Access-Accept", "Framed-IPv6-Prefix = 2001:db8:2::/64"}, []string{"Framed-IP-Address"}},
		// gw1 and gw2 carry one IPv6 each and no IPv4 (gw3 has no IPv6 pool): the tie goes to gw1.
		{"dual-stack from one gateway", "User-Name=dual,User-Password=pw,Calling-Station-Id=dev-d" + ma,
			[]string{"Received Access-Accept", "Framed-IP-Address = 10.20.1.1", "Framed-IPv6-Address = 2001:db8:1::2"}, []string{"Framed-IPv6-Prefix"}},
		{"dual-stack keeps both", "User-Name=dual,User-Password=pw,Calling-Station-Id=dev-d" + ma,
			[]string{"Framed-IP-Address = 10.20.1.1", "Framed-IPv6-Address = 2001:db8:1::2"}, nil},
		// IPv6 now: gw1 two, gw2 one.
		{"hinted ipv6", "User-Name=hint,User-Password=pw,Calling-Station-Id=dev-h,Framed-IPv6-Prefix=::/64" + ma,
			[]string{"Received Access-Accept", "Framed-IPv6-Prefix = 2001:db8:2:1::/64"}, []string{"Framed-IP-Address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := radclient(t, ts.srv.AuthAddr(), "auth", tc.attrs)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, "\t"+w) || strings.Contains(out, " "+w+" =") {
					t.Fatalf("output has %q:\n%s", w, out)
				}
			}
		})
	}
	g := ts.pool.DeviceGrant("dev-d")
	if g.V4.Gateway != "gw1" || g.V6.Gateway != "gw1" || g.V6.Bits != 128 {
		t.Fatalf("dual-stack grant %+v", g)
	}
}

// TestRadclientAccountingIPv6: Framed-IPv6-Prefix and Framed-IPv6-Address
// in an Accounting-Request reach the session manager.
func TestRadclientAccountingIPv6(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct{ attrs, want4, want6 string }{
		{"Framed-IPv6-Prefix=2001:db8:1:1::/64", "invalid IP", "2001:db8:1:1::/64"},
		{"Framed-IPv6-Address=2001:db8:2::2,Framed-IP-Address=10.20.2.1", "10.20.2.1", "2001:db8:2::2/128"},
	} {
		n := len(ts.acct.list())
		out := radclient(t, ts.srv.AcctAddr(), "acct", "Acct-Status-Type=Start,Acct-Session-Id=s1,Calling-Station-Id=dev-a,"+tc.attrs)
		if !strings.Contains(out, "Received Accounting-Response") {
			t.Fatalf("no Accounting-Response:\n%s", out)
		}
		reqs := ts.acct.list()
		if len(reqs) != n+1 {
			t.Fatalf("%d accounting requests recorded", len(reqs))
		}
		r := reqs[n]
		if r.Status != rfc2866.AcctStatusType_Value_Start || r.IP.String() != tc.want4 || r.IP6.String() != tc.want6 {
			t.Fatalf("%s: recorded ip %s ip6 %s", tc.attrs, r.IP, r.IP6)
		}
	}
}

func TestValidateGatewayIPv6(t *testing.T) {
	for _, tc := range []struct {
		c    GatewayConfig
		want string // error text, "" for none
	}{
		{GatewayConfig{Name: "g", Range6: "2001:db8::/48"}, ""},
		{GatewayConfig{Name: "g", Range6: "2001:db8::/44"}, ""},
		{GatewayConfig{Name: "g", Range6: "2001:db8::/43"}, "more than 2^20"},
		{GatewayConfig{Name: "g", Range6: "2001:db8::/65"}, "longer than the /64"},
		{GatewayConfig{Name: "g", Range6: "2001:db8::/107", Framed6: Framed6Address}, "more than 2^20"},
		{GatewayConfig{Name: "g", Range6: "2001:db8::/120", Framed6: "slaac"}, "framed6"},
		{GatewayConfig{Name: "g", Range6: "10.0.0.0/24"}, "not an IPv6 prefix"},
		{GatewayConfig{Name: "g", Range: "2001:db8::/64"}, "IPv6 goes in range6"},
		{GatewayConfig{Name: "g"}, "no range"},
	} {
		err := ValidateGateway(&tc.c)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.c, err)
			} else if tc.c.Framed6 != Framed6Prefix {
				t.Errorf("%+v: framed6 default not prefix", tc.c)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.c, err, tc.want)
		}
	}
}

// TestAssignFamilyFIG5: per family, the least-loaded eligible gateway
// with a pool of that family gives it; health takes a gateway out; a
// device keeps its addresses and gets a missing family from the gateway
// it already uses, or is refused when that one has none.
func TestAssignFamilyFIG5(t *testing.T) {
	st := newTestStore(t, t.TempDir())
	pl := NewPool(st, time.Now, time.Minute)
	for _, g := range []GatewayConfig{
		{Name: "gw1", Range: "10.1.0.0/24", Range6: "2001:db8:1::/56"},
		{Name: "gw2", Range: "10.2.0.0/24", Range6: "2001:db8:2::/56"},
		{Name: "gw4", Range: "10.4.0.0/24"},
	} {
		if _, err := pl.PutGateway(g); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[netip.Addr]bool{}
	for i := range 100 {
		g, _, err := pl.AssignFamily(fmt.Sprintf("d%d", i), "", FamilyIPv6)
		if err != nil {
			t.Fatal(err)
		}
		if g.V4.IP.IsValid() || g.V6.Bits != 64 || seen[g.V6.IP] {
			t.Fatalf("grant %+v", g)
		}
		seen[g.V6.IP] = true
	}
	gws := map[string]Gateway{}
	for _, g := range pl.Gateways() {
		gws[g.Name] = g
	}
	if gws["gw1"].Assigned6 != 50 || gws["gw2"].Assigned6 != 50 || gws["gw4"].Assigned6 != 0 || gws["gw1"].Size6 != 256 {
		t.Fatalf("gateways %+v", gws)
	}
	pl.SetHealth("gw1", HealthDown)
	g, _, err := pl.AssignFamily("dual", "u", FamilyDual)
	if err != nil || g.V4.Gateway != "gw2" || g.V6.Gateway != "gw2" {
		t.Fatalf("dual with gw1 down: %+v %v", g, err)
	}
	// The device keeps both, and a v6-only login of it keeps its prefix.
	g2, _, err := pl.AssignFamily("dual", "u", FamilyIPv6)
	if err != nil || g2.V6.IP != g.V6.IP || g2.V4.IP.IsValid() {
		t.Fatalf("relogin v6: %+v %v", g2, err)
	}
	// A device on gw4 (no IPv6) asking for IPv6 too is refused, keeping its IPv4.
	pl.SetHealth("gw2", HealthDown)
	g4, _, err := pl.AssignFamily("old", "", FamilyIPv4)
	if err != nil || g4.V4.Gateway != "gw4" {
		t.Fatalf("v4 on gw4: %+v %v", g4, err)
	}
	if _, _, err := pl.AssignFamily("old", "", FamilyDual); !errors.Is(err, ErrFamily) {
		t.Fatalf("dual on a v4-only gateway: %v", err)
	}
	if _, _, err := pl.AssignFamily("new6", "", FamilyIPv6); !errors.Is(err, ErrNoHealthyGateway) {
		t.Fatalf("v6 with every v6 gateway down: %v", err)
	}
	if c := pl.Counters(); c.RejectFamily != 1 || c.Assigned6 != 101 {
		t.Fatalf("counters %+v", c)
	}
}

// TestIPv6BindReleaseRestart: a Start naming any address of a delegated
// /64 binds the /64; the assignments survive a restart; a release frees.
func TestIPv6BindReleaseRestart(t *testing.T) {
	dir := t.TempDir()
	st := newTestStore(t, dir)
	pl := NewPool(st, time.Now, time.Minute)
	if _, err := pl.PutGateway(GatewayConfig{Name: "gw1", Range: "10.1.0.0/24", Range6: "2001:db8:1::/56"}); err != nil {
		t.Fatal(err)
	}
	g, _, err := pl.AssignFamily("d", "u", FamilyDual)
	if err != nil {
		t.Fatal(err)
	}
	inPrefix := netip.MustParseAddr("2001:db8:1:1:aaaa:bbbb:cccc:dddd")
	inPrefix = netip.MustParseAddr("2001:db8:1:0:aaaa:bbbb:cccc:dddd")
	if g.V6.Prefix() != netip.MustParsePrefix("2001:db8:1::/64") {
		t.Fatalf("prefix %s", g.V6.Prefix())
	}
	a, ops, err := pl.Bind(inPrefix, "d", "u", "s1")
	if err != nil || a.IP != g.V6.IP || !a.Bound {
		t.Fatalf("bind %+v %v", a, err)
	}
	if _, _, err := pl.Bind(inPrefix, "other", "", "s2"); !errors.Is(err, ErrAddressConflict) {
		t.Fatalf("other device: %v", err)
	}
	seq := st.Enqueue(ops, nil, nil)
	if err := st.Wait(t.Context(), seq); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st2 := newTestStore(t, dir)
	pl2 := NewPool(st2, time.Now, time.Minute)
	if err := pl2.Load(st2); err != nil {
		t.Fatal(err)
	}
	g2 := pl2.DeviceGrant("d")
	if g2.V4.IP != g.V4.IP || g2.V6.IP != g.V6.IP || g2.V6.Bits != 64 || !g2.V6.Bound {
		t.Fatalf("after restart %+v, before %+v", g2, g)
	}
	if ops := pl2.Release(g.V6.IP, "d", "s1", a.Gen); len(ops) != 1 {
		t.Fatalf("release: %v", ops)
	}
	if gw, _ := pl2.Gateway("gw1"); gw.Assigned6 != 0 || gw.Assigned != 1 {
		t.Fatalf("after release %+v", gw)
	}
}

// TestLoadMigratesOldRecords: a store written before IPv6 (gateway rows
// without range6, assignments without bits) loads unchanged; an IPv6
// assignment written by address in what is now a prefix pool is re-keyed
// to its /64.
func TestLoadMigratesOldRecords(t *testing.T) {
	dir := t.TempDir()
	st := newTestStore(t, dir)
	old := []store.Op{
		store.Put(store.BucketGateways, []byte("gw1"), []byte(`{"name":"gw1","range":"10.1.0.0/24","admin":"up"}`)),
		store.Put(store.BucketAssign, netip.MustParseAddr("10.1.0.7").AsSlice(), []byte(`{"ip":"10.1.0.7","gateway":"gw1","device":"d","bound":true,"session":"s","since":"2026-01-01T00:00:00Z","gen":3}`)),
		store.Put(store.BucketGateways, []byte("gw2"), []byte(`{"name":"gw2","range6":"2001:db8:2::/56"}`)),
		store.Put(store.BucketAssign, netip.MustParseAddr("2001:db8:2:5::9").AsSlice(), []byte(`{"ip":"2001:db8:2:5::9","gateway":"gw2","device":"e","bound":true,"session":"t","since":"2026-01-01T00:00:00Z","gen":1}`)),
	}
	if err := st.Wait(t.Context(), st.Enqueue(old, nil, nil)); err != nil {
		t.Fatal(err)
	}
	pl := NewPool(st, time.Now, time.Minute)
	if err := pl.Load(st); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a, ok := pl.ByDevice("d"); !ok || a.IP.String() != "10.1.0.7" || a.Gen != 3 || a.Prefix().Bits() != 32 {
		t.Fatalf("v4 record %+v %v", a, ok)
	}
	if a := pl.DeviceGrant("e").V6; a.Prefix().String() != "2001:db8:2:5::/64" || !a.Bound {
		t.Fatalf("v6 record %+v", a)
	}
	var keys []string
	st.ForEach(store.BucketAssign, func(k, v []byte) error {
		var a Assignment
		json.Unmarshal(v, &a)
		keys = append(keys, a.Prefix().String())
		return nil
	})
	if strings.Join(keys, " ") != "10.1.0.7/32 2001:db8:2:5::/64" {
		t.Fatalf("stored %v", keys)
	}
}
