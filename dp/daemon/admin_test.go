package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"samepath/ctl/api"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/nat"
)

// tcp sends one TCP segment from addrA:sport to the web service and
// reports whether the gateway forwarded it.
func (r *gwRig) tcp(sport uint16, flags uint8) bool {
	r.t.Helper()
	f := dptest.Frame().Eth(rigLBMAC, rigLanMAC).IPv4(addrA, rigWeb).TCP(sport, 80).Flags(flags).Bytes()
	if !r.ports[0].Inject(f) {
		r.t.Fatal("inject failed")
	}
	r.w.Poll()
	return len(r.ports[1].TakeAll()) == 1
}

// serverOf maps each of addrA's flows (by mobile port) to its server.
func (r *gwRig) serverOf() map[uint16]string {
	r.t.Helper()
	fl, err := r.c.Flows(context.Background(), 100)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[uint16]string{}
	for _, f := range fl.Flows {
		out[netip.MustParseAddrPort(f.Mobile).Port()] = f.Server
	}
	return out
}

// TestServerDrainAndMaint (issue 18): drain keeps a server's flows and
// gives it no new one; maint also ends its flows; health checks leave the
// administrative state alone; every change is logged and shows in GET
// /v1/services and the per-server metrics.
func TestServerDrainAndMaint(t *testing.T) {
	r := newGWRig(t)
	ctx := context.Background()
	s0, s1 := "10.20.0.11:8080", "10.20.0.11:8081"
	if err := r.c.SetServices(ctx, api.Services{Services: []api.Service{{Name: "web", Rep: "10.30.0.1:80", Proto: "tcp", Type: "connection", Policy: "rr",
		Servers: []api.Server{{Addr: s0, State: "up"}, {Addr: s1, State: "up"}}}}}); err != nil {
		t.Fatal(err)
	}
	r.event(api.EventStart, "s1", addrA, 1)
	if !r.tcp(41000, header.FlagSYN) || !r.tcp(41001, header.FlagSYN) {
		t.Fatal("SYN not forwarded")
	}
	on := r.serverOf()
	if on[41000] == on[41001] {
		t.Fatalf("round robin put both flows on %s", on[41000])
	}
	drained := on[41000]
	other := on[41001]
	if err := r.c.SetServerState(ctx, "web", drained, "drain"); err != nil {
		t.Fatal(err)
	}
	// New flows avoid the drained server; its flow goes on.
	for p := uint16(41002); p < 41006; p++ {
		if !r.tcp(p, header.FlagSYN) {
			t.Fatal("SYN not forwarded")
		}
	}
	on = r.serverOf()
	for p := uint16(41002); p < 41006; p++ {
		if on[p] != other {
			t.Errorf("new flow %d on %s, want %s (the other is draining)", p, on[p], other)
		}
	}
	if !r.tcp(41000, header.FlagACK) || on[41000] != drained {
		t.Errorf("the drained server's flow stopped: %q", on[41000])
	}

	// The prober's word changes health, not the drain.
	if err := r.s.services.SetServerHealth("web", netip.MustParseAddrPort(drained), false); err != nil {
		t.Fatal(err)
	}
	if err := r.s.services.SetServerHealth("web", netip.MustParseAddrPort(drained), true); err != nil {
		t.Fatal(err)
	}
	states := func() map[string]string {
		sv, err := r.c.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, s := range sv.Services[0].Servers {
			m[s.Addr] = s.State
		}
		return m
	}
	if d := cmp.Diff(map[string]string{drained: "drain", other: "up"}, states()); d != "" {
		t.Errorf("states after health changes (-want +got):\n%s", d)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newGWCollector(r.s))
	m := gather(t, reg)
	l := "{server=" + drained + ",service=web"
	for k, want := range map[string]float64{
		"samepath_gw_server_up" + l + "}":                      1,
		"samepath_gw_server_admin_state" + l + ",state=drain}": 1,
		"samepath_gw_server_admin_state" + l + ",state=up}":    0,
		"samepath_gw_server_admin_state" + l + ",state=maint}": 0,
		"samepath_gw_server_active_flows" + l + "}":            1,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}

	// Maint: the flow still on the server ends, no traffic reaches it.
	if err := r.c.SetServerState(ctx, "web", drained, "maint"); err != nil {
		t.Fatal(err)
	}
	r.w.Poll() // the worker's cut (the table's 1024 slots fit one round)
	on = r.serverOf()
	if _, ok := on[41000]; ok || len(on) != 5 {
		t.Errorf("flows after maint: %v, want the 5 on %s", on, other)
	}
	if n := r.s.gw.Stats().AdminEnded.Load(); n != 1 {
		t.Errorf("AdminEnded %d, want 1", n)
	}
	if r.tcp(41000, header.FlagACK) {
		t.Error("a segment of the ended flow was forwarded")
	}
	if r.s.flows.Stats().Removed[nat.Admin] != 1 {
		t.Errorf("flows removed by cause: %v", r.s.flows.Stats().Removed)
	}
	// "down" is maint's earlier name; setting the state it has is no change.
	if err := r.c.SetServerState(ctx, "web", drained, "down"); err != nil {
		t.Fatal(err)
	}
	if err := r.c.SetServerState(ctx, "web", drained, "up"); err != nil {
		t.Fatal(err)
	}
	if err := r.c.SetServerWeight(ctx, "web", other, 5); err != nil {
		t.Fatal(err)
	}
	got := stateLines(t, r.logs, "service", "server", "state", "was")
	want := []string{
		"server state changed service=web server=" + drained + " state=drain was=up",
		"server state changed service=web server=" + drained + " state=maint was=drain",
		"server state changed service=web server=" + drained + " state=up was=maint",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("log lines (-want +got):\n%s", d)
	}
	var weightLogged bool
	for _, m := range r.logs.messages(t) {
		weightLogged = weightLogged || (m["msg"] == "server weight changed" && m["weight"] == 5.0 && m["was"] == 1.0)
	}
	if !weightLogged {
		t.Error("weight change not logged")
	}
	sv, _ := r.c.Services(ctx)
	if w := sv.Services[0].Servers; w[0].Weight+w[1].Weight != 6 {
		t.Errorf("weights %+v, want 1 and 5", w)
	}
	for _, c := range []struct {
		body any
		path string
	}{
		{api.ServerState{Service: "web", Addr: drained, State: "sideways"}, "/v1/services/server"},
		{api.ServerState{Service: "web", Addr: drained}, "/v1/services/server"},
		{api.ServerWeight{Service: "web", Addr: drained, Weight: 0}, "/v1/services/weight"},
		{api.ServerWeight{Service: "web", Addr: "10.9.9.9:1", Weight: 2}, "/v1/services/weight"},
		{map[string]any{"service": "web", "addr": drained}, "/v1/services/weight"},
	} {
		var he *api.HTTPError
		if err := r.c.Do(ctx, http.MethodPut, c.path, c.body, nil); !errors.As(err, &he) || he.Code != http.StatusBadRequest {
			t.Errorf("PUT %s %+v: %v, want 400", c.path, c.body, err)
		}
	}
}

// TestSetServicesAdminChanges: a whole-table replace that changes a
// kept server's state or weight logs it as the per-server endpoints do,
// and one that puts a server into maint ends its flows.
func TestSetServicesAdminChanges(t *testing.T) {
	r := newGWRig(t)
	ctx := context.Background()
	set := func(state string, weight int) {
		t.Helper()
		if err := r.c.SetServices(ctx, api.Services{Services: []api.Service{{Name: "web", Rep: "10.30.0.1:80", Proto: "tcp", Type: "connection", Policy: "rr",
			Servers: []api.Server{{Addr: "10.20.0.11:8080", State: state, Weight: weight}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	set("up", 1) // no change
	r.event(api.EventStart, "s1", addrA, 1)
	if !r.tcp(42000, header.FlagSYN) {
		t.Fatal("SYN not forwarded")
	}
	set("drain", 2)
	if !r.tcp(42000, header.FlagACK) {
		t.Error("the draining server's flow stopped")
	}
	set("maint", 2)
	r.w.Poll()
	if on := r.serverOf(); len(on) != 0 {
		t.Errorf("flows after maint by set-services: %v", on)
	}
	var got []string
	for _, m := range r.logs.messages(t) {
		switch m["msg"] {
		case "server state changed":
			got = append(got, fmt.Sprintf("state %v was %v", m["state"], m["was"]))
		case "server weight changed":
			got = append(got, fmt.Sprintf("weight %v was %v", m["weight"], m["was"]))
		}
	}
	want := []string{"state drain was up", "weight 2 was 1", "state maint was drain"}
	if d := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); d != "" {
		t.Errorf("log (-want +got):\n%s", d)
	}
}
