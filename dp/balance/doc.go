// Package balance is the packet gateway's server balancing (R-GW-2) and
// user session types (R-GW-6, R-GW-8; FIGS. 23, 33-41).
//
//   - Table is T6 joined with T11: representative address (IP, port,
//     protocol) -> service: user session type, balancing policy (round
//     robin, smooth weighted round robin, least connections, fastest
//     response, CPU load) and the actual servers with weight and state.
//   - Dist is T7, the distribution information: per user session and
//     service, the chosen actual server, recorded and released with the
//     exact timing of FIG. 33 for login, service, packet and connection
//     units (see Dist.Decide for the steps of FIGS. 36-40).
//   - Prober checks every server's health (TCP connect, HTTP GET or a UDP
//     request/response) with fall/rise thresholds, feeds RTTs to the
//     fastest-response policy and polls samepath-agent (GET /load) for
//     the CPU-load policy.
//   - CPUSampler and AgentHandler are the agent side (cmd/samepath-agent).
//
// Ownership and concurrency. Table readers (Lookup, Pick, Server16,
// Acquire/Release, Observe*) run on any goroutine without locks: they
// load an immutable snapshot through an atomic pointer and touch only
// atomics (per-server counters padded to a cache line). Control calls
// (Put, Delete, Set*) serialize on a mutex and publish a copied snapshot;
// run-time state (flow counts, RTT, load, health) carries over by server
// address. A Dist belongs to one goroutine, the gateway worker owning
// the sessions; Snapshot and Stats may run elsewhere (the owner takes a
// mutex only around record writes, Snapshot takes it per 1024 records).
//
// Allocation. Lookup, Pick, Acquire/Release, Observe*, Decide, Down,
// FlowEnd and EndSession never allocate (AllocsPerRun tests); NewDist
// preallocates every record. Control calls, Services, Status, Snapshot and
// the Prober allocate.
//
// Hot-path calls by the gateway (dp/gw.go): Lookup on the up packet's
// destination; Decide(FlowStart) on the first packet of every flow,
// keeping the returned server index in the flow's T5 entry; for
// packet-unit services Decide(UpPacket) on every further up packet and
// Down on every down packet; FlowEnd when a flow is reclaimed (FIN/RST,
// idle timeout, session end); EndSession on the session end notification.
// Benchmarks: BenchmarkLookup, BenchmarkPick, BenchmarkDecide.
package balance
