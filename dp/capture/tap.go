package capture

import (
	"sync/atomic"
	"time"

	"samepath/dp/header"
)

// Tap is one worker's side of a Session: the filter, ready to run, and a
// single-producer single-consumer ring of records. The worker calls, for
// each batch while the tap is armed: Begin; if it returns true, Before
// for every frame of the batch in order, then (after its pipeline) After
// for k in 0..Pending()-1 in order, then Commit. None of them allocates.
type Tap struct {
	sess   *Session
	worker int
	m      *matcher
	snap   int
	recs   []record
	mask   uint64
	nports int

	// Worker-owned: written only by the worker's goroutine.
	dec      header.Decoded
	tail     uint64 // the next slot the worker publishes
	headSeen uint64 // head as the worker last read it
	in       int
	budget   int64 // frames the session still wants, as of Begin
	now      int64
	pend     []int32 // batch index of the frame in slot tail+k
	kept     int

	_    [64]byte
	pub  atomic.Uint64 // slots below are published (worker writes)
	_    [56]byte
	head atomic.Uint64   // slots below are drained (session writes)
	lost []atomic.Uint64 // per in-port: matched frames the full ring could not hold
}

// record is one captured frame: as received (before) and, if the worker
// forwarded it, as sent (after), with the verdict.
type record struct {
	ts        int64
	in, out   int
	drop      uint8
	beforeLen int
	afterLen  int
	before    []byte
	after     []byte
}

func newTap(s *Session, worker, nports int, m *matcher, snap, ring int) *Tap {
	size := 1
	for size < ring {
		size <<= 1
	}
	t := &Tap{sess: s, worker: worker, m: m, snap: snap, recs: make([]record, size), mask: uint64(size - 1),
		nports: nports, pend: make([]int32, 0, size), lost: make([]atomic.Uint64, nports)}
	for i := range t.recs {
		t.recs[i].before = make([]byte, 0, snap)
		t.recs[i].after = make([]byte, 0, snap)
	}
	return t
}

// Begin starts a batch received on port in and reports whether any of
// its frames may be taken: false when the filter wants other ports or
// the session's count is reached.
func (t *Tap) Begin(in int) bool {
	t.pend, t.kept, t.now = t.pend[:0], 0, 0
	if in < 0 || in >= t.nports {
		return false
	}
	if t.m.inPorts != 0 && (in >= 64 || t.m.inPorts&(1<<uint(in)) == 0) {
		return false
	}
	if t.budget = t.sess.remaining.Load(); t.budget <= 0 {
		return false
	}
	t.in = in
	return true
}

// Before offers frame i of the batch, as received. A frame the filter
// matches is copied (SnapLen bytes at most) into a free slot of the
// ring; with none free it is counted lost.
func (t *Tap) Before(i int, frame []byte) {
	if !t.m.drops && int64(len(t.pend)) >= t.budget {
		return // the count is reached (with Drops, only the verdict tells)
	}
	if !t.m.match(frame, &t.dec) {
		return
	}
	slot := t.tail + uint64(len(t.pend))
	if slot-t.headSeen > t.mask {
		t.headSeen = t.head.Load()
		if slot-t.headSeen > t.mask {
			t.lost[t.in].Add(1)
			return
		}
	}
	if t.now == 0 {
		t.now = time.Now().UnixNano() // once per batch, and only when a frame matched
	}
	r := &t.recs[slot&t.mask]
	r.before = append(r.before[:0], frame[:min(len(frame), t.snap)]...)
	r.beforeLen, r.in, r.ts = len(frame), t.in, t.now
	t.pend = append(t.pend, int32(i))
}

// Pending is how many frames of the batch Before took.
func (t *Tap) Pending() int { return len(t.pend) }

// Index is the batch index of the k-th frame Before took.
func (t *Tap) Index(k int) int { return int(t.pend[k]) }

// After gives the pipeline's verdict on the k-th frame Before took: out
// is its egress port (-1 or out of range: dropped), drop its drop reason
// (0: none; set with out >= 0: refused and answered), frame its bytes
// now (the rewritten frame, or the pipeline's answer).
func (t *Tap) After(k, out int, drop uint8, frame []byte) {
	if out >= t.nports {
		out = -1
	}
	if !t.m.keep(out < 0 || drop != 0, drop) {
		return
	}
	src := &t.recs[(t.tail+uint64(k))&t.mask]
	dst := &t.recs[(t.tail+uint64(t.kept))&t.mask]
	if src != dst {
		*src, *dst = *dst, *src
	}
	dst.out, dst.drop = out, drop
	dst.after, dst.afterLen = dst.after[:0], 0
	if out >= 0 {
		dst.after = append(dst.after, frame[:min(len(frame), t.snap)]...)
		dst.afterLen = len(frame)
	}
	t.kept++
}

// Commit publishes the batch's kept records to the session.
func (t *Tap) Commit() {
	if t.kept > 0 {
		t.tail += uint64(t.kept)
		t.pub.Store(t.tail)
		t.sess.remaining.Add(-int64(t.kept))
	}
	t.pend, t.kept = t.pend[:0], 0
}

// drain hands every published record to fn, on the session's goroutine,
// and frees their slots.
func (t *Tap) drain(fn func(*record) error) error {
	h, p := t.head.Load(), t.pub.Load()
	var err error
	for s := h; s < p && err == nil; s++ {
		err = fn(&t.recs[s&t.mask])
	}
	t.head.Store(p)
	return err
}

// Lost is how many matched frames received on port in the ring had no
// room for.
func (t *Tap) Lost(in int) uint64 { return t.lost[in].Load() }
