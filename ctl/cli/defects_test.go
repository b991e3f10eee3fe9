package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"layeh.com/radius/rfc2866"

	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/health"
	"samepath/ctl/nas"
	"samepath/ctl/session"
)

// recorder is a control API that answers every request with an empty
// JSON value and records it.
type recorder struct {
	mu   sync.Mutex
	reqs []string
	srv  *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "s") {
			w.Write([]byte("[]"))
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

func ctl(d Defaults, args ...string) (rc int, stdout, stderr string) {
	var out, errb bytes.Buffer
	rc = Main(args, &out, &errb, d)
	return rc, out.String(), errb.String()
}

// Issue 18: -h or --help anywhere shows help and runs nothing; before,
// `sessions terminate -h` sent DELETE /v1/sessions/-h and `users set -id
// -h -password x` created a user named -h.
func TestHelpNeverRuns(t *testing.T) {
	for _, args := range [][]string{
		{"sessions", "terminate", "-h"},
		{"sessions", "terminate", "--help"},
		{"sessions", "terminate", "S1", "-h"},
		{"sessions", "show", "-h"},
		{"users", "show", "-h"},
		{"users", "delete", "-h"},
		{"users", "delete", "--help"},
		{"gateways", "show", "-h"},
		{"gateways", "delete", "-h"},
		{"gateways", "state", "gw1", "down", "-h"},
		{"users", "set", "-id", "-h", "-password", "x"},
		{"users", "set", "-id", "alice", "-password", "-h"},
		{"gateways", "set", "-name", "-h", "-range", "10.1.0.0/24"},
		{"t4", "gateway-state", "-mac", "02:00:00:00:00:01", "-state", "down", "-help"},
		{"gw", "policy", "web-a", "lc", "-h"},
		{"authz", "allow", "IMEI-1", "video", "-h"},
	} {
		r := newRecorder(t)
		rc, _, errb := ctl(Defaults{Control: r.srv.URL}, args...)
		if rc != 0 || !strings.Contains(errb, "Usage:") {
			t.Errorf("%v: exit %d, stderr %q; want help and exit 0", args, rc, errb)
		}
		if reqs := r.requests(); len(reqs) != 0 {
			t.Errorf("%v ran: the control API saw %v", args, reqs)
		}
	}
}

// Issue 18: flags after the command and its arguments count; before,
// `sessions list -o json` printed a table.
func TestFlagsAnywhere(t *testing.T) {
	h := newHarness(t)
	h.run("gateways", "set", "-name", "gw1", "-range", "10.1.0.0/24")
	for _, args := range [][]string{
		{"sessions", "list", "-o", "json"},
		{"sessions", "-o", "json"},
		{"gateways", "show", "gw1", "-o", "json"},
		{"gateways", "show", "gw1", "--output=json"},
		{"gateways", "list", "-o=json"},
		{"users", "list", "-o", "json"},
	} {
		out := h.run(args...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("%v: not JSON (%v):\n%s", args, err, out)
		}
	}
	// The global flags too, in either form.
	for _, args := range [][]string{
		{"status", "-control", h.url},
		{"status", "--control", h.url},
		{"status", "-control=" + h.url},
	} {
		if rc, out, errb := ctl(Defaults{Control: "http://127.0.0.1:1"}, args...); rc != 0 || !strings.Contains(out, "uptime") {
			t.Errorf("%v: exit %d: %s%s", args, rc, out, errb)
		}
	}
}

// Issue 18: one JSON style: health's targets had Kind/Name/URL keys.
func TestHealthJSONKeys(t *testing.T) {
	up := true
	report := control.HealthReport{
		Targets: []health.Status{{Target: health.Target{Kind: health.KindGateway, Name: "gw1", URL: "http://10.0.0.1:9180/healthz"}, Up: &up, Probes: 3}},
		LBs:     []health.LBStatus{{Name: "lb1", URL: "http://10.0.0.9:7700", Pushed: map[string]string{}}},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(report)
	}))
	defer srv.Close()
	rc, out, errb := ctl(Defaults{Control: srv.URL}, "-o", "json", "health")
	if rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb)
	}
	var got struct {
		Targets []map[string]any `json:"targets"`
		LBs     []map[string]any `json:"lbs"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	for _, m := range append(got.Targets, got.LBs...) {
		for k := range m {
			if k != strings.ToLower(k) {
				t.Errorf("key %q is not lowercase:\n%s", k, out)
			}
		}
	}
	if len(got.Targets) != 1 || got.Targets[0]["kind"] != health.KindGateway || got.Targets[0]["name"] != "gw1" || got.Targets[0]["url"] == nil {
		t.Errorf("targets %v", got.Targets)
	}
}

// Issue 18: usage errors exit 2, failures 1; `t4 show -lb` without its
// value exited 1.
func TestExitCodes(t *testing.T) {
	r := newRecorder(t)
	for _, c := range []struct {
		args []string
		rc   int
		err  string
	}{
		{[]string{"t4", "show", "-lb"}, 2, "needs an argument"},
		{[]string{"t4", "show", "--lb"}, 2, "needs an argument"},
		{[]string{"t4"}, 2, "want a subcommand"},
		{[]string{"t4", "bogus"}, 2, "unknown subcommand"},
		{[]string{"sessions", "terminate"}, 2, "usage"},
		{[]string{"sessions", "terminate", "a", "b"}, 2, "usage"},
		{[]string{"gateways", "show"}, 2, "usage"},
		{[]string{"gateways", "bogus"}, 2, "unknown subcommand"},
		{[]string{"status", "-bogus"}, 2, "unknown flag"},
		{[]string{"-o", "yaml", "status"}, 2, "-o must be table or json"},
		{[]string{"status", "extra"}, 2, "usage"},
		{[]string{"bogus"}, 2, "unknown command"},
		{nil, 2, "want a command"},
		{[]string{"-control", "http://127.0.0.1:1", "status"}, 1, "connection refused"},
		{[]string{"-token-file", "/nonexistent/token", "status"}, 1, "token"},
	} {
		rc, _, errb := ctl(Defaults{Control: r.srv.URL}, c.args...)
		if rc != c.rc || !strings.Contains(errb, c.err) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d with %q", c.args, rc, errb, c.rc, c.err)
		}
	}
	if reqs := r.requests(); len(reqs) != 0 {
		t.Errorf("usage errors reached the control API: %v", reqs)
	}
}

// Issue 18: -lb defaults to all, as -gw does; before, t4 required -lb.
func TestT4DefaultsToAllLBs(t *testing.T) {
	h := newHarness(t)
	h.run("t4", "set-row", "-range", "10.1.0.0/24", "-gw", "02:00:00:00:00:01")
	var got api.T4
	h.json(&got, "t4", "show")
	if len(got.Rows) != 1 || got.Rows[0].Range != "10.1.0.0/24" {
		t.Fatalf("t4 show without -lb: %+v", got)
	}
}

// Issue 18: `t4 gateway-state` on a gateway whose LB state the control
// process owns is undone by its LB sync: samepathctl warns and names the
// command that changes it at the source. Other MACs get no warning.
func TestT4GatewayStateWarnsWhenControlOwnsIt(t *testing.T) {
	h := newHarness(t)
	h.run("gateways", "set", "-name", "gw1", "-range", "10.1.0.0/24", "-mac", "02:00:00:00:00:01")
	h.run("t4", "set-row", "-range", "10.1.0.0/24", "-gw", "02:00:00:00:00:01,02:00:00:00:00:09")
	for _, c := range []struct {
		args []string
		warn string
	}{
		{[]string{"t4", "gateway-state", "-mac", "02:00:00:00:00:01", "-state", "down"}, "change it at the source: samepathctl gateways state gw1 down"},
		{[]string{"t4", "gateway-state", "-lb", h.lb.URL, "-mac", "02:00:00:00:00:01", "-state", "down"}, "change it at the source: samepathctl gateways state gw1 down"},
		{[]string{"t4", "gateway-state", "-mac", "02:00:00:00:00:01", "-state", "up"}, ""},   // what control holds
		{[]string{"t4", "gateway-state", "-mac", "02:00:00:00:00:09", "-state", "down"}, ""}, // not in T1
	} {
		rc, _, errb := ctl(Defaults{Control: h.url}, c.args...)
		if rc != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, rc, errb)
		}
		if c.warn == "" && errb != "" || !strings.Contains(errb, c.warn) {
			t.Errorf("%v: stderr %q, want %q", c.args, errb, c.warn)
		}
	}
	// An LB the control process does not sync gets no warning.
	other := httptest.NewServer((&fakeLB{}).handler())
	defer other.Close()
	if rc, _, errb := ctl(Defaults{Control: h.url}, "t4", "gateway-state", "-lb", other.URL, "-mac", "02:00:00:00:00:01", "-state", "down"); rc != 0 || errb != "" {
		t.Errorf("unsynced LB: exit %d, stderr %q", rc, errb)
	}
}

// Issue 18: `sessions terminate ID` exited 0 when the NAS's Disconnect
// failed. Now a NAK or no answer exits 1 and says the session is ended in
// samepath-control and at its gateway all the same.
func TestTerminateReportsDisconnect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string // "ack", "nak", "" (no answer)
		port   bool
		rc     int
		err    string
	}{
		{"ack", "ack", true, 0, ""},
		{"nak", "nak", true, 1, "Disconnect-NAK"},
		{"no answer", "", true, 1, "did not end it (failed"},
		{"no disconnect port", "", false, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			if tc.answer != "" {
				go func() {
					done <- nas.ServeDisconnect(ctx, conn, []byte("s"), func(nas.DisconnectRequest) bool { return tc.answer == "ack" })
				}()
			} else {
				done <- nil // a socket nobody answers on
			}
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
				conn.Close()
			})
			h := newHarnessWith(t, func(cfg *control.Config) {
				if tc.port {
					cfg.Radius.Clients[0].DisconnectPort = conn.LocalAddr().(*net.UDPAddr).Port
				}
			})
			h.run("gateways", "set", "-name", "gw1", "-range", "10.1.0.0/24")
			h.run("users", "set", "-id", "alice", "-password", "pw", "-device", "IMEI-1")
			cl := &nas.Client{Auth: h.c.AuthAddr().String(), Acct: h.c.AcctAddr().String(), Secret: []byte("s"), Timeout: 2e9, Retries: 1}
			g, err := cl.Login(context.Background(), "alice", "pw", "IMEI-1")
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.Account(context.Background(), nas.Acct{Status: rfc2866.AcctStatusType_Value_Start, SessionID: "S1", User: "alice", Device: "IMEI-1", IP: g.IP}); err != nil {
				t.Fatal(err)
			}
			rc, _, errb := ctl(Defaults{Control: h.url}, "sessions", "terminate", "S1")
			if rc != tc.rc || !strings.Contains(errb, tc.err) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", rc, errb, tc.rc, tc.err)
			}
			if tc.rc != 0 && !strings.Contains(errb, "terminated in samepath-control and its gateway drops it") {
				t.Errorf("the failure does not say the session is ended all the same: %q", errb)
			}
			var ss []session.Session
			h.json(&ss, "sessions", "list")
			for _, s := range ss {
				if s.ID == "S1" && s.State != session.Close {
					t.Errorf("S1 still %s", s.State)
				}
			}
		})
	}
}

// Issue 18: --version on samepathctl.
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}} {
		rc, out, errb := ctl(Defaults{}, args...)
		if rc != 0 || !strings.HasPrefix(out, "samepathctl ") || !strings.Contains(out, "go1") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, rc, out, errb)
		}
	}
}

// The single-dash long flags are rewritten only where they are flags:
// flag values and arguments after -- stay as given.
func TestNormalizeFlags(t *testing.T) {
	root := (&app{}).rootCmd()
	for _, c := range []struct{ in, want string }{
		{"t4 show -lb all", "t4 show --lb all"},
		{"-o json gw flows -limit -1", "-o json gw flows --limit -1"},
		{"users set -id x -password -name", "users set --id x --password -name"},
		{"-control=http://x status", "--control=http://x status"},
		{"gw policy web-a lc -gw http://g", "gw policy web-a lc --gw http://g"},
		{"authz t9 -delete 10.30.0.1", "authz t9 --delete 10.30.0.1"},
		{"sessions show -- -weird", "sessions show -- -weird"},
		{"-version", "--version"},
		{"status -x", "status -x"},
		{"status -bogus", "status --bogus"},
		{"status -ojson", "status -ojson"},
		{"status -é -\xff", "status --é -\xff"},
	} {
		if got := strings.Join(normalizeFlags(root, strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}
