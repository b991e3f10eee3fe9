package mobility

import (
	"sync"
	"sync/atomic"
	"time"
)

// Trace records when a download's bytes arrived: one entry per read that
// returned data. Add is called by the reading goroutine; Bytes, from any.
type Trace struct {
	got atomic.Int64

	mu sync.Mutex
	at []time.Time
	n  []int64 // bytes received up to and including at[i]
}

// Add records n bytes received now.
func (tr *Trace) Add(n int) {
	now := time.Now()
	total := tr.got.Add(int64(n))
	tr.mu.Lock()
	tr.at = append(tr.at, now)
	tr.n = append(tr.n, total)
	tr.mu.Unlock()
}

// Bytes is how many bytes arrived so far.
func (tr *Trace) Bytes() int64 { return tr.got.Load() }

// Last is when the last bytes arrived (zero before the first).
func (tr *Trace) Last() time.Time {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.at) == 0 {
		return time.Time{}
	}
	return tr.at[len(tr.at)-1]
}

// Gap is the longest time without received bytes around [from, to]: over
// every interval between two arrivals that ends after from and starts
// before to, its length from the later of its start and from. Clipping
// at from leaves out a stall that began before (an LB killed before the
// move that cures it). An interval still open (nothing arrived after to)
// counts up to end, when the download ended or was given up.
func (tr *Trace) Gap(from, to, end time.Time) time.Duration {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var longest time.Duration
	span := func(a, b time.Time) {
		if !b.After(from) || !a.Before(to) {
			return
		}
		if a.Before(from) {
			a = from
		}
		longest = max(longest, b.Sub(a))
	}
	for i := 1; i < len(tr.at); i++ {
		span(tr.at[i-1], tr.at[i])
	}
	if k := len(tr.at); k == 0 {
		span(from, end)
	} else if tr.at[k-1].Before(to) {
		span(tr.at[k-1], end)
	}
	return longest
}

// Between is how many bytes arrived after a and up to b.
func (tr *Trace) Between(a, b time.Time) int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var before, upto int64
	for i, t := range tr.at {
		if !t.After(a) {
			before = tr.n[i]
		}
		if !t.After(b) {
			upto = tr.n[i]
		}
	}
	return upto - before
}
