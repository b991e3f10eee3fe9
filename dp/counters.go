package dp

import "sync/atomic"

// Counters are one queue's packet counters. The worker that owns the queue
// is the only writer; readers (metrics, control API) load them atomically.
// The struct is padded so two queues' counters never share a cache line.
type Counters struct {
	RxPackets atomic.Uint64
	RxBytes   atomic.Uint64
	TxPackets atomic.Uint64
	TxBytes   atomic.Uint64
	Drops     [NumReasons]atomic.Uint64
	// Polls and IdlePolls count poll-loop rounds and those that found no
	// packet; their ratio is the idle ratio.
	Polls     atomic.Uint64
	IdlePolls atomic.Uint64
	// Panics counts batches whose pipeline panicked (see Worker).
	Panics atomic.Uint64
	// Originated counts frames the pipeline made itself for this port
	// (Originator), whatever became of them: sent ones are in TxPackets
	// too, refused ones in Drops.
	Originated atomic.Uint64
	// Consumed counts received packets the pipeline took in (Out
	// Consumed): delivered, not forwarded, not dropped.
	Consumed atomic.Uint64
	_        [64]byte
}

// Drop counts n packets dropped for reason r.
func (c *Counters) Drop(r Reason, n uint64) { c.Drops[r].Add(n) }

// Snapshot is a plain copy of Counters.
type Snapshot struct {
	RxPackets, RxBytes, TxPackets, TxBytes uint64
	Drops                                  [NumReasons]uint64
	Polls, IdlePolls, Panics               uint64
	Originated, Consumed                   uint64
}

// Snapshot reads every counter.
func (c *Counters) Snapshot() Snapshot {
	s := Snapshot{
		RxPackets: c.RxPackets.Load(), RxBytes: c.RxBytes.Load(),
		TxPackets: c.TxPackets.Load(), TxBytes: c.TxBytes.Load(),
		Polls: c.Polls.Load(), IdlePolls: c.IdlePolls.Load(), Panics: c.Panics.Load(),
		Originated: c.Originated.Load(), Consumed: c.Consumed.Load(),
	}
	for i := range c.Drops {
		s.Drops[i] = c.Drops[i].Load()
	}
	return s
}

// Dropped is the total of all drop counters.
func (s Snapshot) Dropped() uint64 {
	var n uint64
	for _, d := range s.Drops {
		n += d
	}
	return n
}
