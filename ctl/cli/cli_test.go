package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/nas"
	"samepath/ctl/session"
)

// TestMain runs samepathctl itself when SAMEPATHCTL_TEST_MAIN is set:
// the completion test has bash call this binary as samepathctl.
func TestMain(m *testing.M) {
	if os.Getenv("SAMEPATHCTL_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr, Defaults{Control: os.Getenv("SAMEPATH_CONTROL")}))
	}
	goleak.VerifyTestMain(m)
}

// fakeLB keeps a T4 like samepathd in role lb (contract of ctl/api).
type fakeLB struct {
	mu sync.Mutex
	t4 api.T4
}

func (f *fakeLB) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/t4", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		json.NewEncoder(w).Encode(f.t4)
	})
	mux.HandleFunc("PUT /v1/t4", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		json.NewDecoder(r.Body).Decode(&f.t4)
		io.WriteString(w, `{"ok":true}`)
	})
	mux.HandleFunc("PUT /v1/t4/row", func(w http.ResponseWriter, r *http.Request) {
		var row api.T4Row
		json.NewDecoder(r.Body).Decode(&row)
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := range f.t4.Rows {
			if f.t4.Rows[i].Range == row.Range {
				f.t4.Rows[i] = row
				io.WriteString(w, `{"ok":true}`)
				return
			}
		}
		f.t4.Rows = append(f.t4.Rows, row)
		io.WriteString(w, `{"ok":true}`)
	})
	mux.HandleFunc("DELETE /v1/t4/row", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		rows := f.t4.Rows[:0]
		for _, x := range f.t4.Rows {
			if x.Range != r.URL.Query().Get("range") {
				rows = append(rows, x)
			}
		}
		f.t4.Rows = rows
		io.WriteString(w, `{"ok":true}`)
	})
	mux.HandleFunc("PUT /v1/gateways/state", func(w http.ResponseWriter, r *http.Request) {
		var gs api.GatewayState
		json.NewDecoder(r.Body).Decode(&gs)
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := range f.t4.Rows {
			for j := range f.t4.Rows[i].Gateways {
				if f.t4.Rows[i].Gateways[j].MAC == gs.MAC {
					f.t4.Rows[i].Gateways[j].State = gs.State
				}
			}
		}
		io.WriteString(w, `{"ok":true}`)
	})
	return mux
}

type harness struct {
	t   *testing.T
	c   *control.Control
	lb  *httptest.Server
	url string
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

// newHarnessWith lets edit change the control process's configuration.
func newHarnessWith(t *testing.T, edit func(*control.Config)) *harness {
	lb := httptest.NewServer((&fakeLB{}).handler())
	t.Cleanup(lb.Close)
	cfg := control.DefaultConfig()
	cfg.StateDir = t.TempDir()
	cfg.Radius.Auth, cfg.Radius.Acct = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Radius.Clients = []aaa.ClientConfig{{Prefix: "127.0.0.1", Secret: "s"}}
	cfg.API.Listen = "127.0.0.1:0"
	cfg.PBKDF2Iter = 1000
	cfg.Health.Disabled = true
	cfg.LBs = append(cfg.LBs, struct {
		Name      string `yaml:"name"`
		API       string `yaml:"api"`
		TokenFile string `yaml:"token_file"`
	}{Name: "lb1", API: lb.URL})
	if edit != nil {
		edit(&cfg)
	}
	c, err := control.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &harness{t: t, c: c, lb: lb, url: "http://" + c.APIAddr().String()}
}

// run runs samepathctl and returns stdout; it fails the test on a non-zero exit.
func (h *harness) run(args ...string) string {
	h.t.Helper()
	var out, errb bytes.Buffer
	if rc := Main(args, &out, &errb, Defaults{Control: h.url}); rc != 0 {
		h.t.Fatalf("samepathctl %v: exit %d: %s", args, rc, errb.String())
	}
	return out.String()
}

func (h *harness) json(out any, args ...string) {
	h.t.Helper()
	if err := json.Unmarshal([]byte(h.run(append([]string{"-o", "json"}, args...)...)), out); err != nil {
		h.t.Fatal(err)
	}
}

func TestRoundTripT1(t *testing.T) {
	h := newHarness(t)
	set := aaa.GatewayConfig{Name: "gw9", Range: "10.9.0.0/24", API: "http://10.0.0.9:9180", MAC: "02:00:00:00:00:09", Admin: "up"}
	h.run("gateways", "set", "-name", set.Name, "-range", set.Range, "-api", set.API, "-mac", set.MAC)
	var got aaa.Gateway
	h.json(&got, "gateways", "show", "gw9")
	want := aaa.Gateway{GatewayConfig: set, Health: "unknown", Size: 254}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("T1 round trip (-want +got):\n%s", d)
	}
	h.run("gateways", "state", "gw9", "drain")
	h.json(&got, "gateways", "show", "gw9")
	if got.Admin != "drain" {
		t.Fatalf("admin %q", got.Admin)
	}
	var list []aaa.Gateway
	h.json(&list, "gateways", "list")
	if len(list) != 1 || list[0].Name != "gw9" {
		t.Fatalf("list %+v", list)
	}
	if tab := h.run("gateways", "list"); !strings.Contains(tab, "gw9") || !strings.Contains(tab, "RANGE") {
		t.Fatalf("table:\n%s", tab)
	}
	h.run("gateways", "delete", "gw9")
	h.json(&list, "gateways", "list")
	if len(list) != 0 {
		t.Fatalf("after delete %+v", list)
	}
}

func TestRoundTripT2AndT3(t *testing.T) {
	h := newHarness(t)
	h.run("gateways", "set", "-name", "gw1", "-range", "10.1.0.0/24")
	h.run("users", "set", "-id", "alice", "-password", "pw1", "-device", "IMEI-1", "-phone", "+81-1")
	h.run("users", "set", "-id", "bob", "-password", "pw2", "-chap")
	var u control.UserView
	h.json(&u, "users", "show", "alice")
	if d := cmp.Diff(control.UserView{User: aaa.User{ID: "alice", Hash: "pbkdf2-sha256$…", DeviceID: "IMEI-1", Phone: "+81-1"}}, u); d != "" {
		t.Fatalf("T2 round trip (-want +got):\n%s", d)
	}
	h.json(&u, "users", "show", "bob")
	if !u.CHAP || u.Secret != "" {
		t.Fatalf("bob shown as %+v", u)
	}
	// Edit the phone only: the password still works.
	h.run("users", "set", "-id", "alice", "-device", "IMEI-1", "-phone", "+81-2")
	cl := &nas.Client{Auth: h.c.AuthAddr().String(), Acct: h.c.AcctAddr().String(), Secret: []byte("s"), Timeout: time.Second, Retries: 1}
	g, err := cl.Login(context.Background(), "alice", "pw1", "IMEI-1")
	if err != nil {
		t.Fatal(err)
	}
	h.json(&u, "users", "show", "alice")
	if u.Phone != "+81-2" || u.AssignedIP != g.IP.String() {
		t.Fatalf("after edit and login: %+v (login got %s)", u, g.IP)
	}
	// T3: a session started by the NAS is listed, shown and terminated.
	if err := cl.Account(context.Background(), nas.Acct{Status: rfc2866.AcctStatusType_Value_Start, SessionID: "S1", User: "alice", Device: "IMEI-1", IP: g.IP}); err != nil {
		t.Fatal(err)
	}
	var ss []session.Session
	h.json(&ss, "sessions", "list")
	if len(ss) != 1 || ss[0].ID != "S1" || ss[0].State != session.Act || ss[0].IP != g.IP {
		t.Fatalf("sessions %+v", ss)
	}
	var s session.Session
	h.json(&s, "sessions", "show", "S1")
	if d := cmp.Diff(ss[0], s, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Fatalf("show vs list (-list +show):\n%s", d)
	}
	var as []aaa.Assignment
	h.json(&as, "assignments")
	if len(as) != 1 || !as[0].Bound || as[0].Session != "S1" {
		t.Fatalf("assignments %+v", as)
	}
	h.run("sessions", "terminate", "S1")
	deadline := time.Now().Add(5 * time.Second)
	for len(ss) != 0 && time.Now().Before(deadline) {
		h.json(&ss, "sessions", "list")
	}
	if len(ss) != 0 {
		t.Fatalf("terminated session still there: %+v", ss)
	}
	h.run("users", "delete", "bob")
	var us []control.UserView
	h.json(&us, "users", "list")
	if len(us) != 1 || us[0].ID != "alice" {
		t.Fatalf("users %+v", us)
	}
	var c control.Counters
	h.json(&c, "counters")
	if c.Radius["accepts"] != 1 || c.Sessions.Transitions["Act->Close"] != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestRoundTripT4(t *testing.T) {
	h := newHarness(t)
	h.run("t4", "set-row", "-lb", "all", "-range", "10.1.0.0/24", "-gw", "02:00:00:00:00:01,02:00:00:00:00:02=down")
	h.run("t4", "set-row", "-lb", h.lb.URL, "-range", "10.2.0.0/24", "-gw", "02:00:00:00:00:02")
	h.run("t4", "gateway-state", "-lb", "all", "-mac", "02:00:00:00:00:02", "-state", "up")
	var got api.T4
	h.json(&got, "t4", "show", "-lb", h.lb.URL)
	want := api.T4{Rows: []api.T4Row{
		{Range: "10.1.0.0/24", Gateways: []api.T4Gateway{{MAC: "02:00:00:00:00:01", State: "up"}, {MAC: "02:00:00:00:00:02", State: "up"}}},
		{Range: "10.2.0.0/24", Gateways: []api.T4Gateway{{MAC: "02:00:00:00:00:02", State: "up"}}},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("T4 round trip (-want +got):\n%s", d)
	}
	h.run("t4", "delete-row", "-lb", "all", "-range", "10.2.0.0/24")
	h.json(&got, "t4", "show", "-lb", "all")
	if len(got.Rows) != 1 {
		t.Fatalf("after delete %+v", got)
	}
	if tab := h.run("t4", "show", "-lb", "all"); !strings.Contains(tab, "10.1.0.0/24") {
		t.Fatalf("table:\n%s", tab)
	}
}

func TestHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"gateways", "set", "-h"}, {"users", "set", "-h"}, {"sessions", "-h"}, {"t4", "-h"}, {"t4", "set-row", "-h"}, {"counters", "-h"}, {"status", "-h"}} {
		var out, errb bytes.Buffer
		if rc := Main(args, &out, &errb, Defaults{Control: "http://127.0.0.1:1"}); rc != 0 {
			t.Errorf("%v: exit %d: %s", args, rc, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if rc := Main([]string{"bogus"}, &out, &errb, Defaults{}); rc != 2 {
		t.Errorf("unknown command: exit %d", rc)
	}
	if rc := Main([]string{"-control", "http://127.0.0.1:1", "status"}, &out, &errb, Defaults{}); rc != 1 {
		t.Errorf("unreachable control: exit %d", rc)
	}
}

func TestNASCommand(t *testing.T) {
	h := newHarness(t)
	h.run("gateways", "set", "-name", "gw1", "-range", "10.1.0.0/24")
	h.run("users", "set", "-id", "mobile0", "-password", "pw")
	h.run("users", "set", "-id", "mobile1", "-password", "pw")
	var steps []nas.Step
	h.json(&steps, "nas", "-auth", h.c.AuthAddr().String(), "-acct", h.c.AcctAddr().String(), "-secret", "s", "-password", "pw", "-mobiles", "2", "-dormant")
	if len(steps) != 2 || steps[0].Err != "" || steps[1].IP.String() != "10.1.0.2" {
		t.Fatalf("steps %+v", steps)
	}
	var ss []session.Session
	h.json(&ss, "sessions", "list")
	if len(ss) != 2 || ss[0].State != session.Act {
		t.Fatalf("sessions %+v", ss)
	}
}
