package radius_test

import (
	"context"
	"testing"

	"samepath/perf/radius"
)

// BenchmarkAccessRequest: Access-Request -> durable Accept through the
// real UDP server, 1000 users logging in repeatedly (BENCHMARKS.md "radius").
func BenchmarkAccessRequest(b *testing.B) { bench(b, false) }

// BenchmarkAccessRequestNewDevices: every request assigns a new address
// (a durable write before the Accept).
func BenchmarkAccessRequestNewDevices(b *testing.B) { bench(b, true) }

func bench(b *testing.B, newDevices bool) {
	r, err := radius.BenchAccess(context.Background(), radius.BenchConfig{Users: 1000, Conns: 4, Window: 64, Count: b.N, Iter: 1000, NewDevices: newDevices})
	if err != nil {
		b.Fatal(err)
	}
	if r.Accepts == 0 || r.Timeouts > 0 {
		b.Fatalf("%s", r)
	}
	b.ReportMetric(float64(r.Elapsed.Nanoseconds())/float64(r.Accepts), "ns/accept")
	b.ReportMetric(r.Rate, "accepts/s")
	b.ReportMetric(float64(r.P99.Microseconds()), "p99-µs")
}
