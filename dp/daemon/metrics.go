package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/dp/balance"
	"samepath/internal/buildinfo"
	"samepath/nat"
)

// counterCollector exports the per-queue counters at scrape time, so the
// poll loop never touches Prometheus.
type counterCollector struct {
	read                                func() api.Counters
	rxp, rxb, txp, txb, drop, idl, sock *prometheus.Desc
	polls, consumed, originated         *prometheus.Desc
}

func newCounterCollector(read func() api.Counters) *counterCollector {
	l := []string{"port"}
	return &counterCollector{
		read:  read,
		rxp:   prometheus.NewDesc("samepath_rx_packets_total", "Packets received per queue.", l, nil),
		rxb:   prometheus.NewDesc("samepath_rx_bytes_total", "Bytes received per queue.", l, nil),
		txp:   prometheus.NewDesc("samepath_tx_packets_total", "Packets transmitted per queue.", l, nil),
		txb:   prometheus.NewDesc("samepath_tx_bytes_total", "Bytes transmitted per queue.", l, nil),
		drop:  prometheus.NewDesc("samepath_drops_total", "Packets dropped per queue and reason.", []string{"port", "reason"}, nil),
		idl:   prometheus.NewDesc("samepath_poll_idle_ratio", "Share of poll rounds that found no packet.", l, nil),
		polls: prometheus.NewDesc("samepath_poll_rounds_total", "Poll rounds over the queue (at least one per idle wait: a rate of 0 is a stalled poller).", l, nil),
		consumed: prometheus.NewDesc("samepath_consumed_packets_total",
			"Received packets the pipeline took in instead of forwarding, per queue (a terminated flow's segments handed to the TCP terminator).", l, nil),
		originated: prometheus.NewDesc("samepath_originated_packets_total",
			"Frames the pipeline made itself, per queue it sent them on (the TCP terminator's segments).", l, nil),
		sock: prometheus.NewDesc("samepath_xsk_events_total", "The kernel's statistics of each queue's AF_XDP socket (XDP_STATISTICS): drops before the dataplane (rx_dropped, rx_ring_full, fill_ring_empty), invalid descriptors, empty TX ring.", []string{"port", "counter"}, nil),
	}
}

func (c *counterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rxp, c.rxb, c.txp, c.txb, c.drop, c.idl, c.sock, c.polls, c.consumed, c.originated} {
		ch <- d
	}
}

func (c *counterCollector) Collect(ch chan<- prometheus.Metric) {
	for _, q := range c.read().Queues {
		ch <- prometheus.MustNewConstMetric(c.rxp, prometheus.CounterValue, float64(q.RxPackets), q.Port)
		ch <- prometheus.MustNewConstMetric(c.rxb, prometheus.CounterValue, float64(q.RxBytes), q.Port)
		ch <- prometheus.MustNewConstMetric(c.txp, prometheus.CounterValue, float64(q.TxPackets), q.Port)
		ch <- prometheus.MustNewConstMetric(c.txb, prometheus.CounterValue, float64(q.TxBytes), q.Port)
		// Every reason from the start, at 0 until it happens, so that a
		// rate() or an alert on a reason works before its first drop.
		for _, r := range dp.Reasons() {
			ch <- prometheus.MustNewConstMetric(c.drop, prometheus.CounterValue, float64(q.Drops[r.String()]), q.Port, r.String())
		}
		for r, n := range q.Drops {
			if !knownReason[r] {
				ch <- prometheus.MustNewConstMetric(c.drop, prometheus.CounterValue, float64(n), q.Port, r)
			}
		}
		ch <- prometheus.MustNewConstMetric(c.idl, prometheus.GaugeValue, q.IdleRatio, q.Port)
		ch <- prometheus.MustNewConstMetric(c.polls, prometheus.CounterValue, float64(q.Polls), q.Port)
		ch <- prometheus.MustNewConstMetric(c.consumed, prometheus.CounterValue, float64(q.Consumed), q.Port)
		ch <- prometheus.MustNewConstMetric(c.originated, prometheus.CounterValue, float64(q.Originated), q.Port)
		for k, n := range q.Socket {
			ch <- prometheus.MustNewConstMetric(c.sock, prometheus.CounterValue, float64(n), q.Port, k)
		}
	}
}

// knownReason holds the names of dp's drop reasons.
var knownReason = func() map[string]bool {
	m := map[string]bool{}
	for _, r := range dp.Reasons() {
		m[r.String()] = true
	}
	return m
}()

// NewRegistry returns a registry with Go/process collectors,
// samepath_build_info and the queue counters read by read.
func NewRegistry(read func() api.Counters) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}), newCounterCollector(read), buildinfo.Collector())
	return reg
}

// gwCollector exports the gateway's tables at scrape time: NAT records
// and allocations, exhaustion, records ended by cause, per-policy
// choices, T7 records, sessions and refusals per service type.
type gwCollector struct {
	s                                                                                     *gwState
	flows, created, exhausted, full, ended, choices, t7, t7ops, sessions, denied, refused *prometheus.Desc
	subBytes, svcBytes, acctRecs, acctLost, attrLost                                      *prometheus.Desc
	srvUp, srvHealthy, srvRTT, srvFlows, srvNew, srvFails                                 *prometheus.Desc
	srvAdmin                                                                              *prometheus.Desc
	capacity, keyPorts                                                                    *prometheus.Desc
	risk                                                                                  *prometheus.Desc
}

func newGWCollector(s *gwState) *gwCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("samepath_gw_"+name, help, labels, nil)
	}
	return &gwCollector{s: s,
		flows:      d("flows", "Port-key NAT records (T5) now."),
		capacity:   d("flow_capacity", "Most NAT records (T5) the table holds."),
		keyPorts:   d("nat_ports", "Key ports per protocol class (NAT addresses times the port range); alert SamepathNATPortsNearExhaustion compares samepath_gw_flows with it."),
		created:    d("flows_created_total", "NAT records created (key ports allocated)."),
		exhausted:  d("port_exhausted_total", "New flows refused for lack of a free key port."),
		full:       d("table_full_total", "New flows refused because the NAT table is full."),
		ended:      d("flows_ended_total", "NAT records removed, by cause.", "cause"),
		choices:    d("policy_choices_total", "Servers chosen, by balancing policy.", "policy"),
		t7:         d("distribution_records", "Distribution records (T7) now."),
		t7ops:      d("distribution_total", "Distribution record operations.", "op"),
		sessions:   d("sessions", "Sessions in the gateway's T3 copy."),
		denied:     d("denied_total", "New flows refused by service authorization, by service type.", "service_type"),
		refused:    d("replies_total", "Proxy replies sent (RST or ICMP) for refused flows."),
		subBytes:   d("subscriber_bytes_total", "Accounted bytes (IP packets) per subscriber and direction.", "user", "device", "direction"),
		svcBytes:   d("service_bytes_total", "Accounted bytes (IP packets) per service type and direction.", "service_type", "direction"),
		acctRecs:   d("accounting_records_total", "Accounting records by outcome (pushed includes checkpoints; checkpointed: kept in the checkpoint files; gateway_restart: final records written at start for flows a crash ended).", "outcome"),
		acctLost:   d("accounting_lost_total", "Accounting records lost (ring full, write failed): never silent."),
		attrLost:   d("accounting_attributes_lost_total", "Flow attributes (URL, SNI) not kept for want of a slot."),
		srvUp:      d("server_up", "1 when the actual server is in service by its administrative state: up or drain, not maint (T6 state).", "service", "server"),
		srvAdmin:   d("server_admin_state", "1 for the actual server's administrative state (up, drain, maint), 0 for the others; the operator's, apart from health.", "service", "server", "state"),
		srvHealthy: d("server_healthy", "1 when the actual server passes its health checks.", "service", "server"),
		srvRTT:     d("server_rtt_seconds", "Health-probe round-trip time of the actual server (EWMA; absent before the first sample).", "service", "server"),
		srvFlows:   d("server_active_flows", "Flows now assigned to the actual server.", "service", "server"),
		srvNew:     d("server_new_flows_total", "New flows the balancing policy gave the actual server.", "service", "server"),
		srvFails:   d("server_check_failures_total", "Failed health checks of the actual server (each one, before Fall damps them).", "service", "server"),
		risk:       d("term_risk_total", "Risk balancing of terminated connections (R-TCP-4) per terminate-mode service: failover (another server before the response), resume (mid-response), abort_* (RST to the mobile, by cause).", "service", "event"),
	}
}

func (c *gwCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.flows, c.created, c.exhausted, c.full, c.ended, c.choices, c.t7, c.t7ops, c.sessions, c.denied, c.refused,
		c.subBytes, c.svcBytes, c.acctRecs, c.acctLost, c.attrLost, c.srvUp, c.srvHealthy, c.srvRTT, c.srvFlows, c.srvNew, c.srvFails, c.capacity, c.keyPorts, c.srvAdmin, c.risk} {
		ch <- d
	}
}

func (c *gwCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	ps := s.flows.Stats()
	ch <- prometheus.MustNewConstMetric(c.flows, prometheus.GaugeValue, float64(ps.Live))
	ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(s.flows.Capacity()))
	ch <- prometheus.MustNewConstMetric(c.keyPorts, prometheus.GaugeValue, float64(s.flows.KeyPorts()))
	ch <- prometheus.MustNewConstMetric(c.created, prometheus.CounterValue, float64(ps.Created))
	ch <- prometheus.MustNewConstMetric(c.exhausted, prometheus.CounterValue, float64(ps.Exhausted))
	ch <- prometheus.MustNewConstMetric(c.full, prometheus.CounterValue, float64(ps.Full))
	for cause, n := range ps.Removed {
		ch <- prometheus.MustNewConstMetric(c.ended, prometheus.CounterValue, float64(n), nat.Cause(cause).String())
	}
	for p, n := range s.services.Choices() {
		ch <- prometheus.MustNewConstMetric(c.choices, prometheus.CounterValue, float64(n), balance.Policy(p).String())
	}
	ds := s.dist.Stats()
	ch <- prometheus.MustNewConstMetric(c.t7, prometheus.GaugeValue, float64(ds.Records))
	for op, n := range map[string]uint64{"recorded": ds.Recorded, "released": ds.Released, "repicked": ds.Repicks, "full": ds.Full, "no_server": ds.NoServer} {
		ch <- prometheus.MustNewConstMetric(c.t7ops, prometheus.CounterValue, float64(n), op)
	}
	s.mu.Lock()
	n := len(s.sessions)
	s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(n))
	for st, v := range s.authz.Denied() {
		ch <- prometheus.MustNewConstMetric(c.denied, prometheus.CounterValue, float64(v), st)
	}
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(s.gw.Stats().Replies.Load()))
	for _, svc := range s.services.Status() {
		for _, v := range svc.Servers {
			l := []string{svc.Name, v.Addr.String()}
			ch <- prometheus.MustNewConstMetric(c.srvUp, prometheus.GaugeValue, b2f(v.Up), l...)
			ch <- prometheus.MustNewConstMetric(c.srvHealthy, prometheus.GaugeValue, b2f(v.Healthy), l...)
			for a := range balance.NumAdminStates {
				ch <- prometheus.MustNewConstMetric(c.srvAdmin, prometheus.GaugeValue, b2f(v.Admin == a), svc.Name, l[1], a.String())
			}
			if v.RTT > 0 {
				ch <- prometheus.MustNewConstMetric(c.srvRTT, prometheus.GaugeValue, v.RTT.Seconds(), l...)
			}
			ch <- prometheus.MustNewConstMetric(c.srvFlows, prometheus.GaugeValue, float64(v.Conns), l...)
			ch <- prometheus.MustNewConstMetric(c.srvNew, prometheus.CounterValue, float64(v.Picks), l...)
			ch <- prometheus.MustNewConstMetric(c.srvFails, prometheus.CounterValue, float64(v.Failures), l...)
		}
	}
	collectRisk(ch, c.risk, s.services, s.gw.RiskCounts)
	if s.acct == nil {
		return
	}
	bySub, bySvc := s.gw.Usage()
	for k, u := range bySub {
		ch <- prometheus.MustNewConstMetric(c.subBytes, prometheus.CounterValue, float64(u.UpBytes), k.User, k.Device, "up")
		ch <- prometheus.MustNewConstMetric(c.subBytes, prometheus.CounterValue, float64(u.DownBytes), k.User, k.Device, "down")
	}
	for k, u := range bySvc {
		ch <- prometheus.MustNewConstMetric(c.svcBytes, prometheus.CounterValue, float64(u.UpBytes), k, "up")
		ch <- prometheus.MustNewConstMetric(c.svcBytes, prometheus.CounterValue, float64(u.DownBytes), k, "down")
	}
	st := s.acct.Stats()
	for k, v := range map[string]uint64{"pushed": st.Pushed, "written": st.Written, "synced": st.Synced,
		"checkpointed": st.Checkpoints, "gateway_restart": st.Recovered} {
		ch <- prometheus.MustNewConstMetric(c.acctRecs, prometheus.CounterValue, float64(v), k)
	}
	ch <- prometheus.MustNewConstMetric(c.acctLost, prometheus.CounterValue, float64(st.Lost+st.Failed))
	ch <- prometheus.MustNewConstMetric(c.attrLost, prometheus.CounterValue, float64(s.gw.AttributesLost()))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// lbCollector exports the LB's steering counters per T4 row and chosen
// gateway (nat.T4.SteerCounts), read at scrape time.
type lbCollector struct {
	t4            *nat.T4
	steered, down *prometheus.Desc
}

func newLBCollector(t4 *nat.T4) *lbCollector {
	return &lbCollector{t4: t4,
		steered: prometheus.NewDesc("samepath_lb_steered_packets_total",
			"Up packets steered by the AF_XDP pipeline, per T4 row (range) and chosen gateway (MAC); sum by gateway for a gateway's share. The in-kernel steering (steering: xdp) counts in samepath_rx_packets_total only.",
			[]string{"range", "gateway"}, nil),
		down: prometheus.NewDesc("samepath_lb_all_gateways_down_packets_total",
			"Up packets dropped because every gateway of their T4 row (range) was down.", []string{"range"}, nil),
	}
}

func (c *lbCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.steered; ch <- c.down }

func (c *lbCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.t4.SteerCounts() {
		if s.Gateway == (nat.MAC{}) {
			ch <- prometheus.MustNewConstMetric(c.down, prometheus.CounterValue, float64(s.Packets), s.Range.String())
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.steered, prometheus.CounterValue, float64(s.Packets), s.Range.String(), s.Gateway.String())
	}
}
