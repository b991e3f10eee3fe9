package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/internal/promcheck"
)

// TestMetricsLint: promtool check metrics accepts samepath-control's
// /metrics, with gateways, an LB and sessions counted.
func TestMetricsLint(t *testing.T) {
	gw1, gw2, lb := newFakeDaemon(t), newFakeDaemon(t), newFakeDaemon(t)
	c := startControl(t, testConfig(t.TempDir(), gw1, gw2, lb))
	radclient(t, c.AuthAddr().String(), "auth", "User-Name=nobody,User-Password=x,Message-Authenticator=0x00")
	resp, err := http.Get("http://" + c.APIAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	promcheck.Metrics(t, "samepath-control /metrics", b)
}

// lockedBuf is a log destination safe for control's goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuf) msgs(t *testing.T) []map[string]any {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(w.b.String()), "\n") {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestStateChangesLogged (issue 18): an administrative change of a
// gateway is logged once (setting the same state again is no change),
// and the process logs its stop.
func TestStateChangesLogged(t *testing.T) {
	cfg := testConfig(t.TempDir(), nil, nil, nil)
	cfg.Health.Disabled = true
	var logs lockedBuf
	c, err := control.New(cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	cl := api.NewClient(c.APIAddr().String())
	for _, a := range []string{"drain", "drain", "up"} {
		if err := cl.Do(context.Background(), http.MethodPut, "/v1/gateways/gw1/admin", control.AdminState{Admin: a}, nil); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range logs.msgs(t) {
		switch m["msg"] {
		case "gateway admin state changed":
			got = append(got, fmt.Sprintf("%v %v->%v", m["gateway"], m["from"], m["admin"]))
		case "samepath-control stopped":
			got = append(got, "stopped")
		}
	}
	want := []string{"gw1 up->drain", "gw1 drain->up", "stopped"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("lines (-want +got):\n%s", d)
	}
}
