// Package gwnat is the `make perf` scenario gw-nat (issue 4 item 8): many
// UDP flows (1 000 and 60 000 distinct source ports and addresses) from
// the pktgen namespace through the device under test to the sink
// namespace, counted at the sink, with samepathd's gateway (role gw, one
// pinned AF_XDP worker, port-key NAT) against kernel forwarding with
// nftables NAT (DNAT of the representative address to the server,
// masquerade toward the servers, conntrack), alternating on the same
// topology in the same run (perf/bench runs it).
//
// The generator sends to the representative address RepIP:9 with the
// DUT's ingress MAC as destination; both variants rewrite the destination
// to the server (the sink's address, resolved through a permanent
// neighbour entry: the XDP sink answers no ARP) and the source to one of
// the DUT's server-side addresses. samepathd runs with require_session:
// false (no AAA in the benchmark: every source may open flows). After
// each case the gateway's own counters (GET /v1/counters in the DUT
// namespace) are recorded beside the numbers, so losses inside the
// gateway show with their reason.
//
// The generator is pktgen's live-frames engine, as in lb-steer: XDP_TX
// hands each frame to the DUT ingress device's NAPI, which runs where the
// scenario pins it (CPU1 for the baseline, CPU0 for samepathd, whose
// poller owns CPU1). The generator restores every header it sends, so the
// frames both variants rewrite in place come back whole. An AF_XDP TX
// generator would be unfair to the baseline: veth takes its skbs through
// netif_rx on the sending CPU, so all of the kernel's forwarding and NAT
// would run on the generator's core (measured: CPU1 11% busy).
//
// Nothing here is on a hot path; everything allocates freely.
package gwnat
