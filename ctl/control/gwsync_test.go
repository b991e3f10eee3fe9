package control_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"samepath/ctl/api"
	"samepath/ctl/control"
)

// syncBuf is a log buffer the control process writes from its goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestHealthShowsGatewaySync (issue 17, visibility): GET /v1/health
// shows per gateway its state sync as the monitor read it with the
// gateway token (readiness, lag, bindings held for peers, takeovers,
// failbacks), also while a returning gateway is kept down for syncing;
// a gateway without gw.sync shows none. The control process logs each
// takeover and failback it learns of, once.
func TestHealthShowsGatewaySync(t *testing.T) {
	gw1, gw2 := newFakeDaemon(t), newFakeDaemon(t)
	dir := t.TempDir()
	cfg := testConfig(dir, gw1, gw2, nil)
	cfg.GatewayTokenFile = filepath.Join(dir, "gw.token")
	if err := os.WriteFile(cfg.GatewayTokenFile, []byte("gwsecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set := func(d *fakeDaemon, healthy bool, s *api.GWSync) {
		d.mu.Lock()
		d.healthy, d.gwSync = healthy, s
		d.mu.Unlock()
	}
	// gw2 holds gw1's flows and addresses; gw1 is back, not synced yet.
	set(gw1, false, &api.GWSync{Peers: []api.GWSyncPeer{{Name: "gw2", Connected: true, Ready: true, LagNS: 2e6}}})
	set(gw2, true, &api.GWSync{Ready: true, Held: 5, Takeovers: 1, Peers: []api.GWSyncPeer{{Name: "gw1", TakenOver: true, LagNS: 1e6}}})
	var logs syncBuf
	c, err := control.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	target := func(name string) (h control.HealthReport, up *bool, s *api.GWSync) {
		getJSON(t, c, "/v1/health", &h)
		for _, st := range h.Targets {
			if st.Name == name {
				return h, st.Up, st.Sync
			}
		}
		return h, nil, nil
	}
	eventually(t, "gw1 down while syncing, its sync shown", func() bool {
		_, up, s := target("gw1")
		return up != nil && !*up && s != nil && !s.Ready && len(s.Peers) == 1 && s.Peers[0].LagNS == 2e6
	})
	eventually(t, "gw2's takeover shown", func() bool {
		_, up, s := target("gw2")
		return up != nil && *up && s != nil && s.Held == 5 && s.Takeovers == 1 && s.Peers[0].TakenOver
	})
	eventually(t, "the takeover logged", func() bool {
		return strings.Contains(logs.String(), `msg="gateway took over peers' key addresses and flows" gateway=gw2 peers=[gw1] takeovers=1`)
	})
	gw2.mu.Lock()
	auth := gw2.syncAuth
	gw2.mu.Unlock()
	if auth != "Bearer gwsecret" {
		t.Fatalf("sync read with Authorization %q, want the gateway token", auth)
	}
	// gw1 synced: up; gw2 gives its addresses back.
	set(gw1, true, &api.GWSync{Ready: true, Peers: []api.GWSyncPeer{{Name: "gw2", Connected: true, Ready: true, LagNS: 1e6}}})
	set(gw2, true, &api.GWSync{Ready: true, Takeovers: 1, Failbacks: 1, Peers: []api.GWSyncPeer{{Name: "gw1", Connected: true, Ready: true}}})
	eventually(t, "gw1 up and synced", func() bool { _, up, s := target("gw1"); return up != nil && *up && s != nil && s.Ready })
	eventually(t, "the failback logged", func() bool {
		return strings.Contains(logs.String(), `msg="gateway gave key addresses and flows back to returned peers" gateway=gw2 peers=[gw1] failbacks=1`)
	})
	// gw1 without gw.sync: no sync state.
	set(gw1, true, nil)
	eventually(t, "gw1 shows no sync", func() bool { _, _, s := target("gw1"); return s == nil })
	if n := strings.Count(logs.String(), "gateway took over"); n != 1 {
		t.Fatalf("%d takeover log lines, want 1:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "gateway gave key addresses"); n != 1 {
		t.Fatalf("%d failback log lines, want 1:\n%s", n, logs.String())
	}
}
