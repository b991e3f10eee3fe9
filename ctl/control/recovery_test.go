package control_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"samepath/ctl/aaa"
	"samepath/ctl/control"
)

// downable puts d behind a switch: while down, every request to the
// gateway (health probe, session event, read-back) fails with 503, as a
// gateway that is restarting.
func downable(t *testing.T, d *fakeDaemon) (url string, down *atomic.Bool) {
	down = new(atomic.Bool)
	h := d.srv.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, down
}

// TestGatewayRecoveryDeliversBacklog (issue 11, defect 2): session events
// for a gateway that is down wait in the outbox's back-off (an hour
// here); the health monitor's down -> up verdict for that gateway sends
// them at once, so the gateway holds the session again although no retry
// was due.
func TestGatewayRecoveryDeliversBacklog(t *testing.T) {
	gw1 := newFakeDaemon(t)
	cfg := testConfig(t.TempDir(), gw1, nil, nil)
	url, down := downable(t, gw1)
	cfg.Gateways[0].API = url
	cfg.Sessions.Resync = 0 // read-backs only on recovery
	cfg.Sessions.PushMinBackoff, cfg.Sessions.PushMaxBackoff = time.Hour, time.Hour
	c := startControl(t, cfg)
	if _, err := c.Users.Put(aaa.User{ID: "alice", Password: "pw", DeviceID: "IMEI-1"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "gw1 up", func() bool { g, _ := c.Pool.Gateway("gw1"); return g.Health == aaa.HealthUp })
	radclient(t, c.AuthAddr().String(), "auth", "User-Name=alice,User-Password=pw,Calling-Station-Id=IMEI-1,Message-Authenticator=0x00")

	down.Store(true)
	eventually(t, "gw1 down", func() bool { g, _ := c.Pool.Gateway("gw1"); return g.Health == aaa.HealthDown })
	acct := func(attrs string) {
		t.Helper()
		radclient(t, c.AcctAddr().String(), "acct", "Acct-Session-Id=S1,Calling-Station-Id=IMEI-1,User-Name=alice,Framed-IP-Address=10.100.0.1,"+attrs)
	}
	acct("Acct-Status-Type=Start")
	acct("Acct-Status-Type=Interim-Update,Acct-Input-Octets=100")
	eventually(t, "a push to gw1 failed", func() bool { return c.Out.Counters().Failures > 0 })
	if oc := c.Out.Counters(); oc.Pending != 2 || oc.Acked != 0 {
		t.Fatalf("outbox while gw1 is down: %+v", oc)
	}

	down.Store(false)
	eventually(t, "gw1 holds S1 active", func() bool { s, ok := gw1.session("S1"); return ok && s.State == "active" })
	eventually(t, "outbox empty", func() bool { return c.Out.Counters().Pending == 0 })
	oc := c.Out.Counters()
	if oc.Wakeups == 0 || oc.Acked != 2 {
		t.Fatalf("outbox after gw1 recovered: %+v, want its 2 events delivered by a wakeup", oc)
	}
	var cs control.Counters
	getJSON(t, c, "/v1/counters", &cs)
	if cs.Outbox.Wakeups == 0 {
		t.Fatalf("/v1/counters outbox %+v: no wakeup", cs.Outbox)
	}
}
