package dp

import (
	"net/netip"

	"samepath/dp/balance"
	"samepath/nat"
)

// A server put into maint (balance.AdminMaint) gets no traffic: the
// balance table stops choosing it at once, and the worker ends the flows
// still on it (cause nat.Admin, with their final accounting records), in
// a scan of the flow table spread over poll rounds (cutBudget slots a
// round) so that no round stalls. Drain needs nothing here: its flows
// run until they end.

// cutBudget is how many flow slots one poll round examines for a cut.
const cutBudget = 4096

// serverCut names a server whose flows go.
type serverCut struct {
	svc  uint32 // service index
	addr nat.Addr16
	port uint16
}

// gwAdmin is the worker's cut in progress and its queue.
type gwAdmin struct {
	cuts    chan serverCut // control -> worker
	cur     serverCut
	cutting bool
	pos     uint32 // next flow slot of the scan
}

// EndServerFlows queues the end of every flow on server addr of service
// svcID (a service index, balance.Table.ID) for the worker; it blocks
// while the queue is full. Packet-unit flows are left alone: each of
// their up packets is a new choice, which no longer takes the server.
// Ended flows count in the table's removals under nat.Admin and in
// GWStats.AdminEnded.
func (g *GW) EndServerFlows(svcID uint32, addr netip.AddrPort) {
	g.admin.cuts <- serverCut{svc: svcID, addr: addr.Addr().As16(), port: addr.Port()}
}

// adminTick runs on the worker (Tick): a bounded step of the current cut.
func (g *GW) adminTick() {
	a := &g.admin
	if !a.cutting {
		select {
		case a.cur = <-a.cuts:
			a.cutting, a.pos = true, 0
		default:
			return
		}
	}
	n := uint32(g.cfg.Flows.Capacity())
	end := min(a.pos+cutBudget, n)
	for id := a.pos; id < end; id++ {
		bd := g.cfg.Flows.Binding(id)
		if bd == nil || bd.Service != a.cur.svc+1 || g.flowUnit[id] == balance.PacketUnit ||
			bd.Server != a.cur.addr || (bd.SPort != a.cur.port && bd.SPort != 0) {
			continue
		}
		g.onEnd(bd, nat.Admin)
		g.cfg.Flows.Delete(id, nat.Admin)
		g.stats.AdminEnded.Add(1)
	}
	a.pos = end
	a.cutting = end < n
}
