package session

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// newDownEnv is an env whose outbox backs off for an hour and whose
// gateway refuses every event until setDown(false).
func newDownEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clk: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, gw: &fakeGW{fail: 1 << 30}, backoff: time.Hour}
	e.srv = httptest.NewServer(e.gw)
	t.Cleanup(e.srv.Close)
	e.open()
	return e
}

func (e *env) setDown(down bool) {
	e.gw.mu.Lock()
	defer e.gw.mu.Unlock()
	e.gw.fail = 0
	if down {
		e.gw.fail = 1 << 30
	}
}

// waitOutbox waits until the outbox counters satisfy ok.
func (e *env) waitOutbox(what string, ok func(OutboxCounters) bool) OutboxCounters {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := e.out.Counters()
		if ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("outbox %+v: want %s", c, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWakeDeliversAtOnce (issue 11, defect 2): events for a gateway that
// is down wait in a back-off of an hour; when its health recovers (Wake)
// they are delivered at once, in order, without a failure more. Only the
// wakeup can deliver them before the test's deadline.
func TestWakeDeliversAtOnce(t *testing.T) {
	e := newDownEnv(t)
	e.acct(start, "s1", "dev1", "10.50.0.7", 0)
	e.waitOutbox("the first push failed", func(c OutboxCounters) bool { return c.Failures == 1 })
	// More events while the pusher sleeps: they queue behind, and do not
	// cut the back-off short.
	e.acct(start, "s2", "dev2", "10.50.0.8", 0)
	e.acct(stop, "s1", "dev1", "", idle)
	if c := e.out.Counters(); c.Pending != 3 || c.Acked != 0 || c.Failures != 1 {
		t.Fatalf("outbox while the gateway is down: %+v", c)
	}
	e.out.Wake("gw2") // another gateway: nothing pending, nothing happens
	e.setDown(false)
	e.out.Wake("gw1")
	c := e.waitOutbox("every event acknowledged", func(c OutboxCounters) bool { return c.Pending == 0 })
	if c.Acked != 3 || c.Failures != 1 || c.Wakeups != 1 {
		t.Fatalf("outbox after the wakeup: %+v, want 3 acked after 1 failure and 1 wakeup", c)
	}
	if d := cmp.Diff([]string{"start", "start", "dormant"}, e.gw.got()); d != "" {
		t.Fatalf("events at the gateway (-want +got):\n%s", d)
	}
	// The back-off starts from the minimum again (here also an hour):
	// the gateway going down again costs one failure, and a recovery one
	// wakeup.
	e.setDown(true)
	e.acct(stop, "s2", "dev2", "", idle)
	e.waitOutbox("a failure more", func(c OutboxCounters) bool { return c.Failures == 2 })
	e.setDown(false)
	e.out.Wake("gw1")
	c = e.waitOutbox("the dormant acknowledged", func(c OutboxCounters) bool { return c.Pending == 0 })
	if c.Acked != 4 || c.Failures != 2 || c.Wakeups != 2 {
		t.Fatalf("outbox after the second wakeup: %+v", c)
	}
}

// TestResyncLeavesPendingToOutbox (issue 11, defect 2): a read-back of a
// recovered gateway's empty copy taken while the outbox still holds the
// gateway's events queues nothing for those sessions (the backlog brings
// the copy in line); once the backlog is acknowledged, a read-back of an
// empty copy (the gateway restarted again) reasserts them.
func TestResyncLeavesPendingToOutbox(t *testing.T) {
	e := newDownEnv(t)
	e.acct(start, "a", "dev-a", "10.50.0.1", 0)
	e.acct(start, "b", "dev-b", "10.50.0.2", 0)
	e.waitOutbox("the first push failed", func(c OutboxCounters) bool { return c.Failures == 1 })
	res := e.m.ResyncGateway("gw1", nil)
	if res.Reasserted != 0 || res.Ended != 0 || res.Pending != 2 {
		t.Fatalf("resync with a backlog: %+v, want both sessions left to the outbox", res)
	}
	e.setDown(false)
	e.out.Wake("gw1")
	e.waitOutbox("the backlog acknowledged", func(c OutboxCounters) bool { return c.Pending == 0 })
	if d := cmp.Diff([]string{"start", "start"}, e.gw.got()); d != "" {
		t.Fatalf("events at the gateway (-want +got):\n%s", d)
	}
	res = e.m.ResyncGateway("gw1", nil)
	if res.Reasserted != 2 || res.Pending != 0 {
		t.Fatalf("resync of an empty copy without a backlog: %+v", res)
	}
	e.waitOutbox("the repairs acknowledged", func(c OutboxCounters) bool { return c.Acked == 4 })
	if d := cmp.Diff([]string{"start", "start", "active", "active"}, e.gw.got()); d != "" {
		t.Fatalf("events at the gateway (-want +got):\n%s", d)
	}
}
