package acct

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkPush is the producer's cost per record (BENCHMARKS.md
// "acct-push"): a copy into the ring and one atomic store. The timer
// stops while the writer drains a full ring, so every timed Push finds
// room (lost/op must be 0).
func BenchmarkPush(b *testing.B) {
	// The ring's size matters: 1024 records (400 KB) stay in cache, the
	// default 4096 and larger rings do not.
	for _, size := range []int{1024, 4096, 1 << 14} {
		b.Run("ring="+strconv.Itoa(size), func(b *testing.B) { benchPush(b, size) })
	}
}

func benchPush(b *testing.B, size int) {
	cfg := testConfig(b)
	cfg.RingSize = size
	l := openLog(b, cfg)
	p, err := l.Register()
	if err != nil {
		b.Fatal(err)
	}
	r := testRecord(42)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(cfg.RingSize, b.N-done)
		for i := 0; i < n; i++ {
			p.Push(&r)
		}
		done += n
		b.StopTimer()
		for l.Stats().Queued > 0 {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(p.Lost())/float64(b.N), "lost/op")
}

// BenchmarkPushFull is Push's cost when the writer is behind and the ring
// full: the record is counted lost (two atomic adds).
func BenchmarkPushFull(b *testing.B) {
	l := &Log{}
	p := &Producer{slots: make([]Record, 1), mask: 0, size: 1, log: l}
	r := testRecord(42)
	p.Push(&r)
	b.ReportAllocs()
	for b.Loop() {
		p.Push(&r)
	}
}

// BenchmarkWriter is the writer's throughput (BENCHMARKS.md
// "acct-writer"): records/s through ring, JSON encoding, write(2) and an
// fsync every 200 ms. The producer waits when the ring is full, so
// nothing is lost and the writer is the bottleneck.
func BenchmarkWriter(b *testing.B) {
	cfg := testConfig(b)
	cfg.SyncInterval = 200 * time.Millisecond
	cfg.SyncRecords = 0
	cfg.RingSize = 1 << 14
	cfg.MaxSize = 1 << 30
	l, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	p, _ := l.Register()
	r := testRecord(42)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for !p.Push(&r) {
			runtime.Gosched()
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	s := l.Stats()
	if s.Synced != uint64(b.N) {
		b.Fatalf("synced %d of %d", s.Synced, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	b.ReportMetric(float64(s.Bytes)/float64(b.N), "B/record")
	b.ReportMetric(float64(s.Syncs), "fsyncs")
}
