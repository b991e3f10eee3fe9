package control_test

import (
	"strings"
	"testing"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
)

// TestDualStackThroughControl (issue 15): with IPv6 pools in T1 and the
// LB's T4 holding IPv6 rows beside the IPv4 ones, a dual-stack login
// gets both families from one gateway; its session reaches the owner
// with both addresses, and the substitute named only by the IPv6 row
// too; the health monitor's verdict reaches the LB for the gateway (its
// T4 entries of both families go by its MAC); an IPv6 overlap in the
// config is refused naming range6.
func TestDualStackThroughControl(t *testing.T) {
	gw1, gw2, lb := newFakeDaemon(t), newFakeDaemon(t), newFakeDaemon(t)
	lb.t4 = &api.T4{Rows: []api.T4Row{
		{Range: "10.100.0.0/24", Gateways: []api.T4Gateway{{MAC: mac1, State: "up"}}},
		{Range: "10.100.1.0/24", Gateways: []api.T4Gateway{{MAC: mac2, State: "up"}}},
		{Range: "2001:db8:100::/56", Gateways: []api.T4Gateway{{MAC: mac1, State: "up"}, {MAC: mac2, State: "up"}}},
		{Range: "2001:db8:101::/56", Gateways: []api.T4Gateway{{MAC: mac2, State: "up"}}},
	}}
	cfg := testConfig(t.TempDir(), gw1, gw2, lb)
	cfg.Gateways[0].Range6 = "2001:db8:100::/56"
	cfg.Gateways[1].Range6 = "2001:db8:101::/56"
	c := startControl(t, cfg)
	eventually(t, "control read the LB's T4", func() bool {
		var h control.HealthReport
		getJSON(t, c, "/v1/health", &h)
		return len(h.T4) == 4
	})
	if _, err := c.Users.Put(aaa.User{ID: "dual", Password: "pw", DeviceID: "IMEI-D", Stack: "dual"}); err != nil {
		t.Fatal(err)
	}
	out := radclient(t, c.AuthAddr().String(), "auth", "User-Name=dual,User-Password=pw,Calling-Station-Id=IMEI-D,Message-Authenticator=0x00")
	if !strings.Contains(out, "Framed-IP-Address = 10.100.0.1") || !strings.Contains(out, "Framed-IPv6-Prefix = 2001:db8:100::/64") {
		t.Fatalf("dual-stack login:\n%s", out)
	}
	out = radclient(t, c.AcctAddr().String(), "acct", "Acct-Status-Type=Start,Acct-Session-Id=S1,Calling-Station-Id=IMEI-D,User-Name=dual,Framed-IP-Address=10.100.0.1,Framed-IPv6-Prefix=2001:db8:100::/64")
	if !strings.Contains(out, "Received Accounting-Response") {
		t.Fatalf("start:\n%s", out)
	}
	for _, g := range []*fakeDaemon{gw1, gw2} {
		eventually(t, "gw1 and gw2 hold S1 with both addresses", func() bool {
			s, ok := g.session("S1")
			return ok && s.State == "active" && s.IP == "10.100.0.1" && s.IP6 == "2001:db8:100::/64"
		})
	}
	// Each gateway carries one IPv6 prefix after this (gw1 the dual-stack one's).
	if _, err := c.Users.Put(aaa.User{ID: "pre", Password: "pw", DeviceID: "IMEI-P", Stack: "ipv6"}); err != nil {
		t.Fatal(err)
	}
	out = radclient(t, c.AuthAddr().String(), "auth", "User-Name=pre,User-Password=pw,Calling-Station-Id=IMEI-P,Message-Authenticator=0x00")
	if !strings.Contains(out, "Framed-IPv6-Prefix = 2001:db8:101::/64") {
		t.Fatalf("v6-only login, least loaded is gw2:\n%s", out)
	}
	gw1.mu.Lock()
	gw1.healthy = false
	gw1.mu.Unlock()
	eventually(t, "LB told gw1 is down", func() bool { return lb.lastState(mac1) == "down" })
	// A tie, which gw1 would win by name, goes to gw2 while gw1 is down.
	if _, err := c.Users.Put(aaa.User{ID: "six", Password: "pw", DeviceID: "IMEI-6", Stack: "ipv6"}); err != nil {
		t.Fatal(err)
	}
	out = radclient(t, c.AuthAddr().String(), "auth", "User-Name=six,User-Password=pw,Calling-Station-Id=IMEI-6,Message-Authenticator=0x00")
	if !strings.Contains(out, "Framed-IPv6-Prefix = 2001:db8:101:1::/64") {
		t.Fatalf("v6-only login with gw1 down:\n%s", out)
	}

	bad := testConfig(t.TempDir(), nil, nil, nil)
	bad.Gateways[0].Range6 = "2001:db8::/48"
	bad.Gateways[1].Range6 = "2001:db8:0:100::/56"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "gateways[1].range6") {
		t.Fatalf("overlapping range6: %v", err)
	}
}
