package lbsteer

import (
	"context"
	"time"

	"samepath/perf/bench"
)

// DefaultConfig is the full `make perf` run: 3 reps of every variant on
// 64 B and 1500 B frames with 1 and 10 000 flows.
func DefaultConfig(samepathd string) Config {
	return Config{
		Scenario: "lb-steer",
		Reps:     3, Warm: 500 * time.Millisecond, Measure: 2 * time.Second,
		Cases:    []Case{{Size: 64, Flows: 1}, {Size: 64, Flows: 10000}, {Size: 1500, Flows: 1}, {Size: 1500, Flows: 10000}},
		Variants: AllVariants(samepathd),
		GenCPU:   0, SinkCPU: 0, Batch: 64, Prefix: "spperf", NAPIFifo: 50,
		// The sink's NAPI runs in softirq on the CPU that transmits into
		// it (the DUT's, for every variant), as a NIC's TX completions run
		// on the sender's core. Threaded on CPU0 beside the generator, it
		// freed samepathd's AF_XDP skbs on the other core (xsk completion
		// lock and socket write accounting bouncing between cores), left
		// the generator a third of CPU0 and made every variant slower
		// (BENCHMARKS.md, "Reading these numbers"). -sink-threaded
		// measures that placement.
		SinkSoftirq: true,
	}
}

// QuickConfig is a development run: 1 rep, short windows.
func QuickConfig(samepathd string) Config {
	c := DefaultConfig(samepathd)
	c.Reps, c.Warm, c.Measure = 1, 200*time.Millisecond, 500*time.Millisecond
	return c
}

// AllVariants lists the baselines and the samepathd variants in run order.
func AllVariants(samepathd string) []Variant {
	return []Variant{XDPRedirect(), XDPTx(), KernelForward(),
		Samepathd(samepathd, "afxdp"), Samepathd(samepathd, "xdp"), bench.L2Fwd(bench.PktgenBeside(samepathd))}
}

// Run measures the scenario (see bench.Run).
func Run(ctx context.Context, cfg Config) (*Result, error) { return bench.Run(ctx, cfg) }

// NewTopology names a topology after this process (see bench.NewTopology).
func NewTopology(prefix string) *Topology { return bench.NewTopology(prefix) }

// CleanStale removes the topologies of dead runs (see bench.CleanStale).
func CleanStale(prefix string) ([]string, error) { return bench.CleanStale(prefix) }
