// Package xdpfilter is the XDP program in front of the AF_XDP sockets of
// ring/xsk (R-LB-5): it redirects to a socket only the frames the
// dataplane owns, as described by a Match, and passes everything else
// (ARP, IPv6 neighbour discovery, pings and SSH to the host, other MACs)
// to the kernel with XDP_PASS. Matched frames go to
// bpf_redirect_map(xsks_map, slot*MaxQueues+rx_queue_index, XDP_PASS), so a
// queue without a socket also falls back to the kernel.
//
// The Match is compiled into maps: a hash of destination MACs, a hash of
// EtherTypes, LPM tries of source and destination prefixes per family,
// hashes of excluded destinations and a one-entry config with "any" flags
// for empty lists. SetMatch updates them in place without ever narrowing
// the match mid-update. Per-CPU counters say why each frame was passed.
//
// bpf/filter.c is compiled by bpf2go; the generated filter_bpf{el,eb}.go
// and .o files are committed so that `go build` needs no clang. Regenerate
// with `go generate ./ring/xsk/xdpfilter` (clang, libbpf-dev).
//
// Attach uses BPF links (link.AttachXDP), native mode by default (veth
// supports it). Close detaches; if the process dies, the kernel detaches
// when the link's file descriptor closes. A Filter's methods lock a mutex
// and may be called from any goroutine; it allocates only on control calls.
package xdpfilter
