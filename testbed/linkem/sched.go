package linkem

import (
	"math/rand/v2"
	"time"
)

// verdicts of the scheduler.
const (
	pass = iota
	lost
	overQueue
)

// sched decides, for one direction, whether a frame is lost and when it
// leaves. It is pure (time comes in as an argument) so it is tested without
// sockets. Not safe for concurrent use: the direction's reader owns it.
type sched struct {
	cfg     Config
	rng     *rand.Rand
	txEnd   time.Time // when the rate-capped transmitter is free again
	lastDue time.Time
	ns      float64 // nanoseconds per byte at cfg.Rate
}

func newSched(c Config, stream uint64) *sched {
	s := &sched{rng: rand.New(rand.NewPCG(c.Seed, stream))}
	s.setConfig(c)
	return s
}

func (s *sched) setConfig(c Config) {
	if c.Seed != s.cfg.Seed {
		s.rng = rand.New(rand.NewPCG(c.Seed, s.rng.Uint64()))
	}
	s.cfg = c
	s.ns = 0
	if c.Rate > 0 {
		s.ns = 8e9 / float64(c.Rate)
	}
}

// decide returns the verdict for a frame of n bytes arriving at now and,
// for pass, its departure time.
func (s *sched) decide(now time.Time, n int) (int, time.Time) {
	c := &s.cfg
	if c.Loss > 0 && s.rng.Float64() < c.Loss {
		return lost, time.Time{}
	}
	sent := now
	if s.ns > 0 {
		// Token bucket: the transmitter may run up to Burst bytes ahead of
		// the clock, i.e. start may be as early as now - Burst/rate.
		start := now.Add(-time.Duration(float64(c.Burst) * s.ns))
		if s.txEnd.After(start) {
			start = s.txEnd
		}
		end := start.Add(time.Duration(float64(n) * s.ns))
		// Backlog = bytes waiting behind the transmitter at now.
		if backlog := float64(end.Sub(now)) / s.ns; backlog > float64(c.Queue) {
			return overQueue, time.Time{}
		}
		s.txEnd = end
		if end.After(now) {
			sent = end
		}
	}
	due := sent.Add(c.Delay)
	if c.Jitter > 0 {
		due = due.Add(time.Duration((s.rng.Float64()*2 - 1) * float64(c.Jitter)))
		if due.Before(sent) {
			due = sent
		}
	}
	if !c.Reorder {
		if due.Before(s.lastDue) {
			due = s.lastDue
		}
		s.lastDue = due
	}
	return pass, due
}
