package daemon

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"samepath/ctl/api"
	"samepath/dp/balance"
	"samepath/tcpproxy"
)

func riskService(mode string, r *api.Risk) api.Service {
	return api.Service{Name: "web", Rep: "10.30.0.1:80", Proto: "tcp", Mode: mode, Risk: r,
		Servers: []api.Server{{Addr: "10.20.0.11:80", State: "up"}, {Addr: "10.20.0.12:80", State: "up"}}}
}

func TestRiskConfig(t *testing.T) {
	zero, off := 0, false
	big := 1 << 20
	for _, tc := range []struct {
		name string
		in   api.Service
		want balance.Risk
		err  string
	}{
		{"terminate default", riskService("terminate", nil), balance.Risk{ReplayBuffer: DefaultReplayBuffer}, ""},
		{"http resumes", riskService("terminate", &api.Risk{HTTP: true}), balance.Risk{ReplayBuffer: DefaultReplayBuffer, HTTP: true, Resume: true}, ""},
		{"http resume off", riskService("terminate", &api.Risk{HTTP: true, Resume: &off}), balance.Risk{ReplayBuffer: DefaultReplayBuffer, HTTP: true}, ""},
		{"no failover", riskService("terminate", &api.Risk{ReplayBuffer: &zero}), balance.Risk{}, ""},
		{"buffer", riskService("terminate", &api.Risk{ReplayBuffer: &big}), balance.Risk{ReplayBuffer: big}, ""},
		{"nat", riskService("nat", nil), balance.Risk{}, ""},
		{"nat with risk", riskService("nat", &api.Risk{HTTP: true}), balance.Risk{}, "risk: needs mode terminate"},
		{"resume without http", riskService("terminate", &api.Risk{Resume: new(true)}), balance.Risk{}, "risk.resume"},
		{"negative", riskService("terminate", &api.Risk{ReplayBuffer: new(-1)}), balance.Risk{}, "risk.replay_buffer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ServiceConfig(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, c.Risk); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

// The services view carries the settings and, with the gateway's
// counters, the counts; Prometheus has every event of every
// terminate-mode service from 0 on.
func TestRiskViewAndMetrics(t *testing.T) {
	c, err := ServiceConfig(riskService("terminate", &api.Risk{HTTP: true}))
	if err != nil {
		t.Fatal(err)
	}
	n, err := ServiceConfig(api.Service{Name: "dns", Rep: "10.30.0.2:53", Proto: "udp", Servers: []api.Server{{Addr: "10.20.0.13:53", State: "up"}}})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := balance.NewTable([]balance.ServiceConfig{c, n})
	if err != nil {
		t.Fatal(err)
	}
	var counts [tcpproxy.NumRiskCounters]uint64
	risk := func(name string) [tcpproxy.NumRiskCounters]uint64 {
		if name != "web" {
			t.Errorf("counters asked for %s", name)
		}
		return counts
	}
	v := withRiskStats(ServicesView(tb), risk)
	buf, res := DefaultReplayBuffer, true
	want := &api.Risk{ReplayBuffer: &buf, HTTP: true, Resume: &res}
	for _, s := range v.Services {
		switch s.Name {
		case "web":
			if d := cmp.Diff(want, s.Risk); d != "" {
				t.Errorf("web risk (-want +got)\n%s", d)
			}
			wantSt := &api.RiskStats{Aborts: map[string]uint64{"replay_overflow": 0, "no_server": 0, "mid_response": 0, "resume_mismatch": 0}}
			if d := cmp.Diff(wantSt, s.RiskStats); d != "" {
				t.Errorf("web stats (-want +got)\n%s", d)
			}
		case "dns":
			if s.Risk != nil || s.RiskStats != nil {
				t.Errorf("a NAT service with risk: %+v %+v", s.Risk, s.RiskStats)
			}
		}
	}
	// The view goes back into the table unchanged.
	back, err := ServiceConfig(v.Services[0])
	if err != nil || back.Risk != c.Risk {
		t.Errorf("round trip: %+v, %v; want %+v", back.Risk, err, c.Risk)
	}

	d := prometheus.NewDesc("samepath_gw_term_risk_total", "h", []string{"service", "event"}, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectorFunc(func(ch chan<- prometheus.Metric) { collectRisk(ch, d, tb, risk) }, d))
	got := gather(t, reg)
	if len(got) != int(tcpproxy.NumRiskCounters) {
		t.Errorf("%d series, want %d: %v", len(got), tcpproxy.NumRiskCounters, got)
	}
	for k, v := range got {
		if v != 0 {
			t.Errorf("%s = %v before anything happened", k, v)
		}
	}
	counts[tcpproxy.RiskFailover], counts[tcpproxy.RiskAbortNoServer] = 2, 1
	got = gather(t, reg)
	if got["samepath_gw_term_risk_total{event=failover,service=web}"] != 2 || got["samepath_gw_term_risk_total{event=abort_no_server,service=web}"] != 1 {
		t.Errorf("after a failover and an abort: %v", got)
	}
	if st := RiskStats(counts); st.Failovers != 2 || st.Aborts["no_server"] != 1 {
		t.Errorf("RiskStats %+v", st)
	}
}

type collector struct {
	f func(chan<- prometheus.Metric)
	d *prometheus.Desc
}

func collectorFunc(f func(chan<- prometheus.Metric), d *prometheus.Desc) prometheus.Collector {
	return collector{f, d}
}
func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.d }
func (c collector) Collect(ch chan<- prometheus.Metric) { c.f(ch) }
