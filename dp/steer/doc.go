// Package steer is the in-kernel steering offload of the load-balancer
// role (R-LB-1..5): the T4 table compiled into eBPF maps so an XDP program
// itself rewrites the MACs and transmits, with no AF_XDP socket and no
// userspace poller. samepathd uses it when configured with `steering: xdp`;
// the AF_XDP pipeline (dp.LB) stays the default and the reference, and a
// differential test requires identical output frames and verdicts.
//
// # Semantics (identical to dp.LB behind the AF_XDP filter)
//
// Two programs share every map: steer_up runs on the ingress-side
// interface (toward the NAS/router), steer_down on the gateway-side one.
// Giving each side its own program means the direction is a compile-time
// constant: the program never reads ingress_ifindex, and BPF_PROG_RUN
// tests need no context. A frame is the dataplane's ("ours") when
//
//   - its destination MAC is the receiving side's own MAC,
//   - its EtherType, after at most one 802.1Q tag (0x8100), is IPv4 or
//     IPv6 (a tag with nothing readable behind it is not ours),
//   - its destination IP is not one of Config.Exclude, and
//   - it is not ICMPv6 neighbour discovery (types 133-137). Only an ICMPv6
//     header right after the fixed IPv6 header is recognised: ND behind
//     extension headers is not (RFC 4861 ND carries none in practice).
//
// Everything else is XDP_PASS: ARP, ND, pings and SSH to the host,
// broadcasts and other MACs stay with the kernel (R-LB-5). Of our frames,
// an IPv4 header shorter than 20 bytes, not version 4, with IHL < 5 or
// truncated before IHL*4 bytes, or an IPv6 header shorter than 40 bytes or
// not version 6, is dropped as malformed (the checks run before the
// exclude test, which needs the destination address).
//
// Up (steer_up): the source address selects the T4 row. IPv4-mapped IPv6
// sources (::ffff:a.b.c.d) match IPv4 rows, as in nat.T4.LookupV6. No row:
// drop no_route. Every gateway down: drop all_gateways_down. Otherwise the
// destination MAC becomes the first gateway in state up, the source MAC
// the gateway-side own MAC, and the frame leaves by XDP_REDIRECT through
// a devmap to the gateway side (XDP_TX on a one-armed LB, where both sides
// are one interface and, as in dp.LB, every frame is an up frame).
//
// Down (steer_down): destination MAC := next hop (Config.NextHopMAC or
// SetNextHop), source MAC := ingress-side own MAC, XDP_REDIRECT to the
// ingress side; no next hop known: drop no_next_hop.
//
// Only the MACs change: an 802.1Q tag is kept as is, no TTL or checksum is
// touched. A dropped frame is never modified. A devmap slot emptied by the
// kernel (its interface was deleted) makes the redirect fail: drop
// tx_error.
//
// Against dp.LB, which sees only what the AF_XDP filter hands it: frames
// the filter passes (other MACs, non-IP EtherTypes, excluded destinations,
// ND) are XDP_PASS here, where dp.LB would say not_ip or forward them.
//
// # Maps and atomic T4 updates (R-LB-4)
//
// T4 lives in LPM tries keyed {prefixlen, family byte, address}: the family
// byte keeps IPv4 and IPv6 rows apart in one trie, exactly as nat.T4 keeps
// two lists, and prefixlen counts it (8 + prefix bits). Rows are disjoint
// (Sync rejects overlaps with nat's own check), so the longest-prefix match
// is the only match. A value holds n gateways (primary first, at most
// nat.MaxGateways), an up bitmask and the MACs; the program takes the
// lowest set bit below n.
//
// Whole-table updates use map-in-map: the outer ARRAY_OF_MAPS "t4" has
// one slot holding the current trie. Sync builds a complete new trie, then
// swaps it into the slot with one map update. A packet looks the slot up
// once, so it sees the old table or the new one, never a mix; the kernel
// frees the old trie after an RCU grace period, when no program can still
// hold it. Gateway up/down changes are table updates through the same path
// (nat.T4.SetGatewayState calls the OnChange hook, which is Sync). Sync
// fits (*nat.T4).OnChange, which calls it under T4's writer lock and
// rejects the update if it fails, so the Go table and the maps never
// disagree.
//
// The next hop lives in a one-entry hash map without preallocation: an
// update replaces the element under RCU, so no reader sees a torn MAC. Own
// MACs and the one-armed flag are constants set at load; the exclude set
// is two hash maps (IPv4, IPv6) filled at load.
//
// Counters are one per-CPU array entry: rx (frames handled), tx (frames
// transmitted), passed (left to the kernel) and drops indexed by dp.Reason
// (the C enum uses dp's numbers; a test checks it). Counters sums CPUs.
//
// # Testing
//
// Offload.Run runs either program once through BPF_PROG_RUN on a frame and
// returns the output frame and verdict, without attaching; package
// steertest makes a namespace with a veth pair (Sandbox) whose ifindexes
// and fixed MACs a Config can use, so the golden tests and the
// differential test against dp.LB need only root. BenchmarkProgram gives
// the program's ns/frame over BPF_PROG_RUN repetitions.
//
// Kernel: bpf_link XDP attachment (5.9+), BPF_PROG_RUN for XDP; veth
// supports native XDP. Frames redirected into a veth are dropped unless
// its peer has NAPI (an XDP program attached, or GRO on).
//
// # Building
//
// bpf/steer.c is compiled by bpf2go; the generated steer_bpfel.go and
// steer_bpfel.o are committed, so `go build` needs no clang. Regenerate with
//
//	go generate ./dp/steer
//
// (needs clang, llvm and libbpf-dev).
//
// # Ownership and allocation
//
// The Offload owns the programs, maps and bpf links; Close releases them
// (the daemon calls it on SIGTERM/SIGINT; links are not pinned, so the
// kernel also detaches if the process dies). Load, Sync, SetNextHop and
// Attach resolve ifindexes in the calling thread's network namespace.
// The packet path is in the kernel and allocates nothing; the Go methods
// are control paths and allocate (Sync makes a new trie per update, Run a
// result buffer per call).
package steer
