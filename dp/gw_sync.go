package dp

import (
	"errors"
	"sync/atomic"

	"samepath/dp/balance"
	"samepath/nat"
)

// State sync (R-GW-9, dp/gwsync): a peer gateway's T5 changes arrive in
// batches through InstallSync and are applied on the worker (Tick), the
// table's only writer. A created or changed binding that is not here is
// installed with the origin's key port, server and TCP state, under this
// gateway's copy of the mobile's session (the control process pushes it
// to every substitute); one that is here is refreshed; an ended one on a
// peer's address is removed. Its per-flow records are the ones create
// would have made, except the T7 count (the origin counted the flow)
// and accounting, which starts at zero: each gateway accounts what it
// carried. Terminated flows (T11 terminate) are not installed: their
// state is in the terminator's netstack and cannot move.
//
// The first up packet of a peer-address binding sets PeerHit: the LBs
// steer the peer's range here, so the peer is down and its key
// addresses should follow (dp/gwsync takes them over).

// SyncStats are the worker's state-sync counters (any goroutine).
type SyncStats struct {
	Installed, Refreshed, Ended, Conflicts, Skipped atomic.Uint64
}

// InstallSync queues a batch of a peer's changes for the worker. It
// blocks while the queue is full (the sync receiver, never a poller,
// calls it). The worker owns cs once queued.
func (g *GW) InstallSync(cs []nat.Change) { g.syncIn <- cs }

// SyncStats returns the state-sync counters.
func (g *GW) SyncStats() *SyncStats { return &g.syncStats }

// PeerHit reports (and clears, with clear) whether an up packet of a
// peer's binding arrived since the last clear.
func (g *GW) PeerHit(clear bool) bool {
	if clear {
		return g.peerHit.Swap(false)
	}
	return g.peerHit.Load()
}

// syncTick applies the queued batches (worker, Tick).
func (g *GW) syncTick() {
	for {
		select {
		case cs := <-g.syncIn:
			for i := range cs {
				g.syncApply(&cs[i])
			}
			continue
		default:
		}
		return
	}
}

func (g *GW) syncApply(c *nat.Change) {
	t := g.cfg.Flows
	b := &c.B
	switch c.Op {
	case nat.OpEnd:
		if id, ok := t.Up(&b.Flow); ok && t.IsPeer(id) {
			cur := t.Binding(id)
			g.onEnd(cur, nat.Released)
			t.Delete(id, nat.Released)
			g.syncStats.Ended.Add(1)
		}
		return
	case nat.OpCreate, nat.OpChange:
	default:
		g.syncStats.Skipped.Add(1)
		return
	}
	if id, ok := t.Up(&b.Flow); ok {
		t.Refresh(id, b.State, g.now)
		if t.IsPeer(id) && !carried(t.Binding(id)) {
			g.acctName(id, c.Tag) // the origin names its flows after creating them
		}
		g.syncStats.Refreshed.Add(1)
		return
	}
	svc, found := g.cfg.Services.Lookup(b.Flow.Dst, b.Flow.DPort, b.Flow.Proto)
	if !found && (b.Flow.Proto == nat.ProtoICMP || b.Flow.Proto == nat.ProtoICMPv6) {
		svc, found = g.cfg.Services.LookupAddr(b.Flow.Dst)
	}
	var unit balance.UnitType
	if found {
		if m, _ := g.cfg.Services.Mode(svc); m == balance.TerminateMode && b.Flow.Proto == nat.ProtoTCP {
			g.syncStats.Skipped.Add(1)
			return
		}
		unit, _ = g.cfg.Services.Type(svc)
	}
	in := *b
	in.Session = 0
	if s, ok := g.sessions[b.Flow.Src]; ok {
		in.Session = s.ID
	}
	in.Service = 0
	if found {
		in.Service = svc + 1
	}
	id, err := t.Install(&in, g.now)
	if err != nil {
		if errors.Is(err, nat.ErrPortInUse) {
			g.syncStats.Conflicts.Add(1)
		} else {
			g.syncStats.Skipped.Add(1)
		}
		return
	}
	g.flowUnit[id] = unit
	g.flowXlat[id] = b.Server.Is4() != b.Flow.Src.Is4()
	g.flowSrv[id] = -1 // the origin counted it in its T7
	g.flowAddr[id], g.flowPort[id] = b.Server, b.SPort
	g.flowLB[id] = nat.MAC{}
	if s, ok := g.sessions[b.Flow.Src]; ok {
		g.flowLB[id] = s.lbNow
	}
	if g.flowTerm != nil {
		g.flowTerm[id] = false
	}
	g.acctStart(id)
	if c.Tag != ([2]uint64{}) {
		g.acctName(id, c.Tag)
		t.SetTag(id, c.Tag)
	}
	g.syncStats.Installed.Add(1)
}

// carried reports whether flow id ever carried a packet here: a synced
// binding that never did writes no accounting record.
func carried(b *nat.Binding) bool { return b.UpPackets+b.DownPackets > 0 }
