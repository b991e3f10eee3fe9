// Package lbsteer is the `make perf` scenario lb-steer: pktgen namespace ->
// device under test -> sink namespace over veth, measuring frames per second
// at the sink for each variant of the device under test, in alternation
// (A B A B ...), per BENCH.md. The topology, runner and rendering are
// perf/bench's; this package holds the variants, the table and the targets.
//
// The kernel baselines are our own XDP programs (perf/xdpprog: XDP_REDIRECT
// veth->veth, XDP_TX) and plain kernel forwarding; the samepathd variants
// start `bin/samepathd --config FILE` (role lb, steering afxdp or xdp) and
// are skipped with a reason while that binary does not exist.
//
// CPU placement (2-core box): the generator thread on CPU0; the DUT
// ingress veth's threaded NAPI on CPU1 for in-kernel variants, on CPU0 for
// AF_XDP (whose poller owns CPU1); the sink device's NAPI unthreaded, so it
// runs in softirq on the CPU that transmits into it: CPU1, the DUT's, for
// every variant. Placement and XDP attach modes are checked, printed and
// recorded.
//
// Nothing here is on a hot path; everything allocates freely.
package lbsteer
