// Package control wires samepath-control: it opens the state (ctl/store),
// restores T1, T2, T3 and the gateway-event outbox, applies the configured
// gateways and users file, and runs the RADIUS server (ctl/aaa), the
// session manager's timers (ctl/session), the gateway health monitor and LB
// state sync (ctl/health), and the control HTTP API (handler in httpapi.go:
// tables, sessions, counters, /metrics, /healthz; bearer token from a file,
// required when the API is bound beyond loopback).
//
// Config: LoadConfig decodes the YAML over DefaultConfig (only absent keys
// get a default) and checks the values (Validate); Check adds the state
// directory, session log, token files and users file. samepath-control
// -check and New both run Check. Every error names its YAML key.
//
// Service authorization (R-AUTH-1, FIG. 25-27): AuthzTables owns T9
// (representative IP -> service type) and T8 (device x service type ->
// allowed), seeded from the config's authz section, stored as one record
// of the meta bucket (the whole tables and a version) and edited through
// /v1/authz. AuthzSync runs one pusher per gateway of T1 with an API: PUT
// /v1/authz on every change, when the gateway joins T1 or recovers its
// health, and when a periodic read-back finds other tables; failures are
// retried with back-off until acknowledged, always with the current
// tables. Until tables are configured or set, nothing is pushed.
//
// Session copies (R-SM-2, R-GW-7): besides the outbox's pushes, SessionSync
// reads each gateway's T3 copy back (GET /v1/sessions) every
// sessions.resync and when the gateway's health recovers, and queues what
// repairs it (session.Manager.ResyncGateway): a gateway that restarted
// gets its live sessions back without waiting for their next transition.
// When a gateway's health recovers, the outbox is woken first
// (session.Outbox.Wake: its backlog goes at once, not at the end of a
// back-off grown while the gateway was down) and the read-back leaves the
// sessions of that backlog to it.
//
// Restarts of samepath-control: the session manager does not count the
// downtime against session timers and closes no restored session within
// sessions.restart_grace (default: interim_timeout) of the start.
//
// Goroutines: Run starts the RADIUS readers, the manager's ticker, the
// health monitor, the outbox pushers, the LB pushers, the authz pushers,
// the session sync and the HTTP server; they all stop when Run's context ends, then the
// store is closed.
//
// The radius benchmark's in-process setup lives in perf/radius
// (BenchAccess), not here.
package control
