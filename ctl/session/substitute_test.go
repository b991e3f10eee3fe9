package session

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
)

// subEnv is an env with a second gateway, gw2 (range 10.60.0.0/24), that
// substitutes for gw1 (10.50.0.0/24) in the T4 row of gw1's range while
// subFor says so; gw1 refuses every event until setDown(false).
type subEnv struct {
	*env
	gw2 *fakeGW

	mu     sync.Mutex
	subFor bool
}

func newSubEnv(t *testing.T) *subEnv {
	t.Helper()
	se := &subEnv{gw2: &fakeGW{}, subFor: true}
	e := &env{t: t, dir: t.TempDir(), clk: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, gw: &fakeGW{fail: 1 << 30}}
	e.srv = httptest.NewServer(e.gw)
	t.Cleanup(e.srv.Close)
	srv2 := httptest.NewServer(se.gw2)
	t.Cleanup(srv2.Close)
	gw1Range := netip.MustParsePrefix("10.50.0.0/24")
	e.subs = func(ip netip.Addr) []string {
		se.mu.Lock()
		defer se.mu.Unlock()
		if se.subFor && gw1Range.Contains(ip) {
			return []string{"gw1", "gw2"} // the row names its primary too
		}
		return nil
	}
	e.open()
	if _, err := e.pool.PutGateway(aaa.GatewayConfig{Name: "gw2", Range: "10.60.0.0/24", API: srv2.URL}); err != nil {
		t.Fatal(err)
	}
	se.env = e
	return se
}

func (g *fakeGW) all() []api.SessionEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]api.SessionEvent(nil), g.events...)
}

// waitFor waits until g holds n events and returns them.
func waitFor(t *testing.T, g *fakeGW, n int) []api.SessionEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := g.all()
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway got %+v, want %d events", evs, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestSubstituteGetsEvents (issue 17, part 1): every event of a session
// in gw1's range goes to gw2 too, the substitute of that range's T4 row,
// in order and while gw1 is down (each gateway has its own queue: gw1's
// retries hold nothing up at gw2); gw1 gets the same events once it is
// back. A session in gw2's own range goes to gw2 alone.
func TestSubstituteGetsEvents(t *testing.T) {
	e := newSubEnv(t)
	e.acct(start, "a", "dev-a", "10.50.0.7", 0)
	e.acct(interim, "a", "dev-a", "", 0)
	e.acct(stop, "a", "dev-a", "", idle) // Act -> Dormant
	e.acct(start, "a", "dev-a", "", 0)   // Dormant -> Act
	e.acct(start, "b", "dev-b", "10.60.0.9", 0)
	e.acct(stop, "a", "dev-a", "", userReq) // Act -> Close
	want := []api.SessionEvent{
		{Event: "start", SessionID: "a", DeviceID: "dev-a", IP: "10.50.0.7", Seq: 1},
		{Event: "active", SessionID: "a", DeviceID: "dev-a", IP: "10.50.0.7", Seq: 2},
		{Event: "dormant", SessionID: "a", DeviceID: "dev-a", IP: "10.50.0.7", Seq: 3},
		{Event: "active", SessionID: "a", DeviceID: "dev-a", IP: "10.50.0.7", Seq: 4},
		{Event: "start", SessionID: "b", DeviceID: "dev-b", IP: "10.60.0.9", Seq: 1},
		{Event: "end", SessionID: "a", DeviceID: "dev-a", IP: "10.50.0.7", Seq: 5},
	}
	if d := cmp.Diff(want, waitFor(t, e.gw2, len(want)), noAcctID); d != "" {
		t.Fatalf("events at the substitute while gw1 is down (-want +got):\n%s", d)
	}
	if got := e.gw.all(); len(got) != 0 {
		t.Fatalf("gw1 is down but acknowledged %+v", got)
	}
	// gw2's fake answers before the outbox books the ack: wait for it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		c := e.out.Counters()
		if c.Pending == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox %+v, want gw1's 5 events pending", c)
		}
	}
	e.setDown(false)
	e.out.Wake("gw1")
	var wantGW1 []api.SessionEvent
	for _, ev := range want {
		if ev.SessionID == "a" {
			wantGW1 = append(wantGW1, ev)
		}
	}
	if d := cmp.Diff(wantGW1, dedup(waitFor(t, e.gw, len(wantGW1))), noAcctID); d != "" {
		t.Fatalf("events at gw1 once back (-want +got):\n%s", d)
	}
	e.waitOutbox("every event acknowledged", func(c OutboxCounters) bool { return c.Pending == 0 })
}

// dedup drops repeats of one event (a retry the gateway answered after
// the pusher gave up on it).
func dedup(evs []api.SessionEvent) []api.SessionEvent {
	seen := map[api.SessionEvent]bool{}
	var out []api.SessionEvent
	for _, ev := range evs {
		if !seen[ev] {
			seen[ev] = true
			out = append(out, ev)
		}
	}
	return out
}

// TestResyncSubstitute: a substitute whose T3 copy lacks the sessions of
// the row it substitutes in (it restarted, or became a substitute after
// they started) gets them back from a read-back; once it no longer
// substitutes there, a read-back ends them on it, and leaves its own
// range's sessions alone.
func TestResyncSubstitute(t *testing.T) {
	e := newSubEnv(t)
	e.setDown(false)
	e.acct(start, "a", "dev-a", "10.50.0.7", 0)
	e.acct(stop, "a", "dev-a", "", idle)
	e.acct(start, "b", "dev-b", "10.60.0.9", 0)
	waitFor(t, e.gw2, 3)
	e.waitOutbox("every event acknowledged", func(c OutboxCounters) bool { return c.Pending == 0 })
	a, _ := e.m.Get("a")
	b, _ := e.m.Get("b")

	// gw2 restarted: its copy is empty.
	res := e.m.ResyncGateway("gw2", nil)
	if res.Reasserted != 2 || res.Ended != 0 {
		t.Fatalf("resync of the empty substitute %+v, want 2 reasserted", res)
	}
	if err := e.st.Wait(context.Background(), res.Seq); err != nil {
		t.Fatal(err)
	}
	want := []api.SessionEvent{
		{Event: "dormant", SessionID: "a", DeviceID: "dev-a", IP: "10.50.0.7", Seq: a.Seq + 1},
		{Event: "active", SessionID: "b", DeviceID: "dev-b", IP: "10.60.0.9", Seq: b.Seq + 1},
	}
	if d := cmp.Diff(want, waitFor(t, e.gw2, 5)[3:], noAcctID); d != "" {
		t.Fatalf("resync events at gw2 (-want +got):\n%s", d)
	}
	e.waitOutbox("every event acknowledged", func(c OutboxCounters) bool { return c.Pending == 0 })

	// The T4 row of gw1's range names gw2 no more.
	e.mu.Lock()
	e.subFor = false
	e.mu.Unlock()
	held := []api.GWSession{
		{SessionID: "a", DeviceID: "dev-a", IP: "10.50.0.7", State: "dormant", Seq: a.Seq + 1},
		{SessionID: "b", DeviceID: "dev-b", IP: "10.60.0.9", State: "active", Seq: b.Seq + 1},
	}
	res = e.m.ResyncGateway("gw2", held)
	if res.Reasserted != 0 || res.Ended != 1 {
		t.Fatalf("resync after the T4 change %+v, want 1 ended", res)
	}
	if err := e.st.Wait(context.Background(), res.Seq); err != nil {
		t.Fatal(err)
	}
	end := api.SessionEvent{Event: "end", SessionID: "a", DeviceID: "dev-a", IP: "10.50.0.7", Seq: a.Seq + 2}
	if d := cmp.Diff(end, waitFor(t, e.gw2, 6)[5], noAcctID); d != "" {
		t.Fatalf("resync end at gw2 (-want +got):\n%s", d)
	}
	// gw1 still holds a: a read-back of gw1 finds its copy in line.
	if res := e.m.ResyncGateway("gw1", []api.GWSession{held[0]}); res.Reasserted != 0 || res.Ended != 0 {
		t.Fatalf("resync of gw1 %+v, want nothing", res)
	}
}

// noAcctID leaves the events' Acct-Session-Id out of these comparisons:
// what they check is who gets which event (the id is tested with the
// accounting records).
var noAcctID = cmpopts.IgnoreFields(api.SessionEvent{}, "AcctSessionID")
