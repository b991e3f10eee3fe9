package alerts

import (
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"samepath/internal/promcheck"
)

// TestRules runs promtool's checks of the rules and their unit tests.
func TestRules(t *testing.T) {
	p := promcheck.Promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "samepath.rules.yml"},
		{"test", "rules", "samepath.rules_test.yml"},
	} {
		out, err := exec.Command(p, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestEveryAlertTested: each alert of the rules has a unit test.
func TestEveryAlertTested(t *testing.T) {
	alerts := names(regexp.MustCompile(`(?m)^\s*- alert: (\w+)`), string(Rules))
	tests, err := os.ReadFile("samepath.rules_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, n := range names(regexp.MustCompile(`(?m)alertname: (\w+)`), string(tests)) {
		tested[n] = true
	}
	if len(alerts) == 0 {
		t.Fatal("no alert in samepath.rules.yml")
	}
	for _, a := range alerts {
		if !tested[a] {
			t.Errorf("alert %s has no test in samepath.rules_test.yml", a)
		}
	}
}

func names(re *regexp.Regexp, s string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}
