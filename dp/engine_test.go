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

// origin is a pipeline that receives nothing of interest and originates
// queued frames: per port, each frame goes out of port to[port], a frame
// starting with 0xee is dropped as ReasonNoNextHop, one starting with
// 0xdd is left unused (Originate stops before it).
type origin struct {
	q  [2][][]byte
	to [2]int
}

func (o *origin) Process(int, []dp.Packet) {}

func (o *origin) Pending(out int) int { return len(o.q[out]) }

func (o *origin) Originate(out int, pkts []dp.Packet) int {
	n := 0
	for ; n < len(pkts) && n < len(o.q[out]); n++ {
		f := o.q[out][n]
		if f[0] == 0xdd {
			break
		}
		pk := &pkts[n]
		if pk.Desc.Len != 0 || pk.Out != -1 || len(pk.Room) < len(f) {
			panic("originate: frame not free")
		}
		pk.Desc.Len = uint32(copy(pk.Room, f))
		if f[0] == 0xee {
			pk.Drop = dp.ReasonNoNextHop
			continue
		}
		pk.Out = o.to[out]
	}
	o.q[out] = o.q[out][n:]
	if n == 0 && len(o.q[out]) > 0 {
		o.q[out] = o.q[out][1:] // the 0xdd frame: gone next round
	}
	return n
}

func TestWorkerOriginates(t *testing.T) {
	for _, shared := range []bool{true, false} {
		a, b := newPorts(t, shared)
		o := &origin{to: [2]int{0, 0}}
		// Port 0 originates for itself; port 1's frames go out of port 0
		// (a copy when the umems differ).
		for i := range 100 {
			o.q[0] = append(o.q[0], []byte{byte(i), 0, 1, 2, 3})
		}
		o.q[0][10][0], o.q[0][20][0] = 0xee, 0xdd
		o.q[1] = append(o.q[1], []byte{0x77, 9, 9})
		w, err := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{a, b}, o)
		if err != nil {
			t.Fatal(err)
		}
		free0, free1 := a.Umem().Pool().Len(), b.Umem().Pool().Len()
		for range 10 {
			if _, err := w.Poll(); err != nil {
				t.Fatal(err)
			}
		}
		if len(o.q[0])+len(o.q[1]) != 0 {
			t.Fatalf("shared=%v: left %d+%d", shared, len(o.q[0]), len(o.q[1]))
		}
		got := a.TakeAll()
		if len(got) != 98+1 {
			t.Fatalf("shared=%v: %d frames out of port 0, want 99", shared, len(got))
		}
		var seen77 bool
		for _, f := range got {
			if f[0] == 0x77 {
				seen77 = len(f) == 3
				continue
			}
			if len(f) != 5 || f[0] == 0xee || f[0] == 0xdd || f[4] != 3 {
				t.Fatalf("shared=%v: frame %x", shared, f)
			}
		}
		if !seen77 {
			t.Errorf("shared=%v: port 1's frame not sent on port 0", shared)
		}
		w.Flush()
		c0, c1 := w.Counters(0).Snapshot(), w.Counters(1).Snapshot()
		if c0.Originated != 99 || c1.Originated != 1 {
			t.Errorf("shared=%v: originated %d, %d; want 99, 1", shared, c0.Originated, c1.Originated)
		}
		if c0.Drops[dp.ReasonNoNextHop] != 1 || c0.TxPackets != 99 {
			t.Errorf("shared=%v: port 0 drops %d tx %d; want 1, 99", shared, c0.Drops[dp.ReasonNoNextHop], c0.TxPackets)
		}
		// Every frame taken came back: sent ones through the wire side,
		// the dropped and unused ones at once.
		if a.Umem().Pool().Len() != free0 || (!shared && b.Umem().Pool().Len() != free1) {
			t.Errorf("shared=%v: free frames %d/%d, want %d/%d", shared, a.Umem().Pool().Len(), b.Umem().Pool().Len(), free0, free1)
		}
	}
}

// TestWorkerOriginateNoFrame: with every frame of the umem in use, the
// frames wait with the pipeline and go out once frames are free.
func TestWorkerOriginateNoFrame(t *testing.T) {
	u, _ := memport.NewUmem(4096)
	a, _ := memport.New(memport.DefaultConfig("a"), u)
	b, _ := memport.New(memport.DefaultConfig("b"), u)
	o := &origin{to: [2]int{0, 0}}
	o.q[0] = append(o.q[0], []byte{1, 2, 3}, []byte{4, 5, 6})
	w, _ := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{a, b}, o)
	var held []uint64
	for {
		f, ok := u.Alloc()
		if !ok {
			break
		}
		held = append(held, f)
	}
	w.Poll()
	if len(o.q[0]) != 2 || len(a.TakeAll()) != 0 {
		t.Fatalf("without frames: %d left with the pipeline, want 2", len(o.q[0]))
	}
	for _, f := range held {
		u.Free(f)
	}
	w.Poll()
	if got := a.TakeAll(); len(got) != 2 || len(o.q[0]) != 0 {
		t.Fatalf("with frames: %d sent, %d left", len(got), len(o.q[0]))
	}
}
