package lbsteer

import (
	"context"

	"github.com/google/go-cmp/cmp"
	"testing"
	"time"

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
