// Package lograte limits how often one kind of log line is written: the
// first event of a key is logged, later ones within the interval are
// counted and reported with the next line that is let through. It is for
// events a peer can cause at any rate (RADIUS rejects from a NAS with a
// wrong secret, a push that fails every back-off), never for packets.
// A Limiter is safe for concurrent use; it allocates one map entry per key.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets one line per key through per interval.
type Limiter struct {
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	keys  map[string]*entry
}

type entry struct {
	last       time.Time
	suppressed uint64
}

// maxKeys bounds the map: keys come from the network (a reason, a
// client address), so past it the oldest are not tracked and the next
// line of a new key always goes through.
const maxKeys = 4096

// New returns a limiter letting one line per key through every interval;
// now is the clock (nil: time.Now).
func New(every time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{every: every, now: now, keys: map[string]*entry{}}
}

// Allow says whether a line for key may be written now and, when it may,
// how many lines of key were held back since the last one.
func (l *Limiter) Allow(key string) (ok bool, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= maxKeys {
			for k, old := range l.keys { // drop the stale ones
				if t.Sub(old.last) >= l.every {
					delete(l.keys, k)
				}
			}
			if len(l.keys) >= maxKeys {
				return true, 0
			}
		}
		l.keys[key] = &entry{last: t}
		return true, 0
	}
	if t.Sub(e.last) < l.every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = t, 0
	return true, n
}
