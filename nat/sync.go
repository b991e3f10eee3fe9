package nat

import (
	"errors"
	"sync/atomic"

	"samepath/ring"
)

// State sync (R-GW-9): a gateway streams the T5 bindings on its own
// addresses to the substitutes of its ranges, which install them on
// their tables' peer addresses (PortTableConfig.PeerAddrs), so that a
// substitute that takes over the addresses continues the flows with the
// same key port and server. The owner hands changes to the sync
// goroutine through a Journal, a bounded SPSC ring: the owner never
// waits, a full journal drops the change and counts it (the sync
// goroutine's periodic refresh from Snapshot repairs what it lost).

// Op is what a Change says happened to a binding.
type Op uint8

const (
	OpCreate Op = iota + 1 // created or installed
	OpChange               // its TCP state changed (or a refresh: still live)
	OpEnd                  // removed
)

// Change is one journal entry: a copy of the binding as it was, and
// the tag its owner gave it (SetTag; the gateway's accounting flow
// name, so that a peer's records of the flow carry the same).
type Change struct {
	Op  Op
	B   Binding
	Tag [2]uint64
}

// Journal is the ring of a table's changes: the table's owner produces,
// one sync goroutine consumes.
type Journal struct {
	r       *ring.SPSC[Change]
	dropped atomic.Uint64
}

// NewJournal returns a journal of size entries (a power of two).
func NewJournal(size int) (*Journal, error) {
	r, err := ring.NewSPSC[Change](size)
	if err != nil {
		return nil, err
	}
	return &Journal{r: r}, nil
}

// Drain moves up to len(c) changes into c and returns how many.
// Consumer only.
func (j *Journal) Drain(c []Change) int { return j.r.Pop(c) }

// Dropped counts changes lost to a full journal.
func (j *Journal) Dropped() uint64 { return j.dropped.Load() }

// Len is the number of changes waiting (approximate).
func (j *Journal) Len() int { return j.r.Len() }

// SetJournal makes the table record every change of a binding on one of
// its own addresses (creation, install, TCP state change, removal) in
// j. Call before the owner starts.
func (t *PortTable) SetJournal(j *Journal) { t.journal = j }

// journalOp records op for binding id if it is on an own address.
// Owner only; no allocation.
func (t *PortTable) journalOp(id uint32, op Op) {
	j := t.journal
	if j == nil || int(t.slots[id].gi) > t.nOwn {
		return
	}
	t.jbuf[0] = Change{Op: op, B: t.slots[id].b, Tag: t.slots[id].tag}
	if j.r.Push(t.jbuf[:]) == 0 {
		j.dropped.Add(1)
	}
}

// ErrPortInUse is Install's answer when the binding's key port holds
// another flow (a port the table allocated itself since it lost the
// binding, or a stale copy).
var ErrPortInUse = errors.New("port table: key port bound to another flow")

// ErrNoAddr is Install's answer for a binding on an address the table
// neither owns nor lists as a peer's.
var ErrNoAddr = errors.New("port table: not a gateway or peer address")

// IsOwn reports whether a is one of the table's own addresses.
func (t *PortTable) IsOwn(a Addr16) bool {
	gi, ok := t.gwIndex(&a)
	return ok && gi < t.nOwn
}

// IsPeer reports whether binding id is on a peer's address. Owner only.
func (t *PortTable) IsPeer(id uint32) bool {
	return int(id) < len(t.slots) && int(t.slots[id].gi) > t.nOwn
}

// Install binds b.Flow to b's own key (b.GwAddr, b.GwPort), server,
// session and service, in TCP state b.State: a binding another gateway
// made, received by state sync (on a peer address), or one of this
// table's own addresses coming back from a substitute (failback).
// Counters start at zero (each gateway accounts what it carried);
// Created and LastSeen are now. Errors: ErrExists (the flow is bound:
// the id is returned), ErrPortInUse, ErrNoAddr, ErrProto, ErrFull, and
// an out-of-range port as ErrPortInUse. Owner only; no allocation.
func (t *PortTable) Install(b *Binding, now int64) (uint32, error) {
	now = t.tick(now)
	class, ok := protoClass(b.Flow.Proto)
	if !ok {
		return 0, ErrProto
	}
	gi, ok := t.gwIndex(&b.GwAddr)
	if !ok {
		return 0, ErrNoAddr
	}
	if id, ok := t.Up(&b.Flow); ok {
		return id, ErrExists
	}
	p := int(b.GwPort) - int(t.portMin)
	if p < 0 || p >= t.nPorts {
		return 0, ErrPortInUse
	}
	ri := gi*numClasses + class
	if t.down[ri*t.nPorts+p] != 0 {
		return 0, ErrPortInUse
	}
	if len(t.free) == 0 {
		t.full.Add(1)
		return 0, ErrFull
	}
	h := uint32(hashKey(&b.Flow, t.seed))
	cell := h & t.upMask
	for t.up[cell].id != 0 {
		cell = (cell + 1) & t.upMask
	}
	if gi < t.nOwn {
		t.rings[ri].take(b.GwPort)
	}
	id := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	s := &t.slots[id]
	s.b = Binding{
		Flow: b.Flow, GwAddr: t.gw[gi], GwPort: b.GwPort,
		Server: b.Server, SPort: b.SPort, Session: b.Session, Service: b.Service,
		State: b.State, Created: now, LastSeen: now,
	}
	s.gi = uint16(gi + 1)
	s.tag = [2]uint64{}
	t.up[cell] = upEnt{h: h, id: id + 1}
	t.down[ri*t.nPorts+p] = id + 1
	s.snext, s.sprev = 0, 0
	if b.Session != 0 {
		t.sessLink(id, b.Session)
	}
	s.livePos = uint32(len(t.live))
	t.live = append(t.live, id)
	t.publishAll(id)
	if id >= t.hw.Load() {
		t.hw.Store(id + 1)
	}
	t.created.Add(1)
	t.installs.Add(1)
	t.journalOp(id, OpCreate)
	return id, nil
}

// Refresh sets binding id's TCP state to st and its LastSeen to now: a
// synced binding that its origin reports still live. Owner only.
func (t *PortTable) Refresh(id uint32, st TCPState, now int64) {
	if int(id) >= len(t.slots) || t.slots[id].gi == 0 {
		return
	}
	now = t.tick(now)
	b := &t.slots[id].b
	b.LastSeen = now
	if b.Flow.Proto == ProtoTCP && st != b.State {
		b.State = st
		t.journalOp(id, OpChange)
	}
	t.publishMutable(id)
}

// SetTag names binding id with tag (the gateway's accounting flow id)
// and, on an own address, journals it as a change, so that peers learn
// the name. Owner only.
func (t *PortTable) SetTag(id uint32, tag [2]uint64) {
	if int(id) >= len(t.slots) || t.slots[id].gi == 0 || t.slots[id].tag == tag {
		return
	}
	t.slots[id].tag = tag
	p := &t.pub[id]
	q := p.seq.Load()
	p.seq.Store(q + 1)
	t.ptag[id][0].Store(tag[0])
	t.ptag[id][1].Store(tag[1])
	p.seq.Store(q + 2)
	t.journalOp(id, OpChange)
}

// Tag returns binding id's tag. Owner only.
func (t *PortTable) Tag(id uint32) [2]uint64 {
	if int(id) >= len(t.slots) {
		return [2]uint64{}
	}
	return t.slots[id].tag
}

// Installed counts the bindings Install made. Any goroutine.
func (t *PortTable) Installed() uint64 { return t.installs.Load() }

// PeerLen counts live bindings on peer addresses (bindings held for
// others). Any goroutine; a Snapshot pass.
func (t *PortTable) PeerLen() int {
	n := 0
	t.Snapshot(func(b Binding) bool {
		if !t.IsOwn(b.GwAddr) {
			n++
		}
		return true
	})
	return n
}
