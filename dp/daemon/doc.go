// Package daemon is samepathd: it reads the YAML config, opens the AF_XDP
// sockets and XDP programs for the configured role (lb: T4 steering over
// AF_XDP or in-kernel with dp/steer; gw: the packet gateway), runs one
// pinned worker per queue, and serves the control API (ctl/api),
// Prometheus metrics and /healthz. Run blocks until its context ends
// (SIGTERM/SIGINT in cmd/samepathd), then stops the workers, detaches
// the XDP programs, closes the sockets and removes the addresses it added.
//
// Config: Load/Parse decode the YAML over the defaults (DefaultConfig,
// DefaultGWConfig: only absent keys get them) and check the values
// (Validate); Check adds the token file, the accounting directory and the
// interfaces. samepathd -check and Run both run Check, so a config -check
// accepts does not fail the start on anything it could have seen. Every
// error names its YAML key.
//
// Goroutines: the workers; the HTTP server; for lb with next_hop_ip the
// neighbor follower; for gw the neighbor resolver and the server prober.
// Control API handlers change shared tables that workers read lock-free.
package daemon
