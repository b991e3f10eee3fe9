package daemon

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/nat"
)

// stateLines are the "... state changed" lines as "msg key=value".
func stateLines(t *testing.T, b *syncBuf, keys ...string) []string {
	t.Helper()
	var out []string
	for _, m := range b.messages(t) {
		if m["msg"] != "server state changed" && m["msg"] != "gateway state changed" {
			continue
		}
		s := m["msg"].(string)
		for _, k := range keys {
			s += " " + k + "=" + m[k].(string)
		}
		out = append(out, s)
	}
	return out
}

// TestServerStateChangeLogged (issue 18): a change of a server's
// administrative state through the API is logged; setting the state it
// already has is not a change.
func TestServerStateChangeLogged(t *testing.T) {
	r := newGWRig(t)
	ctx := context.Background()
	for _, st := range []string{"up", "down", "down", "up"} {
		if err := r.c.SetServerState(ctx, "web", "10.20.0.11:8080", st); err != nil {
			t.Fatal(err)
		}
	}
	got := stateLines(t, r.logs, "service", "server", "state")
	want := []string{
		"server state changed service=web server=10.20.0.11:8080 state=maint", // down is read as maint
		"server state changed service=web server=10.20.0.11:8080 state=up",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("lines (-want +got):\n%s", d)
	}
}

// TestGatewayStateChangeLogged (issue 18): the LB logs a change of a
// gateway's T4 state (what control's health monitor pushes).
func TestGatewayStateChangeLogged(t *testing.T) {
	m := nat.MAC{2, 0, 0, 0, 0x10, 1}
	t4, err := nat.NewT4([]nat.T4Row{{Range: netip.MustParsePrefix("10.101.0.0/24"), Gateways: []nat.Gateway{{MAC: m, Up: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	b := testBackend{t4}
	logs := &syncBuf{}
	srv := httptest.NewServer(NewHandler(b, NewRegistry(b.Counters), "", slog.New(slog.NewJSONHandler(logs, nil))))
	defer srv.Close()
	c := api.NewClient(srv.URL)
	for _, st := range []string{api.StateUp, api.StateDown, api.StateDown, api.StateUp} {
		if err := c.SetGatewayState(context.Background(), m.String(), st); err != nil {
			t.Fatal(err)
		}
	}
	got := stateLines(t, logs, "mac", "state")
	want := []string{
		"gateway state changed mac=02:00:00:00:10:01 state=down",
		"gateway state changed mac=02:00:00:00:10:01 state=up",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("lines (-want +got):\n%s", d)
	}
}

// TestGWSessionAcctSessionID (issue 18): the gateway's T3 copy keeps the
// Acct-Session-Id an event names, keeps it over an event without one,
// and falls back to the session id (the Acct-Session-Id of the Start
// that created the session) when no event named one.
func TestGWSessionAcctSessionID(t *testing.T) {
	r := newGWRig(t)
	ctx := context.Background()
	send := func(ev api.SessionEvent) {
		t.Helper()
		ev.DeviceID, ev.IP = "IMEI-1", addrA.String()
		if err := r.c.SessionEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		r.w.Poll()
	}
	acctID := func() string {
		t.Helper()
		var out api.GWSessions
		if err := r.c.Do(ctx, "GET", "/v1/sessions", nil, &out); err != nil || len(out.Sessions) != 1 {
			t.Fatalf("sessions %+v %v", out, err)
		}
		return out.Sessions[0].AcctSessionID
	}
	send(api.SessionEvent{Event: api.EventStart, SessionID: "s1", Seq: 1})
	if got := acctID(); got != "s1" {
		t.Errorf("without acct_session_id: %q, want the session id", got)
	}
	send(api.SessionEvent{Event: api.EventActive, SessionID: "s1", Seq: 2, AcctSessionID: "s1b"})
	send(api.SessionEvent{Event: api.EventActive, SessionID: "s1", Seq: 3})
	if got := acctID(); got != "s1b" {
		t.Errorf("after a resume under s1b and an event without one: %q", got)
	}
	r.s.mu.Lock()
	got := r.s.dpSession(r.s.sessions["s1"], r.s.sessions["s1"].addrs[0]).AcctSessionID
	r.s.mu.Unlock()
	if got != "s1b" {
		t.Errorf("worker's copy: %q, want s1b", got)
	}
}
