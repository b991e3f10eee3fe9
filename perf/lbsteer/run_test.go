package lbsteer

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-cmp/cmp"
	"testing"
	"time"

	"samepath/perf/bench"

	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

// A short run of the in-kernel baselines carries frames end to end, checks
// placement and native XDP, and leaves no namespace behind. No timing is
// asserted: only that frames arrived.
func TestRunBaselinesSmoke(t *testing.T) {
	privtest.Require(t)
	cfg := QuickConfig("/nonexistent/samepathd")
	cfg.Prefix = privtest.Name("spl", "")
	cfg.Warm, cfg.Measure = 50*time.Millisecond, 200*time.Millisecond
	cfg.Cases = []Case{{Size: 64, Flows: 100}}
	cfg.GenRate = 100000 // gentle: this is a functional test on a shared box
	cfg.Variants = append([]Variant{XDPRedirect(), XDPTx(), KernelForward()}, Samepathd("/nonexistent/samepathd", "afxdp"))
	res, err := Run(context.Background(), cfg)
	t.Cleanup(func() { NewTopology(cfg.Prefix).Down() })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Skipped["samepathd-afxdp"]; !ok {
		t.Error("missing samepathd binary not reported as skipped")
	}
	for _, v := range []string{"xdp-redirect", "xdp-tx", "kernel-fwd"} {
		if why, ok := res.Skipped[v]; ok {
			t.Errorf("%s failed: %s", v, why)
			continue
		}
		var got bool
		for _, s := range res.Samples {
			if s.Variant == v && s.SinkPPS > 0 {
				got = true
			}
		}
		if !got {
			t.Errorf("%s: nothing reached the sink", v)
		}
		if len(res.Placement[v]) < 3 {
			t.Errorf("%s: placement not recorded: %v", v, res.Placement[v])
		}
	}
	left, err := topo.ListNetns(cfg.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
}

// The AF_XDP reference (`pktgen fwd`) forwards a gentle stream to the
// sink, placed as samepathd is (poller pinned to CPU1, the ingress NAPI on
// CPU0), and leaves nothing behind.
func TestRunL2FwdSmoke(t *testing.T) {
	privtest.Require(t)
	bin := filepath.Join(t.TempDir(), "pktgen")
	if out, err := exec.Command("go", "build", "-o", bin, "samepath/cmd/pktgen").CombinedOutput(); err != nil {
		t.Fatalf("build pktgen: %v\n%s", err, out)
	}
	cfg := QuickConfig("/nonexistent/samepathd")
	cfg.Prefix = privtest.Name("spf", "")
	cfg.Warm, cfg.Measure = 100*time.Millisecond, 300*time.Millisecond
	cfg.Cases = []Case{{Size: 64, Flows: 100}}
	cfg.GenRate = 50000
	cfg.Variants = []Variant{bench.L2Fwd(bin)}
	res, err := Run(context.Background(), cfg)
	t.Cleanup(func() { NewTopology(cfg.Prefix).Down() })
	if err != nil {
		t.Fatal(err)
	}
	if why, ok := res.Skipped["afxdp-l2fwd"]; ok {
		t.Fatalf("afxdp-l2fwd failed: %s", why)
	}
	if len(res.Samples) != 1 {
		t.Fatalf("%d samples, want 1", len(res.Samples))
	}
	s := res.Samples[0]
	t.Logf("generator %.0f pps, sink %.0f pps, loss %.2f%%", s.GenPPS, s.SinkPPS, 100*s.Loss)
	// The forwarder keeps up with 50 000 frames/s easily, but on a box
	// busy with other tests the kernel lets other runnable tasks preempt
	// its SCHED_FIFO poller for up to 50 ms a second (sched_rt_runtime_us
	// 950000 of 1000000), and the 2048-slot RX ring fills in 41 ms at
	// this rate: a few percent then drop at the ingress veth (seen under
	// CI: up to 10%; samepathd does the same). A forwarder that drops or
	// misroutes loses far more than half.
	if s.SinkPPS <= 0 || s.Loss > 0.5 {
		t.Errorf("sink %.0f pps, loss %.1f%%: want the frames forwarded", s.SinkPPS, 100*s.Loss)
	}
	var pinned bool
	for _, l := range res.Placement["afxdp-l2fwd"] {
		pinned = pinned || strings.Contains(l, `"pktgen" pinned to CPUs 1`)
	}
	if !pinned {
		t.Errorf("poller not pinned to CPU1: %v", res.Placement["afxdp-l2fwd"])
	}
	left, err := topo.ListNetns(cfg.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
}

// A topology left by a dead run is found and removed; a live one is kept.
func TestCleanStale(t *testing.T) {
	privtest.Require(t)
	prefix := privtest.Name("spc", "")
	dead := &Topology{Prefix: prefix + "-999999999"}
	dead.Gen, dead.DUT, dead.Sink = dead.Prefix+"-gen", dead.Prefix+"-dut", dead.Prefix+"-sink"
	live := NewTopology(prefix)
	for _, tp := range []*Topology{dead, live} {
		for _, ns := range []string{tp.Gen, tp.DUT, tp.Sink} {
			if err := topo.CreateNetns(ns); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { tp.Down() })
	}
	gone, err := CleanStale(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 3 {
		t.Errorf("removed %v, want the dead run's 3 namespaces", gone)
	}
	left, err := topo.ListNetns(prefix + "-")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{live.DUT, live.Gen, live.Sink}, left); d != "" {
		t.Errorf("namespaces left (-want +got):\n%s", d)
	}
}
