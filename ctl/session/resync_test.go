package session

import (
	"context"
	"net/netip"
	"testing"

	"layeh.com/radius/rfc2866"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
)

// TestResyncGateway: a gateway whose T3 copy lacks a session, holds one
// in the wrong state and holds one the manager does not know gets exactly
// the events that repair it, each with a Seq above every earlier one; a
// copy in line gets nothing.
func TestResyncGateway(t *testing.T) {
	e := newEnv(t, t.TempDir())
	e.acct(start, "a", "dev-a", "10.50.0.1", 0)
	e.acct(start, "b", "dev-b", "10.50.0.2", 0)
	e.acct(stop, "b", "dev-b", "", idle) // Act -> Dormant
	e.acct(start, "c", "dev-c", "10.50.0.3", 0)
	e.waitEvents(4)
	// Acknowledged too: a session with an event still in the outbox is
	// left to it.
	e.waitOutbox("the events acknowledged", func(c OutboxCounters) bool { return c.Pending == 0 })
	a, _ := e.m.Get("a")
	b, _ := e.m.Get("b")
	held := []api.GWSession{
		{SessionID: "a", DeviceID: "dev-a", IP: "10.50.0.1", State: "active", Seq: a.Seq},
		{SessionID: "b", DeviceID: "dev-b", IP: "10.50.0.2", State: "active", Seq: b.Seq - 1}, // missed the dormant
		{SessionID: "gone", DeviceID: "dev-x", IP: "10.50.0.9", State: "active", Seq: 4},      // unknown here
		// c is missing: the gateway restarted after it started
	}
	res := e.m.ResyncGateway("gw1", held)
	if res.Reasserted != 2 || res.Ended != 1 {
		t.Fatalf("resync %+v, want 2 reasserted, 1 ended", res)
	}
	if err := e.st.Wait(context.Background(), res.Seq); err != nil {
		t.Fatal(err)
	}
	got := e.waitEvents(7)[4:]
	if d := cmp.Diff([]string{"dormant", "active", "end"}, got); d != "" {
		t.Fatalf("resync events (-want +got):\n%s", d)
	}
	e.gw.mu.Lock()
	evs := append([]api.SessionEvent(nil), e.gw.events[4:]...)
	e.gw.mu.Unlock()
	c, _ := e.m.Get("c")
	want := []api.SessionEvent{
		{Event: "dormant", SessionID: "b", DeviceID: "dev-b", IP: "10.50.0.2", Seq: b.Seq + 1, AcctSessionID: "b"},
		{Event: "active", SessionID: "c", DeviceID: "dev-c", IP: "10.50.0.3", Seq: c.Seq, AcctSessionID: "c"},
		{Event: "end", SessionID: "gone", DeviceID: "dev-x", IP: "10.50.0.9", Seq: 5},
	}
	if d := cmp.Diff(want, evs); d != "" {
		t.Fatalf("resync events (-want +got):\n%s", d)
	}
	if c.Seq < 2 {
		t.Fatalf("c's Seq %d: the resync did not advance it", c.Seq)
	}
	// The repaired copy is in line: nothing more to send.
	b2, _ := e.m.Get("b")
	inLine := []api.GWSession{held[0],
		{SessionID: "b", DeviceID: "dev-b", IP: "10.50.0.2", State: "dormant", Seq: b2.Seq},
		{SessionID: "c", DeviceID: "dev-c", IP: "10.50.0.3", State: "active", Seq: c.Seq}}
	if res := e.m.ResyncGateway("gw1", inLine); res.Reasserted != 0 || res.Ended != 0 {
		t.Fatalf("resync of a copy in line: %+v", res)
	}
	// The advanced Seq is durable: a restarted manager continues above it.
	e.stop()
	e.open()
	if c2, _ := e.m.Get("c"); c2.Seq != c.Seq {
		t.Fatalf("after restart c's Seq %d, want %d", c2.Seq, c.Seq)
	}
}

// TestSessionFollowsNAS: a session resumed at another NAS (FIG. 31) names
// that NAS and its address, where a Disconnect-Request must go.
func TestSessionFollowsNAS(t *testing.T) {
	e := newEnv(t, t.TempDir())
	acct := func(status rfc2866.AcctStatusType, id, nas string, cause rfc2866.AcctTerminateCause) {
		t.Helper()
		r := &aaa.AcctRequest{Status: status, SessionID: id, Device: "dev1", Cause: cause, NAS: nas, NASAddr: netip.MustParseAddr(nas)}
		if status == start {
			r.IP = netip.MustParseAddr("10.50.0.7")
		}
		seq, err := e.m.Account(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.Wait(context.Background(), seq); err != nil {
			t.Fatal(err)
		}
	}
	acct(start, "n1-1", "192.0.2.1", 0)
	acct(stop, "n1-1", "192.0.2.1", idle)
	acct(start, "n2-1", "192.0.2.2", 0)
	s, ok := e.m.Get("n1-1")
	if !ok || s.State != Act || s.NAS != "192.0.2.2" || s.NASAddr != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("session after the resume at nas2: %+v", s)
	}
}

// TestResyncAcctSessionID: a gateway copy naming another Acct-Session-Id
// than the session runs under is repaired; one naming none (a gateway
// that predates the field) is not a difference.
func TestResyncAcctSessionID(t *testing.T) {
	e := newEnv(t, t.TempDir())
	e.acct(start, "a", "dev-a", "10.50.0.1", 0)
	e.acct(start, "b", "dev-b", "10.50.0.2", 0)
	e.waitEvents(2)
	e.waitOutbox("the events acknowledged", func(c OutboxCounters) bool { return c.Pending == 0 })
	a, _ := e.m.Get("a")
	b, _ := e.m.Get("b")
	res := e.m.ResyncGateway("gw1", []api.GWSession{
		{SessionID: "a", DeviceID: "dev-a", IP: "10.50.0.1", State: "active", Seq: a.Seq},
		{SessionID: "b", DeviceID: "dev-b", IP: "10.50.0.2", State: "active", Seq: b.Seq, AcctSessionID: "stale"},
	})
	if res.Reasserted != 1 {
		t.Fatalf("resync %+v, want 1 reasserted (b)", res)
	}
}
