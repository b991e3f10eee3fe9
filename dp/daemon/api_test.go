package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/internal/version"
	"samepath/nat"
)

type testBackend struct{ t4 *nat.T4 }

func (b testBackend) Status() api.Status { return api.Status{Role: "lb"} }
func (b testBackend) Counters() api.Counters {
	return api.Counters{Queues: []api.QueueCounters{{Port: "eth0/q0", RxPackets: 7, Drops: map[string]uint64{"no_route": 2}}}}
}
func (b testBackend) T4() *nat.T4 { return b.t4 }

func newAPI(t *testing.T, token string) (*api.Client, *nat.T4) {
	t.Helper()
	t4, _ := nat.NewT4(nil)
	b := testBackend{t4}
	srv := httptest.NewServer(NewHandler(b, NewRegistry(b.Counters), token, nil))
	t.Cleanup(srv.Close)
	c := api.NewClient(srv.URL)
	c.Token = token
	return c, t4
}

func TestAPIT4RoundTrip(t *testing.T) {
	c, t4 := newAPI(t, "")
	ctx := context.Background()
	want := api.T4{Rows: []api.T4Row{
		{Range: "10.101.0.0/24", Gateways: []api.T4Gateway{{MAC: "02:00:00:00:10:01", State: "up"}, {MAC: "02:00:00:00:10:02", State: "up"}}},
		{Range: "fd00:101::/64", Gateways: []api.T4Gateway{{MAC: "02:00:00:00:10:01", State: "down"}}},
	}}
	if err := c.SetT4(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := c.T4(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("T4 round trip (-want +got):\n%s", d)
	}
	if err := c.SetGatewayState(ctx, "02:00:00:00:10:01", "down"); err != nil {
		t.Fatal(err)
	}
	if m, _ := t4.LookupV4([4]byte{10, 101, 0, 5}); m.String() != "02:00:00:00:10:02" {
		t.Errorf("after primary down, lookup gives %s", m)
	}
	if err := c.PutT4Row(ctx, api.T4Row{Range: "10.102.0.0/24", Gateways: []api.T4Gateway{{MAC: "02:00:00:00:10:02", State: "up"}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteT4Row(ctx, "fd00:101::/64"); err != nil {
		t.Fatal(err)
	}
	got, _ = c.T4(ctx)
	if len(got.Rows) != 2 || got.Rows[1].Range != "10.102.0.0/24" {
		t.Errorf("after put+delete: %+v", got)
	}
}

func TestAPIErrors(t *testing.T) {
	c, _ := newAPI(t, "")
	ctx := context.Background()
	for name, err := range map[string]error{
		"overlap": c.SetT4(ctx, api.T4{Rows: []api.T4Row{
			{Range: "10.0.0.0/8", Gateways: []api.T4Gateway{{MAC: "02:00:00:00:00:01"}}},
			{Range: "10.1.0.0/16", Gateways: []api.T4Gateway{{MAC: "02:00:00:00:00:01"}}},
		}}),
		"bad mac":       c.PutT4Row(ctx, api.T4Row{Range: "10.0.0.0/8", Gateways: []api.T4Gateway{{MAC: "zz"}}}),
		"bad state":     c.SetGatewayState(ctx, "02:00:00:00:00:01", "sideways"),
		"unknown gw":    c.SetGatewayState(ctx, "02:00:00:00:00:09", "down"),
		"delete absent": c.DeleteT4Row(ctx, "10.9.0.0/16"),
		"gw-only":       c.SessionEvent(ctx, api.SessionEvent{Event: "start"}),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := c.DeleteT4Row(ctx, "10.9.0.0/16"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("delete absent: %v, want 404", err)
	}
}

func TestAPITokenAndMetrics(t *testing.T) {
	c, _ := newAPI(t, "s3cret")
	ctx := context.Background()
	if _, err := c.Counters(ctx); err != nil {
		t.Fatalf("with token: %v", err)
	}
	c.Token = "wrong"
	if _, err := c.Counters(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
	resp, err := http.Get(c.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	buildInfo := fmt.Sprintf(`samepath_build_info{goversion=%q,version=%q} 1`, version.GoVersion(), version.Get())
	// Reasons that never happened are there from the start, at 0.
	for _, want := range []string{`samepath_rx_packets_total{port="eth0/q0"} 7`, `samepath_drops_total{port="eth0/q0",reason="no_route"} 2`,
		`samepath_drops_total{port="eth0/q0",reason="all_gateways_down"} 0`, `samepath_drops_total{port="eth0/q0",reason="panic"} 0`, buildInfo,
		`samepath_consumed_packets_total{port="eth0/q0"} 0`, `samepath_originated_packets_total{port="eth0/q0"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestConfigParseGW(t *testing.T) {
	c, err := Parse([]byte(ExampleGW))
	if err != nil {
		t.Fatalf("example gw config: %v", err)
	}
	pc, _ := c.GW.PortTableConfig()
	if len(c.GW.Services) != 2 || c.GW.Services[1].Mode != "terminate" || c.GW.Terminate == nil ||
		len(pc.GwAddrs) != 1 || len(c.GW.Authz.T9) != 1 || c.Workers.Queues != 1 {
		t.Errorf("example gw parsed as %+v", c.GW)
	}
	for name, y := range map[string]string{
		"two queues":    strings.Replace(ExampleGW, "queues: 1", "queues: 2", 1),
		"no nat addr":   strings.Replace(ExampleGW, "addrs: [10.20.0.101]", "addrs: []", 1),
		"bad policy":    strings.Replace(ExampleGW, "policy: rr", "policy: random", 1),
		"bad unit":      strings.Replace(ExampleGW, "type: connection", "type: forever", 1),
		"bad server":    strings.Replace(ExampleGW, `"10.20.0.11:80"`, `"10.20.0.11"`, 1),
		"bad t9":        strings.Replace(ExampleGW, "rep: 10.30.0.1, service_type", "rep: nowhere, service_type", 1),
		"same iface":    strings.Replace(ExampleGW, "iface: lan2", "iface: lan1", 1),
		"udp on tcp rp": strings.Replace(ExampleGW, "proto: tcp", "proto: sctp", 1),
		"no terminator": strings.Replace(ExampleGW, "  terminate: {port_min: 60000, port_max: 65535, mobile_profile: wireless, server_profile: wired}", "", 1),
		"no profile":    strings.Replace(ExampleGW, "mobile_profile: wireless", "mobile_profile: radio", 1),
		"term overlap":  strings.Replace(ExampleGW, "port_max: 59999", "port_max: 60000", 1),
		"terminate udp": strings.Replace(ExampleGW, "      proto: tcp\n      mode: terminate", "      proto: udp\n      mode: terminate", 1),
	} {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestConfigParse(t *testing.T) {
	c, err := Parse([]byte(Example))
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if c.LB.Ingress.NextHopIP != "10.1.0.1" || len(c.LB.T4) != 2 {
		t.Errorf("example parsed as %+v", c)
	}
	for name, y := range map[string]string{
		"unknown field": "role: lb\nfoo: 1\n",
		"role":          "role: xx\n",
		"public api":    strings.Replace(Example, "127.0.0.1:9180", "0.0.0.0:9180", 1),
		"steering":      strings.Replace(Example, "steering: afxdp", "steering: dpdk", 1),
		"same iface":    strings.Replace(Example, "iface: eth1", "iface: eth0", 1),
		"bad t4":        strings.Replace(Example, "10.101.0.0/24", "10.101.0.1/24", 1),
	} {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
