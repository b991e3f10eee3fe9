package daemon_test

// A samepathd LB on AF_XDP (the lbTopo of e2e_test.go, one LB) serves
// its worker's show-runtime figures: GET /v1/runtime and the
// samepath_worker_* series count the datagrams it steered (issue 18).

import (
	"strings"
	"testing"

	"samepath/ctl/api"
	"samepath/testbed/privtest"
)

func TestRuntimeE2E(t *testing.T) {
	privtest.Require(t)
	bin := buildSamepathd(t)
	tp := newLBTopo(t)
	l := tp.startLB(bin, 1, "afxdp", `    - range: 10.101.0.0/24
      gateways: [{mac: "02:00:00:00:00:a1", state: up}]
`)
	const n = 20
	tp.send(1, n)
	if g1, _ := tp.gwCounts(); g1 != n {
		t.Fatalf("gw1 got %d datagrams, want %d", g1, n)
	}
	var rt api.Runtime
	out := lbAPI(t, l)("GET", "/v1/runtime", "")
	if err := jsonUnmarshal(out, &rt); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rt.Workers) != 1 {
		t.Fatalf("workers: %s", out)
	}
	w := rt.Workers[0]
	// Vectors count every frame the worker received: the datagrams and
	// whatever else the filter handed it (ARP from the gateway side).
	if w.Vectors < n || w.Batches == 0 || w.BusyRounds == 0 || w.Rounds <= w.BusyRounds || w.BusyNs <= 0 || w.NsPerPacket <= 0 || len(w.Ports) != 2 {
		t.Errorf("runtime after %d datagrams: %s", n, out)
	}
	metrics := lbAPI(t, l)("GET", "/metrics", "")
	for _, s := range []string{`samepath_worker_vectors_total{cpu=`, `samepath_worker_busy_seconds_total{cpu=`, `samepath_worker_waits_total{cpu=`} {
		if !strings.Contains(metrics, s) {
			t.Errorf("/metrics lacks %s", s)
		}
	}
}
