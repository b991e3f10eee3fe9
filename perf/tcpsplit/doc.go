// Package tcpsplit is the `make perf` scenario tcp-split (issue 13 item
// 5): what terminating TCP at the gateway (tcpproxy, service mode
// terminate) gains over port-key NAT, where the mobile's TCP runs end to
// end to the server, for a bulk download over an emulated wireless link,
// and what it costs on a clean path against HAProxy in TCP mode.
//
//	ns mob       ns air (wireless)     ns dut (gateway)     ns wan (wired)       ns srv
//	[m] <-veth-> [a0  linkem  a1] <-veth-> [In  DUT  Out] <-veth-> [w0  linkem  w1] <-veth-> [s]
//
// Three cases (Cases): (a) window mismatch, the server's TCP buffers
// capped at 64 KiB in its namespace and a 100 ms, 50 Mbit/s wireless
// side; (b) lossy wireless, 40 ms, 1% loss, 50 Mbit/s, and a 60 ms wired
// side; (c) a clean path (kernel bridges instead of linkem). Per case and
// rep every variant downloads the same bytes in turn: samepathd with a
// NAT service (RepIP:80), the same samepathd config's terminate service
// (RepIP:81), and for (c) HAProxy 1 thread, mode tcp, in the DUT
// namespace (RepIP:82), and two references that download from the
// server's own address (ServerIP:ServerPort, sent through the DUT by the
// mobile's and the server's default routes): `pktgen fwd` both ways
// (perf/l2fwd, samepath's engine and nothing else: the ceiling for any
// copy-mode AF_XDP program on this path) and plain kernel IPv4
// forwarding (GRO, NAPI threaded on the DUT CPU). The references have no
// target; they read against HAProxy like the others. The device under
// test runs under taskset on
// DUTCPU; perfrun itself (client, server, in-process linkem) on GenCPU.
// Goodput is the client's: payload bytes read per second from connect to
// EOF. At half of each download `ss -tin` records both kernel ends, and
// linkem's and samepathd's counters are kept per download, so a missed
// target shows where the window or the time went.
//
// After the downloads it runs tcpproxy's BenchmarkIdleConnMemory
// (memory per idle terminated connection, issue 13 item 4).
//
// Duration: the lossy NAT download runs at about 1.5-3 Mbit/s, so the
// full run (20 MiB, 3 reps) takes about 8-12 minutes, most of it (b)'s
// NAT downloads; `perfrun -scenario tcp-split` runs it alone, -quick
// (2 MiB, 1 rep) in about a minute.
//
// Nothing here is on a hot path; everything allocates freely.
package tcpsplit
