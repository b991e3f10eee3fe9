// Package bench is what samepath's packet scenarios of `make perf` share
// (perf/lbsteer, perf/gwnat), per ../shared/BENCH.md: the topology
// (pktgen namespace -> device under test -> sink namespace over veth),
// NAPI pinning with SCHED_FIFO and XDP attach-mode checks, the runner that
// measures every Variant of the device under test on every Case in
// alternation (A B A B ... case by case, each variant set up afresh for
// each case) counting at the sink, and the statistics and
// rendering: medians [min-max], run-by-run ratios, the environment table,
// target lines, an SVG bar chart, the saved samples (JSON) and sections of
// BENCHMARKS.md rewritten between markers. Scenarios supply their variants,
// frames, table and targets.
//
// Ownership: Run owns the topology it builds and tears it down, also on
// error; a variant's Setup owns what it starts in the DUT namespace until
// its teardown. Nothing here is on a hot path; everything allocates freely.
// The measurement goroutine and the generator's threads are the only
// concurrency.
package bench
