package dp_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"samepath/dp"
)

// TestWorkerRuntime: the show-runtime figures count what the rounds did
// (batches, vectors, busy and idle rounds); times are only checked to
// move, never against a bound.
func TestWorkerRuntime(t *testing.T) {
	a, b := newPorts(t, true)
	w, err := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{a, b}, swap{})
	if err != nil {
		t.Fatal(err)
	}
	// Round 1: 10 frames on a. Round 2: 64 on a (one batch: Batch is
	// 64) and 3 on b. Rounds 3 and 4: nothing.
	inject := func(p interface{ Inject([]byte) bool }, n int) {
		for range n {
			if !p.Inject([]byte{1, 2, 3, 4}) {
				t.Fatal("inject failed")
			}
		}
	}
	inject(a, 10)
	w.Poll()
	inject(a, 64)
	inject(b, 3)
	w.Poll()
	b.TakeAll()
	a.TakeAll()
	w.Poll()
	w.Poll()
	r := w.Runtime()
	got := [5]uint64{r.Rounds, r.BusyRounds, r.IdleRounds, r.Batches, r.Vectors}
	if want := [5]uint64{4, 2, 2, 3, 77}; got != want {
		t.Errorf("rounds, busy, idle, batches, vectors = %v, want %v", got, want)
	}
	if r.Busy <= 0 || r.Uptime < r.Busy || r.Waits != 0 {
		t.Errorf("busy %v, uptime %v, waits %d", r.Busy, r.Uptime, r.Waits)
	}
}

// TestWorkerRuntimeRun: a running worker that idles counts its waits,
// and the figures read from another goroutine while it runs (-race).
func TestWorkerRuntimeRun(t *testing.T) {
	a, b := newPorts(t, true)
	cfg := dp.DefaultWorkerConfig()
	cfg.IdleRounds = 4
	w, _ := dp.NewWorker(cfg, []dp.Port{a, b}, swap{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for w.Runtime().Waits == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for !a.Inject([]byte{1, 2, 3}) {
		time.Sleep(time.Millisecond)
	}
	for w.Runtime().Vectors == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	r := w.Runtime()
	if r.Waits == 0 || r.Waited <= 0 || r.Vectors != 1 || r.Batches != 1 || r.BusyRounds != 1 || r.IdleRounds == 0 {
		t.Errorf("runtime after an idle run with one frame: %+v", r)
	}
}

// BenchmarkWorkerPoll is one poll round of a worker forwarding between
// two memory ports (swap), ns per packet, for batches of 1 and 64 and
// for an empty round (ns per round): the poll loop's own cost, which
// the show-runtime figures add to (one clock read and three atomic adds
// per busy round, nothing per packet or per empty round; BENCHMARKS.md
// micro).
func BenchmarkWorkerPoll(b *testing.B) {
	for _, n := range []int{0, 1, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			pa, pb := newPorts(b, true)
			w, _ := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{pa, pb}, swap{})
			frame := make([]byte, 64)
			drain := func([]byte) {}
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				for range n {
					pa.Inject(frame)
				}
				w.Poll()
				for pb.Take(drain) {
				}
				done += max(n, 1)
			}
		})
	}
}
