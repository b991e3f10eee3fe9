package health

import (
	"context"
	"slices"

	"samepath/ctl/api"
)

// Gateways' state sync (issue 17, R-GW-9): a gateway with gw.sync
// answers /healthz 503 until its peers' state arrived, so a returning
// gateway stays down here until it is synced. Each round the monitor
// also reads every gateway's GET /v1/sync (SyncProber, concurrently with
// the health probe, under the same timeout): Status.Sync shows its
// readiness, each peer's lag, the bindings it holds for others, and its
// takeovers and failbacks; a change of those between two reads is a
// SyncEvent (the control process logs it).

// SyncProber reads a gateway's sync state. It returns nil and no error
// for a gateway without state sync (404).
type SyncProber func(ctx context.Context, t Target) (*api.GWSync, error)

// Event kinds.
const (
	EventTakeover = "takeover" // the gateway took over peers' key addresses
	EventFailback = "failback" // the gateway gave them back to the returned peers
)

// SyncEvent is a takeover or failback the monitor learnt of by comparing
// two reads of a gateway's sync state.
type SyncEvent struct {
	Gateway string
	Kind    string
	// Peers are the peers whose addresses moved, as the reads show them
	// (a takeover and its failback between two reads show no peer).
	Peers []string
	// Count is how many the gateway counted since the previous read (its
	// counter, since its start when it restarted); Total is its counter.
	Count, Total uint64
}

// SetSync makes the monitor read each gateway's sync state with probe
// and report takeovers and failbacks to onEvent (on the monitor's
// goroutine, after the round's health changes). Call before Run.
func (m *Monitor) SetSync(probe SyncProber, onEvent func(SyncEvent)) {
	m.syncProbe, m.onSync = probe, onEvent
}

// syncEvents compares a gateway's previous sync state (nil: the first
// read) with the current one.
func syncEvents(gw string, prev, cur *api.GWSync) []SyncEvent {
	if cur == nil {
		return nil
	}
	if prev == nil || cur.Takeovers < prev.Takeovers || cur.Failbacks < prev.Failbacks {
		prev = &api.GWSync{} // first read, or the gateway restarted: its counters count from zero
	}
	was := map[string]bool{}
	for _, p := range prev.Peers {
		was[p.Name] = p.TakenOver
	}
	var taken, given []string
	for _, p := range cur.Peers {
		switch {
		case p.TakenOver && !was[p.Name]:
			taken = append(taken, p.Name)
		case !p.TakenOver && was[p.Name]:
			given = append(given, p.Name)
		}
	}
	slices.Sort(taken)
	slices.Sort(given)
	var out []SyncEvent
	if n := cur.Takeovers - prev.Takeovers; n > 0 || len(taken) > 0 {
		out = append(out, SyncEvent{Gateway: gw, Kind: EventTakeover, Peers: taken, Count: n, Total: cur.Takeovers})
	}
	if n := cur.Failbacks - prev.Failbacks; n > 0 || len(given) > 0 {
		out = append(out, SyncEvent{Gateway: gw, Kind: EventFailback, Peers: given, Count: n, Total: cur.Failbacks})
	}
	return out
}
