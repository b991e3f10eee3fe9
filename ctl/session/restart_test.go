package session

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRestartAfterOutage (issue 11, defect 3): the manager is down for
// longer than the interim timeout. Its downtime does not count: after the
// restart the Act session whose interim timer had a minute left stays
// Act, keeps its address and pushes no end, for the grace period (the
// interim timeout: the NAS's next Interim-Update may come that late);
// without an Interim-Update by then it closes. The Dormant session's
// timer moves later by the downtime, durably.
func TestRestartAfterOutage(t *testing.T) {
	e := newEnv(t, t.TempDir()) // interim timeout 10m, dormant timeout 1h
	t0 := e.clk.Now()
	e.acct(start, "s1", "dev1", "10.50.0.7", 0)
	e.acct(start, "s2", "dev2", "10.50.0.8", 0)
	e.acct(stop, "s2", "dev2", "", idle)
	e.clk.Add(9 * time.Minute)
	e.tick() // alive at t0+9m; s1 has a minute left
	if got := e.state("s1"); got != Act {
		t.Fatalf("s1 before the outage: %s", got)
	}
	e.waitEvents(3)
	e.stop()
	e.clk.Add(11 * time.Minute) // down longer than the interim timeout
	e.open()
	restart := e.clk.Now()

	e.tick()
	if got := e.state("s1"); got != Act {
		t.Fatalf("s1 right after the restart: %s", got)
	}
	s1, _ := e.m.Get("s1")
	if want := restart.Add(10 * time.Minute); !s1.Deadline.Equal(want) {
		t.Fatalf("s1's interim timer %v after the restart, want the grace's end %v", s1.Deadline, want)
	}
	s2, _ := e.m.Get("s2")
	if want := t0.Add(time.Hour + 11*time.Minute); !s2.Deadline.Equal(want) {
		t.Fatalf("s2's session timer %v after the restart, want %v (moved by the downtime)", s2.Deadline, want)
	}
	// Just before the grace ends: still Act, address held, no end pushed.
	e.clk.Add(10*time.Minute - time.Second)
	e.tick()
	if got := e.state("s1"); got != Act {
		t.Fatalf("s1 within the grace: %s", got)
	}
	if a, ok := e.pool.ByDevice("dev1"); !ok || !a.Bound || a.Session != "s1" {
		t.Fatalf("s1's address within the grace: %+v %v", a, ok)
	}
	if c := e.out.Counters(); c.Queued != 0 {
		t.Fatalf("outbox within the grace %+v: queued an event", c)
	}
	if d := cmp.Diff([]string{"start", "start", "dormant"}, e.gw.got()); d != "" {
		t.Fatalf("events within the grace (-want +got):\n%s", d)
	}
	if got := e.m.Counters().Transitions["Act->Close"]; got != 0 {
		t.Fatalf("%d sessions closed within the grace", got)
	}
	// A second restart without downtime keeps the moved timers (they are
	// durable); s1 gets a grace from this restart.
	e.stop()
	e.open()
	if s, _ := e.m.Get("s2"); !s.Deadline.Equal(s2.Deadline) {
		t.Fatalf("s2's session timer %v after a second restart, want %v", s.Deadline, s2.Deadline)
	}
	// No Interim-Update came: past the first grace plus the second's.
	e.clk.Add(10*time.Minute + time.Second)
	e.tick()
	if got := e.state("s1"); got != None {
		t.Fatalf("s1 without an Interim-Update after the grace: %s", got)
	}
	if _, ok := e.pool.ByDevice("dev1"); ok {
		t.Fatal("s1's address not released after its interim timer")
	}
	if d := cmp.Diff([]string{"start", "start", "dormant", "end"}, e.waitUniqueEvents(4)); d != "" {
		t.Fatalf("events (-want +got):\n%s", d)
	}
	if got := e.state("s2"); got != Dormant {
		t.Fatalf("s2 before its moved session timer: %s", got)
	}
	e.clk.Set(s2.Deadline.Add(time.Second))
	e.tick()
	if got := e.state("s2"); got != None {
		t.Fatalf("s2 after its moved session timer: %s", got)
	}
}

// TestRestartInterimRefreshes: after a restart an Interim-Update resets
// the interim timer as ever (the grace only keeps timers from firing
// early).
func TestRestartInterimRefreshes(t *testing.T) {
	e := newEnv(t, t.TempDir())
	e.acct(start, "s1", "dev1", "10.50.0.7", 0)
	e.stop()
	e.clk.Add(time.Hour)
	e.open()
	e.clk.Add(5 * time.Minute)
	e.acct(interim, "s1", "dev1", "10.50.0.7", 0)
	e.clk.Add(9 * time.Minute) // past the grace, within the refreshed timer
	e.tick()
	if got := e.state("s1"); got != Act {
		t.Fatalf("s1 after an interim following the restart: %s", got)
	}
	e.clk.Add(2 * time.Minute)
	e.tick()
	if got := e.state("s1"); got != None {
		t.Fatalf("s1 after its refreshed interim timer: %s", got)
	}
}
