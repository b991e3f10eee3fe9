package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
)

// runtimeGW answers GET /v1/runtime with a worker whose counts grow by
// the same step at every read.
func runtimeGW(t *testing.T) string {
	var reads atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/runtime", func(w http.ResponseWriter, _ *http.Request) {
		n := uint64(reads.Add(1))
		wr := api.WorkerRuntime{Worker: 0, CPU: 2, Ports: []string{"lan/q0", "srv/q0"}, Rounds: 1000 * n, BusyRounds: 100 * n, IdleRounds: 900 * n,
			Batches: 100 * n, Vectors: 3200 * n, BusyNs: int64(250_000 * n), UptimeNs: int64(1_000_000 * n), Waits: 5 * n}
		wr.Derive()
		json.NewEncoder(w).Encode(api.Runtime{Workers: []api.WorkerRuntime{wr}})
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

func TestRuntimeCommands(t *testing.T) {
	h := newGWHarness(t)
	u := runtimeGW(t)
	var r api.Runtime
	h.gwJSON(&r, "daemon", "runtime", "-daemon", u)
	want := api.WorkerRuntime{Worker: 0, CPU: 2, Ports: []string{"lan/q0", "srv/q0"}, Rounds: 1000, BusyRounds: 100, IdleRounds: 900,
		Batches: 100, Vectors: 3200, BusyNs: 250_000, UptimeNs: 1_000_000, Waits: 5,
		VectorsPerBatch: 32, NsPerPacket: 250_000.0 / 3200, IdleRoundShare: 0.9, IdleTimeShare: 0.75}
	if d := cmp.Diff([]api.WorkerRuntime{want}, r.Workers); d != "" {
		t.Errorf("daemon runtime (-want +got):\n%s", d)
	}
	// -interval: the second read less the first (one step of the fake).
	h.gwJSON(&r, "gw", "runtime", "-gw", u, "-interval", "10ms")
	if len(r.Workers) != 1 || r.Workers[0].Rounds != 1000 || r.Workers[0].NsPerPacket != 250_000.0/3200 || r.Workers[0].UptimeNs != 1_000_000 {
		t.Errorf("gw runtime -interval: %+v", r.Workers)
	}
	tab := h.ok("daemon", "runtime", "-daemon", u)
	for _, s := range []string{"VEC/BATCH", "NS/PKT", "IDLE TIME", "lan/q0,srv/q0", "32.0", "90.0%"} {
		if !strings.Contains(tab, s) {
			t.Errorf("runtime table lacks %q:\n%s", s, tab)
		}
	}
	raw := h.ok("-o", "json", "daemon", "runtime", "-daemon", u)
	for _, k := range []string{`"vectors_per_batch"`, `"ns_per_packet"`, `"idle_round_share"`, `"busy_ns"`} {
		if !strings.Contains(raw, k) {
			t.Errorf("runtime JSON lacks %s", k)
		}
	}
	if _, errb, rc := h.gw("daemon", "runtime"); rc != 2 || !strings.Contains(errb, "-daemon URL is required") {
		t.Errorf("daemon runtime without -daemon: exit %d: %s", rc, errb)
	}
}
