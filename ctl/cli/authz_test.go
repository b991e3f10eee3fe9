package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/dp"
	"samepath/dp/daemon"
)

// authzGW serves GET/PUT /v1/authz the way samepathd role gw does
// (dp/daemon's handler): tables checked by daemon.AuthzRows, held in a
// real dp.Authz whose refusals are counted per service type.
type authzGW struct {
	mu    sync.Mutex
	authz *dp.Authz
}

func newAuthzGW(t *testing.T) (*authzGW, string) {
	a, err := dp.NewAuthz(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &authzGW{authz: a}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/authz", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		t9, t8 := g.authz.Rows()
		out := api.Authz{T9: []api.T9Row{}, T8: []api.T8Row{}, Denied: g.authz.Denied()}
		g.mu.Unlock()
		for _, r := range t9 {
			out.T9 = append(out.T9, api.T9Row{Rep: r.Rep.String(), ServiceType: r.ServiceType})
		}
		for _, r := range t8 {
			out.T8 = append(out.T8, api.T8Row{Device: r.Device, ServiceType: r.ServiceType, Allowed: r.Allowed})
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("PUT /v1/authz", func(w http.ResponseWriter, r *http.Request) {
		var in api.Authz
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		err := dec.Decode(&in)
		var t9 []dp.T9Row
		var t8 []dp.T8Row
		if err == nil {
			t9, t8, err = daemon.AuthzRows(in)
		}
		if err == nil {
			g.mu.Lock()
			err = g.authz.Replace(t9, t8)
			g.mu.Unlock()
		}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(api.Error{Error: err.Error()})
			return
		}
		w.Write([]byte(`{"ok":true}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return g, srv.URL
}

// check authorizes a new session of device to dst as the dataplane does.
func (g *authzGW) check(dst, device string) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.authz.Check(netip.MustParseAddr(dst).As16(), device)
}

// rc runs samepathctl and returns its exit status and standard error.
func (h *harness) rc(args ...string) (int, string) {
	var out, errb bytes.Buffer
	rc := Main(args, &out, &errb, Defaults{Control: h.url})
	return rc, errb.String()
}

func TestAuthzRoundTrip(t *testing.T) {
	h := newHarness(t)
	gw1, url1 := newAuthzGW(t)
	_, url2 := newAuthzGW(t)
	h.run("gateways", "set", "-name", "gw1", "-range", "10.101.0.0/24", "-api", url1)
	h.run("gateways", "set", "-name", "gw2", "-range", "10.102.0.0/24", "-api", url2)

	var got api.Authz
	h.json(&got, "authz")
	if d := cmp.Diff(api.Authz{T9: []api.T9Row{}, T8: []api.T8Row{}}, got); d != "" {
		t.Fatalf("initial tables (-want +got):\n%s", d)
	}
	h.run("authz", "t9", "10.30.0.2", "video")
	h.run("authz", "t9", "10.30.0.1", "web")
	h.run("authz", "allow", "IMEI-mob1", "web")
	h.run("authz", "allow", "IMEI-mob1", "video")
	h.run("authz", "allow", "IMEI-mob2", "web")
	h.run("authz", "deny", "IMEI-mob2", "video")
	want := api.Authz{
		T9: []api.T9Row{{Rep: "10.30.0.1", ServiceType: "web"}, {Rep: "10.30.0.2", ServiceType: "video"}},
		T8: []api.T8Row{{Device: "IMEI-mob1", ServiceType: "video", Allowed: true}, {Device: "IMEI-mob1", ServiceType: "web", Allowed: true},
			{Device: "IMEI-mob2", ServiceType: "video", Allowed: false}, {Device: "IMEI-mob2", ServiceType: "web", Allowed: true}},
	}
	h.json(&got, "authz", "show")
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("after edits (-want +got):\n%s", d)
	}
	tab := h.run("authz")
	for _, s := range []string{"T9 REP", "10.30.0.2", "video", "T8 DEVICE", "IMEI-mob2"} {
		if !strings.Contains(tab, s) {
			t.Errorf("table lacks %q:\n%s", s, tab)
		}
	}
	if l := lineWith(tab, "IMEI-mob2  video"); !strings.HasSuffix(strings.TrimSpace(l), "no") {
		t.Errorf("deny shown as %q:\n%s", l, tab)
	}

	// Both gateways get the tables; gw1 refuses mob2's video and counts it.
	var st control.AuthzStatus
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		h.json(&st, "authz", "status")
		if len(st.Gateways) == 2 && st.Gateways[0].InSync && st.Gateways[1].InSync {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !st.Managed || len(st.Gateways) != 2 || !st.Gateways[0].InSync || !st.Gateways[1].InSync || st.Gateways[0].Acked != st.Version {
		t.Fatalf("push status %+v", st)
	}
	if tab := h.run("authz", "status"); !strings.Contains(tab, "gw2") || !strings.Contains(tab, "true") {
		t.Errorf("status table:\n%s", tab)
	}
	if stype, ok := gw1.check("10.30.0.2", "IMEI-mob2"); stype != "video" || ok {
		t.Fatalf("gw1 lets mob2 use %q (%v)", stype, ok)
	}
	if _, ok := gw1.check("10.30.0.2", "IMEI-mob1"); !ok {
		t.Fatal("gw1 refuses mob1's video")
	}
	var gw api.Authz
	h.json(&gw, "gw", "authz", "-gw", url1)
	if d := cmp.Diff(want, api.Authz{T9: gw.T9, T8: gw.T8}, sortT8()); d != "" {
		t.Errorf("gw1's tables (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]uint64{"web": 0, "video": 1}, gw.Denied); d != "" {
		t.Errorf("gw1's refusals (-want +got):\n%s", d)
	}
	tab = h.run("gw", "authz", "-gw", url1)
	if i := strings.Index(tab, "REFUSED"); i < 0 || strings.Join(strings.Fields(lineWith(tab[i:], "video")), " ") != "video 1" {
		t.Errorf("gw authz table lacks the refusal of video:\n%s", tab)
	}
	var all []struct {
		Gateway string    `json:"gateway"`
		URL     string    `json:"url"`
		Value   api.Authz `json:"value"`
	}
	h.json(&all, "gw", "authz") // -gw all
	if len(all) != 2 || all[0].Gateway != "gw1" || all[1].URL != url2 || all[1].Value.Denied["video"] != 0 {
		t.Fatalf("gw authz on all: %+v", all)
	}
	if tab := h.run("gw", "authz"); !strings.Contains(tab, "# gw1 "+url1) || !strings.Contains(tab, "# gw2 "+url2) {
		t.Errorf("gw authz table on all:\n%s", tab)
	}

	// set -file: what show printed goes back in, edited (JSON), and shows
	// as set; then YAML; a gateway's answer (with counters) is taken too.
	dir := t.TempDir()
	fromGW := filepath.Join(dir, "gw.json") // gw1 holds want
	os.WriteFile(fromGW, []byte(h.run("-o", "json", "gw", "authz", "-gw", url1)), 0o600)
	next := want
	next.T8 = append([]api.T8Row{{Device: "IMEI-mob3", ServiceType: "web", Allowed: true}}, want.T8[1:]...)
	b, _ := json.Marshal(next)
	file := filepath.Join(dir, "authz.json")
	os.WriteFile(file, b, 0o600)
	h.run("authz", "set", "-file", file)
	h.json(&got, "authz")
	if d := cmp.Diff(next, got, sortT8()); d != "" {
		t.Fatalf("set -file JSON (-want +got):\n%s", d)
	}
	yml := filepath.Join(dir, "authz.yaml")
	os.WriteFile(yml, []byte("t9:\n  - {rep: 10.30.0.3, service_type: mail}\nt8:\n  - {device: IMEI-mob1, service_type: mail, allowed: true}\n"), 0o600)
	h.run("authz", "set", "-file", yml)
	h.json(&got, "authz")
	if d := cmp.Diff(api.Authz{T9: []api.T9Row{{Rep: "10.30.0.3", ServiceType: "mail"}}, T8: []api.T8Row{{Device: "IMEI-mob1", ServiceType: "mail", Allowed: true}}}, got); d != "" {
		t.Fatalf("set -file YAML (-want +got):\n%s", d)
	}
	h.run("authz", "set", "-file", fromGW)
	h.json(&got, "authz")
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("set -file from gw authz (-want +got):\n%s", d)
	}
	// Removals.
	h.run("authz", "forget", "IMEI-mob2", "video")
	h.run("authz", "t9", "-delete", "10.30.0.2")
	h.json(&got, "authz")
	want.T9, want.T8 = want.T9[:1], append(want.T8[:2:2], want.T8[3])
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("after forget and t9 -delete (-want +got):\n%s", d)
	}
}

// sortT8 compares T8 rows as a set (a gateway keeps them in the order pushed).
func sortT8() cmp.Option {
	return cmp.Transformer("sortT8", func(in []api.T8Row) map[string]bool {
		m := map[string]bool{}
		for _, r := range in {
			m[r.Device+" "+r.ServiceType] = r.Allowed
		}
		return m
	})
}

func TestAuthzErrors(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("t9: [{rep: 10.30.0.1, service_type: web, port: 80}]\n"), 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	dup := filepath.Join(dir, "dup.json")
	os.WriteFile(dup, []byte(`{"t9":[{"rep":"10.30.0.1","service_type":"a"},{"rep":"10.30.0.1","service_type":"b"}],"t8":[]}`), 0o600)
	for _, c := range []struct {
		args []string
		rc   int
		err  string
	}{
		{[]string{"authz", "bogus"}, 2, "unknown subcommand"},
		{[]string{"authz", "allow", "IMEI-1"}, 2, "usage"},
		{[]string{"authz", "t9", "-delete"}, 2, "usage"},
		{[]string{"authz", "set"}, 2, "needs -file"},
		{[]string{"authz", "set", "-file", filepath.Join(dir, "missing")}, 1, "no such file"},
		{[]string{"authz", "set", "-file", bad}, 1, "port"},
		{[]string{"authz", "set", "-file", empty}, 1, "empty"},
		{[]string{"authz", "set", "-file", dup}, 1, "listed twice"},
		{[]string{"authz", "t9", "10.30.0", "web"}, 1, "t9 rep"},
		{[]string{"authz", "forget", "IMEI-1", "web"}, 1, "404"},
		{[]string{"authz", "t9", "-delete", "10.30.0.1"}, 1, "404"},
	} {
		if rc, errb := h.rc(c.args...); rc != c.rc || !strings.Contains(errb, c.err) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d with %q", c.args, rc, errb, c.rc, c.err)
		}
	}
	var got api.Authz
	h.json(&got, "authz")
	if len(got.T9)+len(got.T8) != 0 {
		t.Fatalf("refused commands changed the tables: %+v", got)
	}
	if rc, errb := h.rc("gw", "authz"); rc != 1 || !strings.Contains(errb, "no gateway with a control API") {
		t.Errorf("gw authz without gateways: exit %d: %s", rc, errb)
	}
	if rc, errb := h.rc("gw", "authz", "extra"); rc != 2 {
		t.Errorf("gw authz extra: exit %d: %s", rc, errb)
	}
}

func TestAuthzHelp(t *testing.T) {
	for _, args := range [][]string{{"authz", "-h"}, {"authz", "set", "-h"}, {"authz", "allow", "-h"}, {"authz", "t9", "-h"},
		{"authz", "status", "-h"}, {"gw", "authz", "-h"}} {
		var out, errb bytes.Buffer
		if rc := Main(args, &out, &errb, Defaults{Control: "http://127.0.0.1:1"}); rc != 0 {
			t.Errorf("%v: exit %d: %s", args, rc, errb.String())
		}
	}
	var out, errb bytes.Buffer
	Main([]string{"-h"}, &out, &errb, Defaults{})
	if !strings.Contains(errb.String(), "authz") {
		t.Errorf("samepathctl -h does not list authz:\n%s", errb.String())
	}
}
