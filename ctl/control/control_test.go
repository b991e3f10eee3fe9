package control_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/session"
	"samepath/internal/version"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv("SAMEPATH_CONTROL_CHILD"); cfg != "" {
		os.Exit(childMain(cfg))
	}
	goleak.VerifyTestMain(m)
}

// fakeDaemon is a samepathd stand-in: /healthz (switchable), session events
// (role gw) and gateway states (role lb).
type fakeDaemon struct {
	mu      sync.Mutex
	healthy bool
	events  []api.SessionEvent
	states  []api.GatewayState
	// t3 is the gateway's session copy, kept by samepathd's rules: an
	// event not newer (Seq) than the copy's, or than an end's (ended), is
	// ignored, start, active and dormant upsert, end deletes.
	t3    map[string]api.GWSession
	ended map[string]uint64
	// t4, when set, is the LB's T4 (GET /v1/t4); otherwise 404.
	t4 *api.T4
	// lbMAC is the lb_mac of the last event applied per session (T12's
	// resume side, R-GW-4): stale events do not change it.
	lbMAC map[string]string
	// gwSync, when set, is the gateway's GET /v1/sync (otherwise 404);
	// syncAuth is the Authorization header of the last such request.
	gwSync   *api.GWSync
	syncAuth string
	srv      *httptest.Server
}

func newFakeDaemon(t *testing.T) *fakeDaemon {
	d := &fakeDaemon{healthy: true, t3: map[string]api.GWSession{}, ended: map[string]uint64{}, lbMAC: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.healthy {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /v1/sessions/events", func(w http.ResponseWriter, r *http.Request) {
		var ev api.SessionEvent
		json.NewDecoder(r.Body).Decode(&ev)
		d.mu.Lock()
		d.events = append(d.events, ev)
		cur, ok := d.t3[ev.SessionID]
		if (!ok || ev.Seq > cur.Seq) && ev.Seq > d.ended[ev.SessionID] {
			d.lbMAC[ev.SessionID] = ev.LBMAC
			switch ev.Event {
			case api.EventEnd:
				delete(d.t3, ev.SessionID)
				d.ended[ev.SessionID] = ev.Seq
			default:
				st := "active"
				if ev.Event == api.EventDormant {
					st = "dormant"
				}
				d.t3[ev.SessionID] = api.GWSession{SessionID: ev.SessionID, UserID: ev.UserID, DeviceID: ev.DeviceID, IP: ev.IP, IP6: ev.IP6, State: st, Seq: ev.Seq}
			}
		}
		d.mu.Unlock()
		io.WriteString(w, `{"ok":true}`)
	})
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		out := api.GWSessions{Sessions: []api.GWSession{}}
		for _, s := range d.t3 {
			out.Sessions = append(out.Sessions, s)
		}
		d.mu.Unlock()
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /v1/t4", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.t4 == nil {
			http.Error(w, `{"error":"no t4"}`, 404)
			return
		}
		json.NewEncoder(w).Encode(d.t4)
	})
	mux.HandleFunc("GET /v1/sync", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.syncAuth = r.Header.Get("Authorization")
		if d.gwSync == nil {
			http.Error(w, `{"error":"no sync"}`, 404)
			return
		}
		json.NewEncoder(w).Encode(d.gwSync)
	})
	mux.HandleFunc("PUT /v1/gateways/state", func(w http.ResponseWriter, r *http.Request) {
		var gs api.GatewayState
		json.NewDecoder(r.Body).Decode(&gs)
		d.mu.Lock()
		d.states = append(d.states, gs)
		d.mu.Unlock()
		io.WriteString(w, `{"ok":true}`)
	})
	d.srv = httptest.NewServer(mux)
	t.Cleanup(d.srv.Close)
	return d
}

func (d *fakeDaemon) setHealthy(h bool) { d.mu.Lock(); d.healthy = h; d.mu.Unlock() }

func (d *fakeDaemon) eventKinds() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, e := range d.events {
		out = append(out, e.Event)
	}
	return out
}

func (d *fakeDaemon) lastState(mac string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.states) - 1; i >= 0; i-- {
		if d.states[i].MAC == mac {
			return d.states[i].State
		}
	}
	return ""
}

const (
	mac1 = "02:00:00:00:01:01"
	mac2 = "02:00:00:00:01:02"
)

func testConfig(dir string, gw1, gw2, lb *fakeDaemon) control.Config {
	cfg := control.DefaultConfig()
	cfg.StateDir = dir
	cfg.Radius.Auth, cfg.Radius.Acct = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Radius.Clients = []aaa.ClientConfig{{Prefix: "127.0.0.1", Secret: "testing123"}}
	cfg.API.Listen = "127.0.0.1:0"
	cfg.PBKDF2Iter = 1000
	cfg.Health.Interval, cfg.Health.Timeout, cfg.Health.Fall, cfg.Health.Rise = 20*time.Millisecond, 500*time.Millisecond, 2, 1
	cfg.Gateways = []aaa.GatewayConfig{{Name: "gw1", Range: "10.100.0.0/24", MAC: mac1}, {Name: "gw2", Range: "10.100.1.0/24", MAC: mac2}}
	if gw1 != nil {
		cfg.Gateways[0].API = gw1.srv.URL
	}
	if gw2 != nil {
		cfg.Gateways[1].API = gw2.srv.URL
	}
	if lb != nil {
		cfg.LBs = append(cfg.LBs, struct {
			Name      string `yaml:"name"`
			API       string `yaml:"api"`
			TokenFile string `yaml:"token_file"`
		}{Name: "lb1", API: lb.srv.URL})
	}
	return cfg
}

func startControl(t *testing.T, cfg control.Config) *control.Control {
	t.Helper()
	c, err := control.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return c
}

func radclient(t *testing.T, addr, kind, attrs string) string {
	t.Helper()
	cmd := exec.Command("radclient", "-x", "-r", "1", "-t", "2", addr, kind, "testing123")
	cmd.Stdin = strings.NewReader(attrs)
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Received") {
		t.Fatalf("radclient: %v\n%s", err, out)
	}
	return string(out)
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func getJSON(t *testing.T, c *control.Control, path string, out any) {
	t.Helper()
	cl := api.NewClient(c.APIAddr().String())
	if err := cl.Do(context.Background(), http.MethodGet, path, nil, out); err != nil {
		t.Fatal(err)
	}
}

// TestEndToEndRadclient: login and every accounting edge through radclient,
// with the session events reaching the owning gateway.
func TestEndToEndRadclient(t *testing.T) {
	gw1, gw2, lb := newFakeDaemon(t), newFakeDaemon(t), newFakeDaemon(t)
	c := startControl(t, testConfig(t.TempDir(), gw1, gw2, lb))
	if _, err := c.Users.Put(aaa.User{ID: "alice", Password: "pw", DeviceID: "IMEI-1"}); err != nil {
		t.Fatal(err)
	}
	out := radclient(t, c.AuthAddr().String(), "auth", "User-Name=alice,User-Password=pw,Calling-Station-Id=IMEI-1,Message-Authenticator=0x00")
	if !strings.Contains(out, "Framed-IP-Address = 10.100.0.1") {
		t.Fatalf("no address from gw1's range:\n%s", out)
	}
	acct := func(attrs string) {
		t.Helper()
		out := radclient(t, c.AcctAddr().String(), "acct", "Acct-Session-Id=S1,Calling-Station-Id=IMEI-1,User-Name=alice,Framed-IP-Address=10.100.0.1,"+attrs)
		if !strings.Contains(out, "Received Accounting-Response") {
			t.Fatalf("no Accounting-Response for %s:\n%s", attrs, out)
		}
	}
	state := func() session.State {
		var ss []session.Session
		getJSON(t, c, "/v1/sessions", &ss)
		if len(ss) == 0 {
			return session.None
		}
		return ss[0].State
	}
	acct("Acct-Status-Type=Start")
	if s := state(); s != session.Act {
		t.Fatalf("after Start: %s", s)
	}
	acct("Acct-Status-Type=Interim-Update,Acct-Input-Octets=100")
	acct("Acct-Status-Type=Stop,Acct-Terminate-Cause=Idle-Timeout")
	if s := state(); s != session.Dormant {
		t.Fatalf("after idle Stop: %s", s)
	}
	acct("Acct-Status-Type=Start")
	if s := state(); s != session.Act {
		t.Fatalf("after Start from dormant: %s", s)
	}
	acct("Acct-Status-Type=Stop,Acct-Terminate-Cause=User-Request")
	eventually(t, "session gone", func() bool { return state() == session.None })
	want := "start,active,dormant,active,end"
	eventually(t, "events at gw1 "+want, func() bool { return strings.Join(gw1.eventKinds(), ",") == want })
	if len(gw2.eventKinds()) != 0 {
		t.Fatalf("gw2 got events %v", gw2.eventKinds())
	}
	// The session log has the close.
	log, err := os.ReadFile(c.St.LogPath())
	if err != nil || !strings.Contains(string(log), `"id":"S1"`) || !strings.Contains(string(log), `"cause":"User-Request"`) {
		t.Fatalf("session log: %v\n%s", err, log)
	}
	// Metrics and health endpoints answer.
	resp, err := http.Get("http://" + c.APIAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `samepath_control_session_transitions_total{edge="Act->Dormant"} 1`) {
		t.Fatalf("metrics lack the transition counter:\n%s", body)
	}
	if bi := fmt.Sprintf(`samepath_build_info{goversion=%q,version=%q} 1`, version.GoVersion(), version.Get()); !strings.Contains(string(body), bi) {
		t.Fatalf("metrics lack %s:\n%s", bi, body)
	}
}

// TestHealthMovesLogins: gw1 fails its probes: the LB is told gw1 is down
// and every new login goes to gw2; it recovers: the LB is told up.
func TestHealthMovesLogins(t *testing.T) {
	gw1, gw2, lb := newFakeDaemon(t), newFakeDaemon(t), newFakeDaemon(t)
	c := startControl(t, testConfig(t.TempDir(), gw1, gw2, lb))
	eventually(t, "LB told both gateways are up", func() bool { return lb.lastState(mac1) == "up" && lb.lastState(mac2) == "up" })
	gw1.setHealthy(false)
	eventually(t, "LB told gw1 is down", func() bool { return lb.lastState(mac1) == "down" })
	for i := 0; i < 20; i++ {
		c.Users.Put(aaa.User{ID: fmt.Sprintf("u%d", i), Password: "pw"})
	}
	for i := 0; i < 20; i++ {
		out := radclient(t, c.AuthAddr().String(), "auth", fmt.Sprintf("User-Name=u%d,User-Password=pw,Calling-Station-Id=D%d,Message-Authenticator=0x00", i, i))
		if !strings.Contains(out, "Framed-IP-Address = 10.100.1.") {
			t.Fatalf("login %d not on gw2 while gw1 is down:\n%s", i, out)
		}
	}
	gw1.setHealthy(true)
	eventually(t, "LB told gw1 is up again", func() bool { return lb.lastState(mac1) == "up" })
	var gs []aaa.Gateway
	getJSON(t, c, "/v1/gateways", &gs)
	if gs[0].Health != "up" || gs[0].Assigned != 0 || gs[1].Assigned != 20 {
		t.Fatalf("T1 %+v", gs)
	}
}

func TestTokenRequiredBeyondLoopback(t *testing.T) {
	cfg := testConfig(t.TempDir(), nil, nil, nil)
	cfg.API.Listen = "0.0.0.0:0"
	if err := cfg.Validate(); err == nil {
		t.Fatal("non-loopback API without a token file accepted")
	}
	tok := t.TempDir() + "/token"
	os.WriteFile(tok, []byte("sekrit\n"), 0o600)
	cfg.API.Listen, cfg.API.TokenFile = "127.0.0.1:0", tok
	c := startControl(t, cfg)
	cl := api.NewClient(c.APIAddr().String())
	var st control.Status
	if err := cl.Do(context.Background(), http.MethodGet, "/v1/status", nil, &st); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("no token: %v", err)
	}
	cl.Token = "sekrit"
	if err := cl.Do(context.Background(), http.MethodGet, "/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Gateways != 2 {
		t.Fatalf("status %+v", st)
	}
}

var _ = netip.Addr{}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// restart empties the fake gateway's T3 copy, as a samepathd restart does.
func (d *fakeDaemon) restart() { d.mu.Lock(); d.t3 = map[string]api.GWSession{}; d.mu.Unlock() }

// session returns the fake gateway's copy of session id.
func (d *fakeDaemon) session(id string) (api.GWSession, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.t3[id]
	return s, ok
}

// TestSessionResync: a gateway that restarted (its T3 copy gone) gets its
// sessions back from the periodic read-back, in their current state, and
// a session it holds that the control process does not know is ended.
func TestSessionResync(t *testing.T) {
	gw1 := newFakeDaemon(t)
	cfg := testConfig(t.TempDir(), gw1, nil, nil)
	cfg.Sessions.Resync = 30 * time.Millisecond
	c := startControl(t, cfg)
	if _, err := c.Users.Put(aaa.User{ID: "alice", Password: "pw", DeviceID: "IMEI-1"}); err != nil {
		t.Fatal(err)
	}
	radclient(t, c.AuthAddr().String(), "auth", "User-Name=alice,User-Password=pw,Calling-Station-Id=IMEI-1,Message-Authenticator=0x00")
	acct := func(attrs string) {
		t.Helper()
		radclient(t, c.AcctAddr().String(), "acct", "Acct-Session-Id=S1,Calling-Station-Id=IMEI-1,User-Name=alice,Framed-IP-Address=10.100.0.1,"+attrs)
	}
	acct("Acct-Status-Type=Start")
	eventually(t, "gw1 holds S1 active", func() bool { s, ok := gw1.session("S1"); return ok && s.State == "active" })
	acct("Acct-Status-Type=Stop,Acct-Terminate-Cause=Idle-Timeout")
	eventually(t, "gw1 holds S1 dormant", func() bool { s, ok := gw1.session("S1"); return ok && s.State == "dormant" })

	gw1.restart()
	gw1.mu.Lock()
	gw1.t3["ghost"] = api.GWSession{SessionID: "ghost", DeviceID: "IMEI-9", IP: "10.100.0.9", State: "active", Seq: 3}
	gw1.mu.Unlock()
	eventually(t, "gw1 holds S1 dormant again, no ghost", func() bool {
		s, ok := gw1.session("S1")
		_, ghost := gw1.session("ghost")
		return ok && s.State == "dormant" && s.DeviceID == "IMEI-1" && s.IP == "10.100.0.1" && s.UserID == "alice" && !ghost
	})
	var cs control.Counters
	getJSON(t, c, "/v1/counters", &cs)
	if cs.SessionSync.Reasserted == 0 || cs.SessionSync.Ended == 0 || cs.SessionSync.Rounds == 0 {
		t.Fatalf("session sync counters %+v", cs.SessionSync)
	}
	// A transition after the repair still reaches the gateway (its Seq is
	// above the repair's).
	acct("Acct-Status-Type=Start")
	eventually(t, "gw1 holds S1 active after the resume", func() bool { s, ok := gw1.session("S1"); return ok && s.State == "active" })
}
