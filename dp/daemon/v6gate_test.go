package daemon

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
)

func (r *gwRig) event6(kind, id, ip, ip6 string, seq uint64) error {
	r.t.Helper()
	ev := api.SessionEvent{Event: kind, SessionID: id, DeviceID: "IMEI-1", IP: ip, IP6: ip6, Seq: seq}
	err := r.c.SessionEvent(context.Background(), ev)
	r.w.Poll()
	return err
}

// TestGWSessionIPv6Gates (issue 15): a dual-stack session's T3 copy
// opens the gate for its IPv4 address and every address of its IPv6
// /64; an IPv6-only one for its /64 (or its one address); an end or a
// move closes every gate of it; a malformed ip6 is refused.
func TestGWSessionIPv6Gates(t *testing.T) {
	r := newGWRigAddrs(t, netip.MustParseAddr("2001:db8:20::101"))
	v4 := netip.MustParseAddr("10.101.0.5")
	in64 := netip.MustParseAddr("2001:db8:101:1:1234:5678:9abc:def0")
	other64 := netip.MustParseAddr("2001:db8:101:2::1")
	if err := r.event6(api.EventStart, "dual", v4.String(), "2001:db8:101:1::/64", 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src  netip.Addr
		want string
	}{
		{v4, "forwarded"},
		{in64, "forwarded"},
		{netip.MustParseAddr("2001:db8:101:1::"), "forwarded"},
		{other64, "no_session"},
		{netip.MustParseAddr("10.101.0.6"), "no_session"},
	} {
		if got := r.up(tc.src); got != tc.want {
			t.Errorf("dual: packet from %s: %s, want %s", tc.src, got, tc.want)
		}
	}
	var out api.GWSessions
	if err := r.c.Do(context.Background(), "GET", "/v1/sessions", nil, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Sessions) != 1 || out.Sessions[0].IP != "10.101.0.5" || out.Sessions[0].IP6 != "2001:db8:101:1::/64" {
		t.Fatalf("sessions %+v", out.Sessions)
	}
	// Both families' flows belong to the one session: its end takes both.
	if n := r.s.flows.Len(); n != 3 {
		t.Fatalf("%d flows, want 3", n)
	}
	if err := r.event6(api.EventEnd, "dual", v4.String(), "2001:db8:101:1::/64", 2); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{v4, in64} {
		if got := r.up(a); got != "no_session" {
			t.Errorf("after the end: packet from %s: %s", a, got)
		}
	}
	if n := r.s.flows.Len(); n != 0 {
		t.Errorf("%d flows after the end", n)
	}

	// IPv6-only: IP is the /64's first address; a move to another /64
	// closes the first.
	if err := r.event6(api.EventStart, "six", "2001:db8:101:1::", "2001:db8:101:1::/64", 1); err != nil {
		t.Fatal(err)
	}
	if got := r.up(in64); got != "forwarded" {
		t.Errorf("v6-only: %s", got)
	}
	if err := r.event6(api.EventActive, "six", "2001:db8:101:2::", "2001:db8:101:2::/64", 2); err != nil {
		t.Fatal(err)
	}
	if got, got2 := r.up(in64), r.up(other64); got != "no_session" || got2 != "forwarded" {
		t.Errorf("after the move: old /64 %s, new /64 %s", got, got2)
	}
	// A /128 session opens its one address only.
	if err := r.event6(api.EventStart, "addr", "2001:db8:101:3::7", "", 1); err != nil {
		t.Fatal(err)
	}
	if got, got2 := r.up(netip.MustParseAddr("2001:db8:101:3::7")), r.up(netip.MustParseAddr("2001:db8:101:3::8")); got != "forwarded" || got2 != "no_session" {
		t.Errorf("/128: own %s, neighbour %s", got, got2)
	}
	if d := cmp.Diff([]string{"addr@2001:db8:101:3::7/active/1", "six@2001:db8:101:2::/active/2"}, r.sessions()); d != "" {
		t.Errorf("sessions (-want +got):\n%s", d)
	}
	for _, tc := range []struct{ ip, ip6, want string }{
		{"10.101.0.9", "2001:db8:101:9::/48", "want an address or a /64"},
		{"10.101.0.9", "2001:db8:101:9::1/64", "host bits set"},
		{"10.101.0.9", "10.1.1.1", "not IPv6"},
		{"2001:db8:101:8::1", "2001:db8:101:9::/64", "does not hold"},
	} {
		err := r.event6(api.EventStart, "bad", tc.ip, tc.ip6, 1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ip %s ip6 %s: %v, want %q", tc.ip, tc.ip6, err, tc.want)
		}
	}
}
