package daemon

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"samepath/ctl/api"
	"samepath/dp/dptest"
	"samepath/internal/promcheck"
	"samepath/nat"
)

// gather returns every sample of reg as "name{labels}" -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			k := mf.GetName() + "{"
			for i, l := range m.Label {
				if i > 0 {
					k += ","
				}
				k += l.GetName() + "=" + l.GetValue()
			}
			k += "}"
			out[k] = value(mf.GetType(), m)
		}
	}
	return out
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.Counter.GetValue()
	case dto.MetricType_GAUGE:
		return m.Gauge.GetValue()
	}
	return m.Untyped.GetValue()
}

// TestGWServerMetrics (issue 18): the gateway exports each actual
// server's state, health, active and new flows and check failures; a
// flow to the service shows on its server.
func TestGWServerMetrics(t *testing.T) {
	r := newGWRig(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(newGWCollector(r.s))
	mob := netip.MustParseAddr("10.101.0.5")
	r.event(api.EventStart, "s1", mob, 1)
	f := dptest.Frame().Eth(rigLBMAC, rigLanMAC).IPv4(mob, netip.MustParseAddr("10.30.0.1")).TCP(40000, 80).Flags(0x02).Seq(1).Bytes()
	if !r.ports[0].Inject(f) {
		t.Fatal("inject failed")
	}
	r.w.Poll()
	if out := r.ports[1].TakeAll(); len(out) != 1 {
		t.Fatalf("SYN not forwarded to the server (%d out)", len(out))
	}
	got := gather(t, reg)
	l := "{server=10.20.0.11:8080,service=web}"
	want := map[string]float64{
		"samepath_gw_server_up" + l:                   1,
		"samepath_gw_server_healthy" + l:              1,
		"samepath_gw_server_active_flows" + l:         1,
		"samepath_gw_server_new_flows_total" + l:      1,
		"samepath_gw_server_check_failures_total" + l: 0,
		"samepath_gw_flow_capacity{}":                 1024,
		"samepath_gw_nat_ports{}":                     64512, // 1 address, ports 1024..65535
	}
	sub := map[string]float64{}
	for k := range want {
		if v, ok := got[k]; ok {
			sub[k] = v
		}
	}
	if d := cmp.Diff(want, sub); d != "" {
		t.Fatalf("server metrics (-want +got):\n%s", d)
	}
	if _, ok := got["samepath_gw_server_rtt_seconds"+l]; ok {
		t.Error("an RTT before any probe")
	}
}

// TestMetricsLint: promtool check metrics accepts both roles' /metrics
// (the LB's queue and steering counters, the gateway's tables); the LB
// exports its steering counters per T4 row and gateway (issue 18).
func TestMetricsLint(t *testing.T) {
	t4, err := nat.NewT4([]nat.T4Row{{Range: netip.MustParsePrefix("10.101.0.0/24"), Gateways: []nat.Gateway{{MAC: nat.MAC{2, 0, 0, 0, 0x10, 1}, Up: true}}},
		{Range: netip.MustParsePrefix("10.102.0.0/24"), Gateways: []nat.Gateway{{MAC: nat.MAC{2, 0, 0, 0, 0x10, 2}}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, c1 := t4.SteerV4([4]byte{10, 101, 0, 5})
	_, _, c2 := t4.SteerV4([4]byte{10, 102, 0, 5})
	c1.Add(3)
	c2.Add(2)
	lreg := NewRegistry(testBackend{}.Counters)
	lreg.MustRegister(newLBCollector(t4))
	got := gather(t, lreg)
	for k, v := range map[string]float64{
		"samepath_lb_steered_packets_total{gateway=02:00:00:00:10:01,range=10.101.0.0/24}": 3,
		"samepath_lb_steered_packets_total{gateway=02:00:00:00:10:02,range=10.102.0.0/24}": 0,
		"samepath_lb_all_gateways_down_packets_total{range=10.102.0.0/24}":                 2,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	ls := httptest.NewServer(NewHandler(testBackend{t4}, lreg, "", nil))
	defer ls.Close()
	promcheck.Metrics(t, "lb /metrics", getBody(t, ls.URL+"/metrics"))
	r := newGWRig(t)
	reg := NewRegistry(testBackend{}.Counters)
	reg.MustRegister(newGWCollector(r.s))
	_, tc, _ := newTermAPI(t)
	reg.MustRegister(newTermCollector(tc))
	hs := httptest.NewServer(NewHandler(gwTestBackend{r.s}, reg, "", r.log))
	defer hs.Close()
	promcheck.Metrics(t, "gw /metrics", getBody(t, hs.URL+"/metrics"))
}

func getBody(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}
