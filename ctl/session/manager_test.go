package session

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeGW records SessionEvents like a samepathd in role gw; fail makes it answer 503.
type fakeGW struct {
	mu     sync.Mutex
	events []api.SessionEvent
	fail   int // next N requests fail
}

func (g *fakeGW) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.URL.Path != "/v1/sessions/events" || r.Method != http.MethodPost {
		http.Error(w, `{"error":"no"}`, 404)
		return
	}
	if g.fail > 0 {
		g.fail--
		http.Error(w, `{"error":"busy"}`, 503)
		return
	}
	var ev api.SessionEvent
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, `{"error":"bad"}`, 400)
		return
	}
	g.events = append(g.events, ev)
	w.Write([]byte(`{"ok":true}`))
}

func (g *fakeGW) got() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, e := range g.events {
		out = append(out, e.Event)
	}
	return out
}

type env struct {
	t    *testing.T
	dir  string
	clk  *clock
	st   *store.Store
	pool *aaa.Pool
	out  *Outbox
	m    *Manager
	gw   *fakeGW
	srv  *httptest.Server
	stop context.CancelFunc
	// backoff, when set, is the outbox's retry back-off (min and max);
	// otherwise a millisecond or few.
	backoff time.Duration
	// subs, when set, is the manager's Config.Substitutes.
	subs func(netip.Addr) []string
}

func newEnv(t *testing.T, dir string) *env {
	t.Helper()
	e := &env{t: t, dir: dir, clk: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, gw: &fakeGW{}}
	e.srv = httptest.NewServer(e.gw)
	t.Cleanup(e.srv.Close)
	e.open()
	return e
}

func (e *env) open() {
	t := e.t
	var err error
	e.st, err = store.Open(store.DefaultConfig(e.dir))
	if err != nil {
		t.Fatal(err)
	}
	e.pool = aaa.NewPool(e.st, e.clk.Now, time.Minute)
	if err := e.pool.Load(e.st); err != nil {
		t.Fatal(err)
	}
	if len(e.pool.Gateways()) == 0 {
		if _, err := e.pool.PutGateway(aaa.GatewayConfig{Name: "gw1", Range: "10.50.0.0/24", API: e.srv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	oc := OutboxConfig{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	if e.backoff > 0 {
		oc.MinBackoff, oc.MaxBackoff = e.backoff, e.backoff
	}
	e.out = NewOutbox(oc, e.st, func(gw string) (string, string, bool) {
		g, ok := e.pool.Gateway(gw)
		return g.API, "", ok && g.API != ""
	})
	if err := e.out.Load(); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.InterimTimeout, cfg.DormantTimeout, cfg.Now = 10*time.Minute, time.Hour, e.clk.Now
	cfg.Substitutes = e.subs
	e.m, err = New(cfg, e.st, e.pool, e.out)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.out.Start(ctx)
	out, st := e.out, e.st
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); out.Wait(); st.Close() }) }
	e.stop = stop
	t.Cleanup(stop)
}

func (e *env) acct(status rfc2866.AcctStatusType, id, dev string, ip string, cause rfc2866.AcctTerminateCause) {
	e.t.Helper()
	r := &aaa.AcctRequest{Status: status, SessionID: id, Device: dev, Cause: cause, NAS: "nas1"}
	if ip != "" {
		r.IP = netip.MustParseAddr(ip)
	}
	seq, err := e.m.Account(r)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.Wait(context.Background(), seq); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) state(id string) State {
	e.t.Helper()
	if err := e.st.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	s, ok := e.m.Get(id)
	if !ok {
		return None
	}
	return s.State
}

func (e *env) tick() {
	e.t.Helper()
	if err := e.st.Wait(context.Background(), e.m.Tick()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitEvents(n int) []string {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := e.gw.got(); len(got) >= n {
			return got
		}
		time.Sleep(2 * time.Millisecond)
	}
	e.t.Fatalf("gateway got %v, want %d events", e.gw.got(), n)
	return nil
}

// waitUniqueEvents is waitEvents counting repeats of one event (same
// session, Seq and kind) once.
func (e *env) waitUniqueEvents(n int) []string {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var out []string
	for time.Now().Before(deadline) {
		e.gw.mu.Lock()
		seen := map[api.SessionEvent]bool{}
		out = out[:0]
		for _, ev := range e.gw.events {
			if !seen[ev] {
				seen[ev] = true
				out = append(out, ev.Event)
			}
		}
		e.gw.mu.Unlock()
		if len(out) >= n {
			return out
		}
		time.Sleep(2 * time.Millisecond)
	}
	e.t.Fatalf("gateway got %v, want %d distinct events", out, n)
	return nil
}

const (
	start   = rfc2866.AcctStatusType_Value_Start
	interim = rfc2866.AcctStatusType_Value_InterimUpdate
	stop    = rfc2866.AcctStatusType_Value_Stop
	idle    = rfc2866.AcctTerminateCause_Value_IdleTimeout
	userReq = rfc2866.AcctTerminateCause_Value_UserRequest
)

func TestFSMTable(t *testing.T) {
	// Every (state, event) pair: exactly the FIG. 11 edges are allowed.
	want := map[edge]State{
		{None, EvStart}: Act, {Act, EvInterim}: Act, {Act, EvStopIdle}: Dormant, {Dormant, EvStart}: Act,
		{Act, EvInterimTimeout}: Close, {Act, EvLogout}: Close, {Dormant, EvSessionTimeout}: Close,
		{Dormant, EvLogout}: Close, {Close, EvLogWritten}: None,
	}
	for _, s := range []State{None, Act, Dormant, Close} {
		for ev := EvStart; ev <= EvLogWritten; ev++ {
			got, ok := Next(s, ev)
			w, wok := want[edge{s, ev}]
			if ok != wok || got != w {
				t.Errorf("Next(%s, %s) = %s %v, want %s %v", s, ev, got, ok, w, wok)
			}
		}
	}
}

// TestFIG11Edges walks every edge of FIG. 11 through accounting and the
// timers, with a fake clock.
func TestFIG11Edges(t *testing.T) {
	e := newEnv(t, t.TempDir())
	ip := "10.50.0.7"
	// 1: None -> Act on Start.
	e.acct(start, "s1", "dev1", ip, 0)
	if got := e.state("s1"); got != Act {
		t.Fatalf("after start: %s", got)
	}
	// 6: Act -> Act on Interim (timer pushed forward).
	e.clk.Add(9 * time.Minute)
	e.acct(interim, "s1", "dev1", ip, 0)
	e.clk.Add(9 * time.Minute)
	e.tick()
	if got := e.state("s1"); got != Act {
		t.Fatalf("interim did not refresh the interim timer: %s", got)
	}
	// 2: Act -> Dormant on Stop(Idle-Timeout).
	e.acct(stop, "s1", "dev1", ip, idle)
	if got := e.state("s1"); got != Dormant {
		t.Fatalf("after idle stop: %s", got)
	}
	// Interim after Stop and a duplicate Stop: counted, no transition.
	e.acct(interim, "s1", "dev1", ip, 0)
	e.acct(stop, "s1", "dev1", ip, idle)
	if got := e.state("s1"); got != Dormant {
		t.Fatalf("interim/duplicate stop moved the session: %s", got)
	}
	// 5: Dormant -> Act on Start (FIG. 31), under a new Acct-Session-Id.
	e.acct(start, "s1b", "dev1", ip, 0)
	if got := e.state("s1"); got != Act {
		t.Fatalf("after restart: %s", got)
	}
	// 3: Act -> Close on logout, then 4: Close -> None once logged.
	e.acct(stop, "s1b", "dev1", ip, userReq)
	if got := e.state("s1"); got != None {
		t.Fatalf("after logout: %s", got)
	}
	if _, ok := e.pool.ByDevice("dev1"); ok {
		t.Fatal("address not released at None")
	}
	// 8: Act -> Close on interim timer expiry.
	e.acct(start, "s2", "dev2", "10.50.0.8", 0)
	e.clk.Add(10*time.Minute + time.Second)
	e.tick()
	if got := e.state("s2"); got != None {
		t.Fatalf("interim timer: %s", got)
	}
	// 7: Dormant -> Close on session timer expiry.
	e.acct(start, "s3", "dev3", "10.50.0.9", 0)
	e.acct(stop, "s3", "dev3", "", idle)
	e.clk.Add(59 * time.Minute)
	e.tick()
	if got := e.state("s3"); got != Dormant {
		t.Fatalf("session timer fired early: %s", got)
	}
	e.clk.Add(2 * time.Minute)
	e.tick()
	if got := e.state("s3"); got != None {
		t.Fatalf("session timer: %s", got)
	}
	// Dormant -> Close on logout.
	e.acct(start, "s4", "dev4", "10.50.0.10", 0)
	e.acct(stop, "s4", "dev4", "", idle)
	e.acct(stop, "s4", "dev4", "", userReq)
	if got := e.state("s4"); got != None {
		t.Fatalf("dormant logout: %s", got)
	}
	// Unknown sessions: counted, no crash.
	e.acct(interim, "nope", "devx", "", 0)
	e.acct(stop, "nope", "devx", "", userReq)

	c := e.m.Counters()
	wantT := map[string]uint64{"None->Act": 4, "Act->Act": 1, "Act->Dormant": 3, "Dormant->Act": 1, "Act->Close": 2, "Dormant->Close": 2, "Close->None": 4}
	if d := cmp.Diff(wantT, c.Transitions); d != "" {
		t.Errorf("transitions (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]uint64{"Dormant+interim": 1, "Dormant+stop-idle": 1}, c.Invalid); d != "" {
		t.Errorf("invalid (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]uint64{"interim": 1, "stop": 1}, c.Unknown); d != "" {
		t.Errorf("unknown (-want +got):\n%s", d)
	}
	// The session log has one record per close, with its cause.
	f, err := os.Open(e.st.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var causes []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r LogRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.State != Close || r.Closed.IsZero() {
			t.Fatalf("log record %+v", r)
		}
		causes = append(causes, r.ID+":"+r.Cause)
	}
	if d := cmp.Diff([]string{"s1:User-Request", "s2:Interim-Timeout", "s3:Session-Timeout", "s4:User-Request"}, causes); d != "" {
		t.Errorf("session log (-want +got):\n%s", d)
	}
	// Every transition reached the gateway, in order, with increasing Seq.
	want := []string{"start", "active", "dormant", "active", "end", "start", "end", "start", "dormant", "end", "start", "dormant", "end"}
	got := e.waitEvents(len(want))
	e.gw.mu.Lock()
	last := map[string]uint64{}
	for _, ev := range e.gw.events {
		if ev.Seq <= last[ev.SessionID] {
			t.Errorf("session %s: seq %d after %d", ev.SessionID, ev.Seq, last[ev.SessionID])
		}
		last[ev.SessionID] = ev.Seq
	}
	e.gw.mu.Unlock()
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("events (-want +got):\n%s", d)
	}
}

func TestOutboxRetriesUntilAcked(t *testing.T) {
	e := newEnv(t, t.TempDir())
	e.gw.mu.Lock()
	e.gw.fail = 3
	e.gw.mu.Unlock()
	e.acct(start, "s1", "dev1", "10.50.0.7", 0)
	e.acct(stop, "s1", "dev1", "", idle)
	if d := cmp.Diff([]string{"start", "dormant"}, e.waitEvents(2)); d != "" {
		t.Fatalf("events (-want +got):\n%s", d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.out.Counters().Pending != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if c := e.out.Counters(); c.Failures != 3 || c.Acked != 2 || c.Pending != 0 {
		t.Fatalf("outbox counters %+v", c)
	}
	// Acknowledged events leave the durable outbox.
	e.st.Sync(context.Background())
	n := 0
	e.st.ForEach(store.BucketOutbox, func(k, v []byte) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d events left in the outbox", n)
	}
}

func TestRestartKeepsSessionsAndOutbox(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir)
	e.gw.mu.Lock()
	e.gw.fail = 1 << 30 // gateway down: events stay in the outbox
	e.gw.mu.Unlock()
	e.acct(start, "s1", "dev1", "10.50.0.7", 0)
	e.acct(start, "s2", "dev2", "10.50.0.8", 0)
	e.acct(stop, "s2", "dev2", "", idle)
	before := e.m.List()
	e.stop()
	e.gw.mu.Lock()
	e.gw.fail = 0
	e.gw.mu.Unlock()
	e.open()
	if d := cmp.Diff(before, e.m.List(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Fatalf("T3 after restart (-want +got):\n%s", d)
	}
	// At least once: a request the stopped outbox abandoned may still reach
	// the gateway after it came back (the gateway drops the repeat by Seq),
	// so repeats of one (session, Seq) count once.
	if d := cmp.Diff([]string{"start", "start", "dormant"}, e.waitUniqueEvents(3)); d != "" {
		t.Fatalf("outbox after restart (-want +got):\n%s", d)
	}
	// Timers survive too: s1's interim timer fires after the restart.
	e.clk.Add(11 * time.Minute)
	e.tick()
	if got := e.state("s1"); got != None {
		t.Fatalf("s1 after its interim timer: %s", got)
	}
}

func TestSupersededAndTerminate(t *testing.T) {
	e := newEnv(t, t.TempDir())
	e.acct(start, "s1", "dev1", "10.50.0.7", 0)
	e.acct(start, "s2", "dev1", "10.50.0.7", 0) // the NAS lost s1
	if e.state("s1") != None || e.state("s2") != Act {
		t.Fatalf("s1 %s s2 %s", e.state("s1"), e.state("s2"))
	}
	if a, ok := e.pool.ByDevice("dev1"); !ok || !a.Bound || a.Session != "s2" {
		t.Fatalf("assignment after supersede: %+v %v", a, ok)
	}
	seq, err := e.m.Terminate("s2", "")
	if err != nil {
		t.Fatal(err)
	}
	e.st.Wait(context.Background(), seq)
	if e.state("s2") != None {
		t.Fatal("terminate did not close")
	}
	if _, err := e.m.Terminate("s2", ""); err == nil {
		t.Fatal("terminated a missing session")
	}
}

// TestEventsCarryAcctSessionID (issue 18): each gateway event names the
// Acct-Session-Id the session runs under, the new one after a resume
// under a new id (FIG. 31), so the gateway's T10 records join RADIUS
// accounting.
func TestEventsCarryAcctSessionID(t *testing.T) {
	e := newEnv(t, t.TempDir())
	ip := "10.50.0.7"
	e.acct(start, "s1", "dev1", ip, 0)
	e.acct(stop, "s1", "dev1", ip, idle)
	e.acct(start, "s1b", "dev1", ip, 0)
	e.acct(stop, "s1b", "dev1", ip, userReq)
	e.waitUniqueEvents(4)
	e.gw.mu.Lock()
	defer e.gw.mu.Unlock()
	var got []string
	seen := map[api.SessionEvent]bool{}
	for _, ev := range e.gw.events {
		if !seen[ev] {
			seen[ev] = true
			got = append(got, ev.Event+" "+ev.SessionID+" "+ev.AcctSessionID)
		}
	}
	want := []string{"start s1 s1", "dormant s1 s1", "active s1 s1b", "end s1 s1b"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("events (-want +got):\n%s", d)
	}
}
