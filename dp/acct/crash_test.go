package acct

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const crashChildEnv = "SAMEPATH_ACCT_CRASH_CHILD"

func crashConfig(path string) Config {
	cfg := DefaultConfig(path)
	cfg.SyncInterval = 5 * time.Millisecond
	cfg.MaxSize = 64 << 10
	cfg.Keep = 100000 // keep every file: the test checks every record
	cfg.RingSize = 1024
	cfg.PollInterval = time.Millisecond
	return cfg
}

// crashChild is the re-executed test binary: it pushes testRecord(0),
// testRecord(1), ... into the log as fast as the writer takes them and
// reports on stdout how many records the log has fsync'd (records are
// written in push order, so "synced N" means records 0..N-1 are durable).
// It runs until killed.
func crashChild() int {
	l, err := Open(crashConfig(os.Getenv(crashChildEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := l.Register()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	var reported uint64
	stop := time.Now().Add(2 * time.Minute)
	for i := uint64(0); time.Now().Before(stop); i++ {
		r := testRecord(i)
		pushWait(p, &r)
		if s := l.Stats(); s.Synced != reported {
			reported = s.Synced
			fmt.Fprintf(out, "synced %d rotations %d\n", s.Synced, s.Rotations)
			out.Flush()
		}
	}
	return 2
}

// TestCrashSIGKILL kills a writer under load and checks what survives:
// every record the child knew synced is there, in order, field for field;
// no torn record comes back from the reader; the log can be appended to
// again.
func TestCrashSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acct.log")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	watchdog := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()

	var synced, rotations uint64
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var s, r uint64
		if _, err := fmt.Sscanf(sc.Text(), "synced %d rotations %d", &s, &r); err != nil {
			t.Fatalf("child said %q: %v", sc.Text(), err)
		}
		synced, rotations = s, r
		if !killed && synced >= 3000 && rotations >= 2 {
			// Mid-load: the child is pushing and writing right now.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	// Reports already in the pipe count: they were made before the kill.
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before the kill (synced %d): %v", synced, err)
	}
	t.Logf("killed: child reported %d records synced, %d rotations", synced, rotations)

	got, st, err := Query(path, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Bad != 0 {
		t.Errorf("%d bad lines", st.Bad)
	}
	if uint64(len(got)) < synced {
		t.Fatalf("%d records in the log, %d were synced", len(got), synced)
	}
	for i, e := range got {
		if d := cmp.Diff(wantEntry(uint64(i)), e); d != "" {
			t.Fatalf("record %d (-want +got):\n%s", i, d)
		}
	}
	t.Logf("log: %d records in %d files, %d torn", len(got), len(st.Files), st.Torn)

	// Reopen: a torn tail is cut, and the log goes on.
	l, err := Open(crashConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := l.Register()
	r := testRecord(uint64(len(got)))
	p.Push(&r)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Torn == 0 && l.Stats().Repaired != 0 {
		t.Errorf("repaired %d bytes of an untorn log", l.Stats().Repaired)
	}
	again, st2, err := Query(path, Filter{})
	if err != nil || st2.Torn != 0 || st2.Bad != 0 {
		t.Fatalf("after reopen: %+v %v", st2, err)
	}
	if len(again) != len(got)+1 {
		t.Fatalf("after reopen %d records, want %d", len(again), len(got)+1)
	}
	if d := cmp.Diff(wantEntry(uint64(len(got))), again[len(got)]); d != "" {
		t.Errorf("appended record (-want +got):\n%s", d)
	}
}
