package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/dp/balance"
	"samepath/dp/daemon"
)

// fakeGW serves the gateway part of the ctl/api contract: samepathd's own
// service-table endpoints (daemon.ServiceRoutes over a real
// balance.Table); the T3 copy; the flow list cut at ?limit= (default
// 1000) with the total; a bearer token on /v1. Only the dataplane is
// missing, so sessions and flows are given.
type fakeGW struct {
	token    string
	table    *balance.Table
	mu       sync.Mutex
	sessions []api.GWSession
	flows    []api.Flow
	sync     *api.GWSync // nil: no gw.sync (404)
}

func newFakeGW(t *testing.T, token string, svcs []api.Service) *fakeGW {
	cfgs, err := daemon.ServiceConfigs(svcs)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := balance.NewTable(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeGW{token: token, table: tab}
}

func (f *fakeGW) handler() http.Handler {
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, code int, err error) {
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(api.Error{Error: err.Error()})
	}
	v1 := http.NewServeMux()
	// The service table endpoints are samepathd's own.
	daemon.ServiceRoutes(v1, f.table)
	v1.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		reply(w, api.GWSessions{Sessions: append([]api.GWSession{}, f.sessions...)})
	})
	v1.HandleFunc("GET /v1/sync", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.sync == nil {
			fail(w, http.StatusNotFound, errors.New("no such endpoint"))
			return
		}
		reply(w, f.sync)
	})
	v1.HandleFunc("GET /v1/flows", func(w http.ResponseWriter, r *http.Request) {
		limit := 1000
		if l := r.URL.Query().Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 {
				fail(w, http.StatusBadRequest, errors.New("limit: want a number >= 0"))
				return
			}
			limit = n
		}
		q := r.URL.Query()
		filter := api.FlowFilter{Mobile: q.Get("mobile"), Session: q.Get("session"), Service: q.Get("service"), Server: q.Get("server")}
		f.mu.Lock()
		defer f.mu.Unlock()
		var match []api.Flow
		for _, fl := range f.flows {
			if filter.Match(fl) {
				match = append(match, fl)
			}
		}
		out := api.Flows{Total: len(match), Flows: []api.Flow{}}
		out.Flows = append(out.Flows, match[:min(limit, len(match))]...)
		reply(w, out)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			fail(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		v1.ServeHTTP(w, r)
	}))
	return mux
}

var demoServices = []api.Service{
	{Name: "web-a", Rep: "10.30.0.1:80", Proto: "tcp", Type: "connection", Policy: "rr", ServiceType: "web", Mode: "nat",
		Servers: []api.Server{{Addr: "10.20.0.11:80", Weight: 1, State: "up"}, {Addr: "10.20.0.12:80", Weight: 1, State: "up"}}},
	{Name: "dns-a", Rep: "10.30.0.1:53", Proto: "udp", Type: "packet", Policy: "rr", ServiceType: "dns", Mode: "nat",
		Servers: []api.Server{{Addr: "10.20.0.11:53", Weight: 1, State: "up"}}},
}

// gwHarness runs two fake gateways registered in a real control process's
// T1 (for -gw all) and samepathctl with a token file.
type gwHarness struct {
	*harness
	gws   []*fakeGW
	urls  []string
	token string
}

func newGWHarness(t *testing.T) *gwHarness {
	h := &gwHarness{harness: newHarness(t), token: "tok-gw"}
	for i := 1; i <= 2; i++ {
		f := newFakeGW(t, h.token, demoServices)
		srv := httptest.NewServer(f.handler())
		t.Cleanup(srv.Close)
		h.gws, h.urls = append(h.gws, f), append(h.urls, srv.URL)
		h.run("gateways", "set", "-name", fmt.Sprintf("gw%d", i), "-range", fmt.Sprintf("10.10%d.0.0/24", i), "-api", srv.URL)
	}
	return h
}

// gw runs samepathctl with the gateways' token file; rc is its exit status.
func (h *gwHarness) gw(args ...string) (stdout, stderr string, rc int) {
	h.t.Helper()
	tf := filepath.Join(h.t.TempDir(), "token")
	if err := os.WriteFile(tf, []byte(h.token+"\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
	var out, errb bytes.Buffer
	rc = Main(append([]string{"-token-file", tf}, args...), &out, &errb, Defaults{Control: h.url})
	return out.String(), errb.String(), rc
}

func (h *gwHarness) ok(args ...string) string {
	h.t.Helper()
	out, errb, rc := h.gw(args...)
	if rc != 0 {
		h.t.Fatalf("samepathctl %v: exit %d: %s", args, rc, errb)
	}
	return out
}

func (h *gwHarness) gwJSON(v any, args ...string) {
	h.t.Helper()
	if err := json.Unmarshal([]byte(h.ok(append([]string{"-o", "json"}, args...)...)), v); err != nil {
		h.t.Fatal(err)
	}
}

// config keeps what a gateway takes from a service table (the probes'
// fields are read-only).
func config(s api.Services) api.Services {
	for i := range s.Services {
		for j := range s.Services[i].Servers {
			sv := &s.Services[i].Servers[j]
			sv.Healthy, sv.RTTMicros, sv.CPU, sv.Active = nil, 0, 0, 0
		}
	}
	return s
}

func TestGWServicesRoundTrip(t *testing.T) {
	h := newGWHarness(t)
	gw1 := h.urls[0]
	var got api.Services
	h.gwJSON(&got, "gw", "services", "-gw", gw1)
	if d := cmp.Diff(api.Services{Services: demoServices}, config(got)); d != "" {
		t.Fatalf("services as configured (-want +got):\n%s", d)
	}
	// Policy and server state on one gateway (flags after the arguments too).
	h.ok("gw", "policy", "-gw", gw1, "web-a", "lc")
	h.ok("gw", "server", "web-a", "10.20.0.12:80", "down", "-gw", gw1)
	want := api.Services{Services: append([]api.Service(nil), demoServices...)}
	want.Services[0].Policy = "lc"
	want.Services[0].Servers = []api.Server{{Addr: "10.20.0.11:80", Weight: 1, State: "up"}, {Addr: "10.20.0.12:80", Weight: 1, State: "maint"}} // down is read as maint
	h.gwJSON(&got, "gw", "services", "-gw", gw1)
	if d := cmp.Diff(want, config(got)); d != "" {
		t.Fatalf("after policy and server (-want +got):\n%s", d)
	}
	// The other gateway is untouched; -gw all (the default) reaches both.
	var all []struct {
		Gateway string       `json:"gateway"`
		URL     string       `json:"url"`
		Value   api.Services `json:"value"`
	}
	h.gwJSON(&all, "gw", "services")
	if len(all) != 2 || all[0].Gateway != "gw1" || all[1].URL != h.urls[1] {
		t.Fatalf("-gw all: %+v", all)
	}
	if d := cmp.Diff(want, config(all[0].Value)); d != "" {
		t.Errorf("gw1 via all (-want +got):\n%s", d)
	}
	if d := cmp.Diff(api.Services{Services: demoServices}, config(all[1].Value)); d != "" {
		t.Errorf("gw2 changed (-want +got):\n%s", d)
	}
	h.ok("gw", "policy", "web-a", "fastest")
	for i := range h.urls {
		h.gwJSON(&got, "gw", "services", "-gw", h.urls[i])
		if got.Services[0].Policy != "fastest" {
			t.Errorf("gw%d after policy on all: %q", i+1, got.Services[0].Policy)
		}
	}
	// set-services: the JSON shown goes back in, edited, and shows as set.
	next := config(got)
	next.Services = next.Services[:1]
	next.Services[0].Servers = append(next.Services[0].Servers, api.Server{Addr: "10.20.0.13:80", Weight: 3, State: "up"})
	next.Services[0].Policy = "wrr"
	next.Services[0].Mode = "terminate" // T11: TCP terminated at the gateway
	b, _ := json.Marshal(next)
	file := filepath.Join(t.TempDir(), "services.json")
	os.WriteFile(file, b, 0o600)
	h.ok("gw", "set-services", "-gw", gw1, "-file", file)
	h.gwJSON(&got, "gw", "services", "-gw", gw1)
	if d := cmp.Diff(next, config(got)); d != "" {
		t.Fatalf("set-services round trip (-want +got):\n%s", d)
	}
	// The table shows health, RTT and active flows from the gateway.
	id, _ := h.gws[0].table.ID("web-a")
	h.gws[0].table.ObserveRTT(id, 0, 1500*time.Microsecond)
	h.gws[0].table.Acquire(id, 0)
	tab := h.ok("gw", "services", "-gw", gw1)
	for _, s := range []string{"SERVICE", "MODE", "web-a", "10.30.0.1:80", "connection", "wrr", "terminate", "10.20.0.13:80", "1.50ms"} {
		if !strings.Contains(tab, s) {
			t.Errorf("table lacks %q:\n%s", s, tab)
		}
	}
	if line := lineWith(tab, "10.20.0.11:80"); !strings.HasSuffix(strings.TrimSpace(line), " 1") {
		t.Errorf("active flows not shown: %q", line)
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func TestGWSessionsAndFlows(t *testing.T) {
	h := newGWHarness(t)
	gw1 := h.urls[0]
	sess := []api.GWSession{{SessionID: "nas1-mob1-1", UserID: "mob1", DeviceID: "IMEI-mob1", IP: "10.101.0.1", State: "dormant", Seq: 2}}
	h.gws[0].sessions = sess
	for i := 0; i < 5; i++ {
		h.gws[0].flows = append(h.gws[0].flows, api.Flow{Proto: "tcp", Mobile: fmt.Sprintf("10.101.0.1:%d", 40000+i), Dest: "10.30.0.1:80",
			Gateway: fmt.Sprintf("10.20.0.101:%d", 1024+i), Server: "10.20.0.11:80", Session: "nas1-mob1-1", Service: "web-a", State: "established", UpPackets: 3, DownBytes: 900})
	}
	var gs api.GWSessions
	h.gwJSON(&gs, "gw", "sessions", "-gw", gw1)
	if d := cmp.Diff(api.GWSessions{Sessions: sess}, gs); d != "" {
		t.Errorf("sessions (-want +got):\n%s", d)
	}
	if tab := h.ok("gw", "sessions", "-gw", gw1); !strings.Contains(tab, "nas1-mob1-1") || !strings.Contains(tab, "dormant") {
		t.Errorf("sessions table:\n%s", tab)
	}
	var fl api.Flows
	h.gwJSON(&fl, "gw", "flows", "-gw", gw1, "-limit", "2")
	if d := cmp.Diff(api.Flows{Total: 5, Flows: h.gws[0].flows[:2]}, fl); d != "" {
		t.Errorf("flows -limit 2 (-want +got):\n%s", d)
	}
	tab := h.ok("gw", "flows", "-gw", gw1)
	if !strings.Contains(tab, "10.20.0.101:1028") || !strings.Contains(tab, "(5 of 5 records)") {
		t.Errorf("flows table:\n%s", tab)
	}
	// Filters reach the gateway, in either flag style.
	h.gwJSON(&fl, "gw", "flows", "-gw", gw1, "-mobile", "10.101.0.1:40003")
	if d := cmp.Diff(api.Flows{Total: 1, Flows: h.gws[0].flows[3:4]}, fl); d != "" {
		t.Errorf("flows -mobile (-want +got):\n%s", d)
	}
	h.gwJSON(&fl, "gw", "flows", "--session", "nas1-mob1-1", "--server", "10.20.0.11", "-gw", gw1, "-limit", "1")
	if fl.Total != 5 || len(fl.Flows) != 1 {
		t.Errorf("flows --session --server: %+v", fl)
	}
	h.gwJSON(&fl, "gw", "flows", "-gw", gw1, "-service", "web-b")
	if fl.Total != 0 {
		t.Errorf("flows -service web-b: %+v", fl)
	}
	// Several gateways: one section each.
	tab = h.ok("gw", "flows", "-limit", "1")
	if !strings.Contains(tab, "# gw1 "+gw1) || !strings.Contains(tab, "# gw2 "+h.urls[1]) || !strings.Contains(tab, "(0 of 0 records)") {
		t.Errorf("flows on all gateways:\n%s", tab)
	}
}

func TestGWErrors(t *testing.T) {
	h := newGWHarness(t)
	gw1 := h.urls[0]
	for _, c := range []struct {
		args []string
		rc   int
		err  string
	}{
		{[]string{"gw"}, 2, "want a subcommand"},
		{[]string{"gw", "bogus"}, 2, "unknown subcommand"},
		{[]string{"gw", "policy", "-gw", gw1, "web-a"}, 2, "usage"},
		{[]string{"gw", "policy", "-gw", gw1, "web-a", "fastest-ever"}, 1, "unknown balancing policy"},
		{[]string{"gw", "policy", "-gw", gw1, "nope", "rr"}, 1, "no such service"},
		{[]string{"gw", "server", "-gw", gw1, "web-a", "10.20.0.99:80", "down"}, 1, "no such server"},
		{[]string{"gw", "server", "-gw", gw1, "web-a", "10.20.0.11:80", "sideways"}, 2, "want up, drain or maint"},
		{[]string{"gw", "flows", "-gw", gw1, "-limit", "-1"}, 2, "-limit"},
		{[]string{"gw", "set-services", "-gw", gw1}, 2, "needs -file"},
	} {
		_, errb, rc := h.gw(c.args...)
		if rc != c.rc || !strings.Contains(errb, c.err) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d with %q", c.args, rc, errb, c.rc, c.err)
		}
	}
	// A bad service table is refused and changes nothing.
	file := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(file, []byte(`{"services":[{"name":"x","rep":"nonsense","proto":"tcp","servers":[]}]}`), 0o600)
	if _, errb, rc := h.gw("gw", "set-services", "-gw", gw1, "-file", file); rc != 1 || !strings.Contains(errb, "want IP:port") {
		t.Errorf("bad set-services: exit %d: %s", rc, errb)
	}
	var got api.Services
	h.gwJSON(&got, "gw", "services", "-gw", gw1)
	if d := cmp.Diff(api.Services{Services: demoServices}, config(got)); d != "" {
		t.Errorf("after a refused set-services (-want +got):\n%s", d)
	}
	// Without the token the gateway refuses.
	var out, errb bytes.Buffer
	if rc := Main([]string{"gw", "services", "-gw", gw1}, &out, &errb, Defaults{Control: h.url}); rc != 1 || !strings.Contains(errb.String(), "401") {
		t.Errorf("no token: exit %d: %s", rc, errb.String())
	}
	// -gw all with no gateway API in T1.
	h2 := newHarness(t)
	h2.run("gateways", "set", "-name", "gw1", "-range", "10.1.0.0/24")
	out.Reset()
	errb.Reset()
	if rc := Main([]string{"gw", "sessions"}, &out, &errb, Defaults{Control: h2.url}); rc != 1 || !strings.Contains(errb.String(), "no gateway with a control API") {
		t.Errorf("-gw all without APIs: exit %d: %s", rc, errb.String())
	}
}

func TestGWHelp(t *testing.T) {
	for _, args := range [][]string{{"gw", "-h"}, {"gw", "services", "-h"}, {"gw", "set-services", "-h"}, {"gw", "policy", "-h"},
		{"gw", "server", "-h"}, {"gw", "sessions", "-h"}, {"gw", "flows", "-h"}} {
		var out, errb bytes.Buffer
		if rc := Main(args, &out, &errb, Defaults{Control: "http://127.0.0.1:1"}); rc != 0 {
			t.Errorf("%v: exit %d: %s", args, rc, errb.String())
		}
	}
}
