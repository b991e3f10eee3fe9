package control_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"samepath/ctl/control"
)

// baseConfig is a valid configuration; DIR is the test's directory, which
// also holds the token files and the users file it names.
const baseConfig = `state_dir: DIR/state
radius:
  auth: "127.0.0.1:0"
  acct: "127.0.0.1:0"
  clients:
    - {prefix: 127.0.0.1, secret: testing123, disconnect_port: 3799}
  session_timeout: 1h
  acct_interim_interval: 5m
  max_in_flight: 64
  duplicate_cache: 5s
sessions: {interim_timeout: 15m, dormant_timeout: 2h, pending_timeout: 2m, resync: 10s}
gateways:
  - {name: gw1, range: 10.100.0.0/24, mac: "02:00:00:00:01:01"}
  - {name: gw2, range: 10.100.1.0/24, mac: "02:00:00:00:01:02"}
gateway_token_file: DIR/gw.token
lbs:
  - {name: lb1, api: "http://127.0.0.1:1", token_file: DIR/lb.token}
health: {interval: 2s, timeout: 1s, fall: 3, rise: 2, lb_resync: 30s}
api: {listen: "127.0.0.1:0", token_file: DIR/api.token}
users_file: DIR/users.yaml
pbkdf2_iterations: 1000
`

// writeBase writes baseConfig (edited by edit) and its files into dir and
// returns the config's path.
func writeBase(t *testing.T, dir string, edit func(y string) string) string {
	t.Helper()
	files := map[string]string{
		"gw.token": "gw-token\n", "lb.token": "lb-token\n", "api.token": "api-token\n",
		"users.yaml": "- {id: alice, password: s3cret}\n- {id: bob, password: chap-pw, chap: true}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	y := baseConfig
	if edit != nil {
		y = edit(y)
	}
	path := filepath.Join(dir, "control.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(y, "DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkConfig is what samepath-control -check runs.
func checkConfig(path string) (control.Config, error) {
	cfg, err := control.LoadConfig(path)
	if err == nil {
		err = cfg.Check()
	}
	return cfg, err
}

func replace(old, new string) func(string) string {
	return func(y string) string {
		if !strings.Contains(y, old) {
			panic("baseConfig has no " + old)
		}
		return strings.Replace(y, old, new, 1)
	}
}

func TestConfigValid(t *testing.T) {
	dir := t.TempDir()
	cfg, err := checkConfig(writeBase(t, dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	startControl(t, cfg) // the start agrees
}

// TestConfigRefused: every bad input is refused by -check with an error
// naming its key, and the start refuses it with the same error (one
// validation for both).
func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(y string) string
		// files changes the files the config names (dir is the test's).
		files func(t *testing.T, dir string)
		want  string // in the error: the key
		// decode: the file does not decode, so there is no config to start
		// with (samepath-control stops at LoadConfig either way).
		decode bool
	}{
		{name: "bad client prefix", edit: replace("prefix: 127.0.0.1,", "prefix: 127.0.0.300,"), want: "radius.clients[0].prefix"},
		{name: "client prefix not a prefix", edit: replace("prefix: 127.0.0.1,", "prefix: 10.0.0.0/33,"), want: "radius.clients[0].prefix"},
		{name: "empty secret", edit: replace("secret: testing123", `secret: ""`), want: "radius.clients[0].secret"},
		{name: "disconnect port 70000", edit: replace("disconnect_port: 3799", "disconnect_port: 70000"), want: "radius.clients[0].disconnect_port"},
		{name: "negative disconnect port", edit: replace("disconnect_port: 3799", "disconnect_port: -1"), want: "radius.clients[0].disconnect_port"},
		{name: "no clients", edit: replace("    - {prefix: 127.0.0.1, secret: testing123, disconnect_port: 3799}\n", ""), want: "radius.clients"},
		{name: "overlapping gateway ranges", edit: replace("range: 10.100.1.0/24", "range: 10.100.0.128/25"), want: "gateways[1].range"},
		{name: "gateway listed twice", edit: replace("name: gw2", "name: gw1"), want: "gateways[1].name"},
		{name: "bad gateway range", edit: replace("range: 10.100.1.0/24", "range: 10.100.1.0/40"), want: "gateways[1]"},
		{name: "bad gateway mac", edit: replace(`mac: "02:00:00:00:01:02"`, `mac: "02:00"`), want: "gateways[1]"},
		{name: "missing users file", files: rm("users.yaml"), want: "users_file"},
		{name: "broken users file", files: write("users.yaml", "- {id: alice, pasword: s3cret}\n"), want: "users_file"},
		{name: "users file not yaml", files: write("users.yaml", "- [alice\n"), want: "users_file"},
		{name: "user without password", files: write("users.yaml", "- {id: alice}\n"), want: "users_file"},
		{name: "user listed twice", files: write("users.yaml", "- {id: alice, password: a}\n- {id: alice, password: b}\n"), want: "users_file"},
		{name: "missing api token file", files: rm("api.token"), want: "api.token_file"},
		{name: "empty api token file", files: write("api.token", "\n"), want: "api.token_file"},
		{name: "missing gateway token file", files: rm("gw.token"), want: "gateway_token_file"},
		{name: "missing lb token file", files: rm("lb.token"), want: "lbs[0].token_file"},
		{name: "negative session_timeout", edit: replace("session_timeout: 1h", "session_timeout: -1h"), want: "radius.session_timeout"},
		{name: "negative acct_interim_interval", edit: replace("acct_interim_interval: 5m", "acct_interim_interval: -5m"), want: "radius.acct_interim_interval"},
		{name: "max_in_flight -1", edit: replace("max_in_flight: 64", "max_in_flight: -1"), want: "radius.max_in_flight"},
		{name: "max_in_flight 0", edit: replace("max_in_flight: 64", "max_in_flight: 0"), want: "radius.max_in_flight"},
		{name: "duplicate_cache 0", edit: replace("duplicate_cache: 5s", "duplicate_cache: 0s"), want: "radius.duplicate_cache"},
		{name: "bad auth address", edit: replace(`auth: "127.0.0.1:0"`, `auth: "127.0.0.1:99999"`), want: "radius.auth"},
		{name: "bad acct address", edit: replace(`acct: "127.0.0.1:0"`, `acct: "nowhere"`), want: "radius.acct"},
		{name: "pbkdf2_iterations 0", edit: replace("pbkdf2_iterations: 1000", "pbkdf2_iterations: 0"), want: "pbkdf2_iterations"},
		{name: "pbkdf2_iterations beyond what a check accepts", edit: replace("pbkdf2_iterations: 1000", "pbkdf2_iterations: 20000000"), want: "pbkdf2_iterations"},
		{name: "negative interim_timeout", edit: replace("interim_timeout: 15m", "interim_timeout: -15m"), want: "sessions.interim_timeout"},
		{name: "dormant_timeout 0", edit: replace("dormant_timeout: 2h", "dormant_timeout: 0s"), want: "sessions.dormant_timeout"},
		{name: "pending_timeout 0", edit: replace("pending_timeout: 2m", "pending_timeout: 0s"), want: "sessions.pending_timeout"},
		{name: "negative sessions resync", edit: replace("resync: 10s}", "resync: -10s}"), want: "sessions.resync"},
		{name: "health.fall 0", edit: replace("fall: 3", "fall: 0"), want: "health.fall"},
		{name: "health.rise 0", edit: replace("rise: 2", "rise: 0"), want: "health.rise"},
		{name: "health.interval 0", edit: replace("interval: 2s", "interval: 0s"), want: "health.interval"},
		{name: "negative health.timeout", edit: replace("timeout: 1s", "timeout: -1s"), want: "health.timeout"},
		{name: "negative health.lb_resync", edit: replace("lb_resync: 30s", "lb_resync: -30s"), want: "health.lb_resync"},
		{name: "health.fall not a number", edit: replace("fall: 3", "fall: abc"), want: "health.fall", decode: true},
		{name: "duration not a duration", edit: replace("session_timeout: 1h", "session_timeout: soon"), want: "radius.session_timeout", decode: true},
		{name: "unknown key", edit: replace("health: {interval", "health: {intervall: 1s, interval"), want: "health.intervall", decode: true},
		{name: "lb without api", edit: replace(`api: "http://127.0.0.1:1", `, ""), want: "lbs[0].api"},
		{name: "lb api not a url", edit: replace(`api: "http://127.0.0.1:1"`, `api: "127.0.0.1 1"`), want: "lbs[0].api"},
		{name: "bad api listen", edit: replace(`listen: "127.0.0.1:0"`, `listen: "127.0.0.1"`), want: "api.listen"},
		{name: "state_dir under a file", edit: replace("state_dir: DIR/state", "state_dir: DIR/api.token/state"), want: "state_dir"},
		{name: "state_dir a file", edit: replace("state_dir: DIR/state", "state_dir: DIR/api.token"), want: "state_dir"},
		{name: "session_log in a missing directory", edit: replace("state_dir: DIR/state\n", "state_dir: DIR/state\nsession_log: DIR/nodir/sessions.log\n"), want: "session_log"},
		{name: "empty state_dir", edit: replace("state_dir: DIR/state", `state_dir: ""`), want: "state_dir"},
		{name: "bad authz", edit: func(y string) string { return y + "authz: {t9: [{rep: nowhere, service_type: web}]}\n" }, want: "authz.t9"},
		{name: "empty file", edit: func(string) string { return "" }, want: "empty", decode: true},
		{name: "only comments", edit: func(string) string { return "# nothing yet\n" }, want: "empty", decode: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeBase(t, dir, tc.edit)
			if tc.files != nil {
				tc.files(t, dir)
			}
			cfg, err := checkConfig(path)
			if err == nil {
				t.Fatalf("-check accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("-check: %v\nwant the error to name %s", err, tc.want)
			}
			t.Log(err)
			if tc.decode {
				return
			}
			_, serr := control.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if serr == nil || serr.Error() != err.Error() {
				t.Fatalf("the start says %v\n-check says %v", serr, err)
			}
		})
	}
}

func rm(name string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func write(name, body string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
