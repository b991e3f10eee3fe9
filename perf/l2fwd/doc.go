// Package l2fwd is an AF_XDP layer-2 forwarder made of samepath's engine
// and nothing else: every frame received on one interface leaves on the
// other with its Ethernet addresses rewritten, as xdpsock's l2fwd does.
//
// `make perf` runs it (as `pktgen fwd`) beside samepathd on the same
// topology, so that BENCHMARKS.md shows what any AF_XDP program gets on
// that path: the kernel's copy-mode receive and transmit, the rings and the
// engine's poll loop, without a pipeline's work. samepathd's numbers read
// against it say how much the pipeline costs; the kernel baselines read
// against it say what AF_XDP itself can reach on this machine.
//
// Ownership and allocation: Run opens a UMEM and two AF_XDP sockets
// (queue 0 of each interface, one shared UMEM, so forwarding moves
// descriptors and copies nothing in user space), loads samepath's XDP
// filter on the ingress device, and runs one dp.Worker on the calling
// goroutine's locked thread until ctx ends; it closes everything before it
// returns. The pipeline allocates nothing per packet. Its numbers appear
// in BENCHMARKS.md as "AF_XDP l2fwd (engine only)" in lb-steer and gw-nat,
// and in tcp-split's clean case, where it forwards both ways
// (Config.BackDstMAC) so that a TCP download and its ACKs cross it.
package l2fwd
