package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
)

// TestGWSync: `gw sync` shows each gateway's sync state as it answers
// (JSON as is; the table names the peer, its lag and the takeover), and
// a gateway without gw.sync is an error naming it.
func TestGWSync(t *testing.T) {
	h := newGWHarness(t)
	want := api.GWSync{Sent: 10, Received: 7, Takeovers: 1, Ready: true, Held: 3, Installed: 4,
		Peers: []api.GWSyncPeer{{Name: "gw1", Connected: false, Dumped: true, TakenOver: true, LagNS: 1500000, Received: 7}}}
	h.gws[1].sync = &want
	var got api.GWSync
	h.gwJSON(&got, "gw", "sync", "-gw", h.urls[1])
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("gw sync (-want +got):\n%s", d)
	}
	tab := h.ok("gw", "sync", "-gw", h.urls[1])
	if l := lineWith(tab, "gw1"); !strings.Contains(l, "1.5ms") || !strings.Contains(l, "true") ||
		!strings.Contains(tab, "held for peers 3") || !strings.Contains(tab, "takeovers 1") {
		t.Fatalf("gw sync table:\n%s", tab)
	}
	if _, stderr, rc := h.gw("gw", "sync", "-gw", h.urls[0]); rc == 0 || !strings.Contains(stderr, "no such endpoint") {
		t.Fatalf("gw sync of a gateway without sync: rc %d, stderr %q", rc, stderr)
	}
}
