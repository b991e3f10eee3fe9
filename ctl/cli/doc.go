// Package cli is samepathctl (R-CTL-1): it shows and changes the control
// process's tables (T1 gateways, T2 users, T3 sessions, address
// assignments), gateway states (admin up/down/drain), health and counters
// through samepath-control's HTTP API, and each samepathd's T4 and counters
// through ctl/api. Output is a table by default, JSON with -o json (keys
// are lowercase everywhere).
//
// The gateways' tables (T6 with T11 and T9 per service, server states and
// health, the T3 copy, T5 flows) are shown and changed by `gw` (gwcmd.go)
// through each samepathd gw's control API; -gw all (the default) reaches
// every gateway in the control process's T1, as -lb all (the default)
// reaches every LB for `t4`. `gw dist` and `gw lbcache` show T7 and T12
// (gwviews.go); `gw server ... drain|maint` and `gw weight` change a
// server's administrative state and weight at run time; `daemon runtime`
// and `gw runtime` show the per-worker figures of vppctl's show runtime
// (runtime.go).
//
// `capture` (capture.go) asks one samepathd for frames from its
// dataplane (POST /v1/capture) and writes the pcapng file it streams; a
// tcpdump expression is compiled here with tcpdump -ddd.
//
// The command tree is github.com/spf13/cobra: flags go anywhere on the
// line; -h/--help anywhere prints help (on standard error) and runs
// nothing; usage errors exit 2 and failures 1; `samepathctl completion
// bash|zsh|fish` prints a completion script whose candidates (gateway
// names, users, session ids, services, servers, LB and gateway URLs) come
// from the live APIs (complete.go). Go-style single-dash long flags (-lb,
// -name) stay accepted: normalizeFlags rewrites them to --lb before cobra
// parses.
//
// Main runs one command line and returns the exit status; it allocates
// freely (control path).
package cli
