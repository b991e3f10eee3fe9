// Package cli is samepathctl (R-CTL-1): it shows and changes the control
// process's tables (T1 gateways, T2 users, T3 sessions, address
// assignments), gateway states (admin up/down/drain), health and counters
// through samepath-control's HTTP API, and each samepathd's T4 and counters
// through ctl/api. Output is a table by default, JSON with -o json.
//
// The gateways' tables (T6 with T11 and T9 per service, server states and
// health, the T3 copy, T5 flows) are shown and changed by `gw` (gwcmd.go)
// through each samepathd gw's control API; -gw all reaches every gateway
// in the control process's T1.
//
// Main runs one command line and returns the exit status; it allocates
// freely (control path).
package cli
