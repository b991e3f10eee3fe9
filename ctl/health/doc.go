// Package health is the server monitor unit of the user authentication
// device (FIG. 4 item 45, R-AAA-3): Monitor probes targets (each gateway's
// control API /healthz) every Interval and declares a target down after
// Fall consecutive failures and up again after Rise consecutive successes
// (flap damping); OnChange then runs. LBSync carries the resulting gateway
// states to every load balancer's T4 (api.Client.SetGatewayState), retrying
// with back-off and re-asserting everything periodically so a restarted LB
// converges. LBSync.Desired lists the same states; the control API serves
// them (GET /v1/lbs/gateway-states), and a starting LB with lb.control
// reads them before it steers, so it need not wait for a resync.
//
// A gateway with state sync (samepathd gw.sync) answers /healthz 503
// until its peers' state arrived, so a returning gateway is marked up
// only once synced. With SetSync the monitor also reads each gateway's
// GET /v1/sync every round (Status.Sync: readiness, per-peer lag,
// bindings held for peers, takeovers, failbacks) and reports each
// takeover or failback it sees as a SyncEvent (sync.go).
//
// Extension point: Target.Kind tells gateways from actual servers. The
// control process feeds gateway targets from T1; the gateways' T6 servers
// (FIG. 23) can be fed the same way through a Targets function once the
// gateway's API exposes them, with OnChange pushing server states back.
//
// Goroutines: Monitor.Run probes targets concurrently, one goroutine per
// probe (and per sync read) per round; LBSync runs one goroutine per LB.
package health
