package nas_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
	"samepath/ctl/control"
	"samepath/ctl/nas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startControl(t *testing.T) *control.Control {
	cfg := control.DefaultConfig()
	cfg.StateDir = t.TempDir()
	cfg.Radius.Auth, cfg.Radius.Acct = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Radius.Clients = []aaa.ClientConfig{{Prefix: "127.0.0.1", Secret: "s"}}
	cfg.API.Listen = "127.0.0.1:0"
	cfg.PBKDF2Iter = 1000
	cfg.Health.Disabled = true
	cfg.Gateways = []aaa.GatewayConfig{{Name: "gw1", Range: "10.1.0.0/24"}, {Name: "gw2", Range: "10.2.0.0/24"}}
	c, err := control.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func TestEmulateLifecycle(t *testing.T) {
	c := startControl(t)
	c.Users.Put(aaa.User{ID: "a", Password: "pa"})
	c.Users.Put(aaa.User{ID: "b", Password: "pb"})
	cl := &nas.Client{Auth: c.AuthAddr().String(), Acct: c.AcctAddr().String(), Secret: []byte("s"), NASID: "nas-test", Timeout: time.Second, Retries: 2}
	ms := []nas.Mobile{{User: "a", Password: "pa", Device: "DA"}, {User: "b", Password: "pb", Device: "DB"}, {User: "a", Password: "wrong", Device: "DC"}}
	steps := cl.Emulate(context.Background(), ms, nas.EmulateConfig{Interims: 2, Dormant: true, Logout: false})
	if steps[0].Err != "" || steps[1].Err != "" || steps[2].Err == "" {
		t.Fatalf("steps %+v", steps)
	}
	if steps[0].IP == steps[1].IP || !steps[0].IP.IsValid() {
		t.Fatalf("addresses %v %v", steps[0].IP, steps[1].IP)
	}
	// Spread over both gateways.
	g0, _ := c.Pool.GatewayOf(steps[0].IP)
	g1, _ := c.Pool.GatewayOf(steps[1].IP)
	if g0.Name == g1.Name {
		t.Fatalf("both on %s", g0.Name)
	}
	ss := c.Mgr.List()
	if len(ss) != 2 || ss[0].State != "Act" || ss[0].NAS != "nas-test" || ss[0].InOctets != 2000 {
		t.Fatalf("sessions %+v", ss)
	}
	tr := c.Mgr.Counters().Transitions
	if tr["None->Act"] != 2 || tr["Act->Act"] != 4 || tr["Act->Dormant"] != 2 || tr["Dormant->Act"] != 2 {
		t.Fatalf("transitions %v", tr)
	}
	// Logout ends them.
	steps = cl.Emulate(context.Background(), ms[:2], nas.EmulateConfig{Logout: true})
	if steps[0].Err != "" {
		t.Fatal(steps[0].Err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Mgr.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := c.Mgr.Len(); n != 0 {
		t.Fatalf("%d sessions after logout", n)
	}
	// A reject carries its reason.
	if _, err := cl.Login(context.Background(), "a", "bad", "DA"); !errors.Is(err, nas.ErrReject) {
		t.Fatalf("got %v", err)
	}
}

func TestLoadGenShort(t *testing.T) {
	c := startControl(t)
	c.Users.Put(aaa.User{ID: "u", Password: "p"})
	r, err := nas.LoadGen(context.Background(), nas.LoadConfig{Addr: c.AuthAddr().String(), Secret: []byte("s"),
		Mobiles: []nas.Mobile{{User: "u", Password: "p", Device: "D1"}, {User: "u", Password: "bad", Device: "D2"}}, Conns: 2, Window: 8, Count: 200})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepts+r.Rejects < 200 || r.Accepts == 0 || r.Rejects == 0 || r.Invalid != 0 || r.P99 == 0 {
		t.Fatalf("%s", r)
	}
}

// TestDial checks that every exchange opens its socket through Client.Dial
// (the testbed dials inside a NAS namespace) and that a failing Dial is
// reported.
func TestDial(t *testing.T) {
	c := startControl(t)
	c.Users.Put(aaa.User{ID: "a", Password: "pa"})
	var dials []string
	cl := &nas.Client{Auth: c.AuthAddr().String(), Acct: c.AcctAddr().String(), Secret: []byte("s"), Timeout: time.Second, Retries: 1,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials = append(dials, network+" "+addr)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	g, err := cl.Login(context.Background(), "a", "pa", "DA")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Account(context.Background(), nas.Acct{Status: rfc2866.AcctStatusType_Value_Start, SessionID: "s1", User: "a", Device: "DA", IP: g.IP}); err != nil {
		t.Fatal(err)
	}
	want := []string{"udp " + cl.Auth, "udp " + cl.Acct}
	if len(dials) != 2 || dials[0] != want[0] || dials[1] != want[1] {
		t.Errorf("dials %q, want %q", dials, want)
	}
	boom := errors.New("no namespace")
	cl.Dial = func(context.Context, string, string) (net.Conn, error) { return nil, boom }
	if _, err := cl.Login(context.Background(), "a", "pa", "DA"); !errors.Is(err, boom) {
		t.Errorf("login with a failing dial: %v", err)
	}
}
