package dp

import (
	"net/netip"
	"time"

	"samepath/nat"
)

// lbEntry is one T12 entry of the per-mobile cache (GW.lbs): the LB and
// how and when the worker learned it (worker clock, GW.Clock's base).
type lbEntry struct {
	lb      nat.MAC
	at      int64
	byEvent bool
}

// LBEntry is a mobile's T12 entry as the operator sees it (GW.LBEntry).
type LBEntry struct {
	LB nat.MAC
	// ByEvent: a session event named the LB (the NAS's Accounting-Start
	// or resume, FIG. 31); otherwise an up packet came through it.
	ByEvent bool
	// Age is how long ago the worker learned it (by the worker's clock,
	// which stands still while the worker is stopped).
	Age time.Duration
}

// LBEntry returns mobile's entry in T12's per-mobile cache. Safe from
// any goroutine (the cache is concurrent; its key is the caller's own).
// A read counts as a use in the cache's admission policy, as the
// worker's reads do. ok is false for a mobile the cache does not hold:
// never seen, its session ended, evicted, or its entry still in the
// cache's write buffers.
func (g *GW) LBEntry(mobile netip.Addr) (e LBEntry, ok bool) {
	k := mobile.As16()
	v, ok := g.lbs.Get(k[:])
	if !ok {
		return LBEntry{}, false
	}
	return LBEntry{LB: v.lb, ByEvent: v.byEvent, Age: time.Duration(max(g.Clock()-v.at, 0))}, true
}

// WaitLB waits for the cache's buffered writes to be applied (tests, and
// a view that wants the latest entries).
func (g *GW) WaitLB() { g.lbs.Wait() }
