package version

import (
	"bytes"
	"flag"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"module version", debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"devel without vcs", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{"vcs revision", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, "devel-0123456789ab-dirty"},
	} {
		if got := fromBuildInfo(&tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLinkerVersionWins(t *testing.T) {
	Version = "v9.9.9"
	defer func() { Version = "" }()
	if got := Get(); got != "v9.9.9" {
		t.Fatalf("Get() = %q", got)
	}
}

func TestAddFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var out bytes.Buffer
	code := -1
	AddFlag(fs, "samepathd", &out, func(c int) { code = c })
	if err := fs.Parse([]string{"--version"}); err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.HasPrefix(out.String(), "samepathd ") || !strings.Contains(out.String(), GoVersion()) {
		t.Fatalf("exit %d, printed %q", code, out.String())
	}
}

// TestEveryBinary builds every command with the version set by -ldflags
// (as make build does) and checks that each answers --version with it.
func TestEveryBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	cmds := []string{"samepathd", "samepath-control", "samepathctl", "samepath-agent", "testbed", "pktgen", "perfrun", "samepath-demo"}
	pkgs := []string{"samepath/perf/radload"}
	for _, c := range cmds {
		pkgs = append(pkgs, "samepath/cmd/"+c)
	}
	build := exec.Command(goCmd, append([]string{"build", "-ldflags", "-X samepath/internal/version.Version=v0.0.0-test", "-o", dir + "/"}, pkgs...)...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range append(cmds, "radload") {
		out, err := exec.Command(filepath.Join(dir, c), "--version").CombinedOutput()
		if want := c + " v0.0.0-test (" + GoVersion() + ")\n"; err != nil || string(out) != want {
			t.Errorf("%s --version: %v: %q, want %q", c, err, out, want)
		}
	}
}
