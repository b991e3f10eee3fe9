package dp_test

import (
	"context"
	"testing"
	"time"

	"samepath/dp"
	"samepath/ring"
	"samepath/ring/memport"
)

// swap forwards everything from port 0 to port 1 and back, dropping frames
// that start with 0xff as malformed.
type swap struct{}

func (swap) Process(in int, pkts []dp.Packet) {
	for i := range pkts {
		if pkts[i].Data[0] == 0xff {
			pkts[i].Drop = dp.ReasonMalformed
			continue
		}
		pkts[i].Out = 1 - in
	}
}

func newPorts(t testing.TB, shared bool) (*memport.Port, *memport.Port) {
	t.Helper()
	u1, err := memport.NewUmem(4096)
	if err != nil {
		t.Fatal(err)
	}
	u2 := u1
	if !shared {
		if u2, err = memport.NewUmem(4096); err != nil {
			t.Fatal(err)
		}
	}
	a, err := memport.New(memport.DefaultConfig("a"), u1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := memport.New(memport.DefaultConfig("b"), u2)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestWorkerForwardsAndCounts(t *testing.T) {
	for _, shared := range []bool{true, false} {
		a, b := newPorts(t, shared)
		w, err := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{a, b}, swap{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			frame := []byte{byte(i), 1, 2, 3}
			if i%10 == 9 {
				frame[0] = 0xff
			}
			if !a.Inject(frame) {
				t.Fatalf("inject %d failed", i)
			}
		}
		for {
			n, err := w.Poll()
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		got := b.TakeAll()
		if len(got) != 90 {
			t.Fatalf("shared=%v: %d frames out, want 90", shared, len(got))
		}
		for _, f := range got {
			if f[0] == 0xff || len(f) != 4 || f[3] != 3 {
				t.Fatalf("bad frame out: %x", f)
			}
		}
		w.Flush() // reclaim completions
		ca, cb := w.Counters(0).Snapshot(), w.Counters(1).Snapshot()
		if ca.RxPackets != 100 || ca.RxBytes != 400 || ca.Drops[dp.ReasonMalformed] != 10 || ca.Dropped() != 10 {
			t.Errorf("shared=%v: ingress counters %+v", shared, ca)
		}
		if cb.TxPackets != 90 || cb.TxBytes != 360 || cb.RxPackets != 0 {
			t.Errorf("shared=%v: egress counters %+v", shared, cb)
		}
		// Every frame is back but those the ports keep on their fill
		// rings (half of each 1024-slot ring): nothing leaked.
		inUse := a.Umem().Frames() - a.Umem().Pool().Len()
		if !shared {
			inUse += b.Umem().Frames() - b.Umem().Pool().Len()
		}
		if inUse != 1024 {
			t.Errorf("shared=%v: %d frames in use after the run, want 1024 on fill rings", shared, inUse)
		}
	}
}

func TestWorkerTxFull(t *testing.T) {
	a, b := newPorts(t, true)
	w, _ := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{a, b}, swap{})
	// b's TX ring has 1024 slots and nobody takes from it.
	sent := 0
	for round := 0; round < 40; round++ {
		for i := 0; i < 64; i++ {
			if a.Inject([]byte{1, 2, 3}) {
				sent++
			}
		}
		w.Poll()
	}
	cb := w.Counters(1).Snapshot()
	if cb.TxPackets != 1024 {
		t.Errorf("tx %d, want 1024 (ring size)", cb.TxPackets)
	}
	if got := cb.Drops[dp.ReasonTxFull]; got != uint64(sent)-1024 {
		t.Errorf("tx_full drops %d, want %d", got, sent-1024)
	}
}

func TestWorkerRunIdlesAndStops(t *testing.T) {
	a, b := newPorts(t, true)
	cfg := dp.DefaultWorkerConfig()
	cfg.IdleRounds = 10
	w, _ := dp.NewWorker(cfg, []dp.Port{a, b}, swap{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	for i := 0; i < 5; i++ {
		for !a.Inject([]byte{7, 7, 7}) {
			time.Sleep(time.Millisecond)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	got := 0
	for got < 5 && time.Now().Before(deadline) {
		if !b.Take(func([]byte) { got++ }) {
			time.Sleep(time.Millisecond)
		}
	}
	if got != 5 {
		t.Errorf("got %d frames through a running worker, want 5", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("worker did not stop")
	}
	if s := w.Counters(0).Snapshot(); s.IdlePolls == 0 || s.Polls <= s.IdlePolls {
		t.Errorf("poll counters %d/%d", s.IdlePolls, s.Polls)
	}
}

func TestWorkerPollAllocs(t *testing.T) {
	for _, shared := range []bool{true, false} {
		a, b := newPorts(t, shared)
		w, _ := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{a, b}, swap{})
		frame := make([]byte, 64)
		drain := func([]byte) {}
		n := testing.AllocsPerRun(200, func() {
			for i := 0; i < 32; i++ {
				a.Inject(frame)
			}
			w.Poll()
			for b.Take(drain) {
			}
		})
		if n != 0 {
			t.Errorf("shared=%v: %v allocs per poll round", shared, n)
		}
	}
}

func TestWorkerConfigValidate(t *testing.T) {
	bad := []dp.WorkerConfig{
		{Batch: 0, CPU: -1, MinWait: 1, MaxWait: 1},
		{Batch: 64, CPU: 4096, MinWait: 1, MaxWait: 1},
		{Batch: 64, CPU: -1, MinWait: 0, MaxWait: 1},
		{Batch: 64, CPU: -1, MinWait: 2, MaxWait: 1},
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	var _ ring.Desc
}

// bomb is swap that panics on a batch holding a frame starting 0xee, the
// way a pipeline bug would.
type bomb struct{ swap }

func (b bomb) Process(in int, pkts []dp.Packet) {
	b.swap.Process(in, pkts)
	for i := range pkts {
		if pkts[i].Data[0] == 0xee {
			var tbl []byte
			_ = tbl[len(pkts[i].Data)] // index out of range
		}
	}
}

// TestWorkerRecoversPanic: a batch whose pipeline panics is dropped
// whole and counted (every frame as ReasonPanic, one Panics event), the
// report carries the frames and the stack, no frame leaks, and the
// worker goes on with the next batch.
func TestWorkerRecoversPanic(t *testing.T) {
	a, b := newPorts(t, true)
	var reports []dp.PanicReport
	var seen [][]byte
	cfg := dp.DefaultWorkerConfig()
	cfg.OnPanic = func(r dp.PanicReport) {
		reports = append(reports, r)
		for _, f := range r.Frames {
			seen = append(seen, append([]byte(nil), f...))
		}
	}
	w, err := dp.NewWorker(cfg, []dp.Port{a, b}, bomb{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range [][]byte{{1, 1}, {0xee, 2}, {3, 3}} {
		a.Inject(f)
	}
	if _, err := w.Poll(); err != nil {
		t.Fatal(err)
	}
	if got := b.TakeAll(); len(got) != 0 {
		t.Errorf("%d frames of the panicking batch were sent", len(got))
	}
	c := w.Counters(0).Snapshot()
	if c.Panics != 1 || c.Drops[dp.ReasonPanic] != 3 || c.Dropped() != 3 {
		t.Errorf("panics %d, panic drops %d, dropped %d: want 1, 3, 3", c.Panics, c.Drops[dp.ReasonPanic], c.Dropped())
	}
	if len(reports) != 1 || reports[0].Port != "a" || len(seen) != 3 || seen[1][0] != 0xee || len(reports[0].Stack) == 0 {
		t.Fatalf("reports %d, frames %x", len(reports), seen)
	}
	// The worker goes on.
	a.Inject([]byte{4, 4})
	w.Poll()
	if got := b.TakeAll(); len(got) != 1 {
		t.Errorf("after the panic, %d frames forwarded, want 1", len(got))
	}
	w.Flush()
	if inUse := a.Umem().Frames() - a.Umem().Pool().Len(); inUse != 1024 {
		t.Errorf("%d frames in use, want the 1024 on fill rings: the dropped batch leaked", inUse)
	}
}
