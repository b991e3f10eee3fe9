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

// TestEventsCarryLBMAC: every event of a session carries the lb_mac of
// the RADIUS client of its latest Start (R-GW-4): lb1's after the start
// at NAS1 (and on its interims and suspension), lb2's after the resume at
// NAS2 under a new Acct-Session-Id (FIG. 31), still lb2's after the
// control process restarts (persisted with the session) and in the
// resync that rebuilds a restarted gateway's copy; a resume at a NAS
// whose client has no lb_mac clears it (the old LB is no longer the
// mobile's).
func TestEventsCarryLBMAC(t *testing.T) {
	const lb1, lb2 = "02:73:70:03:01:02", "02:73:70:03:02:02"
	dir := t.TempDir()
	e := newEnv(t, dir)
	send := func(status rfc2866.AcctStatusType, acctID, nas, lbMAC string, cause rfc2866.AcctTerminateCause) {
		t.Helper()
		r := &aaa.AcctRequest{Status: status, SessionID: acctID, Device: "dev1", IP: netip.MustParseAddr("10.50.0.7"), Cause: cause, NAS: nas, LBMAC: lbMAC}
		seq, err := e.m.Account(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.Wait(context.Background(), seq); err != nil {
			t.Fatal(err)
		}
	}
	type evLB struct{ Event, LBMAC string }
	got := func(n int) []evLB {
		t.Helper()
		e.waitEvents(n)
		e.gw.mu.Lock()
		defer e.gw.mu.Unlock()
		var out []evLB
		for _, ev := range e.gw.events {
			out = append(out, evLB{ev.Event, ev.LBMAC})
		}
		return out
	}
	send(start, "nas1-1", "nas1", lb1, 0)
	send(interim, "nas1-1", "nas1", lb1, 0)
	send(stop, "nas1-1", "nas1", lb1, idle)
	send(start, "nas2-1", "nas2", lb2, 0) // FIG. 31: resumed at NAS2
	want := []evLB{{"start", lb1}, {"active", lb1}, {"dormant", lb1}, {"active", lb2}}
	if d := cmp.Diff(want, got(4)); d != "" {
		t.Fatalf("events (-want +got):\n%s", d)
	}
	if s, _ := e.m.Get("nas1-1"); s.LBMAC != lb2 || s.NAS != "nas2" {
		t.Fatalf("session after the resume: nas %q lb_mac %q", s.NAS, s.LBMAC)
	}

	// The control process restarts: the session keeps lb2, its next
	// event and a resync to a gateway that lost its copy carry it.
	e.stop()
	e.open()
	if s, _ := e.m.Get("nas2-1"); s.LBMAC != lb2 {
		t.Fatalf("session after the restart: lb_mac %q, want %q", s.LBMAC, lb2)
	}
	res := e.m.ResyncGateway("gw1", nil)
	if res.Reasserted != 1 {
		t.Fatalf("resync %+v, want 1 reasserted", res)
	}
	if err := e.st.Wait(context.Background(), res.Seq); err != nil {
		t.Fatal(err)
	}
	send(stop, "nas2-1", "nas2", lb2, idle)
	send(start, "nas3-1", "nas3", "", 0) // a NAS without lb_mac
	want = append(want, evLB{"active", lb2}, evLB{"dormant", lb2}, evLB{"active", ""})
	if d := cmp.Diff(want, got(7)); d != "" {
		t.Fatalf("events (-want +got):\n%s", d)
	}
	e.gw.mu.Lock()
	seqs := []uint64{}
	for _, ev := range e.gw.events {
		seqs = append(seqs, ev.Seq)
	}
	e.gw.mu.Unlock()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("event Seqs %v: not increasing, so a gateway could apply a stale lb_mac", seqs)
		}
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
