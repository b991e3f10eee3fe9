package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
	"samepath/ctl/control"
	"samepath/ctl/nas"
	"samepath/ctl/session"
)

// TestIPv6TablesShowBothFamilies: a gateway with an IPv6 pool and a
// dual-stack user round-trip through the CLI; gateways, users and
// sessions show both families.
func TestIPv6TablesShowBothFamilies(t *testing.T) {
	h := newHarness(t)
	h.run("gateways", "set", "-name", "gw1", "-range", "10.1.0.0/24", "-range6", "2001:db8:1::/56")
	h.run("gateways", "set", "-name", "gw6", "-range6", "2001:db8:6::/120", "-framed6", "address")
	var g aaa.Gateway
	h.json(&g, "gateways", "show", "gw1")
	if g.Range6 != "2001:db8:1::/56" || g.Framed6 != aaa.Framed6Prefix || g.Size6 != 256 || g.Size != 254 {
		t.Fatalf("gw1 %+v", g)
	}
	tab := h.run("gateways", "list")
	for _, w := range []string{"RANGE6", "ASSIGNED6", "2001:db8:1::/56", "2001:db8:6::/120", "address"} {
		if !strings.Contains(tab, w) {
			t.Fatalf("gateways table lacks %q:\n%s", w, tab)
		}
	}
	h.run("users", "set", "-id", "dual", "-password", "pw", "-device", "IMEI-D", "-stack", "dual")
	cl := &nas.Client{Auth: h.c.AuthAddr().String(), Acct: h.c.AcctAddr().String(), Secret: []byte("s"), Timeout: time.Second, Retries: 1}
	gr, err := cl.Login(context.Background(), "dual", "pw", "IMEI-D")
	if err != nil {
		t.Fatal(err)
	}
	if gr.IP.String() != "10.1.0.1" || gr.IP6.String() != "2001:db8:1::/64" {
		t.Fatalf("grant %+v", gr)
	}
	var u control.UserView
	h.json(&u, "users", "show", "dual")
	if u.Stack != "dual" || u.AssignedIP != "10.1.0.1" || u.AssignedIP6 != "2001:db8:1::/64" {
		t.Fatalf("user %+v", u)
	}
	if err := cl.Account(context.Background(), nas.Acct{Status: rfc2866.AcctStatusType_Value_Start, SessionID: "S1", User: "dual", Device: "IMEI-D", IP: gr.IP, IP6: gr.IP6}); err != nil {
		t.Fatal(err)
	}
	var ss []session.Session
	h.json(&ss, "sessions", "list")
	if len(ss) != 1 || ss[0].IP != gr.IP || ss[0].IP6 != gr.IP6 {
		t.Fatalf("sessions %+v", ss)
	}
	tab = h.run("sessions", "list")
	for _, w := range []string{"IP6", "10.1.0.1", "2001:db8:1::/64"} {
		if !strings.Contains(tab, w) {
			t.Fatalf("sessions table lacks %q:\n%s", w, tab)
		}
	}
	if tab := h.run("users", "list"); !strings.Contains(tab, "2001:db8:1::/64") {
		t.Fatalf("users table:\n%s", tab)
	}
}
