// Package session is the session management device of the patent (FIG.
// 9-11, 30, 31): T3, the session table, driven by RADIUS accounting through
// the exact FIG. 11 state machine (fsm.go), with the interim timer
// (Act -> Close) and the session timer (Dormant -> Close), the durable
// session log written on Close (Close -> None once it is on disk), and the
// Outbox that pushes every transition to the gateway owning the session's
// address (api.SessionEvent, increasing Seq per session), retried with
// back-off until acknowledged; Outbox.Wake (the health monitor saw the
// gateway recover) ends the back-off, so a returning gateway gets its
// backlog at once, and ResyncGateway leaves the sessions of that backlog
// to it.
//
// Durability: every transition is one ctl/store batch holding the session
// record, its address binding (aaa.Pool ops), the outbox event and, for
// Close, the log line; Account returns that batch's sequence and the RADIUS
// server answers only after it is durable. Close -> None happens in the
// batch's commit callback; a restart that finds a session in Close knows its
// log line is already on disk.
//
// Restarts: the time the manager was down does not count against a
// session. Tick records an alive stamp in the store every AliveInterval
// (and Run as it stops); Load moves every restored timer later by the time
// since that stamp, and then no timer closes a restored session within
// Config.RestartGrace of the start (default: the interim timeout; the
// control config's sessions.restart_grace), since a NAS with a long
// interim interval may send its next Interim-Update only that late. A
// session that hears nothing by then closes as usual.
//
// Goroutines: Manager is guarded by one mutex (lock order: Manager, then
// aaa.Pool); Run ticks timers; the Outbox runs one pusher per gateway with
// pending events. Timers use Config.Now, so tests drive them with a fake
// clock and Tick, without sleeping.
package session
