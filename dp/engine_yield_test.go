package dp_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"samepath/dp"
)

// yieldProbe counts, at each poll round's Tick, whether another goroutine
// of the process ran since the previous round.
type yieldProbe struct {
	swap
	progress    *atomic.Int64
	last        int64
	ticks, seen int
	done        chan struct{}
}

const probeTicks = 2000

func (p *yieldProbe) Tick(int64) {
	if p.ticks == probeTicks {
		return
	}
	p.ticks++
	if cur := p.progress.Load(); cur != p.last {
		p.seen++
		p.last = cur
	}
	if p.ticks == probeTicks {
		close(p.done)
	}
}

// A worker spinning through idle rounds lets the process's other
// goroutines run between rounds (the gateway's TCP terminator runs its
// netstacks and splices on them and feeds the worker from there). With
// one P (GOMAXPROCS=1, as under `taskset -c 1`) a worker that only spun
// held the P until the runtime preempted it 10 ms later, and the
// terminator crawled (perf/tcpsplit: 170 Mbit/s instead of 780). The
// check counts rounds, not time: in most rounds the other goroutine
// must have moved.
func TestWorkerIdleSpinYields(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	a, b := newPorts(t, true)
	cfg := dp.DefaultWorkerConfig()
	cfg.IdleRounds = 1 << 30 // spin, never block in Wait
	var progress atomic.Int64
	p := &yieldProbe{progress: &progress, done: make(chan struct{})}
	w, err := dp.NewWorker(cfg, []dp.Port{a, b}, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	go func() {
		for ctx.Err() == nil {
			progress.Add(1)
			runtime.Gosched()
		}
	}()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not finish its probe rounds")
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if p.seen < probeTicks/2 {
		t.Errorf("another goroutine ran in %d of %d idle rounds, want at least half: the spinning worker holds the P", p.seen, probeTicks)
	}
}
