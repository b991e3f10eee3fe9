package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/health"
)

// TestHealthSync (issue 17, visibility): `health` shows per gateway its
// state sync as the monitor read it: a returning gateway kept down
// while syncing, the substitute's bindings held for its peer, its
// takeovers and failbacks, and per peer the lag and whether the
// peer's addresses are here; a gateway without gw.sync has none; JSON
// carries the state as read.
func TestHealthSync(t *testing.T) {
	up, down := true, false
	report := control.HealthReport{Targets: []health.Status{
		{Target: health.Target{Kind: health.KindGateway, Name: "gw1"}, Up: &down, Failures: 4, LastError: "status 503 Service Unavailable",
			Sync: &api.GWSync{Peers: []api.GWSyncPeer{{Name: "gw2", Connected: true, Ready: true, LagNS: 2500000}}}},
		{Target: health.Target{Kind: health.KindGateway, Name: "gw2"}, Up: &up,
			Sync: &api.GWSync{Ready: true, Held: 7, Takeovers: 2, Failbacks: 1, Peers: []api.GWSyncPeer{{Name: "gw1", TakenOver: true, LagNS: 1000000}}}},
		{Target: health.Target{Kind: health.KindGateway, Name: "gw3"}, Up: &up},
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(report)
	}))
	defer srv.Close()
	rc, out, errb := ctl(Defaults{Control: srv.URL}, "health")
	if rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb)
	}
	ws := regexp.MustCompile(`\s+`)
	for _, want := range []string{
		"gateway gw1 false 0 0 4 syncing status 503",
		"gateway gw2 true 0 0 0 ready -",
		"gateway gw3 true 0 0 0 - -",
		"gw1 syncing 0 0 0 gw2 true true 2.5ms false -",
		"gw2 ready 7 2 1 gw1 false false 1ms true -",
	} {
		found := false
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(ws.ReplaceAllString(strings.TrimSpace(l), " "), want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line %q in:\n%s", want, out)
		}
	}
	if l := lineWith(out, "gw3 "); strings.Count(out, "gw3") != 1 {
		t.Errorf("gw3 (no sync) in the sync section: %q\n%s", l, out)
	}
	rc, out, errb = ctl(Defaults{Control: srv.URL}, "-o", "json", "health")
	if rc != 0 {
		t.Fatalf("json: exit %d: %s", rc, errb)
	}
	var got control.HealthReport
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Targets[1].Sync == nil || got.Targets[1].Sync.Held != 7 || got.Targets[2].Sync != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
}
