package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"samepath/ctl/api"
	"samepath/tcpproxy"
)

// newTermAPI serves the /v1/tcp endpoints of a real terminator (two
// netstacks in memory, nothing fed to them).
func newTermAPI(t *testing.T, extra ...tcpproxy.Profile) (*tcpproxy.Terminator, *TermControl, *api.Client) {
	t.Helper()
	cfg := tcpproxy.DefaultConfig()
	cfg.ServerAddrs = []netip.Addr{netip.MustParseAddr("10.20.0.101")}
	cfg.Admit = func(tcpproxy.Request) tcpproxy.Decision { return tcpproxy.Decision{Refuse: true} }
	term, err := tcpproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	tc, err := NewTermControl(term, append(tcpproxy.Builtin(), extra...), 2048, nil)
	if err != nil {
		t.Fatal(err)
	}
	v1 := http.NewServeMux()
	TermRoutes(v1, tc)
	srv := httptest.NewServer(v1)
	t.Cleanup(srv.Close)
	return term, tc, api.NewClient(srv.URL)
}

// A profile changed through the API applies to its side at once (for new
// connections), a side switches to another profile, and bad input is
// refused with the key named, changing nothing.
func TestTermProfilesAPI(t *testing.T) {
	ctx := context.Background()
	lossy := tcpproxy.Wireless()
	lossy.Name, lossy.Congestion = "lossy", tcpproxy.Reno
	term, _, c := newTermAPI(t, lossy)

	got, err := c.TCPProfiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string][]string{}
	for _, p := range got.Profiles {
		names[p.Name] = p.Sides
	}
	if diff := cmp.Diff(map[string][]string{"lossy": nil, "wired": {"server"}, "wireless": {"mobile"}}, names); diff != "" {
		t.Errorf("profiles and their sides (-want +got):\n%s", diff)
	}
	if got.Mobile != "wireless" || got.Server != "wired" {
		t.Errorf("sides mobile %q server %q", got.Mobile, got.Server)
	}

	w := APITCPProfile(tcpproxy.Wireless())
	if err := w.Set("mss", "1300"); err != nil {
		t.Fatal(err)
	}
	if err := w.Set("min_rto", "300ms"); err != nil {
		t.Fatal(err)
	}
	if err := c.PutTCPProfile(ctx, w); err != nil {
		t.Fatal(err)
	}
	if p := term.Profile(tcpproxy.Mobile); p.MSS != 1300 || p.MinRTO.String() != "300ms" {
		t.Errorf("mobile side after PUT: mss %d min_rto %v, want 1300 300ms", p.MSS, p.MinRTO)
	}
	if err := c.SetTCPSide(ctx, api.SideServer, "lossy"); err != nil {
		t.Fatal(err)
	}
	if p := term.Profile(tcpproxy.Server); p.Name != "lossy" || p.Congestion != tcpproxy.Reno {
		t.Errorf("server side after PUT sides: %s %s, want lossy reno", p.Name, p.Congestion)
	}

	bad := func(mod func(*api.TCPProfile)) api.TCPProfile {
		p := APITCPProfile(tcpproxy.Wireless())
		mod(&p)
		return p
	}
	before := term.Profile(tcpproxy.Mobile) // the refusals below must leave it as it is
	for _, tc := range []struct {
		name string
		do   func() error
		code int
		key  string
	}{
		{"mss too small", func() error { return c.PutTCPProfile(ctx, bad(func(p *api.TCPProfile) { p.MSS = 536 })) }, 400, "mss"},
		{"mss past the frame", func() error { return c.PutTCPProfile(ctx, bad(func(p *api.TCPProfile) { p.MSS = 2000 })) }, 400, "xsk.frame_size"},
		{"receive buffer", func() error {
			return c.PutTCPProfile(ctx, bad(func(p *api.TCPProfile) { p.RecvBufMax = p.RecvBufDefault - 1 }))
		}, 400, "recv_buf"},
		{"congestion", func() error { return c.PutTCPProfile(ctx, bad(func(p *api.TCPProfile) { p.Congestion = "bbr" })) }, 400, "congestion"},
		{"duration", func() error { return c.PutTCPProfile(ctx, bad(func(p *api.TCPProfile) { p.MinRTO = "soon" })) }, 400, "min_rto"},
		{"no name", func() error { return c.PutTCPProfile(ctx, bad(func(p *api.TCPProfile) { p.Name = "" })) }, 400, "name"},
		{"unknown key", func() error {
			return c.Do(ctx, http.MethodPut, "/v1/tcp/profiles", map[string]any{"name": "x", "window": 5}, nil)
		}, 400, "window"},
		{"unknown profile", func() error { return c.SetTCPSide(ctx, api.SideMobile, "nosuch") }, 404, "nosuch"},
		{"unknown side", func() error { return c.SetTCPSide(ctx, "middle", "wired") }, 400, "side"},
	} {
		err := tc.do()
		var he *api.HTTPError
		if !errors.As(err, &he) || he.Code != tc.code || !strings.Contains(he.Msg, tc.key) {
			t.Errorf("%s: %v, want %d naming %q", tc.name, err, tc.code, tc.key)
		}
	}
	if p := term.Profile(tcpproxy.Mobile); p.MSS != 1300 || p.Congestion != before.Congestion {
		t.Errorf("mobile side after the refused changes: mss %d %s, want 1300 %s", p.MSS, p.Congestion, before.Congestion)
	}
}

func TestTermRoutesOff(t *testing.T) {
	v1 := http.NewServeMux()
	TermRoutes(v1, nil)
	srv := httptest.NewServer(v1)
	defer srv.Close()
	_, err := api.NewClient(srv.URL).TCPProfiles(context.Background())
	var he *api.HTTPError
	if !errors.As(err, &he) || he.Code != 404 || !strings.Contains(he.Msg, "gw.terminate") {
		t.Errorf("without a terminator: %v, want 404 naming gw.terminate", err)
	}
}

// Every terminator series is there from the start, at 0.
func TestTermMetricsFromStart(t *testing.T) {
	_, tc, c := newTermAPI(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(newTermCollector(tc))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "," + l.GetName() + "=" + l.GetValue()
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			series[k] = v
		}
	}
	for _, k := range []string{
		"samepath_tcp_connections_total,event=syn_in_flight_drop",
		"samepath_tcp_connections_total,event=refused_gateway_limit",
		"samepath_tcp_connections_total,event=refused_session_limit",
		"samepath_tcp_active_connections",
		"samepath_tcp_spliced_bytes_total,direction=rx,side=mobile",
		"samepath_tcp_spliced_bytes_total,direction=tx,side=server",
		"samepath_tcp_link_drops_total,reason=out_full,side=mobile",
		"samepath_tcp_link_drops_total,reason=out_too_big,side=server",
		"samepath_tcp_link_drops_total,reason=out_malformed,side=mobile",
		"samepath_tcp_link_offload_total,counter=gso_frames,side=mobile",
		"samepath_tcp_link_offload_total,counter=gro_merged,side=server",
		"samepath_tcp_link_in_full_total,side=mobile",
		"samepath_tcp_stack_events_total,counter=tcp_forward_in_flight_drop,side=mobile",
		"samepath_tcp_stack_events_total,counter=tcp_retransmits,side=mobile",
	} {
		v, ok := series[k]
		if !ok || v != 0 {
			t.Errorf("series %s: %v (present %v), want 0", k, v, ok)
		}
	}
	if n := len(series); n < int(tcpproxy.NumCounters)+1+4+2*6+2+2*3 {
		t.Errorf("%d series, fewer than the counters", n)
	}
	ctr, err := c.TCPCounters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ctr.Conns) != int(tcpproxy.NumCounters) || len(ctr.Link["mobile"]) == 0 || len(ctr.Stack["server"]) == 0 {
		t.Errorf("GET /v1/tcp/counters: %+v", ctr)
	}
}

func TestTermProfilesConfig(t *testing.T) {
	lossy := APITCPProfile(tcpproxy.Wireless())
	lossy.Name = "lossy"
	all, mob, srv, err := (&Terminate{Profiles: []api.TCPProfile{lossy}, MobileProfile: "lossy"}).TermProfiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || mob.Name != "lossy" || srv.Name != "wired" {
		t.Errorf("profiles %d, mobile %s, server %s", len(all), mob.Name, srv.Name)
	}
	badRTO := lossy
	badRTO.MaxRTO = "1 minute"
	for _, tc := range []struct {
		name string
		t    Terminate
		want string
	}{
		{"unknown side profile", Terminate{ServerProfile: "fast"}, `gw.terminate.server_profile "fast"`},
		{"bad duration", Terminate{Profiles: []api.TCPProfile{badRTO}}, "gw.terminate.profiles[0]: tcp profile \"lossy\": max_rto"},
		{"twice", Terminate{Profiles: []api.TCPProfile{lossy, lossy}}, "profiles[1]: name \"lossy\": given twice"},
	} {
		if _, _, _, err := tc.t.TermProfiles(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
