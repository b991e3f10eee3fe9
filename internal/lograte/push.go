package lograte

import (
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Pushes logs the outcomes of repeated pushes to named targets (LBs,
// gateways): the first failure of a run at once, with the HTTP status
// when the error carries one; further failures at most once per
// interval with the count held back; the first success after failures
// once. A pusher that keeps failing every back-off step thus writes a
// line a minute, not a line a retry. Safe for concurrent use.
type Pushes struct {
	log  *slog.Logger
	what string
	lim  *Limiter

	mu      sync.Mutex
	failing map[string]uint64 // failures in the current run
}

// PushLogEvery is how often a target that keeps failing is logged again.
const PushLogEvery = time.Minute

// NewPushes returns a tracker whose lines say what is pushed ("session
// event", "T4 gateway state", ...); log nil: slog.Default.
func NewPushes(log *slog.Logger, what string) *Pushes {
	if log == nil {
		log = slog.Default()
	}
	return &Pushes{log: log, what: what, lim: New(PushLogEvery, nil), failing: map[string]uint64{}}
}

// Record logs the outcome of one push to target (err nil: success);
// attrs are extra slog key-value pairs (the target's URL).
func (p *Pushes) Record(target string, err error, attrs ...any) {
	p.mu.Lock()
	n := p.failing[target]
	if err == nil {
		delete(p.failing, target)
		p.mu.Unlock()
		if n > 0 {
			p.log.Info(p.what+" push recovered", append([]any{"target", target, "failures", n}, attrs...)...)
		}
		return
	}
	p.failing[target] = n + 1
	p.mu.Unlock()
	ok, held := p.lim.Allow(target)
	if n > 0 && !ok {
		return
	}
	a := []any{"target", target, "err", err.Error()}
	var hs interface{ HTTPStatus() int }
	if errors.As(err, &hs) {
		a = append(a, "status", hs.HTTPStatus())
	}
	if n > 0 {
		a = append(a, "failures", n+1)
	}
	if held > 0 {
		a = append(a, "suppressed", held)
	}
	p.log.Warn(p.what+" push failed", append(a, attrs...)...)
}
