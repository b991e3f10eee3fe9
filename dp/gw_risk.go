package dp

import (
	"log/slog"
	"net/netip"
	"sync"

	"samepath/dp/balance"
	"samepath/nat"
	"samepath/tcpproxy"
)

// Risk balancing of terminated flows (R-TCP-4, tcpproxy/risk.go). Each
// terminate-mode service with a replay buffer or HTTP gets one
// tcpproxy.Risk, handed to its connections in their Decision: Next picks
// a substitute by the service's policy among its servers in state up,
// less those the connection tried (balance.Table.PickExcept), Healthy is
// whether the server still serves its flows in T6 (ServerServing: healthy
// and not in maint; a draining server's requests and responses in flight
// are neither failed over nor reset). The counters are per service name and
// outlive changes of the service's risk settings.
//
// A failover or a resume moves the flow to the server the connection is
// on now (tcpproxy's OnServer, queued to the worker: termMoved): its T5
// record (the flow views, an operator's cut of a server's flows), its T7
// active-flow count (least connections) and the server its accounting
// records name (gw_term.go says which when two servers sent bytes).

// riskTable is the GW's risk settings and counters by service name.
// termRisk runs on the worker, Counts on API goroutines.
type riskTable struct {
	mu  sync.Mutex
	by  map[string]*riskSvc
	log *slog.Logger
}

type riskSvc struct {
	cfg  balance.Risk
	risk *tcpproxy.Risk // nil: nothing to do for the service
	ctr  tcpproxy.RiskCounters
}

// SetRiskLog sets where failovers, resumes and aborts are logged (one
// line each; none without). Call before traffic.
func (g *GW) SetRiskLog(l *slog.Logger) {
	if g.term != nil {
		g.term.risk.log = l
	}
}

// termRisk is the risk balancing of new terminated flows of svcID.
func (g *GW) termRisk(svcID uint32) *tcpproxy.Risk {
	svcs := g.cfg.Services
	name, _, ok := svcs.Labels(svcID)
	if !ok {
		return nil
	}
	cfg, _ := svcs.Risk(svcID)
	rt := &g.term.risk
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.by == nil {
		rt.by = map[string]*riskSvc{}
	}
	rs := rt.by[name]
	if rs == nil {
		rs = &riskSvc{}
		rt.by[name] = rs
	} else if rs.cfg == cfg {
		return rs.risk
	}
	rs.cfg, rs.risk = cfg, nil
	if cfg.ReplayBuffer == 0 && !cfg.HTTP {
		return nil
	}
	// The service is found by name at each call: its index may change
	// when the table does.
	id := func() (uint32, bool) { return svcs.ID(name) }
	r := &tcpproxy.Risk{
		ReplayBuffer: cfg.ReplayBuffer, HTTP: cfg.HTTP, Resume: cfg.Resume, Counters: &rs.ctr,
		Next: func(tried []netip.AddrPort) (netip.AddrPort, bool) {
			i, ok := id()
			if !ok {
				return netip.AddrPort{}, false
			}
			a, _, ok := svcs.PickExcept(i, tried)
			return a, ok
		},
		Healthy: func(a netip.AddrPort) bool {
			i, ok := id()
			return ok && svcs.ServerServing(i, a)
		},
	}
	if l := rt.log; l != nil {
		r.Log = func(c *tcpproxy.Conn, ev tcpproxy.RiskCounter, from, to netip.AddrPort, why error) {
			args := []any{"service", name, "event", ev.String(), "mobile", c.Mobile(), "from", from}
			if to.IsValid() {
				args = append(args, "to", to)
			}
			if why != nil {
				args = append(args, "why", why)
			}
			if ev == tcpproxy.RiskFailover || ev == tcpproxy.RiskResume {
				l.Info("terminated connection kept", args...)
			} else {
				l.Warn("terminated connection reset", args...)
			}
		}
	}
	if err := r.Validate(); err != nil {
		return nil // balance.Risk validated: cannot happen
	}
	rs.risk = r
	return r
}

// RiskCounts returns a service's risk counters (zeros for one without
// terminated flows yet).
func (g *GW) RiskCounts(service string) [tcpproxy.NumRiskCounters]uint64 {
	if g.term == nil {
		return [tcpproxy.NumRiskCounters]uint64{}
	}
	rt := &g.term.risk
	rt.mu.Lock()
	rs := rt.by[service]
	rt.mu.Unlock()
	if rs == nil {
		return [tcpproxy.NumRiskCounters]uint64{}
	}
	return rs.ctr.Snapshot()
}

// termMoved moves terminated flow id to server to, which its connection
// is on now (worker): the T5 record's server, the T7 active-flow count
// (from the server counted to the new one; a server no longer listed
// counts nothing) and the server the flow's accounting and down filter
// use. A server of another family than the record's key port (a service
// changed under the flow) keeps the record's server but moves the rest.
func (g *GW) termMoved(id uint32, to netip.AddrPort) {
	a, p := nat.Addr16From(to.Addr()), to.Port()
	if g.flowAddr[id] == a && g.flowPort[id] == p {
		return
	}
	b := g.cfg.Flows.Binding(id)
	if b.Service != 0 {
		svc := b.Service - 1
		idx, ok := g.cfg.Services.ServerIndex(svc, to)
		if !ok {
			idx = -1
		}
		g.cfg.Dist.FlowMove(b.Session, svc, int(g.flowSrv[id]), idx)
		g.flowSrv[id] = int32(idx)
	}
	g.cfg.Flows.SetServer(id, a, p)
	g.flowAddr[id], g.flowPort[id] = a, p
	g.stats.Term.Moved.Add(1)
}
