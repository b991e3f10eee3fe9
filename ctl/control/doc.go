// Package control wires samepath-control: it opens the state (ctl/store),
// restores T1, T2, T3 and the gateway-event outbox, applies the configured
// gateways and users file, and runs the RADIUS server (ctl/aaa), the
// session manager's timers (ctl/session), the gateway health monitor and LB
// state sync (ctl/health), and the control HTTP API (handler in httpapi.go:
// tables, sessions, counters, /metrics, /healthz; bearer token from a file,
// required when the API is bound beyond loopback).
//
// Goroutines: Run starts the RADIUS readers, the manager's ticker, the
// health monitor, the outbox pushers, the LB pushers and the HTTP server;
// they all stop when Run's context ends, then the store is closed.
//
// BenchAccess (bench.go) runs the radius benchmark in-process for
// perf/radload and BenchmarkAccessRequest.
package control
