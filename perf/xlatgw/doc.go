// Package xlatgw is the `make perf` scenario xlat (issue 14 item 4, SPEC
// R-TCP-3): the same 1 000 UDP flows through samepathd's gateway
// translated (an IPv6 mobile to the RFC 6052 address of an IPv4
// representative address, NAT64 to the IPv4 server) and untranslated
// (IPv4 to IPv4, the gateway's port-key NAT alone), alternating on the
// same topology in the same run with the same samepathd config
// (perf/bench runs it). The ratio translated / untranslated is the cost
// of translation; BENCH.md names no other baseline (Jool's own figures
// are context only, from a different machine).
//
// Frame sizes name the IPv4 frame the sink counts, in both variants: the
// IPv6 mobile sends frames 20 bytes longer (84 B for the 64 B case, 1520 B
// for 1500 B) with the same payload, so both variants deliver the same
// bytes and their sink Gbit/s compare directly. The mobile side's link
// (the generator's veth and the DUT's ingress) runs with an MTU of 1520
// for both variants; the server side keeps 1500.
//
// Placement and generator are gw-nat's (perf/gwnat): pktgen's live
// frames on CPU0, the ingress NAPI on CPU0, samepathd's one worker
// pinned to CPU1, the sink's NAPI in softirq on the transmitting core.
//
// Nothing here is on a hot path; everything allocates freely.
package xlatgw
