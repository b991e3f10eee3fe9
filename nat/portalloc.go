package nat

import (
	"fmt"
	"math/rand/v2"
)

// portRing hands out the key ports of one (gateway address, protocol
// class) in O(1). It is a FIFO of free ports with the time each was
// freed: Alloc takes the head only if it has rested for the reuse delay,
// Free appends at the tail. Because the table's clock never goes back,
// the ring is ordered by free time, so when the head is still resting
// every other free port is too, and no port is handed out again before
// the delay has passed.
//
// Every port of the range is either in the ring or bound to exactly one
// live binding, so the ring never overflows; Free of a port that is
// already free is a caller bug that the table never makes (the reference
// model test checks it).
//
// Memory: 10 bytes per port (2 for the port, 8 for its free time),
// allocated once.
type portRing struct {
	ports []uint16
	freed []int64 // ns on the table's clock; neverUsed for ports not yet handed out
	head  int     // index of the oldest free port
	n     int     // free ports in the ring
	lo    uint16
	// held marks ports that are still in the ring but bound by Install
	// (state sync); they are skipped when they reach the head. Indexed
	// by port-lo; nil until the first take.
	held []bool
}

const neverUsed = -1 << 62

// newPortRing returns a ring holding every port of [lo, hi] in an order
// shuffled by rng (RFC 6056: external ports should not be guessable).
func newPortRing(lo, hi uint16, rng *rand.Rand) portRing {
	size := int(hi) - int(lo) + 1
	r := portRing{ports: make([]uint16, size), freed: make([]int64, size), n: size, lo: lo}
	for i := range r.ports {
		r.ports[i] = lo + uint16(i)
		r.freed[i] = neverUsed
	}
	rng.Shuffle(size, func(i, j int) { r.ports[i], r.ports[j] = r.ports[j], r.ports[i] })
	return r
}

// ready reports whether a port can be handed out at now. Held ports
// at the head leave the ring here: their binding has them.
func (r *portRing) ready(now, delay int64) bool {
	for r.held != nil && r.n > 0 && r.held[r.ports[r.head]-r.lo] {
		r.held[r.ports[r.head]-r.lo] = false
		r.alloc()
	}
	return r.n > 0 && r.freed[r.head] <= now-delay
}

// take marks free port p as bound by an installed binding (state sync):
// it stays in the ring until it reaches the head (ready drops it there),
// so taking is O(1). The caller knows p is free (its down cell is empty).
func (r *portRing) take(p uint16) {
	if r.held == nil {
		r.held = make([]bool, len(r.ports))
	}
	r.held[p-r.lo] = true
}

// alloc takes the head; call only after ready returned true.
func (r *portRing) alloc() uint16 {
	p := r.ports[r.head]
	r.head++
	if r.head == len(r.ports) {
		r.head = 0
	}
	r.n--
	return p
}

// free appends p, freed at now. A held port never left the ring: it
// is only unmarked (so it may be handed out again without resting).
func (r *portRing) free(p uint16, now int64) {
	if r.held != nil && r.held[p-r.lo] {
		r.held[p-r.lo] = false
		return
	}
	i := r.head + r.n
	if i >= len(r.ports) {
		i -= len(r.ports)
	}
	r.ports[i] = p
	r.freed[i] = now
	r.n++
}

// resting returns how many free ports are still within the reuse delay
// at now (a linear scan from the tail; control path only).
func (r *portRing) resting(now, delay int64) int {
	c := 0
	for k := r.n - 1; k >= 0; k-- {
		i := r.head + k
		if i >= len(r.ports) {
			i -= len(r.ports)
		}
		if r.freed[i] <= now-delay {
			break
		}
		c++
	}
	return c
}

// SplitPorts divides the port range [lo, hi] into n contiguous, disjoint
// ranges of nearly equal size, one per shard (one port table per
// gateway worker), so that a key port names the shard that owns it.
func SplitPorts(lo, hi uint16, n int) ([][2]uint16, error) {
	size := int(hi) - int(lo) + 1
	if lo == 0 || size < 1 || n < 1 || n > size {
		return nil, fmt.Errorf("split ports %d-%d into %d: want 1 <= lo <= hi and 1 <= n <= hi-lo+1", lo, hi, n)
	}
	out := make([][2]uint16, n)
	start := int(lo)
	for i := range out {
		k := size / n
		if i < size%n {
			k++
		}
		out[i] = [2]uint16{uint16(start), uint16(start + k - 1)}
		start += k
	}
	return out, nil
}
