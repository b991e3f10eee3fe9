package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/dp"
	"samepath/dp/daemon"
)

// authzGW serves the gateway's /healthz and /v1/authz the way samepathd
// role gw does (dp/daemon's handler): tables checked by daemon.AuthzRows
// and held in a real dp.Authz. down makes every request fail (503), as a
// gateway that is not there; restart loses the tables.
type authzGW struct {
	mu    sync.Mutex
	authz *dp.Authz
	down  bool
	puts  int
	srv   *httptest.Server
}

func newAuthzGW(t *testing.T) *authzGW {
	g := &authzGW{}
	g.restart()
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, code int, err error) {
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(api.Error{Error: err.Error()})
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if g.isDown() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /v1/authz", func(w http.ResponseWriter, r *http.Request) {
		if g.isDown() {
			fail(w, http.StatusServiceUnavailable, errors.New("down"))
			return
		}
		json.NewEncoder(w).Encode(g.tables())
	})
	mux.HandleFunc("PUT /v1/authz", func(w http.ResponseWriter, r *http.Request) {
		if g.isDown() {
			fail(w, http.StatusServiceUnavailable, errors.New("down"))
			return
		}
		var in api.Authz
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		t9, t8, err := daemon.AuthzRows(in)
		g.mu.Lock()
		if err == nil {
			err = g.authz.Replace(t9, t8)
		}
		if err == nil {
			g.puts++
		}
		g.mu.Unlock()
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *authzGW) isDown() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.down }

func (g *authzGW) setDown(d bool) { g.mu.Lock(); g.down = d; g.mu.Unlock() }

// restart: a gateway started again holds no tables (its config has none).
func (g *authzGW) restart() {
	a, err := dp.NewAuthz(nil, nil)
	if err != nil {
		panic(err)
	}
	g.mu.Lock()
	g.authz = a
	g.mu.Unlock()
}

func (g *authzGW) tables() api.Authz {
	g.mu.Lock()
	defer g.mu.Unlock()
	t9, t8 := g.authz.Rows()
	out := api.Authz{T9: []api.T9Row{}, T8: []api.T8Row{}}
	for _, r := range t9 {
		out.T9 = append(out.T9, api.T9Row{Rep: r.Rep.String(), ServiceType: r.ServiceType})
	}
	for _, r := range t8 {
		out.T8 = append(out.T8, api.T8Row{Device: r.Device, ServiceType: r.ServiceType, Allowed: r.Allowed})
	}
	return out
}

func (g *authzGW) putCount() int { g.mu.Lock(); defer g.mu.Unlock(); return g.puts }

// holds waits until g holds want (compared as the control process
// normalizes them).
func (g *authzGW) holds(t *testing.T, name string, want api.Authz) {
	t.Helper()
	w9, w8, err := control.NormalizeAuthz(want.T9, want.T8)
	if err != nil {
		t.Fatal(err)
	}
	var diff string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		have := g.tables()
		h9, h8, err := control.NormalizeAuthz(have.T9, have.T8)
		if err != nil {
			t.Fatal(err)
		}
		if diff = cmp.Diff(api.Authz{T9: w9, T8: w8}, api.Authz{T9: h9, T8: h8}); diff == "" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s does not hold the tables (-want +got):\n%s", name, diff)
}

var (
	seed9 = []api.T9Row{{Rep: "10.30.0.1", ServiceType: "web"}, {Rep: "10.30.0.2", ServiceType: "video"}}
	seed8 = []api.T8Row{{Device: "IMEI-1", ServiceType: "web", Allowed: true}, {Device: "IMEI-2", ServiceType: "web", Allowed: true},
		{Device: "IMEI-1", ServiceType: "video", Allowed: true}}
)

func authzConfig(dir string, gws ...*authzGW) control.Config {
	cfg := testConfig(dir, nil, nil, nil)
	for i, g := range gws {
		cfg.Gateways[i].API = g.srv.URL
	}
	cfg.Health.Disabled = true
	cfg.Authz.Resync = 0 // the tests below say which trigger they exercise
	cfg.Authz.T9, cfg.Authz.T8 = seed9, seed8
	return cfg
}

// run starts a control process; stop ends it and reports Run's error.
func run(t *testing.T, cfg control.Config) (c *control.Control, cl *api.Client, stop func()) {
	t.Helper()
	c, err := control.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return c, api.NewClient(c.APIAddr().String()), stop
}

func authzStatus(t *testing.T, cl *api.Client) control.AuthzStatus {
	t.Helper()
	var s control.AuthzStatus
	if err := cl.Do(context.Background(), http.MethodGet, "/v1/authz/status", nil, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuthzChangeReachesEveryGateway: the configured tables reach both
// gateways at start; a replacement and row edits through the API reach
// both; the status says both acknowledged the current version.
func TestAuthzChangeReachesEveryGateway(t *testing.T) {
	gw1, gw2 := newAuthzGW(t), newAuthzGW(t)
	_, cl, _ := run(t, authzConfig(t.TempDir(), gw1, gw2))
	ctx := context.Background()
	seed := api.Authz{T9: seed9, T8: seed8}
	gw1.holds(t, "gw1", seed)
	gw2.holds(t, "gw2", seed)

	next := api.Authz{T9: []api.T9Row{{Rep: "10.30.0.2", ServiceType: "video"}, {Rep: "2001:db8::30", ServiceType: "web"}},
		T8: []api.T8Row{{Device: "IMEI-2", ServiceType: "video", Allowed: true}, {Device: "IMEI-1", ServiceType: "video", Allowed: false}}}
	var got api.Authz
	if err := cl.Do(ctx, http.MethodPut, "/v1/authz", next, &got); err != nil {
		t.Fatal(err)
	}
	w9, w8, _ := control.NormalizeAuthz(next.T9, next.T8)
	if d := cmp.Diff(api.Authz{T9: w9, T8: w8}, got); d != "" {
		t.Fatalf("PUT answer (-want +got):\n%s", d)
	}
	if err := cl.Do(ctx, http.MethodGet, "/v1/authz", nil, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(api.Authz{T9: w9, T8: w8}, got); d != "" {
		t.Fatalf("GET after PUT (-want +got):\n%s", d)
	}
	gw1.holds(t, "gw1", next)
	gw2.holds(t, "gw2", next)

	// Row edits: allow, deny (explicit false), remove, a new T9 row.
	steps := []struct {
		method, path string
		body         any
	}{
		{http.MethodPut, "/v1/authz/t8", api.T8Row{Device: "IMEI-1", ServiceType: "video", Allowed: true}},
		{http.MethodPut, "/v1/authz/t8", api.T8Row{Device: "IMEI-3", ServiceType: "web", Allowed: false}},
		{http.MethodDelete, "/v1/authz/t8?device=IMEI-2&service_type=video", nil},
		{http.MethodPut, "/v1/authz/t9", api.T9Row{Rep: "::ffff:10.30.0.1", ServiceType: "web"}},
		{http.MethodDelete, "/v1/authz/t9?rep=2001:db8::30", nil},
	}
	for _, s := range steps {
		if err := cl.Do(ctx, s.method, s.path, s.body, &got); err != nil {
			t.Fatalf("%s %s: %v", s.method, s.path, err)
		}
	}
	want := api.Authz{T9: []api.T9Row{{Rep: "10.30.0.1", ServiceType: "web"}, {Rep: "10.30.0.2", ServiceType: "video"}},
		T8: []api.T8Row{{Device: "IMEI-1", ServiceType: "video", Allowed: true}, {Device: "IMEI-3", ServiceType: "web", Allowed: false}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("after row edits (-want +got):\n%s", d)
	}
	gw1.holds(t, "gw1", want)
	gw2.holds(t, "gw2", want)
	eventually(t, "both gateways in sync in the status", func() bool {
		s := authzStatus(t, cl)
		return s.Managed && len(s.Gateways) == 2 && s.Gateways[0].InSync && s.Gateways[1].InSync &&
			s.Gateways[0].Acked == s.Version && s.Gateways[0].Name == "gw1"
	})
	// The gateways now refuse and allow as set (the real dp.Authz).
	d1 := [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: 30, 14: 0, 15: 2}
	if st, ok := authzCheck(gw1, d1, "IMEI-1"); st != "video" || !ok {
		t.Errorf("gw1: IMEI-1 video: %q %v", st, ok)
	}
	if st, ok := authzCheck(gw2, d1, "IMEI-2"); st != "video" || ok {
		t.Errorf("gw2: IMEI-2 video: %q %v, want refused", st, ok)
	}
}

func authzCheck(g *authzGW, dst [16]byte, dev string) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.authz.Check(dst, dev)
}

// TestAuthzRefusesBadTables: what a gateway would refuse, the control
// process refuses (400) and keeps its tables; what it accepts, a
// gateway accepts.
func TestAuthzRefusesBadTables(t *testing.T) {
	gw1 := newAuthzGW(t)
	_, cl, _ := run(t, authzConfig(t.TempDir(), gw1))
	ctx := context.Background()
	for _, c := range []struct {
		name string
		a    api.Authz
		err  string
	}{
		{"bad address", api.Authz{T9: []api.T9Row{{Rep: "10.30.0", ServiceType: "web"}}}, "t9 rep"},
		{"address with port", api.Authz{T9: []api.T9Row{{Rep: "10.30.0.1:80", ServiceType: "web"}}}, "t9 rep"},
		{"zone", api.Authz{T9: []api.T9Row{{Rep: "fe80::1%eth0", ServiceType: "web"}}}, "zone"},
		{"no service type", api.Authz{T9: []api.T9Row{{Rep: "10.30.0.1"}}}, "service type"},
		{"rep twice", api.Authz{T9: []api.T9Row{{Rep: "10.30.0.1", ServiceType: "a"}, {Rep: "::ffff:10.30.0.1", ServiceType: "b"}}}, "twice"},
		{"no device", api.Authz{T8: []api.T8Row{{ServiceType: "web", Allowed: true}}}, "want a device"},
		{"pair twice", api.Authz{T8: []api.T8Row{{Device: "D", ServiceType: "web", Allowed: true}, {Device: "D", ServiceType: "web"}}}, "twice"},
	} {
		err := cl.Do(ctx, http.MethodPut, "/v1/authz", c.a, nil)
		if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want 400 with %q", c.name, err, c.err)
		}
		// The gateway refuses it too, except a pair listed twice (it
		// takes the last; the control process wants one answer) and a
		// zone (it matches the address without it).
		if _, _, gerr := daemon.AuthzRows(c.a); gerr == nil && c.name != "pair twice" && c.name != "zone" {
			t.Errorf("%s: the gateway accepts what the control process refuses", c.name)
		}
	}
	for _, path := range []string{"/v1/authz/t9?rep=10.99.0.1", "/v1/authz/t8?device=nobody&service_type=web"} {
		if err := cl.Do(ctx, http.MethodDelete, path, nil, nil); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("DELETE %s: %v, want 404", path, err)
		}
	}
	if err := cl.Do(ctx, http.MethodPut, "/v1/authz/t8", map[string]any{"device": "D", "service_type": "web", "allowd": true}, nil); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("unknown field: %v", err)
	}
	var got api.Authz
	if err := cl.Do(ctx, http.MethodGet, "/v1/authz", nil, &got); err != nil {
		t.Fatal(err)
	}
	w9, w8, _ := control.NormalizeAuthz(seed9, seed8)
	if d := cmp.Diff(api.Authz{T9: w9, T8: w8}, got); d != "" {
		t.Fatalf("tables changed by refused requests (-want +got):\n%s", d)
	}
	// Canonical tables are what a gateway takes.
	if _, _, err := daemon.AuthzRows(got); err != nil {
		t.Fatal(err)
	}
	gw1.holds(t, "gw1", got)
}

// TestAuthzGatewayDownThenUp: a gateway that fails every request misses
// two changes; the other gets them; once it answers again the retries
// bring it the latest tables.
func TestAuthzGatewayDownThenUp(t *testing.T) {
	gw1, gw2 := newAuthzGW(t), newAuthzGW(t)
	gw2.setDown(true)
	_, cl, _ := run(t, authzConfig(t.TempDir(), gw1, gw2))
	ctx := context.Background()
	gw1.holds(t, "gw1", api.Authz{T9: seed9, T8: seed8})
	if err := cl.Do(ctx, http.MethodPut, "/v1/authz/t8", api.T8Row{Device: "IMEI-2", ServiceType: "video", Allowed: true}, nil); err != nil {
		t.Fatal(err)
	}
	final := api.Authz{T9: seed9[:1], T8: seed8[:2]}
	if err := cl.Do(ctx, http.MethodPut, "/v1/authz", final, nil); err != nil {
		t.Fatal(err)
	}
	gw1.holds(t, "gw1", final)
	eventually(t, "gw2's failures counted", func() bool {
		s := authzStatus(t, cl)
		return len(s.Gateways) == 2 && s.Gateways[1].Failures >= 2 && !s.Gateways[1].InSync && strings.Contains(s.Gateways[1].LastError, "503")
	})
	if n := gw2.putCount(); n != 0 {
		t.Fatalf("gw2 took %d pushes while down", n)
	}
	gw2.setDown(false)
	gw2.holds(t, "gw2", final)
	eventually(t, "gw2 in sync", func() bool { s := authzStatus(t, cl); return s.Gateways[1].InSync })
}

// TestAuthzGatewayRestartHealth: a gateway that restarts (its probes fail,
// it comes back without the tables) gets them again when the health
// monitor sees it up, with no change of the tables and no resync.
func TestAuthzGatewayRestartHealth(t *testing.T) {
	gw1 := newAuthzGW(t)
	cfg := authzConfig(t.TempDir(), gw1)
	cfg.Health.Disabled = false
	c, cl, _ := run(t, cfg)
	seed := api.Authz{T9: seed9, T8: seed8}
	gw1.holds(t, "gw1", seed)
	eventually(t, "gw1 healthy", func() bool { g, _ := c.Pool.Gateway("gw1"); return g.Health == "up" })
	gw1.setDown(true)
	eventually(t, "gw1 seen down", func() bool { g, _ := c.Pool.Gateway("gw1"); return g.Health == "down" })
	gw1.restart()
	if got := gw1.tables(); len(got.T9)+len(got.T8) != 0 {
		t.Fatalf("restarted gateway holds %+v", got)
	}
	gw1.setDown(false)
	gw1.holds(t, "gw1", seed)
	if s := authzStatus(t, cl); s.Gateways[0].Pushes < 2 {
		t.Fatalf("status %+v", s)
	}
}

// TestAuthzResync: a gateway that lost its tables between two probes is
// found out by the resync (read back, then pushed); one that holds them
// is only read.
func TestAuthzResync(t *testing.T) {
	gw1 := newAuthzGW(t)
	cfg := authzConfig(t.TempDir(), gw1)
	cfg.Authz.Resync = 20 * time.Millisecond
	run(t, cfg)
	seed := api.Authz{T9: seed9, T8: seed8}
	gw1.holds(t, "gw1", seed)
	time.Sleep(100 * time.Millisecond) // several resyncs
	if n := gw1.putCount(); n != 1 {
		t.Fatalf("%d pushes to a gateway holding the tables, want 1", n)
	}
	gw1.restart()
	gw1.holds(t, "gw1", seed)
	if n := gw1.putCount(); n != 2 {
		t.Fatalf("%d pushes, want 2", n)
	}
}

// TestAuthzPersistsAcrossRestart: the tables set through the API survive
// a restart of the control process (a fresh gateway gets them); a row
// the configuration names is reset to the configuration's at start, rows
// it does not name stay; without an authz section the stored tables
// stay as they are.
func TestAuthzPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	gw1 := newAuthzGW(t)
	cfg := authzConfig(dir, gw1)
	_, cl, stop := run(t, cfg)
	ctx := context.Background()
	edits := []api.T8Row{
		{Device: "IMEI-1", ServiceType: "video", Allowed: false}, // named by the config
		{Device: "IMEI-9", ServiceType: "video", Allowed: true},  // not named
	}
	for _, r := range edits {
		if err := cl.Do(ctx, http.MethodPut, "/v1/authz/t8", r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Do(ctx, http.MethodPut, "/v1/authz/t9", api.T9Row{Rep: "10.30.0.9", ServiceType: "video"}, nil); err != nil {
		t.Fatal(err)
	}
	before := authzStatus(t, cl).Version
	stop()

	gw2 := newAuthzGW(t) // a gateway that never had the tables
	cfg2 := authzConfig(dir, gw2)
	_, cl, stop = run(t, cfg2)
	want := api.Authz{T9: append(append([]api.T9Row(nil), seed9...), api.T9Row{Rep: "10.30.0.9", ServiceType: "video"}),
		T8: append(append([]api.T8Row(nil), seed8...), edits[1])}
	var got api.Authz
	if err := cl.Do(ctx, http.MethodGet, "/v1/authz", nil, &got); err != nil {
		t.Fatal(err)
	}
	w9, w8, _ := control.NormalizeAuthz(want.T9, want.T8)
	if d := cmp.Diff(api.Authz{T9: w9, T8: w8}, got); d != "" {
		t.Fatalf("after restart (-want +got):\n%s", d)
	}
	if v := authzStatus(t, cl).Version; v != before+1 {
		t.Errorf("version %d after restart, want %d (the config reset one row)", v, before+1)
	}
	gw2.holds(t, "gw2", want)
	stop()

	// No authz in the config: the stored tables as they are, same version.
	cfg3 := authzConfig(dir, gw1)
	cfg3.Authz.T9, cfg3.Authz.T8 = nil, nil
	_, cl, _ = run(t, cfg3)
	s := authzStatus(t, cl)
	if !s.Managed || s.Version != before+1 {
		t.Errorf("status after a restart without config: %+v", s)
	}
	gw1.holds(t, "gw1", want)
}

// TestAuthzNotManaged: without tables in the config or the store the
// control process pushes nothing (the gateways keep their own); the first
// change through the API makes it the owner.
func TestAuthzNotManaged(t *testing.T) {
	gw1 := newAuthzGW(t)
	own := api.Authz{T9: []api.T9Row{{Rep: "10.30.0.7", ServiceType: "mail"}}, T8: []api.T8Row{}}
	t9, t8, _ := daemon.AuthzRows(own)
	gw1.authz.Replace(t9, t8)
	cfg := authzConfig(t.TempDir(), gw1)
	cfg.Authz.T9, cfg.Authz.T8 = nil, nil
	_, cl, _ := run(t, cfg)
	time.Sleep(100 * time.Millisecond)
	if s := authzStatus(t, cl); s.Managed || s.Version != 0 || gw1.putCount() != 0 {
		t.Fatalf("unmanaged: status %+v, %d pushes", s, gw1.putCount())
	}
	gw1.holds(t, "gw1", own)
	if err := cl.Do(context.Background(), http.MethodPut, "/v1/authz/t8", api.T8Row{Device: "D", ServiceType: "mail", Allowed: true}, nil); err != nil {
		t.Fatal(err)
	}
	gw1.holds(t, "gw1", api.Authz{T8: []api.T8Row{{Device: "D", ServiceType: "mail", Allowed: true}}})
}

// TestAuthzGatewayAddedAndRemoved: a gateway added to T1 at run time gets
// the tables; a removed one's pusher stops.
func TestAuthzGatewayAddedAndRemoved(t *testing.T) {
	gw1, gw3 := newAuthzGW(t), newAuthzGW(t)
	_, cl, _ := run(t, authzConfig(t.TempDir(), gw1))
	ctx := context.Background()
	if err := cl.Do(ctx, http.MethodPut, "/v1/gateways", map[string]string{"name": "gw3", "range": "10.100.3.0/24", "api": gw3.srv.URL}, nil); err != nil {
		t.Fatal(err)
	}
	gw3.holds(t, "gw3", api.Authz{T9: seed9, T8: seed8})
	if err := cl.Do(ctx, http.MethodDelete, "/v1/gateways/gw3", nil, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "gw3 gone from the status", func() bool {
		s := authzStatus(t, cl)
		return len(s.Gateways) == 1 && s.Gateways[0].Name == "gw1"
	})
	n := gw3.putCount()
	if err := cl.Do(ctx, http.MethodPut, "/v1/authz/t8", api.T8Row{Device: "X", ServiceType: "web", Allowed: true}, nil); err != nil {
		t.Fatal(err)
	}
	gw1.holds(t, "gw1", api.Authz{T9: seed9, T8: append(append([]api.T8Row(nil), seed8...), api.T8Row{Device: "X", ServiceType: "web", Allowed: true})})
	if gw3.putCount() != n {
		t.Fatalf("removed gateway still pushed to")
	}
}

// TestAuthzMetrics: the push counters and the in-sync gauge are exported.
func TestAuthzMetrics(t *testing.T) {
	gw1 := newAuthzGW(t)
	c, _, _ := run(t, authzConfig(t.TempDir(), gw1))
	gw1.holds(t, "gw1", api.Authz{T9: seed9, T8: seed8})
	eventually(t, "metrics", func() bool {
		resp, err := http.Get("http://" + c.APIAddr().String() + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), `samepath_control_authz_gateway_in_sync{gateway="gw1"} 1`) &&
			strings.Contains(string(b), `samepath_control_authz_pushes_total{outcome="acked"} 1`) &&
			strings.Contains(string(b), fmt.Sprintf("samepath_control_authz_version %d", 1))
	})
}

// TestExampleConfigAuthz: samepath-control -h's example loads, with its
// authz section.
func TestExampleConfigAuthz(t *testing.T) {
	path := t.TempDir() + "/control.yaml"
	if err := os.WriteFile(path, []byte(control.ExampleConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := control.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Authz.T9) != 2 || len(cfg.Authz.T8) != 2 || cfg.Authz.Resync != 30*time.Second || !cfg.Authz.T8[1].Allowed {
		t.Fatalf("authz from the example: %+v", cfg.Authz)
	}
	// A bad table is refused at load.
	bad := strings.Replace(control.ExampleConfig, "{rep: 10.30.0.2,", "{rep: 10.30.0.1,", 1)
	os.WriteFile(path, []byte(bad), 0o600)
	if _, err := control.LoadConfig(path); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("duplicate T9 row in the config: %v", err)
	}
}
