package radius

import (
	"strings"
	"testing"
	"time"

	"samepath/ctl/nas"
)

func TestMarkdown(t *testing.T) {
	r := &Result{Config: DefaultConfig("bin/radload")}
	for _, x := range []struct {
		rate float64
		p99  time.Duration
	}{{30000, 4 * time.Millisecond}, {10000, 9 * time.Millisecond}, {25000, 5 * time.Millisecond}} {
		r.Runs = append(r.Runs, nas.LoadResult{Sent: 100, Accepts: 99, Timeouts: 1, Rate: x.rate, P50: time.Millisecond, P99: x.p99, Max: 20 * time.Millisecond})
	}
	md := r.Markdown()
	for _, want := range []string{BeginMarker, EndMarker, "| 25000 [10000-30000] | 1.25 | 1.00 | 5.00 [4.00-9.00] | 20.00 | 300 | 297 | 0 | 3 | 0 |",
		"25000/s, met", "bin/radload -duration 3s -users 1000 -conns 4 -window 64 -json", "4 x 64"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	r.Runs = r.Runs[1:2]
	if md := r.Markdown(); !strings.Contains(md, "10000/s, MISSED") {
		t.Errorf("missed target not marked:\n%s", md)
	}
}
