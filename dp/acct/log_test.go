package acct

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"samepath/testbed/privtest"
)

func testConfig(t testing.TB) Config {
	cfg := DefaultConfig(filepath.Join(t.TempDir(), "acct.log"))
	cfg.PollInterval = time.Millisecond
	return cfg
}

func openLog(t testing.TB, cfg Config) *Log {
	t.Helper()
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// pushWait pushes r, yielding while the ring is full; it returns how many
// pushes were refused.
func pushWait(p *Producer, r *Record) int {
	lost := 0
	for !p.Push(r) {
		lost++
		runtime.Gosched()
	}
	return lost
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig("/x/acct.log")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"path":     func(c *Config) { c.Path = "" },
		"interval": func(c *Config) { c.SyncInterval = 0 },
		"records":  func(c *Config) { c.SyncRecords = -1 },
		"maxsize":  func(c *Config) { c.MaxSize = 100 },
		"keep":     func(c *Config) { c.Keep = 0 },
		"ring":     func(c *Config) { c.RingSize = 1000 },
		"prod":     func(c *Config) { c.MaxProducers = 0 },
		"poll":     func(c *Config) { c.PollInterval = 0 },
		"buffer":   func(c *Config) { c.BufferSize = 10 },
		"mode":     func(c *Config) { c.Mode = os.ModeDir | 0o600 },
	} {
		c := good
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := Open(c); err == nil {
			t.Errorf("%s: Open accepted it", name)
		}
	}
}

// TestLogProducers: several producers, every record arrives once, in its
// producer's order, field for field; the counters add up.
func TestLogProducers(t *testing.T) {
	cfg := testConfig(t)
	l := openLog(t, cfg)
	const producers, per = 3, 1000 // per < RingSize: no ring can fill
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		pr, err := l.Register()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				r := testRecord(uint64(p*per + i))
				if !pr.Push(&r) {
					t.Errorf("producer %d: push %d refused", p, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got, st, err := Query(cfg.Path, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != producers*per || st.Torn != 0 || st.Bad != 0 {
		t.Fatalf("%d records, stats %+v", len(got), st)
	}
	next := make([]uint64, producers)
	for _, e := range got {
		p := e.Session / per
		if e.Session != p*per+next[p] {
			t.Fatalf("producer %d: got session %d, want %d", p, e.Session, p*per+next[p])
		}
		next[p]++
		if d := cmp.Diff(wantEntry(e.Session), e); d != "" {
			t.Fatalf("record %d (-want +got):\n%s", e.Session, d)
		}
	}
	s := l.Stats()
	want := Stats{Producers: producers, Pushed: producers * per, Written: producers * per, Synced: producers * per}
	s.Syncs, s.Bytes = 0, 0
	if d := cmp.Diff(want, s); d != "" {
		t.Errorf("stats (-want +got):\n%s", d)
	}
	if _, err := l.Register(); !errors.Is(err, ErrClosed) {
		t.Errorf("register after close: %v", err)
	}
}

// TestPushFull: a full ring refuses and counts; the writer is not
// running here, so the ring's state is exact.
func TestPushFull(t *testing.T) {
	l := &Log{}
	p := &Producer{slots: make([]Record, 4), mask: 3, size: 4, log: l}
	r := testRecord(1)
	for i := 0; i < 4; i++ {
		if !p.Push(&r) {
			t.Fatalf("push %d refused", i)
		}
	}
	if p.Push(&r) || p.Push(&r) {
		t.Fatal("full ring took a record")
	}
	if p.Lost() != 2 || l.lost.Load() != 2 {
		t.Errorf("lost %d/%d, want 2", p.Lost(), l.lost.Load())
	}
	p.head.Store(1) // the writer took one
	if !p.Push(&r) {
		t.Error("push after a slot was freed refused")
	}
	l.closed.Store(true)
	p.head.Store(5)
	if p.Push(&r) || l.lost.Load() != 3 {
		t.Errorf("push after close: lost %d", l.lost.Load())
	}
}

// TestLoadAccounted: a tiny ring under load loses records, and every
// push is either written or counted lost.
func TestLoadAccounted(t *testing.T) {
	l, p := tinyRing(t)
	cfg := l.cfg
	const n = 20000
	accepted := 0
	for i := 0; i < n; i++ {
		r := testRecord(uint64(i))
		if p.Push(&r) {
			accepted++
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s := l.Stats()
	if s.Pushed != uint64(accepted) || s.Lost != uint64(n-accepted) || s.Written != s.Pushed || s.Synced != s.Pushed {
		t.Errorf("accepted %d of %d, stats %+v", accepted, n, s)
	}
	got, _, err := Query(cfg.Path, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != accepted {
		t.Errorf("%d records in the log, %d accepted", len(got), accepted)
	}
	t.Logf("lost %d of %d with a 2-slot ring", s.Lost, n)
}

// TestPushWaitLosesNothing: through a tiny ring, PushWait waits for the
// writer instead of losing records; with a writer that never drains it
// gives up at the deadline and counts the loss.
func TestPushWaitLosesNothing(t *testing.T) {
	l, p := tinyRing(t)
	const n = 500
	for i := 0; i < n; i++ {
		r := testRecord(uint64(i))
		if !p.PushWait(&r, time.Now().Add(10*time.Second)) {
			t.Fatalf("record %d lost", i)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Lost != 0 || s.Written != n {
		t.Fatalf("stats %+v, want %d written, none lost", s, n)
	}

	stuck := &Producer{slots: make([]Record, 2), mask: 1, size: 2, log: &Log{}}
	r := testRecord(1)
	stuck.Push(&r)
	stuck.Push(&r)
	start := time.Now()
	if stuck.PushWait(&r, start.Add(20*time.Millisecond)) || stuck.Lost() != 1 {
		t.Fatalf("full ring with no writer: lost %d, want the record counted lost", stuck.Lost())
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("PushWait gave up before its deadline")
	}
}

func TestSyncByInterval(t *testing.T) {
	cfg := testConfig(t)
	cfg.SyncInterval = 10 * time.Millisecond
	cfg.SyncRecords = 0
	l := openLog(t, cfg)
	p, _ := l.Register()
	r := testRecord(1)
	p.Push(&r)
	deadline := time.Now().Add(20 * time.Second)
	for l.Stats().Synced != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("record never synced: %+v", l.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, _, _ := Query(cfg.Path, Filter{}); len(got) != 1 {
		t.Errorf("%d records before close", len(got))
	}
}

func TestRotation(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxSize = 8 << 10
	cfg.Keep = 3
	l := openLog(t, cfg)
	p, _ := l.Register()
	const n = 300
	for i := 0; i < n; i++ {
		r := testRecord(uint64(i))
		pushWait(p, &r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(filepath.Dir(cfg.Path) + "/acct.log")
	if err != nil {
		t.Fatal(err)
	}
	base := cfg.Path
	if d := cmp.Diff([]string{base + ".3", base + ".2", base + ".1", base}, files); d != "" {
		t.Fatalf("files (-want +got):\n%s", d)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil || fi.Size() > cfg.MaxSize || fi.Size() == 0 {
			t.Errorf("%s: %v size %d", f, err, fi.Size())
		}
	}
	got, st, err := Query(cfg.Path, Filter{})
	if err != nil || st.Torn != 0 || st.Bad != 0 {
		t.Fatal(err, st)
	}
	// What is left is the newest records, contiguous and in order.
	if len(got) == 0 || got[len(got)-1].Session != n-1 {
		t.Fatalf("%d records, last %v", len(got), got)
	}
	first := got[0].Session
	for i, e := range got {
		if e.Session != first+uint64(i) {
			t.Fatalf("record %d is session %d, want %d", i, e.Session, first+uint64(i))
		}
	}
	if s := l.Stats(); s.Rotations < 4 || s.WriteErrors != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestRepairTornTail: the reader skips a torn last line; Open cuts it off
// and the log goes on.
func TestRepairTornTail(t *testing.T) {
	cfg := testConfig(t)
	var data []byte
	for i := uint64(0); i < 2; i++ {
		r := testRecord(i)
		data = AppendJSON(data, &r)
	}
	r := testRecord(2)
	torn := AppendJSON(nil, &r)
	torn = torn[:len(torn)/2]
	if err := os.WriteFile(cfg.Path, append(data, torn...), 0o600); err != nil {
		t.Fatal(err)
	}
	got, st, err := Query(cfg.Path, Filter{})
	if err != nil || len(got) != 2 || st.Torn != 1 || st.Bad != 0 {
		t.Fatalf("before repair: %d records, %+v, %v", len(got), st, err)
	}
	l := openLog(t, cfg)
	if s := l.Stats(); s.Repaired != uint64(len(torn)) {
		t.Errorf("repaired %d bytes, want %d", s.Repaired, len(torn))
	}
	p, _ := l.Register()
	r = testRecord(3)
	p.Push(&r)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got, st, err = Query(cfg.Path, Filter{})
	if err != nil || st.Torn != 0 || st.Bad != 0 {
		t.Fatalf("after repair: %+v, %v", st, err)
	}
	var sessions []uint64
	for _, e := range got {
		sessions = append(sessions, e.Session)
	}
	if d := cmp.Diff([]uint64{0, 1, 3}, sessions); d != "" {
		t.Errorf("sessions (-want +got):\n%s", d)
	}
}

func TestRepairNoNewline(t *testing.T) {
	cfg := testConfig(t)
	if err := os.WriteFile(cfg.Path, []byte(strings.Repeat("x", 100<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, cfg)
	if s := l.Stats(); s.Repaired != 100<<10 {
		t.Errorf("repaired %d", s.Repaired)
	}
	l.Close()
	if fi, err := os.Stat(cfg.Path); err != nil || fi.Size() != 0 {
		t.Errorf("size %d, %v", fi.Size(), err)
	}
}

// TestWriteErrors: writes to a full device fail, are counted, and the
// records are counted as failed; Close reports the error.
func TestWriteErrors(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		privtest.Missing(t, "/dev/full")
	}
	cfg := DefaultConfig("/dev/full")
	cfg.PollInterval = time.Millisecond
	cfg.NoCheckpoints = true // no /dev/full.ckpt.0 (see TestCheckpointFinalWriteFails)
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := l.Register()
	for i := 0; i < 10; i++ {
		r := testRecord(uint64(i))
		p.Push(&r)
	}
	err = l.Close()
	if err == nil || !strings.Contains(err.Error(), "no space") {
		t.Errorf("close: %v", err)
	}
	if s := l.Stats(); s.Failed != 10 || s.Written != 0 || s.WriteErrors == 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestDirectoryPath(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig(dir)
	l := openLog(t, cfg)
	if l.Path() != filepath.Join(dir, FileName) {
		t.Errorf("path %s", l.Path())
	}
	p, _ := l.Register()
	r := testRecord(1)
	p.Push(&r)
	l.Close()
	got, _, err := Query(dir, Filter{})
	if err != nil || len(got) != 1 {
		t.Errorf("%d records, %v", len(got), err)
	}
	if _, _, err := Query(filepath.Join(dir, "nope"), Filter{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing log: %v", err)
	}
}

func TestPushAllocs(t *testing.T) {
	l := openLog(t, testConfig(t))
	p, _ := l.Register()
	r := testRecord(7)
	if n := testing.AllocsPerRun(1000, func() { p.Push(&r) }); n != 0 {
		t.Errorf("Push: %v allocs", n)
	}
}

func TestQueryFilter(t *testing.T) {
	cfg := testConfig(t)
	l := openLog(t, cfg)
	p, _ := l.Register()
	const n = 42
	for i := uint64(0); i < n; i++ {
		r := testRecord(i)
		pushWait(p, &r)
	}
	l.Close()
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	tests := []struct {
		name string
		f    Filter
		keep func(i uint64) bool
	}{
		{"all", Filter{}, func(uint64) bool { return true }},
		{"user", Filter{User: "user3"}, func(i uint64) bool { return i%7 == 3 }},
		{"device", Filter{Device: "IMEI-3"}, func(i uint64) bool { return i%7 == 3 }},
		{"user+device mismatch", Filter{User: "user3", Device: "IMEI-4"}, func(uint64) bool { return false }},
		{"service", Filter{Service: "svc1"}, func(i uint64) bool { return i%3 == 1 }},
		{"service type", Filter{ServiceType: "mail"}, func(i uint64) bool { return i%3 == 2 }},
		{"kind", Filter{Kind: "interim"}, func(i uint64) bool { return i%5 == 4 }},
		// Record i spans [t0+i s, t0+i s + (i%11) ms].
		{"from", Filter{From: at(30)}, func(i uint64) bool { return i >= 30 }},
		{"from mid-record", Filter{From: at(29).Add(5 * time.Millisecond)}, func(i uint64) bool { return i >= 30 || i == 29 }},
		{"to", Filter{To: at(10)}, func(i uint64) bool { return i < 10 }},
		{"range+user", Filter{From: at(10), To: at(20), User: "user0"}, func(i uint64) bool { return i >= 10 && i < 20 && i%7 == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, st, err := Query(cfg.Path, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var want, gotIDs []uint64
			for i := uint64(0); i < n; i++ {
				if tc.keep(i) {
					want = append(want, i)
				}
			}
			for _, e := range got {
				gotIDs = append(gotIDs, e.Session)
			}
			if d := cmp.Diff(want, gotIDs); d != "" {
				t.Errorf("sessions (-want +got):\n%s", d)
			}
			if st.Lines != n || st.Matched != len(got) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestScanSkipsBadLines(t *testing.T) {
	cfg := testConfig(t)
	r := testRecord(1)
	data := AppendJSON(nil, &r)
	data = append(data, "not json\n{}\n"...)
	data = AppendJSON(data, &r)
	os.WriteFile(cfg.Path, data, 0o600)
	got, st, err := Query(cfg.Path, Filter{})
	if err != nil || len(got) != 2 || st.Bad != 2 || st.Lines != 4 {
		t.Errorf("%d records, %+v, %v", len(got), st, err)
	}
}

// tinyRing opens a log whose producer ring holds two records, and its
// producer.
func tinyRing(t *testing.T) (*Log, *Producer) {
	t.Helper()
	cfg := testConfig(t)
	cfg.RingSize = 2
	l := openLog(t, cfg)
	p, err := l.Register()
	if err != nil {
		t.Fatal(err)
	}
	return l, p
}
