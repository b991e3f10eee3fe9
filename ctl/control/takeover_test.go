package control_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/health"
)

// fig14 is the FIG. 14 T4 of the test config: each gateway's range goes
// to it, with the other as its substitute.
func fig14() *api.T4 {
	return &api.T4{Rows: []api.T4Row{
		{Range: "10.100.0.0/24", Gateways: []api.T4Gateway{{MAC: mac1, State: "up"}, {MAC: mac2, State: "up"}}},
		{Range: "10.100.1.0/24", Gateways: []api.T4Gateway{{MAC: strings.ToUpper(mac2), State: "up"}, {MAC: mac1, State: "up"}}},
	}}
}

// TestSubstituteHoldsSessions (issue 17, part 1): with the LB's T4
// naming gw2 as gw1's substitute, every session event of gw1's range
// reaches gw2 too, also while gw1 is dead; a phone that re-authenticates
// then keeps its address (gw2 serves that range) and its new session
// reaches gw2 at once; a substitute that restarted gets the sessions it
// substitutes for back from the read-back. A new device gets an address
// of gw2's range.
func TestSubstituteHoldsSessions(t *testing.T) {
	gw1, gw2, lb := newFakeDaemon(t), newFakeDaemon(t), newFakeDaemon(t)
	lb.t4 = fig14()
	cfg := testConfig(t.TempDir(), gw1, gw2, lb)
	cfg.Sessions.Resync = 30 * time.Millisecond
	c := startControl(t, cfg)
	eventually(t, "control read the LB's T4", func() bool {
		var h control.HealthReport
		getJSON(t, c, "/v1/health", &h)
		return len(h.T4) == 2 && strings.Join(h.T4[0].Gateways, ",") == "gw1,gw2" && strings.Join(h.T4[1].Gateways, ",") == "gw2,gw1"
	})
	for _, u := range []aaa.User{{ID: "alice", Password: "pw", DeviceID: "IMEI-1"}, {ID: "bob", Password: "pw", DeviceID: "IMEI-2"}} {
		if _, err := c.Users.Put(u); err != nil {
			t.Fatal(err)
		}
	}
	auth := func(user, dev string) string {
		t.Helper()
		return radclient(t, c.AuthAddr().String(), "auth", "User-Name="+user+",User-Password=pw,Calling-Station-Id="+dev+",Message-Authenticator=0x00")
	}
	acct := func(id, attrs string) {
		t.Helper()
		out := radclient(t, c.AcctAddr().String(), "acct", "Acct-Session-Id="+id+",Calling-Station-Id=IMEI-1,User-Name=alice,Framed-IP-Address=10.100.0.1,"+attrs)
		if !strings.Contains(out, "Received Accounting-Response") {
			t.Fatalf("no Accounting-Response for %s %s:\n%s", id, attrs, out)
		}
	}
	if out := auth("alice", "IMEI-1"); !strings.Contains(out, "Framed-IP-Address = 10.100.0.1") {
		t.Fatalf("alice not in gw1's range:\n%s", out)
	}
	acct("S1", "Acct-Status-Type=Start")
	for _, g := range []*fakeDaemon{gw1, gw2} {
		eventually(t, "gw1 and gw2 hold S1 active", func() bool { s, ok := g.session("S1"); return ok && s.State == "active" && s.IP == "10.100.0.1" })
	}

	// gw1 dies: no health, no events.
	gw1.srv.Close()
	eventually(t, "LB told gw1 is down", func() bool { return lb.lastState(mac1) == "down" })
	acct("S1", "Acct-Status-Type=Stop,Acct-Terminate-Cause=Idle-Timeout")
	eventually(t, "gw2 holds S1 dormant", func() bool { s, ok := gw2.session("S1"); return ok && s.State == "dormant" })
	acct("S1", "Acct-Status-Type=Start")
	eventually(t, "gw2 holds S1 active", func() bool { s, ok := gw2.session("S1"); return ok && s.State == "active" })

	// The phone re-authenticates: same address, and its new session
	// (superseding S1) is at gw2.
	if out := auth("alice", "IMEI-1"); !strings.Contains(out, "Access-Accept") || !strings.Contains(out, "Framed-IP-Address = 10.100.0.1") {
		t.Fatalf("re-authentication while gw1 is down: want Access-Accept with 10.100.0.1:\n%s", out)
	}
	acct("S2", "Acct-Status-Type=Start")
	eventually(t, "gw2 holds S2, not S1", func() bool {
		s, ok := gw2.session("S2")
		_, old := gw2.session("S1")
		return ok && s.State == "active" && s.IP == "10.100.0.1" && !old
	})
	// A new device is given nothing of the dead gateway's range.
	if out := auth("bob", "IMEI-2"); !strings.Contains(out, "Framed-IP-Address = 10.100.1.") {
		t.Fatalf("new device while gw1 is down: want an address of gw2's range:\n%s", out)
	}

	// gw2 restarts: the read-back gives it S2 again.
	gw2.restart()
	eventually(t, "gw2 holds S2 again after its restart", func() bool { s, ok := gw2.session("S2"); return ok && s.State == "active" && s.DeviceID == "IMEI-1" })
	var cs control.Counters
	getJSON(t, c, "/v1/counters", &cs)
	if cs.T4.Reads == 0 || cs.T4.Changes != 1 || cs.Outbox.Pending == 0 {
		t.Fatalf("counters: t4 view %+v (want reads, 1 change), outbox %+v (want gw1's events pending)", cs.T4, cs.Outbox)
	}
}

// TestT4View: the view maps each LB's rows to T1 names in row order,
// leaves out MACs T1 does not know, keeps an LB's last good rows when a
// read fails or does not parse, and reports a change only when the rows
// changed.
func TestT4View(t *testing.T) {
	lb := newFakeDaemon(t)
	lb.t4 = fig14()
	lb.t4.Rows[0].Gateways = append(lb.t4.Rows[0].Gateways, api.T4Gateway{MAC: "02:00:00:00:09:09", State: "up"})
	t1 := func() []aaa.Gateway {
		return []aaa.Gateway{{GatewayConfig: aaa.GatewayConfig{Name: "gw1", MAC: mac1}}, {GatewayConfig: aaa.GatewayConfig{Name: "gw2", MAC: mac2}}}
	}
	changes := 0
	v := control.NewT4View([]health.LB{{Name: "lb1", URL: lb.srv.URL}}, time.Hour, t1, func() { changes++ })
	subs := func(ip string) string { return strings.Join(v.Substitutes(mustAddr(ip)), ",") }
	if got := subs("10.100.0.7"); got != "" || changes != 0 {
		t.Fatalf("before a read: %q, %d changes", got, changes)
	}
	ctx := context.Background()
	if !v.ReadAll(ctx) || changes != 1 {
		t.Fatalf("first read: %d changes, counters %+v", changes, v.Counters())
	}
	for ip, want := range map[string]string{"10.100.0.7": "gw1,gw2", "10.100.1.7": "gw2,gw1", "10.200.0.1": ""} {
		if got := subs(ip); got != want {
			t.Errorf("Substitutes(%s) = %q, want %q", ip, got, want)
		}
	}
	if !v.ReadAll(ctx) || changes != 1 {
		t.Fatalf("same rows again: %d changes, want still 1", changes)
	}
	lb.mu.Lock()
	lb.t4.Rows[1].Gateways[1].MAC = "zz"
	lb.mu.Unlock()
	if v.ReadAll(ctx) || changes != 1 || subs("10.100.1.7") != "gw2,gw1" {
		t.Fatalf("bad mac: read ok or rows changed (%d changes, %q)", changes, subs("10.100.1.7"))
	}
	lb.mu.Lock()
	lb.t4 = &api.T4{Rows: []api.T4Row{{Range: "10.100.1.0/24", Gateways: []api.T4Gateway{{MAC: mac2, State: "up"}}}}}
	lb.mu.Unlock()
	if !v.ReadAll(ctx) || changes != 2 || subs("10.100.0.7") != "" || subs("10.100.1.7") != "gw2" {
		t.Fatalf("new rows: %d changes, %q %q", changes, subs("10.100.0.7"), subs("10.100.1.7"))
	}
	if c := v.Counters(); c.Reads != 4 || c.Failures != 1 || c.Changes != 2 {
		t.Fatalf("counters %+v", c)
	}
}
