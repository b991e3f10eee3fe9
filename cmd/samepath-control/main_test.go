package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"samepath/ctl/control"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// config is a valid configuration on loopback; DIR is the test's directory.
const config = `state_dir: DIR/state
radius:
  auth: "127.0.0.1:0"
  acct: "127.0.0.1:0"
  clients: [{prefix: 127.0.0.1, secret: testing123}]
api: {listen: "127.0.0.1:0", token_file: DIR/api.token}
gateways: [{name: gw1, range: 10.100.0.0/24}]
health: {disabled: true}
`

func writeConfig(t *testing.T, y string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api.token"), []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "control.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(y, "DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(ctx context.Context, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCheckAndStartAgree: a config -check refuses, the start refuses with
// the same message; one -check accepts starts.
func TestCheckAndStartAgree(t *testing.T) {
	for name, edit := range map[string][2]string{
		"bad client prefix":    {"prefix: 127.0.0.1,", "prefix: 127.0.0.300,"},
		"missing token file":   {"DIR/api.token", "DIR/none.token"},
		"health.fall 0":        {"health: {disabled: true}", "health: {disabled: true, fall: 0}"},
		"users file missing":   {"health:", "users_file: DIR/users.yaml\nhealth:"},
		"state_dir not a dir":  {"state_dir: DIR/state", "state_dir: DIR/api.token"},
		"type error":           {"health: {disabled: true}", "health: {disabled: true, fall: abc}"},
		"max_in_flight -1":     {"clients:", "max_in_flight: -1\n  clients:"},
		"overlapping gateways": {"gateways: [{name: gw1, range: 10.100.0.0/24}]", "gateways: [{name: gw1, range: 10.100.0.0/24}, {name: gw2, range: 10.100.0.0/16}]"},
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(config, edit[0]) {
				t.Fatalf("config has no %q", edit[0])
			}
			path := writeConfig(t, strings.Replace(config, edit[0], edit[1], 1))
			code, out, checkErr := runCmd(context.Background(), "-config", path, "-check")
			if code != 1 || out != "" || !strings.HasPrefix(checkErr, "samepath-control: config") {
				t.Fatalf("-check: status %d, stdout %q, stderr %q", code, out, checkErr)
			}
			code, _, startErr := runCmd(context.Background(), "-config", path)
			if code != 1 || startErr != checkErr {
				t.Fatalf("start: status %d, stderr %q\n-check said %q", code, startErr, checkErr)
			}
		})
	}
	path := writeConfig(t, config)
	if code, out, errs := runCmd(context.Background(), "-config", path, "-check"); code != 0 || out != "configuration ok\n" {
		t.Fatalf("-check of a good config: status %d, %q %q", code, out, errs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // starts, then stops at once
	if code, _, errs := runCmd(ctx, "-config", path); code != 0 {
		t.Fatalf("start of a good config: status %d: %s", code, errs)
	}
}

// TestHelpExample: -h prints the example, which passes the static checks.
func TestHelpExample(t *testing.T) {
	code, _, errs := runCmd(context.Background(), "-h")
	if code != 0 || !strings.Contains(errs, control.ExampleConfig) {
		t.Fatalf("-h: status %d, %q", code, errs)
	}
	path := writeConfig(t, control.ExampleConfig)
	if _, err := control.LoadConfig(path); err != nil {
		t.Fatalf("the example: %v", err)
	}
}

// TestLogFormat (issue 18): -log-format json writes one JSON object per
// line, including the line at shutdown; an unknown format is a usage
// error naming the flag.
func TestLogFormat(t *testing.T) {
	path := writeConfig(t, config)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code, _, errs := runCmd(ctx, "-config", path, "-log-format", "json")
	if code != 0 {
		t.Fatalf("status %d: %s", code, errs)
	}
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(errs), "\n") {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		msgs = append(msgs, m["msg"].(string))
	}
	if !slices.Contains(msgs, "samepath-control running") || !slices.Contains(msgs, "samepath-control stopped") {
		t.Fatalf("messages %q: want the start and the stop", msgs)
	}
	code, _, errs = runCmd(context.Background(), "-config", path, "-log-format", "xml")
	if code != 2 || !strings.Contains(errs, "-log-format") {
		t.Fatalf("-log-format xml: status %d, %q", code, errs)
	}
}
