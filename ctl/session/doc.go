// Package session is the session management device of the patent (FIG.
// 9-11, 30, 31): T3, the session table, driven by RADIUS accounting through
// the exact FIG. 11 state machine (fsm.go), with the interim timer
// (Act -> Close) and the session timer (Dormant -> Close), the durable
// session log written on Close (Close -> None once it is on disk), and the
// Outbox that pushes every transition to the gateway owning the session's
// address and to its substitutes (below) (api.SessionEvent, increasing
// Seq per session), retried with back-off until acknowledged; Outbox.Wake
// (the health monitor saw the gateway recover) ends the back-off, so a
// returning gateway gets its backlog at once, and ResyncGateway leaves
// the sessions of that backlog to it.
//
// Substitutes (R-GW-9, FIG. 14): every event of a session goes to the
// gateway owning its address and to each substitute of the T4 row holding
// that address (Config.Substitutes), each through its own outbox queue
// (own order, own retries and back-off, own Wake), and ResyncGateway
// reads back and repairs every one of them. So when the owner dies, the
// substitute the LBs switch to already holds the T3 copies of its
// subscribers and serves their new connections at once.
//
// The copies are pushed always, not at the moment the owner goes down.
// The LBs switch as soon as the health monitor's verdict (fall x
// interval) reaches them; pushing at takeover would add to that one POST
// per session of the dead gateway, one after another on the substitute's
// queue (thousands of sessions are seconds), during which its
// subscribers' packets are dropped as no_session. It would also need the
// control process alive at that moment: a gateway that dies while
// samepath-control is down or restarting would leave its subscribers
// without service until one of them came back. Pushed always, the
// takeover time is the LBs' switch alone; the cost is each event once
// more per substitute and one T3 row per session per substitute (a few
// hundred bytes) on the gateways.
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
