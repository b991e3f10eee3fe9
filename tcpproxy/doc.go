// Package tcpproxy terminates TCP at the gateway (R-TCP-1, R-TCP-2): a
// mobile's connection to a representative address is accepted by a
// user-space TCP stack (gVisor's netstack, pkg/tcpip), a second connection
// goes from a gateway address to the actual server, and the bytes are
// spliced between the two. Each side runs its own TCP profile, so the
// lossy, high-latency radio side gets large windows, SACK and RACK while
// the server side stays LAN-tuned.
//
//	           mobile side                               server side
//	dataplane --Inject--> Link(Mobile) -> netstack A    netstack B -> Link(Server) --Read--> dataplane
//	dataplane <--Read---- Link(Mobile) <- netstack A    netstack B <- Link(Server) <-Inject- dataplane
//	                      promiscuous, spoofing,  \      /  ServerAddrs, ServerPorts,
//	                      tcp.Forwarder            splice   connects to Decision.Server
//
// # Using it (the gateway's side of the contract)
//
// New(cfg) builds both stacks. For every service whose T11 mode is
// terminate, after its own authorization, the gateway's pollers:
//
//   - strip the Ethernet header of the mobile's frames and Inject the IP
//     packets into Link(Mobile), in batches. Inject returns how many it
//     took; the rest stay with the poller (backpressure): retry them on the
//     next pass, or drop them under the poller's own counter.
//   - Inject into Link(Server) the servers' frames to a gateway address in
//     cfg.ServerAddrs and a port in cfg.ServerPorts (or the Decision.Local
//     the gateway chose): the replies to the terminator's own connections.
//     On an address NAT mode also uses, keep ServerPorts out of T5's port
//     range (or give the terminator an address of its own).
//   - Read each Link with offset 14 (room for the Ethernet header, which
//     the poller writes: towards the mobile as in NAT mode's down path,
//     towards the server as in its up path) and send the frames. SetNotify
//     gives a function called when a Link's output goes from empty to not
//     empty, to wake an idle poller.
//
// Netstack calls cfg.Admit for each new SYN, on that SYN's goroutine:
// Decision.Refuse answers with a RST from the representative address (the
// gateway normally refuses before handing frames over; Admit is the last
// word), otherwise Decision.Server is the T6/T7 choice, Decision.Session
// the user session (per-session limit, CloseSession) and Decision.Data the
// gateway's own (service, subscriber). Past cfg.MaxConns or
// cfg.MaxConnsPerSession the mobile gets a RST and the refusal is counted.
// For every Decision that is not a refusal, cfg.OnClose runs exactly once,
// after the end (Conn.End says why: FIN, a reset from either side, idle,
// session end, a limit, a failed connect), with the final byte counts
// (Conn.Stats: payload bytes read from and written to each side): the
// place to release T7 state and write the T10 record. cfg.OnOpen runs when
// both handshakes are done; Conns iterates the live connections for
// interim records and checkpoints (R-ACCT-1, R-ACCT-2); cfg.OnFirstBytes
// gets the first bytes of the mobile's stream (up to cfg.SniffBytes, from
// its first read) before they go to the server: the HTTP Host and TLS SNI
// sniffers read them there; cfg.OnServer reports each server the
// connection moved to by risk balancing, so the gateway's flow record and
// least-connections count follow it. CloseSession(id) resets every connection of a
// session when it ends. Close resets everything and destroys the stacks.
//
// Different T11 profiles per service take one Terminator per distinct
// (mobile, server) profile pair, the pollers choosing the Terminator by
// service; SetProfile changes a side's profile for new connections.
//
// One Terminator serves all queues: Inject, Read and every method are safe
// from any goroutine.
//
// # Goroutines
//
//   - Each Link owns one goroutine (routineInbound), started when its
//     stack attaches it and stopped by Close, that takes the inbound queue
//     in batches and hands the packets to netstack, so a poller never runs
//     TCP code. The poller only copies.
//   - Netstack owns its protocol goroutines (TCP's segment processors, one
//     per GOMAXPROCS per stack) and its timers; they call WritePackets,
//     which queues for Read and calls the notify function.
//   - Each connection owns one goroutine, the one netstack's forwarder
//     starts for its SYN: it calls Admit, connects to the server, completes
//     the mobile's handshake, then splices both directions in one event
//     loop (woken by either endpoint's readiness, the idle timer or a
//     kill) until the end, closes both endpoints and calls OnClose. It is
//     the only user of its two endpoints. Admit, OnOpen, OnFirstBytes,
//     OnServer and OnClose run on it; they may block it, and only it.
//   - Close waits for every connection goroutine, then for the Links'.
//
// # Splice, half-close, reset, idle
//
// Each direction reads from one endpoint into a buffer of cfg.SpliceBuffer
// bytes and writes it to the other; the buffer comes from a pool and is
// held only while its bytes wait for the destination's send buffer, so a
// connection holds at most two, and an idle one none. A FIN read from one
// side is passed on as a FIN (Shutdown write) to the other once its bytes
// are written; the other direction goes on until its own FIN. A reset or
// failure (retransmission or keepalive timeout) of one side resets the
// other. A connection that moved no payload either way for cfg.IdleTimeout
// is reset both ways, as are those of CloseSession, Conn.Reset and Close.
//
// # Profiles: one stack per side
//
// Two facts of netstack decide the design. The MSS and window scale a SYN
// or SYN-ACK carries come from stack-wide options and the NIC's MTU, not
// from per-endpoint settings: a forwarder-accepted endpoint advertises the
// route MTU less 20 (so NIC MTU - 40 for IPv4) and a window scale computed
// from the stack's maximum receive buffer (from the initial one without
// receive-buffer auto-tuning); setting options on it after accept changes
// neither. And the advertised window is about half the free receive
// buffer. So each side is a stack of its own with one NIC whose MTU is the
// profile's MSS + 40, and every TCP option netstack has is set on that
// stack, explicitly and with the reason beside it (profile.go), none left
// to a default: buffer ranges, auto-tuning, congestion control (reno or
// cubic: netstack has no BBR), SACK, RACK, Nagle, SYN cookies, min and max
// RTO, retries, TIME-WAIT, FIN-WAIT-2, TIME-WAIT reuse. Keepalive and
// Nagle are set per endpoint, and so are TCP_QUICKACK and
// TCP_WINDOW_CLAMP, which this netstack stores but does not use. Netstack has no switch for
// timestamps (always offered, echoed when offered) nor a delayed-ACK timer
// (it acknowledges per batch of segments processed), so profiles have no
// field for them. The forwarder's receive window is fixed when it is
// created, so SetProfile on the mobile side replaces the forwarder.
// Defaults: Wireless (MSS 1400, buffers of 2x the BDP of 50 Mbit/s at
// 100 ms, so a window of about 625 000 bytes, one BDP, from the first RTT;
// window scale 5, Reno: netstack's cubic did worse under radio loss,
// perf/tcpsplit; SACK, RACK) to the mobile, Wired (MSS 1460,
// buffers from 128 KiB auto-tuned to 4 MiB, window scale 7) to the
// server. TestProfileHandshake reads each side's SYN-ACK and SYN off the
// wire, TestProfileWindow the windows.
//
// # Risk balancing (R-TCP-4, risk.go)
//
// A Decision with a Risk keeps the mobile's connection when its server
// fails: before the first response byte the request (up to
// Risk.ReplayBuffer bytes) is replayed to another server (Risk.Next);
// for HTTP services a download cut mid-body is resumed by a conditional
// Range request (httpresume); anything uncertain resets the mobile,
// never a FIN after a short body. Counted per service (RiskCounters).
//
// # Checksums and offloads
//
// Frames from AF_XDP carry real checksums, and AF_XDP fills in none on
// transmit. The Links claim no capability: no RX checksum offload, so
// netstack verifies every IP and TCP checksum it receives (a bad one is
// dropped and counted: StackCounters.L4Malformed, TCPChecksumErrors), and
// no TX checksum offload: every frame leaves with its checksums computed
// in full (tests hold each emitted frame to dptest.VerifyChecksums). TCP
// segmentation is offloaded to the Links (LinkConfig.GSOMaxSize, gso.go):
// netstack writes TCP segments of up to 64 KiB, and Link.Read cuts each
// into MTU-sized packets and computes their TCP checksums itself, so no
// frame exceeds the MTU. On receive the Links merge runs of consecutive
// segments of a connection into one before netstack (LinkConfig.GRO,
// gro.go), after checking each segment's checksums themselves; the
// merged segment carries correct checksums and netstack checks it again.
// The gateway must not strip TCP options: once
// timestamps are negotiated, netstack drops a segment without one.
//
// # Counters
//
// Nothing is dropped without a counter. Links: what Inject refused for a
// full queue (InFull, left with the caller), malformed or after Close, what
// netstack wrote to a full output queue (OutFull: a loss TCP repairs, as
// on a full NIC queue, never a silent one), what did not fit a Read buffer.
// Terminator (Counter): SYNs admitted, dropped at cfg.MaxInFlight (SYNs
// being admitted, connected or handshaken at once; the mobile retransmits;
// netstack's own forwarder limit never triggers first and is exported
// too), refusals by reason, and ends by reason. StackCounters exports
// netstack's own loss counters per side.
//
// # Allocation and memory
//
// Per packet: Inject copies into a netstack packet buffer (netstack's
// pools); WritePackets keeps a clone (pooled); Read copies into the
// caller's buffer and allocates nothing. Per connection: the Conn, two
// netstack endpoints, one goroutine, a timer, and splice buffers from a
// pool while bytes wait. An idle terminated connection costs about 23 KB
// beyond what its two peers cost (BenchmarkIdleConnMemory, the
// B/conn-terminator figure; BENCHMARKS.md). After 10 000 short
// connections no goroutine and no heap is left (TestNoLeak10000).
package tcpproxy
