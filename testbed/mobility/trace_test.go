package mobility

import (
	"testing"
	"time"
)

// TestTraceGap checks the gap arithmetic on a made-up trace (arrivals at
// fixed instants, no clock involved).
func TestTraceGap(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tr := &Trace{}
	// Arrivals at 0, 10, 20, then a stall to 520, then 530, 540.
	for _, a := range []int{0, 10, 20, 520, 530, 540} {
		tr.at = append(tr.at, ms(a))
		tr.n = append(tr.n, int64(len(tr.n)+1)*100)
	}
	tr.got.Store(600)
	for _, tc := range []struct {
		name           string
		from, to, end  int
		wantMS         int
		wantBytesAfter int64 // Between(from, to)
	}{
		{"move inside the stall", 100, 150, 540, 420, 0},
		{"move before the stall", 5, 15, 540, 10, 100},
		{"stall begins in the window", 5, 25, 540, 500, 200},
		{"move after the stall", 525, 535, 540, 10, 100},
		{"window covers all", 0, 540, 540, 500, 500},
		{"open at the end", 535, 600, 900, 360, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tr.Gap(ms(tc.from), ms(tc.to), ms(tc.end)); got != time.Duration(tc.wantMS)*time.Millisecond {
				t.Errorf("Gap = %v, want %dms", got, tc.wantMS)
			}
			if got := tr.Between(ms(tc.from), ms(tc.to)); got != tc.wantBytesAfter {
				t.Errorf("Between = %d, want %d", got, tc.wantBytesAfter)
			}
		})
	}
	if got := (&Trace{}).Gap(ms(10), ms(20), ms(100)); got != 90*time.Millisecond {
		t.Errorf("empty trace: Gap = %v, want 90ms", got)
	}
}

// TestParseCounters reads named counters out of nft -j output (nft 1.0).
func TestParseCounters(t *testing.T) {
	js := `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "samepath_rst", "handle": 1}}, {"counter": {"family": "inet", "name": "rst_in", "table": "samepath_rst", "handle": 1, "packets": 3, "bytes": 120}}, {"counter": {"family": "inet", "name": "rst_out", "table": "samepath_rst", "handle": 2, "packets": 0, "bytes": 0}}, {"chain": {"family": "inet", "table": "samepath_rst", "name": "in", "handle": 3, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "samepath_rst", "chain": "in", "handle": 5, "expr": [{"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, "rst"]}, "right": "rst"}}, {"counter": "rst_in"}]}}]}`
	got, err := parseCounters([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["rst_in"] != 3 || got["rst_out"] != 0 {
		t.Fatalf("counters %v", got)
	}
	if _, err := parseCounters([]byte("not json")); err == nil {
		t.Fatal("no error for malformed output")
	}
}
