// Package daemon is samepathd: it reads the YAML config, opens the AF_XDP
// sockets and XDP programs for the configured role (lb: T4 steering over
// AF_XDP or in-kernel with dp/steer; gw: the packet gateway), runs one
// pinned worker per queue, and serves the control API (ctl/api),
// Prometheus metrics and /healthz. Run blocks until its context ends
// (SIGTERM/SIGINT in cmd/samepathd), then stops the workers, detaches
// the XDP programs, closes the sockets and removes the addresses it added.
//
// Start-up of role lb: the T4 rows come from the config, then, with
// lb.control set, their gateway states are replaced by those
// samepath-control holds now (GET /v1/lbs/gateway-states, retried up to
// lb.control.wait; lbcontrol.go). Only then is T4 built, the XDP program
// attached, the workers made and the API served, so the first answer of
// GET /v1/t4 and the first steered frame follow control's states. If
// control gives no usable answer, the LB starts with the config's states
// and logs a warning, or fails with lb.control.required. Without
// lb.control it steers by the config's states until control's next push.
// The AF_XDP binds retry a queue still busy with a killed predecessor's
// socket (xsk.Config.BindBusyWait, 3 s, each retry logged), in both
// roles.
//
// Config: Load/Parse decode the YAML over the defaults (DefaultConfig,
// DefaultGWConfig: only absent keys get them) and check the values
// (Validate); Check adds the token file, the accounting directory and the
// interfaces. samepathd -check and Run both run Check, so a config -check
// accepts does not fail the start on anything it could have seen. Every
// error names its YAML key.
//
// POST /v1/capture (capture.go) arms a dp/capture session on every
// worker, one at a time, and streams its pcapng file as the answer; the
// request's context ends it early (the client left, samepathd stops).
//
// GET /v1/dist and /v1/lbcache (gwviews.go) render T7 and T12; servers'
// drain and maint states and weights are run-time only (admin.go: the
// config file's services are the state at start); GET /v1/runtime and
// the samepath_worker_* series are the workers' show-runtime figures
// (runtime.go).
//
// Goroutines: the workers; the HTTP server; for lb with next_hop_ip the
// neighbor follower; for gw the neighbor resolver and the server prober.
// Control API handlers change shared tables that workers read lock-free.
package daemon
