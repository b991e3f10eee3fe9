package cli

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/dp/daemon"
	"samepath/tcpproxy"
)

// newTCPGW serves samepathd's own /v1/tcp endpoints over a real
// terminator (its netstacks in memory), behind a bearer token.
func newTCPGW(t *testing.T, h *gwHarness) (*tcpproxy.Terminator, string) {
	t.Helper()
	cfg := tcpproxy.DefaultConfig()
	cfg.ServerAddrs = []netip.Addr{netip.MustParseAddr("10.20.0.101")}
	cfg.Admit = func(tcpproxy.Request) tcpproxy.Decision { return tcpproxy.Decision{Refuse: true} }
	term, err := tcpproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	tc, err := daemon.NewTermControl(term, tcpproxy.Builtin(), 2048, nil)
	if err != nil {
		t.Fatal(err)
	}
	v1 := http.NewServeMux()
	daemon.TermRoutes(v1, tc)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+h.token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		v1.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return term, srv.URL
}

// samepathctl lists the profiles, changes one side's keys (applied to the
// terminator at once), makes a profile from another, switches a side to
// it, and refuses bad keys and values naming them, before any change.
func TestGWTCPProfiles(t *testing.T) {
	h := &gwHarness{harness: newHarness(t), token: "tok-tcp"}
	term, gw := newTCPGW(t, h)

	var ps api.TCPProfiles
	h.gwJSON(&ps, "gw", "tcp-profiles", "-gw", gw)
	if ps.Mobile != "wireless" || ps.Server != "wired" || len(ps.Profiles) != 2 {
		t.Fatalf("tcp-profiles: %+v", ps)
	}
	tab := h.ok("gw", "tcp-profiles", "-gw", gw)
	if !strings.Contains(tab, "wireless") || !strings.Contains(tab, "mobile") || !strings.Contains(tab, "4096/1250000/1250000") {
		t.Errorf("tcp-profiles table:\n%s", tab)
	}

	h.ok("gw", "tcp-profile", "-gw", gw, "wireless", "mss=1360", "min_rto=250ms", "sack=false")
	if p := term.Profile(tcpproxy.Mobile); p.MSS != 1360 || p.MinRTO != 250*time.Millisecond || p.SACK || !p.RACK {
		t.Errorf("mobile side after tcp-profile: mss %d min_rto %v sack %v rack %v", p.MSS, p.MinRTO, p.SACK, p.RACK)
	}
	h.ok("gw", "tcp-profile", "-gw", gw, "-from", "wired", "lan-reno", "congestion=reno")
	h.ok("gw", "tcp-side", "-gw", gw, "server", "lan-reno")
	if p := term.Profile(tcpproxy.Server); p.Name != "lan-reno" || p.Congestion != tcpproxy.Reno || p.MSS != 1460 {
		t.Errorf("server side after tcp-side: %s %s mss %d", p.Name, p.Congestion, p.MSS)
	}
	h.gwJSON(&ps, "gw", "tcp-profiles", "-gw", gw)
	if ps.Server != "lan-reno" || len(ps.Profiles) != 3 {
		t.Errorf("after tcp-side: %+v", ps)
	}

	for _, tc := range []struct {
		args []string
		rc   int
		want string
	}{
		{[]string{"wireless", "mss=big"}, 2, `mss "big"`},
		{[]string{"wireless", "window=5"}, 2, `unknown key "window"`},
		{[]string{"wireless", "mss"}, 2, "KEY=VALUE"},
		{[]string{"wireless", "min_rto=1m", "max_rto=2s"}, 1, "min_rto/max_rto"},
		{[]string{"wireless", "mss=3000"}, 1, "xsk.frame_size"},
		{[]string{"nosuch", "mss=1300"}, 1, `no tcp profile "nosuch"`},
	} {
		_, errb, rc := h.gw(append([]string{"gw", "tcp-profile", "-gw", gw}, tc.args...)...)
		if rc != tc.rc || !strings.Contains(errb, tc.want) {
			t.Errorf("tcp-profile %v: exit %d %q, want %d naming %q", tc.args, rc, errb, tc.rc, tc.want)
		}
	}
	if _, errb, rc := h.gw("gw", "tcp-side", "-gw", gw, "middle", "wired"); rc != 2 || !strings.Contains(errb, "mobile or server") {
		t.Errorf("tcp-side middle: exit %d %q", rc, errb)
	}
	if p := term.Profile(tcpproxy.Mobile); p.MSS != 1360 || p.MaxRTO != 120*time.Second {
		t.Errorf("mobile side after refused changes: mss %d max_rto %v", p.MSS, p.MaxRTO)
	}

	var ctr api.TCPCounters
	h.gwJSON(&ctr, "gw", "tcp-counters", "-gw", gw)
	if len(ctr.Conns) != int(tcpproxy.NumCounters) {
		t.Errorf("tcp-counters: %+v", ctr)
	}
	if tab := h.ok("gw", "tcp-counters", "-gw", gw); !strings.Contains(tab, "conns refused_session_limit") || !strings.Contains(tab, "link mobile out_full") {
		t.Errorf("tcp-counters table:\n%s", tab)
	}
}
