// Package mobility holds the mobility soak tests (issue 11's check,
// SPEC R-GW-4): downloads to mobiles that move between the three
// ingress points of the FIG. 2 system (testbed/demo: samepathd as the
// LBs and gateways, samepath-control with RADIUS NAS emulators) must
// neither break nor stall.
//
//	                                   ctl (samepath-control) -- Mgmt -- nas*, lb*, gw*
//	mob1 [GET, sha256,  ~~ nas1 -- lb1 --+                     +-- a1 \ group A, web-a
//	      RST counters] ~~ nas2 -- lb2 --+-- LAN1 -- gw1 --+-- LAN2 -- a2 / rep 10.30.0.1:80
//	mob2 [same]         ~~ nas3 -- lb3 --+        -- gw2 --+   +-- b1 b2 (group B)
//	         random moves: Stop Idle-Timeout at the old NAS, link moves,
//	         Start at the new NAS (FIG. 31); lbN killed under the mobile
//
// The mobile reads as fast as it can (no paced reader) with the socket's
// default receive buffer: once it has ACKed what arrived it sends
// nothing, so after a move only the resume at the new NAS (the lb_mac of
// its RADIUS client in the session event) can point the gateway's down
// path at the new LB. The server sends at a fixed rate (the radio's,
// GET /bytes/N?rate=R), so that every move happens with data flowing.
// Each download checks:
//   - the SHA-256 of the body;
//   - no TCP reset: nftables counters of RST segments in and out of the
//     mobile's namespace (RSTCounter), not just the client's error;
//   - the longest gap between received bytes around any move, from the
//     move's start to a second after its end (Trace.Gap), under 1 s.
//
// Variants, each under both LB steering modes (afxdp and xdp): one
// mobile moving; two mobiles downloading and moving at once; the
// mobile's LB SIGKILLed under it (nothing arrives while it is dead) and
// then a move away from it (the gap counts from the move; the LB is
// restarted after the run).
//
// The short form (default, run by `make test` and CI) downloads 20 MiB
// with 4 moves, each variant once. The long form, SAMEPATH_SOAK=long,
// downloads 100 MiB with 10 moves, 10 runs of each variant, and needs a
// longer timeout:
//
//	SAMEPATH_SOAK=long go test -count=1 -timeout 60m ./testbed/mobility/
//
// The tests need root (network namespaces, XDP) and skip without it
// (fail under CI). The test binary doubles as `testbed serve` for the
// servers and builds samepathd, samepath-control and samepathctl once.
// Trace and RSTCounter are the measuring parts, usable on their own; the
// package allocates per received read (Trace) and nothing else of note.
package mobility
