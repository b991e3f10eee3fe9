package steer_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"samepath/dp/steer"
	"samepath/nat"
	"samepath/testbed/privtest"
)

// TestAtomicUpdate flips T4 between two tables while another goroutine
// runs the program on one frame: every output must be one table's answer.
// The tables differ in shape (one /16 row vs two /24 rows, with filler
// rows around them), so a reader of a half-built table would see no_route
// or a stale row.
func TestAtomicUpdate(t *testing.T) {
	privtest.Require(t)
	_, o := loadGolden(t)

	filler := func(first int) []nat.T4Row {
		var rs []nat.T4Row
		for i := range 200 {
			rs = append(rs, row(fmt.Sprintf("172.%d.%d.0/24", 16+(first+i)/256, (first+i)%256), up(gwC)))
		}
		return rs
	}
	tableA := append(filler(0), row("10.1.0.0/16", up(gwA), up(gwB)))
	tableB := append(filler(300),
		row("10.1.2.0/24", down(gwA), up(gwB)),
		row("10.1.3.0/24", up(gwC)),
	)
	f := ether(lbIn, nasMAC, -1, 0x0800, ipv4("10.1.2.3", "198.51.100.7", 17, nil, udp("atomic")))
	wantA, wantB := string(rewrite(f, gwA, lbGw)), string(rewrite(f, gwB, lbGw))

	var (
		stop       atomic.Bool
		runs       atomic.Uint64
		seenA      atomic.Uint64
		seenB      atomic.Uint64
		wg         sync.WaitGroup
		badMu      sync.Mutex
		bad        []string
		flips      = 100
		reportOnce sync.Once
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			out, act, err := o.Run(f, steer.IngressSide)
			switch {
			case err != nil || act != steer.Redirect:
				badMu.Lock()
				bad = append(bad, fmt.Sprintf("action %v err %v", act, err))
				badMu.Unlock()
			case string(out) == wantA:
				seenA.Add(1)
			case string(out) == wantB:
				seenB.Add(1)
			default:
				reportOnce.Do(func() { t.Errorf("torn output %x", out) })
			}
			runs.Add(1)
		}
	}()
	for i := range flips {
		tbl := tableA
		if i%2 == 1 {
			tbl = tableB
		}
		if err := o.Sync(tbl); err != nil {
			t.Fatal(err)
		}
		// Let the reader run at least twice on this table (the first run
		// may have started before the swap).
		for n := runs.Load(); runs.Load() < n+2; {
			runtime.Gosched()
		}
	}
	stop.Store(true)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d bad verdicts during updates, first: %s", len(bad), bad[0])
	}
	if seenA.Load() == 0 || seenB.Load() == 0 {
		t.Errorf("reader saw table A %d times, table B %d times: want both", seenA.Load(), seenB.Load())
	}
	t.Logf("%d runs over %d swaps: A %d, B %d", runs.Load(), flips, seenA.Load(), seenB.Load())
}
