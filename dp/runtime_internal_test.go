package dp

import (
	"testing"
	"time"
)

// BenchmarkRuntimeBusy is what the show-runtime figures add to a busy
// poll round (RuntimeCounters.busy: a clock read and three atomic adds),
// ns per round; divide by the batch size for the cost per packet
// (BENCHMARKS.md micro).
func BenchmarkRuntimeBusy(b *testing.B) {
	var rt RuntimeCounters
	epoch := time.Now()
	start := int64(time.Since(epoch))
	b.ReportAllocs()
	for b.Loop() {
		rt.busy(1, start, epoch)
	}
}
