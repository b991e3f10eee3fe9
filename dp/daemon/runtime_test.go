package daemon

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/internal/promcheck"
)

// rtBackend is the gateway rig's backend with its worker's figures.
type rtBackend struct {
	gwTestBackend
	ws []*dp.Worker
}

func (b rtBackend) Runtime() api.Runtime { return WorkersRuntime(b.ws, []int{-1}) }

// TestRuntimeView (issue 18): GET /v1/runtime and the samepath_worker_*
// series count the worker's rounds, batches and packets.
func TestRuntimeView(t *testing.T) {
	r := newGWRig(t)
	b := rtBackend{gwTestBackend{r.s}, []*dp.Worker{r.w}}
	reg := NewRegistry(b.Counters)
	reg.MustRegister(NewRuntimeCollector(b.Runtime))
	hs := httptest.NewServer(NewHandler(b, reg, "", r.log))
	defer hs.Close()
	c := api.NewClient(hs.URL)

	r.event(api.EventStart, "s1", addrA, 1) // one empty round (the event)
	for range 3 {
		if got := r.up(addrA); got != "forwarded" {
			t.Fatalf("up: %s", got)
		}
	}
	rt, err := c.Runtime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Workers) != 1 {
		t.Fatalf("workers: %+v", rt.Workers)
	}
	w := rt.Workers[0]
	type counts struct{ Rounds, Busy, Idle, Batches, Vectors uint64 }
	if d := cmp.Diff(counts{4, 3, 1, 3, 3}, counts{w.Rounds, w.BusyRounds, w.IdleRounds, w.Batches, w.Vectors}); d != "" {
		t.Errorf("runtime counts (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"lan/q0", "srv/q0"}, w.Ports); d != "" {
		t.Errorf("ports (-want +got):\n%s", d)
	}
	if w.VectorsPerBatch != 1 || w.IdleRoundShare != 0.25 || w.BusyNs <= 0 || w.NsPerPacket <= 0 || w.CPU != -1 {
		t.Errorf("derived: %+v", w)
	}
	m := gather(t, reg)
	l := "{cpu=-1,worker=0}"
	for k, want := range map[string]float64{
		"samepath_worker_rounds_total" + l: 4, "samepath_worker_busy_rounds_total" + l: 3,
		"samepath_worker_batches_total" + l: 3, "samepath_worker_vectors_total" + l: 3,
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if m["samepath_worker_busy_seconds_total"+l] <= 0 {
		t.Error("no busy time in the metrics")
	}
	promcheck.Metrics(t, "gw /metrics with runtime", getBody(t, hs.URL+"/metrics"))
}
