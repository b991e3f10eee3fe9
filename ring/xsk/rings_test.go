package xsk

import (
	"math"
	"math/rand/v2"
	"testing"

	"samepath/ring"
)

// kernelSide plays the kernel on a ring pair held in ordinary memory.
type fakeRing struct {
	prod, cons, flags uint32
}

func TestRingIndexWrap(t *testing.T) {
	// Start near the uint32 wrap so the free/avail arithmetic crosses it.
	start := uint32(math.MaxUint32 - 5)
	var f fakeRing
	f.prod, f.cons = start, start
	const size = 8
	addrs := make([]uint64, size)
	r := addrRing{newProdIdx(&f.prod, &f.cons, &f.flags, size), addrs}
	u, err := ring.NewUmem(make([]byte, 64*2048), 2048)
	if err != nil {
		t.Fatal(err)
	}
	pool := u.Pool()
	kernelHas := 0
	for round := 0; round < 100; round++ {
		got := r.fillFrom(pool, size)
		kernelHas += int(got)
		if kernelHas != size {
			t.Fatalf("round %d: ring holds %d after fill, want %d", round, kernelHas, size)
		}
		if f.prod-f.cons != size {
			t.Fatalf("round %d: published %d entries, want %d", round, f.prod-f.cons, size)
		}
		// The kernel consumes a random number and hands the frames back.
		k := rand.IntN(size + 1)
		for i := 0; i < k; i++ {
			u.Free(addrs[f.cons&(size-1)])
			f.cons++
		}
		kernelHas -= k
	}
	if pool.Len()+kernelHas != 64 {
		t.Fatalf("frames: pool %d + ring %d != 64", pool.Len(), kernelHas)
	}
}

func TestDescRingRoundTrip(t *testing.T) {
	var f fakeRing
	f.prod, f.cons = math.MaxUint32-2, math.MaxUint32-2
	const size = 4
	descs := make([]ring.Desc, size)
	tx := descRing{newProdIdx(&f.prod, &f.cons, &f.flags, size), descs}
	rx := descRing{newConsIdx(&f.prod, &f.cons, &f.flags, size), descs}
	in := []ring.Desc{{Addr: 1, Len: 10}, {Addr: 2, Len: 20}, {Addr: 3, Len: 30}, {Addr: 4, Len: 40}, {Addr: 5, Len: 50}}
	if n := tx.write(in); n != size {
		t.Fatalf("write into empty %d-ring took %d", size, n)
	}
	if n := tx.write(in[4:]); n != 0 {
		t.Fatalf("write into full ring took %d", n)
	}
	if tx.pending() != size {
		t.Fatalf("pending %d, want %d", tx.pending(), size)
	}
	out := make([]ring.Desc, 3)
	if n := rx.read(out); n != 3 || out[0] != in[0] || out[2] != in[2] {
		t.Fatalf("read %d: %v", n, out)
	}
	if n := tx.write(in[4:]); n != 1 {
		t.Fatalf("write after read took %d, want 1", n)
	}
	// The consumer re-reads the producer index only when its cached view
	// is empty (as libxdp does), so the rest comes in two reads.
	out = make([]ring.Desc, 8)
	if n := rx.read(out); n != 1 || out[0] != in[3] {
		t.Fatalf("read %d: %v", n, out[:n])
	}
	if n := rx.read(out); n != 1 || out[0] != in[4] {
		t.Fatalf("read %d: %v", n, out[:n])
	}
	if n := rx.read(out); n != 0 {
		t.Fatalf("read from empty ring: %d", n)
	}
	f.flags = xdpRingNeedWakeup
	if !tx.needWakeup() {
		t.Error("needWakeup false with the flag set")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig("eth0", 0)
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if err := DefaultUmemConfig().Validate(); err != nil {
		t.Fatalf("default umem config: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no name", func(c *Config) { c.Ifname = "" }},
		{"long name", func(c *Config) { c.Ifname = "abcdefghijklmnop" }},
		{"negative queue", func(c *Config) { c.Queue = -1 }},
		{"rx not power of two", func(c *Config) { c.RxSize = 1000 }},
		{"fill zero", func(c *Config) { c.FillSize = 0 }},
		{"comp too big", func(c *Config) { c.CompSize = 1 << 20 }},
		{"bad mode", func(c *Config) { c.Mode = 7 }},
		{"busy poll without budget", func(c *Config) { c.BusyPoll, c.BusyPollBudget = true, 0 }},
		{"negative tx budget", func(c *Config) { c.TxBudget = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			if c.Validate() == nil {
				t.Error("Validate accepted it")
			}
		})
	}
	for _, u := range []UmemConfig{{Frames: 0, FrameSize: 2048}, {Frames: 10, FrameSize: 3000}, {Frames: 10, FrameSize: 2048, Headroom: 2000}} {
		if u.Validate() == nil {
			t.Errorf("umem %+v accepted", u)
		}
	}
}
