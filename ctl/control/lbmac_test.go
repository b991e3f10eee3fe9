package control_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/nas"
)

// runControl starts a control process and returns a stop that ends it
// (also run at the test's end, once).
func runControl(t *testing.T, cfg control.Config) (*control.Control, func()) {
	t.Helper()
	c, err := control.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(stop)
	return c, stop
}

// TestResumeTellsGatewayTheLB is the control side of R-GW-4: the session
// events reaching the gateway carry the lb_mac of the RADIUS client whose
// Accounting Start the session manager saw last: NAS1's LB after the
// login there, NAS2's after the mobile is suspended at NAS1 and resumed
// at NAS2 under a new Acct-Session-Id (FIG. 31); and after samepath-control
// restarts and the gateway lost its copy, the resync rebuilds the
// session with NAS2's LB.
func TestResumeTellsGatewayTheLB(t *testing.T) {
	const lb1, lb2 = "02:73:70:03:01:02", "02:73:70:03:02:02"
	gw1 := newFakeDaemon(t)
	cfg := testConfig(t.TempDir(), gw1, nil, nil)
	cfg.Sessions.Resync = 30 * time.Millisecond
	// NAS1 sends from 127.0.0.1, NAS2 from 127.0.0.2: two RADIUS
	// clients, each with its ingress point's LB.
	cfg.Radius.Clients = []aaa.ClientConfig{
		{Prefix: "127.0.0.1", Secret: "testing123", Name: "nas1", LBMAC: lb1},
		{Prefix: "127.0.0.2", Secret: "testing123", Name: "nas2", LBMAC: lb2},
	}
	c, stop := runControl(t, cfg)
	if _, err := c.Users.Put(aaa.User{ID: "alice", Password: "pw", DeviceID: "IMEI-1"}); err != nil {
		t.Fatal(err)
	}
	nasAt := func(c *control.Control, src string) *nas.Client {
		local := &net.UDPAddr{IP: net.ParseIP(src)}
		return &nas.Client{Auth: c.AuthAddr().String(), Acct: c.AcctAddr().String(), Secret: []byte("testing123"), Timeout: time.Second, Retries: 2,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: local}
				return d.DialContext(ctx, network, addr)
			}}
	}
	ctx := context.Background()
	nas1, nas2 := nasAt(c, "127.0.0.1"), nasAt(c, "127.0.0.2")
	g, err := nas1.Login(ctx, "alice", "pw", "IMEI-1")
	if err != nil {
		t.Fatal(err)
	}
	acct := func(n *nas.Client, status rfc2866.AcctStatusType, id string, cause rfc2866.AcctTerminateCause) {
		t.Helper()
		if err := n.Account(ctx, nas.Acct{Status: status, SessionID: id, User: "alice", Device: "IMEI-1", IP: g.IP, Cause: cause}); err != nil {
			t.Fatal(err)
		}
	}
	at := func(what, state, lb string) {
		t.Helper()
		eventually(t, what, func() bool {
			s, ok := gw1.session("nas1-1")
			gw1.mu.Lock()
			defer gw1.mu.Unlock()
			return ok && s.State == state && gw1.lbMAC["nas1-1"] == lb
		})
	}
	acct(nas1, rfc2866.AcctStatusType_Value_Start, "nas1-1", 0)
	at("gw1 holds the session active via lb1", "active", lb1)
	acct(nas1, rfc2866.AcctStatusType_Value_Stop, "nas1-1", rfc2866.AcctTerminateCause_Value_IdleTimeout)
	at("gw1 holds the session dormant, still via lb1", "dormant", lb1)
	acct(nas2, rfc2866.AcctStatusType_Value_Start, "nas2-1", 0)
	at("gw1 holds the session active via lb2 after the resume at NAS2", "active", lb2)
	gw1.mu.Lock()
	last := gw1.events[len(gw1.events)-1]
	gw1.mu.Unlock()
	if last.Event != api.EventActive || last.LBMAC != lb2 {
		t.Fatalf("last event %+v: want active with lb_mac %s", last, lb2)
	}

	// samepath-control restarts; the gateway restarts too and lost its
	// copy: the resync brings the session back with NAS2's LB.
	stop()
	gw1.restart()
	gw1.mu.Lock()
	gw1.lbMAC = map[string]string{}
	gw1.mu.Unlock()
	c, _ = runControl(t, cfg)
	at("gw1 rebuilt by the resync, via lb2", "active", lb2)
	// A suspension after the restart still names NAS2's LB.
	nas2 = nasAt(c, "127.0.0.2")
	acct(nas2, rfc2866.AcctStatusType_Value_Stop, "nas2-1", rfc2866.AcctTerminateCause_Value_IdleTimeout)
	at("gw1 holds the session dormant via lb2", "dormant", lb2)
}
