package control

import (
	"github.com/prometheus/client_golang/prometheus"

	"samepath/ctl/aaa"
	"samepath/ctl/session"
	"samepath/internal/buildinfo"
)

// collector reads the counters at scrape time (no per-request metric work).
type collector struct {
	c                                            *Control
	radius, transitions, invalid, unknown, other *prometheus.Desc
	sessions, assigned, size, gwUp, outbox       *prometheus.Desc
	pool, commits                                *prometheus.Desc
	authzPush, authzSync, authzVersion           *prometheus.Desc
	sessionSync, buildInfo                       *prometheus.Desc
}

func newCollector(c *Control) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("samepath_control_"+name, help, labels, nil)
	}
	return &collector{c: c,
		radius:       d("radius_total", "RADIUS server events by kind.", "kind"),
		transitions:  d("session_transitions_total", "FIG. 11 transitions.", "edge"),
		invalid:      d("session_invalid_events_total", "Events FIG. 11 has no edge for (state+event).", "event"),
		unknown:      d("session_unknown_events_total", "Accounting for unknown sessions.", "kind"),
		other:        d("session_other_total", "Other session manager events.", "kind"),
		sessions:     d("sessions", "Sessions in T3 by state.", "state"),
		assigned:     d("gateway_assigned_addresses", "Addresses assigned per gateway (T1).", "gateway"),
		size:         d("gateway_range_size", "Usable addresses per gateway range.", "gateway"),
		gwUp:         d("gateway_up", "1 when the gateway takes new sessions' traffic (LB state up).", "gateway"),
		outbox:       d("outbox_events_total", "Gateway event pushes by outcome.", "outcome"),
		pool:         d("address_assignments_total", "Address assignment outcomes.", "outcome"),
		commits:      d("store_commits_total", "Durable commits of the state store."),
		authzPush:    d("authz_pushes_total", "T8/T9 pushes to gateways by outcome.", "outcome"),
		authzSync:    d("authz_gateway_in_sync", "1 when the gateway acknowledged the current T8/T9.", "gateway"),
		authzVersion: d("authz_version", "Version of the control process's T8/T9 (0: not managed)."),
		sessionSync:  d("session_sync_total", "Read-backs of the gateways' T3 copies and the repairs queued.", "kind"),
		buildInfo:    buildinfo.Desc()}
}

func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.radius, m.transitions, m.invalid, m.unknown, m.other, m.sessions, m.assigned, m.size, m.gwUp, m.outbox, m.pool, m.commits, m.authzPush, m.authzSync, m.authzVersion, m.sessionSync, m.buildInfo} {
		ch <- d
	}
}

func (m *collector) Collect(ch chan<- prometheus.Metric) {
	ctr := func(d *prometheus.Desc, kv map[string]uint64) {
		for k, v := range kv {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), k)
		}
	}
	ctr(m.radius, m.c.Radius.C.Snapshot())
	sc := m.c.Mgr.Counters()
	ctr(m.transitions, sc.Transitions)
	ctr(m.invalid, sc.Invalid)
	ctr(m.unknown, sc.Unknown)
	ctr(m.other, sc.Other)
	by := map[session.State]int{session.Act: 0, session.Dormant: 0, session.Close: 0}
	for _, s := range m.c.Mgr.List() {
		by[s.State]++
	}
	for st, n := range by {
		ch <- prometheus.MustNewConstMetric(m.sessions, prometheus.GaugeValue, float64(n), string(st))
	}
	for _, g := range m.c.Pool.Gateways() {
		ch <- prometheus.MustNewConstMetric(m.assigned, prometheus.GaugeValue, float64(g.Assigned), g.Name)
		ch <- prometheus.MustNewConstMetric(m.size, prometheus.GaugeValue, float64(g.Size), g.Name)
		up := 0.0
		if aaa.LBState(g) == "up" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(m.gwUp, prometheus.GaugeValue, up, g.Name)
	}
	oc := m.c.Out.Counters()
	ctr(m.outbox, map[string]uint64{"queued": oc.Queued, "acked": oc.Acked, "failed": oc.Failures, "no_api": oc.NoAPI, "wakeups": oc.Wakeups})
	ss := m.c.SessionSync.Counters()
	ctr(m.sessionSync, map[string]uint64{"rounds": ss.Rounds, "failures": ss.Failures, "reasserted": ss.Reasserted, "ended": ss.Ended, "pending": ss.Pending})
	pc := m.c.Pool.Counters()
	ctr(m.pool, map[string]uint64{"assigned": pc.Assigned, "reused": pc.Reused, "reject_no_gateway": pc.RejectNoGW, "reject_full": pc.RejectFull,
		"released": pc.Released, "expired": pc.Expired, "bind_claimed": pc.BindClaimed, "bind_conflict": pc.BindConflict, "bind_not_in_range": pc.BindNotInPool})
	ch <- prometheus.MustNewConstMetric(m.commits, prometheus.CounterValue, float64(m.c.St.Stats().Commits))
	ok, failed := m.c.AuthzSync.Counters()
	ctr(m.authzPush, map[string]uint64{"acked": ok, "failed": failed})
	as := m.c.AuthzSync.Status()
	for _, g := range as.Gateways {
		v := 0.0
		if g.InSync {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(m.authzSync, prometheus.GaugeValue, v, g.Name)
	}
	ch <- prometheus.MustNewConstMetric(m.authzVersion, prometheus.GaugeValue, float64(as.Version))
	ch <- buildinfo.Metric(m.buildInfo)
}
