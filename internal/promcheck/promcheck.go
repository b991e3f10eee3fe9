// Package promcheck runs Prometheus's own tools (promtool, from the
// Debian package prometheus) from tests: the lint of an exposition
// (`promtool check metrics`) and the rule checks. Without promtool a
// test skips, and fails when CI is set (CI installs it: make deps).
package promcheck

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Promtool returns promtool's path, skipping t (failing it under CI)
// when it is not installed.
func Promtool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool not installed (apt-get install prometheus; make deps): %v", err)
		}
		t.Skipf("promtool not installed (apt-get install prometheus): %v", err)
	}
	return p
}

// Metrics fails t when `promtool check metrics` finds a problem in the
// text exposition body (what a /metrics endpoint answered).
func Metrics(t testing.TB, what string, body []byte) {
	t.Helper()
	if len(bytes.TrimSpace(body)) == 0 {
		t.Fatalf("%s: empty exposition", what)
	}
	cmd := exec.Command(Promtool(t), "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: promtool check metrics: %v\n%s", what, err, strings.TrimSpace(string(out)))
	}
}
