package gwnat

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"samepath/ctl/api"
	"samepath/dp/daemon"
	"samepath/perf/bench"
	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The gateway config the harness writes is one samepathd accepts.
func TestConfigParses(t *testing.T) {
	tp := bench.NewTopology("x")
	c, err := daemon.Parse([]byte(Config(tp)))
	if err != nil {
		t.Fatalf("samepathd rejects the harness config: %v\n%s", err, Config(tp))
	}
	if c.Role != "gw" || c.GW.RequireSession == nil || *c.GW.RequireSession || len(c.GW.NAT.Addrs) != len(NATAddrs) {
		t.Errorf("parsed config %+v", c.GW)
	}
	if !strings.Contains(NFTRules(tp), "dnat to "+tp.DstIP.String()) || !strings.Contains(NFTRules(tp), `oifname "`+tp.Out+`" masquerade`) {
		t.Errorf("nft rules:\n%s", NFTRules(tp))
	}
}

func TestCounterDelta(t *testing.T) {
	a := api.Counters{Queues: []api.QueueCounters{{Port: "in/q0", RxPackets: 10, Drops: map[string]uint64{"no_flow": 1}}}}
	b := api.Counters{Queues: []api.QueueCounters{
		{Port: "in/q0", RxPackets: 110, TxPackets: 0, Drops: map[string]uint64{"no_flow": 4, "malformed": 0}, IdleRatio: 0.5},
		{Port: "out/q0", TxPackets: 97, Drops: map[string]uint64{}},
	}}
	got := CounterDelta(a, b)
	want := "in/q0 rx 100 tx 0 drops: no_flow 3 (idle polls 50% since start); out/q0 rx 0 tx 97 no drops (idle polls 0% since start)"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestMarkdown(t *testing.T) {
	cfg := DefaultConfig("/nonexistent/samepathd")
	cfg.Cases = []bench.Case{{Size: 64, Flows: 1000}}
	r := &bench.Result{Config: cfg, Env: bench.Env{Date: "d", Commit: "c", Command: "perfrun -scenario gw-nat"}, Skipped: map[string]string{},
		Placement: map[string][]string{"nft-nat": {"napi here"}}}
	for rep, v := range map[int][2]float64{1: {1e5, 3e5}, 2: {2e5, 3e5}, 3: {1e5, 1e5}} {
		r.Samples = append(r.Samples,
			bench.Sample{Variant: "nft-nat", Case: cfg.Cases[0], Rep: rep, SinkPPS: v[0]},
			bench.Sample{Variant: "samepathd-gw", Case: cfg.Cases[0], Rep: rep, SinkPPS: v[1], Note: "in/q0 rx 5", DevDrops: "i.rx_queue_0_drops +3"})
	}
	md := Markdown(r, "perf/results/gw-nat.svg")
	// Ratios 3, 1.5, 1 -> median 1.5.
	for _, want := range []string{BeginMarker, EndMarker, "| 64 B | 1000 | samepathd gw | 0.300 [0.100-0.300] |", "| - | 1.50 |",
		"samepathd-gw >= 2.0x nft-nat, 64 B, 1000 flows: 1.500x MISSED", "require_session: false", "live frames",
		"gateway in/q0 rx 5; veth i.rx_queue_0_drops +3", "napi here", "softirq", "](perf/results/gw-nat.svg)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// A short, gentle run of the nftables baseline carries NATed frames to the
// sink and leaves nothing behind; a missing samepathd is reported as
// skipped. No timing is asserted.
func TestRunNFTSmoke(t *testing.T) {
	privtest.Require(t)
	cfg := QuickConfig("/nonexistent/samepathd")
	cfg.Prefix = privtest.Name("spg", "")
	cfg.Warm, cfg.Measure = 100*time.Millisecond, 200*time.Millisecond
	cfg.Cases = []bench.Case{{Size: 64, Flows: 100}}
	cfg.GenRate = 50000
	res, err := bench.Run(context.Background(), cfg)
	t.Cleanup(func() { bench.NewTopology(cfg.Prefix).Down() })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Skipped["samepathd-gw"]; !ok {
		t.Error("missing samepathd not reported as skipped")
	}
	if why, ok := res.Skipped["nft-nat"]; ok {
		t.Fatalf("nft-nat failed: %s", why)
	}
	got := 0.0
	for _, s := range res.Samples {
		if s.Variant == "nft-nat" {
			got += s.SinkPPS
		}
	}
	if got == 0 {
		t.Error("no NATed frame reached the sink")
	}
	left, err := topo.ListNetns(cfg.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
}
