// Package cli is samepathctl (R-CTL-1): it shows and changes the control
// process's tables (T1 gateways, T2 users, T3 sessions, address
// assignments), gateway states (admin up/down/drain), health and counters
// through samepath-control's HTTP API, and each samepathd's T4 and counters
// through ctl/api. Output is a table by default, JSON with -o json.
//
// T6, T8, T9 and T11 live on the gateways; their subcommands belong with
// the gateway's control API (see the package README in the report).
//
// Main runs one command line and returns the exit status; it allocates
// freely (control path).
package cli
