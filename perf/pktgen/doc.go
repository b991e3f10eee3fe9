// Package pktgen is samepath's packet generator and counting sink, in the
// spirit of DPDK pktgen, for `bin/pktgen` and `make perf`.
//
// Transmit engines:
//   - live (default, fastest): BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES.
//     The kernel builds frames from a template and runs xdpprog's generator on
//     each; the program rewrites source address and port (cycling through the
//     FrameSpec's flows), a sequence stamp and the checksums, and returns
//     XDP_TX, which sends the frame out of the interface named in the run
//     context. Each thread passes its own template carrying its stream id
//     and owns a state slot in the program (sequence, pacing interval,
//     frame limit): the program itself paces a rate-limited run (frames
//     ahead of schedule are dropped unsent, so there are no bursts; debts
//     over 1 ms are forgiven) and stops at the count. Threads make bounded
//     calls (Repeat) in a loop so cancellation acts between calls (the
//     kernel ignores signals inside one). A call costs a page-pool setup
//     (~ms), so calls are long. While a run lasts, the program is also
//     attached to a veth pair of its own that stays down (named spgh, the
//     pid in hex, '-', a number; deleted at the end, and by the next run if
//     its process died), which keeps it in the kernel's XDP dispatcher:
//     otherwise every call rewrites the dispatcher's code twice and
//     interrupts every CPU to do it (hold.go; where the pair cannot be
//     made, the run goes on without it and prints a warning). On veth the
//     peer device must have NAPI (an XDP program attached, or GRO on) or
//     the frames are dropped.
//   - afxdp: AF_XDP TX through ring/xsk (any NIC; copy mode on veth): one
//     socket per thread, frames copied from the template and stamped in Go
//     (the same bytes the kernel program writes), paced per batch in Go.
//
// Streams: thread i stamps stream StreamBase+i; runs sharing a sink should
// use disjoint stream ids, or the second run's frames count as late.
//
// Receive: Sink attaches xdpprog's counting program in native mode and
// counts frames and bytes per CPU; for stamped frames it tracks per stream
// the first and highest sequence, frames received and frames that arrived
// late, from which loss and reordering follow. Streams are tracked per CPU,
// exact while one stream arrives on one CPU (one RX queue, as on veth).
//
// Frame sizes count the 4-byte FCS as RFC 2544 does: 64 B is 60 bytes of
// data; bit rates count it too. The stamp (16 bytes: magic, stream, seq) is
// written when the payload has room for it (IPv4 UDP from 64 B, IPv4 TCP
// from 74 B, IPv6 UDP from 82 B, IPv6 TCP from 94 B, FCS included); smaller
// frames are counted only.
//
// Goroutines: each transmit thread is a locked OS thread that has joined the
// target namespace and is pinned to its CPU; it owns nothing but its loop
// state. The progress printer reads the kernel maps. Nothing is allocated per
// packet (the kernel generates the packets); per call the live engine
// allocates the RunOptions context serialisation inside cilium/ebpf.
package pktgen
