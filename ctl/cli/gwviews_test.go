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
