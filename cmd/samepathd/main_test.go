package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"samepath/dp/daemon"
	"samepath/testbed/privtest"
)

// TestMain runs samepathd itself when the environment asks (the test
// binary re-executed inside a network namespace).
func TestMain(m *testing.M) {
	if args := os.Getenv("SAMEPATHD_TEST_ARGS"); args != "" {
		os.Exit(run(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

const lbConfig = `role: lb
api: 127.0.0.1:9180
api_token_file: DIR/api.token
xsk: {frames: 8192, frame_size: 2048, ring_size: 1024, batch: 64}
lb:
  ingress: {iface: IF0, next_hop_mac: "02:00:00:00:01:01"}
  gateway_side: {iface: IF1}
  t4: [{range: 10.101.0.0/24, gateways: [{mac: "02:00:00:00:10:01"}]}]
`

const gwConfig = `role: gw
api: 127.0.0.1:9180
gw:
  lan: {iface: IF0}
  servers: {iface: IF1}
  nat: {addrs: [10.20.0.101]}
  accounting: {log: DIR/acct}
`

func writeConfig(t *testing.T, y, if0, if1 string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api.token"), []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "acct"), 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "samepathd.yaml")
	y = strings.NewReplacer("DIR", dir, "IF0", if0, "IF1", if1).Replace(y)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCheckAndStartAgree: what -check refuses, the start refuses with the
// same message and status, before it opens anything.
func TestCheckAndStartAgree(t *testing.T) {
	for name, tc := range map[string]struct{ y, if0, want string }{
		"unknown interface":            {lbConfig, "sptnope0", `lb.ingress.iface "sptnope0"`},
		"not Ethernet":                 {lbConfig, "lo", `lb.ingress.iface "lo": not an Ethernet interface`},
		"frame_size 2^32":              {strings.Replace(lbConfig, "frame_size: 2048", "frame_size: 4294967296", 1), "sptnope0", "xsk.frame_size 4294967296"},
		"lb_cache -5":                  {strings.Replace(gwConfig, "nat:", "lb_cache: -5\n  nat:", 1), "sptnope0", "gw.lb_cache -5"},
		"probe fall 0":                 {strings.Replace(gwConfig, "nat:", "probe: {fall: 0}\n  nat:", 1), "sptnope0", "gw.probe.fall 0"},
		"missing accounting directory": {strings.Replace(gwConfig, "DIR/acct", "DIR/nodir/accounting.log", 1), "sptnope0", "gw.accounting.log"},
		"type error":                   {strings.Replace(gwConfig, "nat:", "probe: {fall: abc}\n  nat:", 1), "sptnope0", "gw.probe.fall: line"},
		"empty":                        {"", "sptnope0", "empty"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, tc.y, tc.if0, "sptnope1")
			code, out, checkErr := runCmd("-config", path, "-check")
			if code != 2 || out != "" || !strings.Contains(checkErr, tc.want) {
				t.Fatalf("-check: status %d, stdout %q, stderr %q\nwant status 2 and %q", code, out, checkErr, tc.want)
			}
			code, _, startErr := runCmd("-config", path)
			if code != 2 || startErr != checkErr {
				t.Fatalf("start: status %d, stderr %q\n-check said %q", code, startErr, checkErr)
			}
		})
	}
}

// TestHelpExamples: -h prints both examples, whose values pass the checks
// (their interfaces and files are the target machine's).
func TestHelpExamples(t *testing.T) {
	code, _, errs := runCmd("-h")
	if code != 0 || !strings.Contains(errs, daemon.Example) || !strings.Contains(errs, daemon.ExampleGW) {
		t.Fatalf("-h: status %d, %q", code, errs)
	}
	for _, y := range []string{daemon.Example, daemon.ExampleGW} {
		if _, err := daemon.Parse([]byte(y)); err != nil {
			t.Errorf("example: %v", err)
		}
	}
}

// TestCheckInNamespace: in a namespace with two veth interfaces, -check
// accepts both roles' configs, names the interface that is missing and
// refuses more queues than the interfaces have.
func TestCheckInNamespace(t *testing.T) {
	privtest.Require(t)
	ns := privtest.Name("spck", "")
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	sh("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh("ip", "-n", ns, "link", "add", "a0", "numrxqueues", "1", "numtxqueues", "1", "type", "veth", "peer", "name", "b0", "numrxqueues", "1", "numtxqueues", "1")
	inNS := func(path string) (string, error) {
		cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0])
		cmd.Env = append(os.Environ(), "SAMEPATHD_TEST_ARGS=-config\x1f"+path+"\x1f-check")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, y := range []string{lbConfig, gwConfig} {
		if out, err := inNS(writeConfig(t, y, "a0", "b0")); err != nil || out != "config ok\n" {
			t.Errorf("-check in %s: %v: %s", ns, err, out)
		}
	}
	out, err := inNS(writeConfig(t, gwConfig, "a0", "c0"))
	if err == nil || !strings.Contains(out, `gw.servers.iface "c0"`) {
		t.Errorf("-check with a missing interface: %v: %s", err, out)
	}
	out, err = inNS(writeConfig(t, strings.Replace(lbConfig, "lb:", "workers: {queues: 2}\nlb:", 1), "a0", "b0"))
	if err == nil || !strings.Contains(out, "workers.queues 2: lb.ingress.iface a0 has 1 rx queues") {
		t.Errorf("-check with more queues than the veth has: %v: %s", err, out)
	}
}

// TestLogFormatFlag: an unknown -log-format is a usage error (status 2)
// naming the flag, before the config is read.
func TestLogFormatFlag(t *testing.T) {
	code, _, errs := runCmd("-config", "/nonexistent.yaml", "-log-format", "xml")
	if code != 2 || !strings.Contains(errs, "-log-format") {
		t.Fatalf("status %d, %q", code, errs)
	}
	if code, _, errs := runCmd("-h"); code != 0 || !strings.Contains(errs, "-log-format") {
		t.Fatalf("-h does not list -log-format: %d %q", code, errs)
	}
}
