package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/nat"
)

const (
	gwA = "02:00:00:00:10:01"
	gwB = "02:00:00:00:10:02"
)

// configRows is the example config's T4: both gateways up.
func configRows(t *testing.T) []nat.T4Row {
	t.Helper()
	c, err := Parse([]byte(Example))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := T4Rows(c.LB.T4)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// states lists every row's gateways as MAC=state, for comparing.
func states(rows []nat.T4Row) []string {
	var out []string
	for _, r := range rows {
		for _, g := range r.Gateways {
			out = append(out, r.Range.String()+" "+g.MAC.String()+"="+stateName(g.Up))
		}
	}
	return out
}

// fakeControl answers GET /v1/lbs/gateway-states: fails the first fails
// calls with 503, then answers body; it records the Authorization headers.
type fakeControl struct {
	mu    sync.Mutex
	fails int
	body  string
	calls int
	auth  []string
}

func (f *fakeControl) start(t *testing.T) string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+gatewayStatesPath, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls++
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		if f.calls <= f.fails {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(api.Error{Error: "starting"})
			return
		}
		w.Write([]byte(f.body))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestControlStates(t *testing.T) {
	bDown := `[{"mac":"` + gwA + `","state":"up"},{"mac":"` + gwB + `","state":"down"},{"mac":"02:00:00:00:99:99","state":"down"}]`
	up := []string{"10.101.0.0/24 " + gwA + "=up", "10.101.0.0/24 " + gwB + "=up", "fd00:101::/64 " + gwA + "=up", "fd00:101::/64 " + gwB + "=up"}
	withBDown := []string{"10.101.0.0/24 " + gwA + "=up", "10.101.0.0/24 " + gwB + "=down", "fd00:101::/64 " + gwA + "=up", "fd00:101::/64 " + gwB + "=down"}
	for _, tc := range []struct {
		name      string
		fc        *fakeControl // nil: nobody listens
		required  bool
		wait      time.Duration // 0: 400 ms
		want      []string      // nil: an error
		wantCalls int
		wantLog   []string
	}{
		{name: "control's states win", fc: &fakeControl{body: bDown}, want: withBDown, wantCalls: 1,
			wantLog: []string{"gateway states from control", `changed_from_config="[` + gwB + `=down]"`, "not_in_t4=[02:00:00:00:99:99]"}},
		{name: "retried until control answers", fc: &fakeControl{fails: 2, body: bDown}, wait: 10 * time.Second, want: withBDown, wantCalls: 3,
			wantLog: []string{"attempt=1 ", "attempt=2 ", "503"}},
		{name: "nothing to change", fc: &fakeControl{body: "[]"}, want: up, wantCalls: 1},
		{name: "unreachable: config states, warned", want: up,
			wantLog: []string{"starting with the config's gateway states"}},
		{name: "unreachable and required", required: true},
		{name: "always failing and required", fc: &fakeControl{fails: 1 << 30}, required: true},
		{name: "bad state: not applied", fc: &fakeControl{body: `[{"mac":"` + gwB + `","state":"sideways"}]`}, want: up, wantCalls: 1,
			wantLog: []string{`state \"sideways\"`, "starting with the config's gateway states"}},
		{name: "bad mac and required", fc: &fakeControl{body: `[{"mac":"zz","state":"down"}]`}, required: true, wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &LBControl{URL: "http://127.0.0.1:1", Wait: 400 * time.Millisecond, Required: tc.required}
			if tc.wait != 0 {
				c.Wait = tc.wait
			}
			if tc.fc != nil {
				c.URL = tc.fc.start(t)
				tok := filepath.Join(t.TempDir(), "token")
				os.WriteFile(tok, []byte("s3cret\n"), 0o600)
				c.TokenFile = tok
			}
			var logs bytes.Buffer
			rows, err := controlStates(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), c, configRows(t))
			if tc.want == nil {
				if err == nil {
					t.Fatalf("no error; rows %v", states(rows))
				}
				if !strings.Contains(err.Error(), "lb control") {
					t.Errorf("error %q does not name lb control", err)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if diff := cmp.Diff(tc.want, states(rows)); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
			if tc.fc != nil && tc.wantCalls > 0 {
				if tc.fc.calls != tc.wantCalls {
					t.Errorf("%d calls to control, want %d", tc.fc.calls, tc.wantCalls)
				}
				for _, a := range tc.fc.auth {
					if a != "Bearer s3cret" {
						t.Errorf("Authorization %q, want the token file's", a)
					}
				}
			}
			for _, w := range tc.wantLog {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, logs.String())
				}
			}
		})
	}
}

// Without lb.control the config's rows are used as they are, and nothing
// is asked.
func TestControlStatesAbsent(t *testing.T) {
	rows := configRows(t)
	got, err := controlStates(context.Background(), slog.Default(), nil, rows)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(states(rows), states(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// applyStates leaves its input alone (the config's rows).
func TestApplyStatesCopies(t *testing.T) {
	rows := configRows(t)
	before := states(rows)
	if _, _, _, err := applyStates(rows, []api.GatewayState{{MAC: gwA, State: api.StateDown}}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, states(rows)); diff != "" {
		t.Errorf("input changed (-before +after):\n%s", diff)
	}
}

func TestLBControlConfig(t *testing.T) {
	block := "  control:\n    url: %s\n    wait: %s\n"
	base := Example[:strings.Index(Example, "  control:")]
	for _, tc := range []struct {
		name, url, wait, wantErr string
	}{
		{name: "ok", url: "http://10.99.0.1:9190", wait: "2s"},
		{name: "default wait", url: "https://ctl.example:9190", wait: "0s"},
		{name: "no scheme", url: "10.99.0.1:9190", wait: "2s", wantErr: "config: lb control: url"},
		{name: "no host", url: "http://", wait: "2s", wantErr: "config: lb control: url"},
		{name: "negative wait", url: "http://10.99.0.1:9190", wait: "-1s", wantErr: "config: lb control: wait"},
		{name: "long wait", url: "http://10.99.0.1:9190", wait: "2h", wantErr: "config: lb control: wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := base + fmt.Sprintf(block, tc.url, tc.wait)
			c, err := Parse([]byte(y))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.LB.Control == nil || c.LB.Control.URL != tc.url {
					t.Errorf("lb.control parsed as %+v", c.LB.Control)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err %v, want one with %q", err, tc.wantErr)
			}
		})
	}
	if c, _ := Parse([]byte(Example)); c.LB.Control == nil || c.LB.Control.wait() != 3*time.Second {
		t.Errorf("example's lb.control: %+v", c.LB.Control)
	}
}
