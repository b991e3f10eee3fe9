// Package systest is what the privileged system-test packages (gwe2e,
// accte2e, the mobility soak) share: their TestMain, which lets the
// test binary run as the testbed's servers; a samepathd binary built
// once per test binary; a FIG. 2 system started for one test and torn
// down at its end, with its output and the gateways' logs shown when
// the test failed; and a progress buffer safe for concurrent writers.
//
// It is a library for _test.go files only: nothing in a binary imports
// it.
package systest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"samepath/testbed/demo"
	"samepath/testbed/privtest"
	"samepath/testbed/servers"
)

// Main is a system-test package's TestMain: with the argument "serve" the
// test binary is the testbed's servers (demo.Options.ServeArgv), else it
// runs the tests, removes the samepathd build and fails on leaked
// goroutines.
func Main(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(servers.Main(os.Args[2:], os.Stderr))
	}
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// build holds the samepathd binary, built once per test binary.
var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Samepathd returns the samepathd binary, building it on first use.
func Samepathd(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "systest-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "samepathd")
		if out, err := exec.Command("go", "build", "-o", build.bin, "samepath/cmd/samepathd").CombinedOutput(); err != nil {
			build.err = fmt.Errorf("build samepathd: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// logTail is how much of each daemon's log a failed test shows.
const logTail = 3000

// LogTails logs the tail of every daemon's log in dir (a testbed's
// LogDir: the LBs', the gateways', samepath-control's, the servers').
func LogTails(t testing.TB, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, name := range logs {
		log, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		if len(log) > logTail {
			log = log[len(log)-logTail:]
		}
		t.Logf("%s (tail):\n%s", filepath.Base(name), log)
	}
}

// Start builds FIG. 2 with samepathd LBs and gateways (o's Samepathd,
// unless set, ServeArgv and Out are filled in) and tears it down when t
// ends. If t failed, the tail of each daemon's log, the system's
// progress output and its log directory are logged. It skips (fails in
// CI) without root.
func Start(t *testing.T, o demo.Options) *demo.System {
	t.Helper()
	privtest.Require(t)
	if o.Samepathd == "" {
		o.Samepathd = Samepathd(t)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o.ServeArgv = []string{exe, "serve"}
	out := &Output{}
	o.Out = out
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sys, err := demo.Start(ctx, o)
	if err != nil {
		t.Fatalf("start system: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			LogTails(t, sys.TB.LogDir())
		}
		if err := sys.Close(); err != nil {
			t.Errorf("close system: %v", err)
		}
		if t.Failed() {
			t.Logf("system output:\n%s\nlogs in %s", out.String(), sys.TB.LogDir())
		}
	})
	return sys
}

// Output is a strings.Builder safe for concurrent writers (a system's
// progress lines while two mobiles move at once, a daemon's log lines).
type Output struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *Output) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// String is everything written so far.
func (w *Output) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
