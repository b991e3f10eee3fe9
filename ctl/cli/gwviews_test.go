package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
)

// viewGW answers GET /v1/dist and /v1/lbcache with fixed values and
// keeps the queries it was sent.
type viewGW struct {
	mu      sync.Mutex
	queries []string
	dist    api.Dist
	lbs     api.LBCache
}

func (v *viewGW) serve(t *testing.T) string {
	mux := http.NewServeMux()
	answer := func(val any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			v.mu.Lock()
			v.queries = append(v.queries, r.URL.Path+"?"+r.URL.RawQuery)
			v.mu.Unlock()
			json.NewEncoder(w).Encode(val)
		}
	}
	mux.Handle("GET /v1/dist", answer(v.dist))
	mux.Handle("GET /v1/lbcache", answer(v.lbs))
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

func (v *viewGW) last(t *testing.T) url.Values {
	v.mu.Lock()
	defer v.mu.Unlock()
	q := v.queries[len(v.queries)-1]
	vals, err := url.ParseQuery(q[strings.Index(q, "?")+1:])
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

func TestGWDistAndLBCache(t *testing.T) {
	h := newGWHarness(t)
	v := &viewGW{
		dist: api.Dist{Stats: api.DistStats{Records: 2, Recorded: 5, Released: 3}, Total: 2, Records: []api.DistRecord{
			{Session: "s1", Service: "web-a", Type: "login", Server: "10.20.0.11:80", Flows: 2, AgeSec: 61},
			{Session: "s2", Service: "web-a", Type: "connection", ServerIdx: 3, Flows: 1, AgeSec: -1}}},
		lbs: api.LBCache{Total: 1, Uncached: 4, Entries: []api.LBCacheEntry{
			{Mobile: "10.101.0.1", LBMAC: "02:00:00:00:01:02", Learned: api.LearnedEvent, AgeMs: 1500, Session: "s1", Flows: 2}}},
	}
	u := v.serve(t)

	var d api.Dist
	h.gwJSON(&d, "gw", "dist", "-gw", u, "-session", "s1", "-service", "web-a", "-limit", "7")
	if diff := cmp.Diff(v.dist, d); diff != "" {
		t.Errorf("dist -o json (-want +got):\n%s", diff)
	}
	if q := v.last(t); q.Get("session") != "s1" || q.Get("service") != "web-a" || q.Get("limit") != "7" {
		t.Errorf("dist query %v", q)
	}
	tab := h.ok("gw", "t7", "-gw", u)
	for _, s := range []string{"SESSION", "s1", "login", "10.20.0.11:80", "1m1s", "(stale #3)", "(2 of 2 records; recorded 5, released 3"} {
		if !strings.Contains(tab, s) {
			t.Errorf("dist table lacks %q:\n%s", s, tab)
		}
	}
	if line := lineWith(tab, "s2"); !strings.HasSuffix(strings.TrimSpace(line), "-") {
		t.Errorf("unknown age not shown as -: %q", line)
	}

	var l api.LBCache
	h.gwJSON(&l, "gw", "lbcache", "--mobile", "10.101.0.1", "-gw", u)
	if diff := cmp.Diff(v.lbs, l); diff != "" {
		t.Errorf("lbcache -o json (-want +got):\n%s", diff)
	}
	if q := v.last(t); q.Get("mobile") != "10.101.0.1" || q.Get("limit") != "100" {
		t.Errorf("lbcache query %v", q)
	}
	// Lowercase keys, as every command's JSON.
	raw := h.ok("-o", "json", "gw", "t12", "-gw", u)
	for _, k := range []string{`"lb_mac"`, `"learned"`, `"age_ms"`, `"uncached"`} {
		if !strings.Contains(raw, k) {
			t.Errorf("lbcache JSON lacks %s:\n%s", k, raw)
		}
	}
	tab = h.ok("gw", "lbcache", "-gw", u)
	for _, s := range []string{"MOBILE", "LB MAC", "02:00:00:00:01:02", "event", "1.5s", "(1 of 1 entries; 4 known mobiles not cached)"} {
		if !strings.Contains(tab, s) {
			t.Errorf("lbcache table lacks %q:\n%s", s, tab)
		}
	}
	for _, args := range [][]string{{"gw", "dist", "-gw", u, "-limit", "-1"}, {"gw", "lbcache", "-gw", u, "extra"}} {
		if _, _, rc := h.gw(args...); rc != 2 {
			t.Errorf("%v: exit %d, want 2", args, rc)
		}
	}
}

// TestGWServerAdminAndWeight: gw server sets drain and maint (and down,
// as maint), gw weight a weight; gw services shows them, on every
// gateway with -gw all.
func TestGWServerAdminAndWeight(t *testing.T) {
	h := newGWHarness(t)
	h.ok("gw", "server", "web-a", "10.20.0.11:80", "drain")
	h.ok("gw", "server", "-gw", h.urls[0], "web-a", "10.20.0.12:80", "down")
	h.ok("gw", "weight", "web-a", "10.20.0.11:80", "4", "-gw", h.urls[1])
	want := [][]api.Server{
		{{Addr: "10.20.0.11:80", Weight: 1, State: "drain"}, {Addr: "10.20.0.12:80", Weight: 1, State: "maint"}},
		{{Addr: "10.20.0.11:80", Weight: 4, State: "drain"}, {Addr: "10.20.0.12:80", Weight: 1, State: "up"}},
	}
	for i, u := range h.urls {
		var got api.Services
		h.gwJSON(&got, "gw", "services", "-gw", u)
		if d := cmp.Diff(want[i], config(got).Services[0].Servers); d != "" {
			t.Errorf("gw%d servers (-want +got):\n%s", i+1, d)
		}
	}
	if tab := h.ok("gw", "services", "-gw", h.urls[0]); !strings.Contains(lineWith(tab, "10.20.0.11:80"), "drain") ||
		!strings.Contains(lineWith(tab, "10.20.0.12:80"), "maint") {
		t.Errorf("services table:\n%s", tab)
	}
	for _, c := range []struct {
		args []string
		rc   int
		err  string
	}{
		{[]string{"gw", "weight", "-gw", h.urls[0], "web-a", "10.20.0.11:80", "0"}, 2, "want 1..256"},
		{[]string{"gw", "weight", "-gw", h.urls[0], "web-a", "10.20.0.11:80", "x"}, 2, "want 1..256"},
		{[]string{"gw", "weight", "-gw", h.urls[0], "web-a", "10.20.0.99:80", "2"}, 1, "no such server"},
		{[]string{"gw", "server", "-gw", h.urls[0], "web-a", "10.20.0.11:80", "ready"}, 2, "want up, drain or maint"},
	} {
		if _, errb, rc := h.gw(c.args...); rc != c.rc || !strings.Contains(errb, c.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", c.args, rc, errb, c.rc, c.err)
		}
	}
}
