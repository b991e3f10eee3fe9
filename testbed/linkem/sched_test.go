package linkem

import (
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The per-frame decision allocates nothing.
func TestSchedDecideAllocs(t *testing.T) {
	c := DefaultConfig()
	c.Loss, c.Rate, c.Delay, c.Jitter = 0.01, 1e9, time.Millisecond, time.Microsecond
	s := newSched(c, 0)
	now := time.Unix(0, 0)
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Microsecond)
		s.decide(now, 1500)
	}); n != 0 {
		t.Errorf("decide allocates %v per frame", n)
	}
}

func BenchmarkSchedDecide(b *testing.B) {
	c := DefaultConfig()
	c.Loss, c.Rate, c.Delay, c.Jitter = 0.01, 1e9, time.Millisecond, time.Microsecond
	s := newSched(c, 0)
	now := time.Unix(0, 0)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		s.decide(now, 1500)
	}
}

func TestSchedLossFraction(t *testing.T) {
	c := DefaultConfig()
	c.Loss = 0.05
	s := newSched(c, 0)
	now := time.Unix(0, 0)
	lostN := 0
	const n = 200000
	for i := 0; i < n; i++ {
		if v, _ := s.decide(now, 100); v == lost {
			lostN++
		}
	}
	if got := float64(lostN) / n; math.Abs(got-0.05) > 0.005 {
		t.Errorf("loss fraction %.4f, want 0.05 +- 10%%", got)
	}
	// Same seed, same decisions.
	a, b := newSched(c, 3), newSched(c, 3)
	for i := 0; i < 1000; i++ {
		va, _ := a.decide(now, 100)
		vb, _ := b.decide(now, 100)
		if va != vb {
			t.Fatal("same seed gave different decisions")
		}
	}
}

func TestSchedRateDelayJitter(t *testing.T) {
	c := DefaultConfig()
	c.Rate = 8e6 // 1 byte per microsecond
	c.Delay = 10 * time.Millisecond
	c.Queue = 100000
	s := newSched(c, 0)
	t0 := time.Unix(100, 0)
	// 200 frames of 1000 bytes arriving at once: after the burst they leave
	// one per millisecond, 10 ms later; beyond the queue limit they drop.
	var last time.Time
	passed, dropped := 0, 0
	for i := 0; i < 200; i++ {
		v, due := s.decide(t0, 1000)
		switch v {
		case pass:
			passed++
			last = due
		case overQueue:
			dropped++
		default:
			t.Fatalf("verdict %d", v)
		}
	}
	// Queue 100000 bytes + burst 3028 bytes -> 103 frames fit.
	if passed != 103 || dropped != 97 {
		t.Errorf("passed %d dropped %d, want 103 and 97", passed, dropped)
	}
	want := t0.Add(10*time.Millisecond + time.Duration(passed*1000-c.Burst)*time.Microsecond)
	if d := last.Sub(want); d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("last departure %v after t0, want %v", last.Sub(t0), want.Sub(t0))
	}

	// Jitter without reordering: departures never go backwards and stay in
	// [delay-jitter, delay+jitter] of the arrival (or the one ahead).
	c = DefaultConfig()
	c.Delay, c.Jitter = 50*time.Millisecond, 5*time.Millisecond
	s = newSched(c, 0)
	var prev time.Time
	var sum time.Duration
	for i := 0; i < 10000; i++ {
		now := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		_, due := s.decide(now, 100)
		d := due.Sub(now)
		if d < 45*time.Millisecond || d > 55*time.Millisecond || due.Before(prev) {
			t.Fatalf("frame %d: delay %v, prev %v", i, d, prev.Sub(t0))
		}
		prev = due
		sum += d
	}
	if mean := sum / 10000; mean < 49*time.Millisecond || mean > 51*time.Millisecond {
		t.Errorf("mean delay %v, want ~50ms", mean)
	}
}

func TestConfigValidateAndRate(t *testing.T) {
	bad := []Config{{Delay: -1}, {Loss: 1.5}, {Rate: 1000, Burst: 10, Queue: 5000}, {Rate: 1000, Burst: 5000, Queue: 10}, {Rate: -1}}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v validated", c)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
	for in, want := range map[string]int64{"20mbit": 20e6, "1.5gbit": 1.5e9, "800": 800, "64kbit": 64000} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d %v", in, got, err)
		}
	}
	if _, err := ParseRate("fast"); err == nil {
		t.Error("ParseRate(fast) succeeded")
	}
}
