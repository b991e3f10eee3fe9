package daemon

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"samepath/ctl/api"
	"samepath/dp/balance"
	"samepath/tcpproxy"
)

// DefaultReplayBuffer is a terminate-mode service's risk.replay_buffer
// when absent.
const DefaultReplayBuffer = 64 << 10

// riskConfig is a service's risk balancing (R-TCP-4) from its API form:
// for terminate-mode services, failover with DefaultReplayBuffer unless
// set, resume as http unless set; nothing for NAT-mode ones, which may
// not set it.
func riskConfig(s api.Service, mode balance.Mode) (balance.Risk, error) {
	r := s.Risk
	if mode != balance.TerminateMode {
		if r != nil {
			return balance.Risk{}, fmt.Errorf("service %q: risk: needs mode terminate", s.Name)
		}
		return balance.Risk{}, nil
	}
	out := balance.Risk{ReplayBuffer: DefaultReplayBuffer}
	if r == nil {
		return out, nil
	}
	if r.ReplayBuffer != nil {
		out.ReplayBuffer = *r.ReplayBuffer
	}
	out.HTTP, out.Resume = r.HTTP, r.HTTP
	if r.Resume != nil {
		out.Resume = *r.Resume
	}
	return out, nil
}

// riskView is the API form of a terminate-mode service's risk balancing.
func riskView(r balance.Risk) *api.Risk {
	n, res := r.ReplayBuffer, r.Resume
	return &api.Risk{ReplayBuffer: &n, HTTP: r.HTTP, Resume: &res}
}

// RiskStats is the API form of a service's risk counters.
func RiskStats(c [tcpproxy.NumRiskCounters]uint64) *api.RiskStats {
	st := &api.RiskStats{Failovers: c[tcpproxy.RiskFailover], Resumes: c[tcpproxy.RiskResume], Aborts: map[string]uint64{}}
	for i := tcpproxy.RiskAbortOverflow; i < tcpproxy.NumRiskCounters; i++ {
		st.Aborts[abortName(i)] = c[i]
	}
	return st
}

// abortName is an abort counter's cause: its name less "abort_".
func abortName(c tcpproxy.RiskCounter) string { return c.String()[len("abort_"):] }

// withRiskStats adds each terminate-mode service's counters to v.
func withRiskStats(v api.Services, risk func(string) [tcpproxy.NumRiskCounters]uint64) api.Services {
	if risk == nil {
		return v
	}
	for i := range v.Services {
		if s := &v.Services[i]; s.Risk != nil {
			s.RiskStats = RiskStats(risk(s.Name))
		}
	}
	return v
}

// collectRisk exports every terminate-mode service's risk counters, each
// event from 0 on.
func collectRisk(ch chan<- prometheus.Metric, d *prometheus.Desc, t *balance.Table, risk func(string) [tcpproxy.NumRiskCounters]uint64) {
	for _, c := range t.Services() {
		if c.Mode != balance.TerminateMode {
			continue
		}
		for ev, n := range risk(c.Name) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), c.Name, tcpproxy.RiskCounter(ev).String())
		}
	}
}
