package dp

import (
	"sync/atomic"
	"time"
)

// RuntimeCounters are a worker's poll-loop figures beyond the per-port
// Counters, for a view like vppctl's "show runtime": how many packets
// one batch carries, what a packet costs, how much of the time the
// worker is idle. The worker writes them once per busy round (busy:
// three atomic adds and a clock read at the round's end; its start is
// the read Tick takes anyway or, without a Ticker, one at the round's
// first batch) and per idle wait, nothing per packet and nothing more
// per empty round; any goroutine reads them. Padded to its own cache
// lines. Benchmarks: BenchmarkWorkerPoll, BenchmarkRuntimeBusy.
type RuntimeCounters struct {
	// Batches counts non-empty receives: one per port per round that
	// found packets there.
	Batches atomic.Uint64
	// BusyRounds counts rounds that received or originated a frame;
	// BusyNs is their time, from the round's start to the end of its
	// transmissions (the pipeline, rewriting, sending, reclaiming).
	BusyRounds atomic.Uint64
	BusyNs     atomic.Uint64
	// Waits counts blocking waits of an idle worker (Port.Wait, Run);
	// WaitNs their time.
	Waits  atomic.Uint64
	WaitNs atomic.Uint64
	_      [64]byte
}

// busy records a busy round of batches that started at start (worker
// clock, ns; -1: not known) and ends now.
func (rt *RuntimeCounters) busy(batches int, start int64, epoch time.Time) {
	rt.Batches.Add(uint64(batches))
	rt.BusyRounds.Add(1)
	if start >= 0 {
		rt.BusyNs.Add(uint64(max(int64(time.Since(epoch))-start, 0)))
	}
}

// Runtime is a snapshot of one worker's figures (Worker.Runtime).
type Runtime struct {
	// Rounds are poll rounds (the first port's Polls: every round polls
	// every port); IdleRounds those that neither received nor
	// originated a frame.
	Rounds, IdleRounds uint64
	BusyRounds         uint64
	Batches            uint64
	// Vectors are the packets received on every port; Originated the
	// frames the pipeline made itself (Originator).
	Vectors, Originated uint64
	// Busy is the time of the busy rounds (their Tick included), Waited
	// the time blocked in idle waits, Waits how many.
	Busy, Waited time.Duration
	Waits        uint64
	Uptime       time.Duration // since the worker was made
}

// Runtime reads the worker's figures. Safe from any goroutine; the
// fields are read one by one, not at one instant.
func (w *Worker) Runtime() Runtime {
	r := Runtime{
		Batches:    w.rt.Batches.Load(),
		BusyRounds: w.rt.BusyRounds.Load(),
		Busy:       time.Duration(w.rt.BusyNs.Load()),
		Waits:      w.rt.Waits.Load(),
		Waited:     time.Duration(w.rt.WaitNs.Load()),
		Uptime:     time.Since(w.epoch),
	}
	for i := range w.counters {
		r.Vectors += w.counters[i].RxPackets.Load()
		r.Originated += w.counters[i].Originated.Load()
	}
	// Rounds is read last: a round is counted on port 0 when it starts
	// and as busy when it ends, so this never sees fewer rounds than
	// busy ones.
	r.Rounds = w.counters[0].Polls.Load()
	r.IdleRounds = r.Rounds - min(r.BusyRounds, r.Rounds)
	return r
}
