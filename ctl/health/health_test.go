package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"samepath/ctl/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFlapDamping(t *testing.T) {
	var fail bool
	var changes []string
	m, err := NewMonitor(Config{Interval: time.Second, Timeout: time.Second, Fall: 3, Rise: 2},
		func() []Target { return []Target{{Kind: KindGateway, Name: "gw1", URL: "x"}} },
		func(ctx context.Context, t Target) error {
			if fail {
				return errors.New("refused")
			}
			return nil
		},
		func(t Target, up bool) {
			s := "down"
			if up {
				s = "up"
			}
			changes = append(changes, t.Name+":"+s)
		})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	seq := []bool{false, false /*up*/, true, false, true, true, false /*no change: 2 failures only*/, true, true, true /*down*/, false /*one success: not up*/, true, true, true, false, false /*up*/}
	for _, f := range seq {
		fail = f
		m.Round(ctx)
	}
	if d := cmp.Diff([]string{"gw1:up", "gw1:down", "gw1:up"}, changes); d != "" {
		t.Fatalf("changes (-want +got):\n%s", d)
	}
}

func TestHTTPProbeAndLBSync(t *testing.T) {
	var mu sync.Mutex
	healthy := true
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/healthz" || !healthy {
			w.WriteHeader(503)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer gw.Close()
	// Two fake LBs recording SetGatewayState; the second fails twice first.
	type lbRec struct {
		mu    sync.Mutex
		got   []api.GatewayState
		fails int
	}
	mk := func(rec *lbRec) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if r.URL.Path != "/v1/gateways/state" || r.Method != http.MethodPut {
				w.WriteHeader(404)
				return
			}
			if rec.fails > 0 {
				rec.fails--
				w.WriteHeader(503)
				return
			}
			var gs api.GatewayState
			json.NewDecoder(r.Body).Decode(&gs)
			rec.got = append(rec.got, gs)
			w.Write([]byte(`{"ok":true}`))
		}))
	}
	r1, r2 := &lbRec{}, &lbRec{fails: 2}
	lb1, lb2 := mk(r1), mk(r2)
	defer lb1.Close()
	defer lb2.Close()
	sync := NewLBSync([]LB{{Name: "lb1", URL: lb1.URL}, {Name: "lb2", URL: lb2.URL}}, 0, nil)
	sync.minBackoff = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); sync.Wait() }()
	sync.Start(ctx)
	mac := "02:00:00:00:00:01"
	m, _ := NewMonitor(Config{Interval: time.Second, Timeout: time.Second, Fall: 2, Rise: 1},
		func() []Target { return []Target{{Kind: KindGateway, Name: "gw1", URL: HealthURL(gw.URL)}} },
		HTTPProber(http.DefaultClient),
		func(t Target, up bool) {
			st := api.StateDown
			if up {
				st = api.StateUp
			}
			sync.Set(mac, st)
		})
	m.Round(ctx) // up
	mu.Lock()
	healthy = false
	mu.Unlock()
	m.Round(ctx)
	m.Round(ctx) // down
	want := []api.GatewayState{{MAC: mac, State: "up"}, {MAC: mac, State: "down"}}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r1.mu.Lock()
		r2.mu.Lock()
		g1, g2 := append([]api.GatewayState(nil), r1.got...), append([]api.GatewayState(nil), r2.got...)
		r1.mu.Unlock()
		r2.mu.Unlock()
		if len(g2) > 0 && g2[len(g2)-1].State == "down" && len(g1) > 0 && g1[len(g1)-1].State == "down" {
			// LB1 saw up then down (or only down if coalesced); the last word is down everywhere.
			if len(g1) > 2 {
				t.Fatalf("lb1 got %v", g1)
			}
			if len(g1) == 2 && !cmp.Equal(g1, want) {
				t.Fatalf("lb1 got %v", g1)
			}
			st := m.Statuses()
			if len(st) != 1 || st[0].Up == nil || *st[0].Up || st[0].LastError == "" {
				t.Fatalf("status %+v", st)
			}
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("LBs did not converge: %v / %v", r1.got, r2.got)
}

// Desired is what Set recorded, latest state per MAC, sorted.
func TestLBSyncDesired(t *testing.T) {
	s := NewLBSync(nil, 0, nil)
	if got := s.Desired(); len(got) != 0 {
		t.Fatalf("fresh syncer: %v, want none", got)
	}
	s.Set("02:00:00:00:00:02", api.StateUp)
	s.Set("02:00:00:00:00:01", api.StateUp)
	s.Set("02:00:00:00:00:01", api.StateDown)
	s.Set("", api.StateDown) // a gateway without a MAC is not an LB's business
	want := []api.GatewayState{{MAC: "02:00:00:00:00:01", State: api.StateDown}, {MAC: "02:00:00:00:00:02", State: api.StateUp}}
	if diff := cmp.Diff(want, s.Desired()); diff != "" {
		t.Errorf("desired (-want +got):\n%s", diff)
	}
}

// lockedBuf is a log destination safe for the pushers.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestLBSyncLogsFailedPush (issue 18): an LB answering 401 (a missing
// token) is logged with the status, once per failing run, not only
// counted for samepathctl health.
func TestLBSyncLogsFailedPush(t *testing.T) {
	var calls sync.WaitGroup
	calls.Add(3)
	var n int
	var mu sync.Mutex
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		if n <= 3 {
			defer calls.Done()
		}
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"missing bearer token"}`))
	}))
	defer lb.Close()
	var buf lockedBuf
	s := NewLBSync([]LB{{Name: "lb1", URL: lb.URL}}, 0, slog.New(slog.NewJSONHandler(&buf, nil)))
	s.minBackoff = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	s.Start(ctx)
	s.Set("02:00:00:00:00:01", api.StateUp)
	calls.Wait()
	cancel()
	s.Wait()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 1 {
		t.Fatalf("%d lines for one failing run, want 1:\n%s", len(lines), buf.String())
	}
	l := lines[0]
	if l["msg"] != "T4 gateway state push failed" || l["status"] != float64(401) || l["target"] != "lb1" || !strings.Contains(l["err"].(string), "missing bearer token") {
		t.Fatalf("line %v", l)
	}
}

// TestSyncState: the monitor shows each gateway's state sync (readiness,
// lag, bindings held for peers, takeovers, failbacks) beside its health,
// also while the gateway is kept down because it is still syncing (503),
// and reports each takeover and failback once, with the peers whose
// addresses moved; a failed read keeps the last state and says why.
func TestSyncState(t *testing.T) {
	var healthErr error
	var cur *api.GWSync
	var syncErr error
	var events []SyncEvent
	m, err := NewMonitor(Config{Interval: time.Second, Timeout: time.Second, Fall: 1, Rise: 1},
		func() []Target {
			return []Target{{Kind: KindGateway, Name: "gw1", URL: "x"}, {Kind: KindServer, Name: "s1", URL: "y"}}
		},
		func(context.Context, Target) error { return healthErr }, func(Target, bool) {})
	if err != nil {
		t.Fatal(err)
	}
	probed := map[string]int{}
	m.SetSync(func(_ context.Context, tg Target) (*api.GWSync, error) {
		probed[tg.Name]++
		if cur == nil {
			return nil, syncErr
		}
		c := *cur
		c.Peers = append([]api.GWSyncPeer(nil), cur.Peers...)
		return &c, syncErr
	}, func(e SyncEvent) { events = append(events, e) })
	ctx := context.Background()
	gw1 := func() Status {
		for _, s := range m.Statuses() {
			if s.Name == "gw1" {
				return s
			}
		}
		t.Fatal("no gw1")
		return Status{}
	}

	// Returning, not synced yet: down, and the state says why.
	healthErr = errors.New("status 503 Service Unavailable")
	cur = &api.GWSync{Ready: false, Peers: []api.GWSyncPeer{{Name: "gw2", Connected: true, LagNS: 3e6}}}
	m.Round(ctx)
	if s := gw1(); s.Up == nil || *s.Up || s.Sync == nil || s.Sync.Ready || s.Sync.Peers[0].LagNS != 3e6 {
		t.Fatalf("syncing gw1: %+v", s)
	}
	healthErr = nil
	cur = &api.GWSync{Ready: true, Peers: []api.GWSyncPeer{{Name: "gw2", Connected: true, Ready: true, LagNS: 1e6}}}
	m.Round(ctx)
	// gw2 dies: gw1 takes its addresses and holds its bindings.
	cur = &api.GWSync{Ready: true, Held: 3, Takeovers: 1, Peers: []api.GWSyncPeer{{Name: "gw2", TakenOver: true, LagNS: 1e6}}}
	m.Round(ctx)
	m.Round(ctx) // no change: no event
	if s := gw1(); s.Sync == nil || s.Sync.Held != 3 || s.Sync.Takeovers != 1 || !s.Sync.Peers[0].TakenOver {
		t.Fatalf("gw1 after the takeover: %+v", s.Sync)
	}
	// A failed read keeps the state.
	syncErr = errors.New("refused")
	m.Round(ctx)
	if s := gw1(); s.Sync == nil || s.Sync.Held != 3 || s.SyncError != "refused" {
		t.Fatalf("gw1 after a failed read: %+v %q", s.Sync, s.SyncError)
	}
	syncErr = nil
	// gw2 returns: failback.
	cur = &api.GWSync{Ready: true, Takeovers: 1, Failbacks: 1, Peers: []api.GWSyncPeer{{Name: "gw2", Connected: true, Ready: true}}}
	m.Round(ctx)
	// A takeover and its failback between two reads: counted, no peer shown.
	cur = &api.GWSync{Ready: true, Takeovers: 2, Failbacks: 2, Peers: []api.GWSyncPeer{{Name: "gw2", Connected: true, Ready: true}}}
	m.Round(ctx)
	// gw1 restarts: its counters start again; nothing moved.
	cur = &api.GWSync{Ready: true, Peers: []api.GWSyncPeer{{Name: "gw2", Connected: true, Ready: true}}}
	m.Round(ctx)
	want := []SyncEvent{
		{Gateway: "gw1", Kind: EventTakeover, Peers: []string{"gw2"}, Count: 1, Total: 1},
		{Gateway: "gw1", Kind: EventFailback, Peers: []string{"gw2"}, Count: 1, Total: 1},
		{Gateway: "gw1", Kind: EventTakeover, Count: 1, Total: 2},
		{Gateway: "gw1", Kind: EventFailback, Count: 1, Total: 2},
	}
	if d := cmp.Diff(want, events); d != "" {
		t.Fatalf("events (-want +got):\n%s", d)
	}
	if probed["s1"] != 0 {
		t.Fatalf("sync state read of a server target: %v", probed)
	}
	// A gateway without state sync: no state, no error.
	cur = nil
	m.Round(ctx)
	if s := gw1(); s.Sync != nil || s.SyncError != "" {
		t.Fatalf("gw1 without sync: %+v %q", s.Sync, s.SyncError)
	}
}
