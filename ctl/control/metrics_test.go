package control_test

import (
	"io"
	"net/http"
	"testing"

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
