// Package dp is samepath's poll-mode packet engine and its two pipelines.
//
// A Worker polls a set of Ports (AF_XDP sockets from ring/xsk, or
// in-memory ports from ring/memport in tests and benchmarks), receives
// batches of frame descriptors, runs a Pipeline over each batch and sends
// the verdicts: frames forwarded between ports sharing a UMEM move by
// descriptor; between different UMEMs they are copied. Every drop is
// counted by Reason in the receiving port's Counters.
//
// Ownership: one Worker is run by one goroutine, locked to its OS thread
// and pinned to a CPU; it owns its ports, their frames, its counters and
// its pipeline's per-worker state. Other goroutines read counters
// (atomics) and change shared tables (nat.T4, balance.Table, Authz) that
// publish immutable snapshots; the gateway's session changes reach the
// worker through a queue it drains every round (GW.Apply, Ticker).
//
// Pipelines:
//
//   - LB (FIG. 12-15): steers up frames to the first gateway in state up
//     of the T4 row holding the source address and down frames to the
//     ingress next hop, rewriting only Ethernet addresses. The in-kernel
//     offload in dp/steer does the same (a differential test holds them
//     to identical output).
//
//   - GW (FIG. 16-24, 32-40): the packet gateway: session gating (T3),
//     authorization (T8/T9), server balancing (dp/balance: T6, T7, T11),
//     port-key NAT (nat.PortTable: T5) with ICMP errors translated, proxy
//     replies (RST, ICMP) for refused flows, and the LB MAC cache (T12).
//     An ICMP echo to a representative address names no port: it is
//     balanced as the first service at that address with a server up
//     (balance.Table.LookupAddr), its identifier being the key.
//
//     Every packet is decoded once (header.Decode) and that one decode
//     is passed to every step; gw.go lists the files by responsibility.
//
// Panics: nothing from the wire may cause one (every reader after
// header.Decode uses only lengths it checked; FuzzGW and FuzzLB run
// fuzzed frames through the whole pipelines). Should a bug panic anyway,
// the worker recovers at the batch level: the batch's frames are dropped
// and counted as reason "panic", the event is counted (Counters.Panics)
// and handed to WorkerConfig.OnPanic with the frames and the stack
// (samepathd logs them in hex, one report a second at most), and the
// worker goes on with the next batch, so one bad frame cannot end every
// subscriber's traffic. State the panicking step had half-changed stays
// so: the log is there to fix the bug.
//
// Capture: Worker.SetTap arms a dp/capture tap (samepathctl capture):
// the frames it takes are copied before the pipeline runs and again, with
// their verdict, after it; unarmed, the worker pays one atomic load per
// batch (BenchmarkGWCapture).
//
// Runtime: each worker counts its busy rounds, batches and busy time
// once per busy round and its idle waits (RuntimeCounters, runtime.go),
// for a view like vppctl's show runtime (Worker.Runtime; BenchmarkWorkerPoll,
// BenchmarkRuntimeBusy). A server put into maint has its flows ended by
// the gateway's worker in bounded steps (GW.EndServerFlows, gw_admin.go).
//
// Allocation: Worker.Poll, LB.Process and GW.Process allocate nothing per
// packet (tests hold them to zero); tables allocate on update only.
// Benchmarks: BenchmarkLB and the gateway benchmarks, BENCHMARKS.md
// section "micro".
package dp
