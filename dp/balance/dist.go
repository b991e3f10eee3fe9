package balance

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Event tells Dist.Decide what the gateway is looking at.
type Event uint8

const (
	// FlowStart is the first up packet of a flow (TCP SYN, first UDP or
	// ICMP packet). It is also an up packet.
	FlowStart Event = iota
	// UpPacket is any further up packet of a flow.
	UpPacket
	// DownPacket is a packet from the server to the mobile (Decide
	// forwards it to Down).
	DownPacket
	// FlowEnd is the end of a flow (FIN/RST, idle timeout); Decide
	// forwards it to FlowEnd with the session's recorded server.
	FlowEnd
)

var eventNames = [...]string{"flow-start", "up", "down", "flow-end"}

func (e Event) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", uint8(e))
}

// Record is one T7 row as Snapshot reports it.
type Record struct {
	Session   uint64         `json:"session"`
	Service   uint32         `json:"service"`
	Name      string         `json:"name"` // service name ("" if the service is gone)
	Type      UnitType       `json:"type"`
	ServerIdx int            `json:"server_idx"`
	Server    netip.AddrPort `json:"server"` // zero if the index is stale
	Flows     int            `json:"flows"`  // flows started and not ended while the record lived
	Since     time.Time      `json:"since"`  // the owner's clock (SetNow) when the server was recorded
}

// DistStats are T7 counters.
type DistStats struct {
	Records  int    `json:"records"`   // live records
	Recorded uint64 `json:"recorded"`  // servers recorded (new record or overwrite)
	Released uint64 `json:"released"`  // records released (service switch, down packet, flow end, logout)
	Repicks  uint64 `json:"repicks"`   // kept server no longer usable (down, service replaced): chosen anew
	Full     uint64 `json:"full"`      // choices not recorded because the table was full
	NoServer uint64 `json:"no_server"` // Decide found no usable server (unknown service or all down)
}

// rec is one T7 record in the slab. Records of a session form a singly
// linked list; free records form the free list through next.
type rec struct {
	sess    uint64
	since   int64
	svc     uint32
	gen     uint32
	next    int32
	server  int32
	flows   int32
	typ     UnitType // the service's type when recorded
	used    bool
	pending bool // packet unit: one Acquire outstanding until the down packet
}

// slot is an entry of the session index (open addressing, linear probing,
// backward-shift deletion).
type slot struct {
	sess uint64
	head int32
	used bool
}

// ErrBadCapacity is returned by NewDist for a capacity out of range.
var ErrBadCapacity = errors.New("bad T7 capacity")

// MaxDistCapacity bounds NewDist's capacity (int32 record indexes).
const MaxDistCapacity = 1 << 28

// Dist is T7, the distribution information: per user session and
// service, the actual server chosen, recorded and released with the
// timing of FIG. 33 for the service's user session type (T11).
//
// Ownership: one goroutine (the gateway worker that owns the sessions)
// calls Decide, Down, FlowEnd, EndSession and SetNow. It reads its tables
// without locks; it takes mu only around writes (a new, changed or
// released record). Snapshot and Stats may run on any goroutine: they
// take mu, Snapshot in chunks of records so the owner waits at most one
// chunk. All memory is allocated by NewDist; the owner's calls never
// allocate.
type Dist struct {
	t   *Table
	now int64 // owner's clock, unix ns (SetNow)

	mu    sync.Mutex
	recs  []rec
	free  int32 // head of the free list, -1 when full
	slots []slot
	mask  uint64
	stats DistStats
}

// NewDist makes a T7 able to hold capacity records (one per user session
// and service).
func NewDist(t *Table, capacity int) (*Dist, error) {
	if t == nil {
		return nil, errors.New("new dist: nil table")
	}
	if capacity < 1 || capacity > MaxDistCapacity {
		return nil, fmt.Errorf("new dist: %w: %d (want 1..%d)", ErrBadCapacity, capacity, MaxDistCapacity)
	}
	n := 1
	for n < 2*capacity {
		n <<= 1
	}
	d := &Dist{t: t, recs: make([]rec, capacity), slots: make([]slot, n), mask: uint64(n - 1)}
	for i := range d.recs {
		d.recs[i].next = int32(i + 1)
	}
	d.recs[capacity-1].next = -1
	return d, nil
}

// SetNow sets the owner's clock used to stamp records (Record.Since); call
// it once per batch, never per packet.
func (d *Dist) SetNow(t time.Time) { d.now = t.UnixNano() }

func hashSess(s uint64) uint64 {
	s ^= s >> 33
	s *= 0xff51afd7ed558ccd
	s ^= s >> 33
	return s
}

// slotOf returns the index slot of sess, or -1.
func (d *Dist) slotOf(sess uint64) int {
	for i := hashSess(sess) & d.mask; ; i = (i + 1) & d.mask {
		s := &d.slots[i]
		if !s.used {
			return -1
		}
		if s.sess == sess {
			return int(i)
		}
	}
}

// find returns the record of (sess, svc) or -1, and the session's slot.
func (d *Dist) find(sess uint64, svc uint32) (r int32, sl int) {
	sl = d.slotOf(sess)
	if sl < 0 {
		return -1, -1
	}
	for r = d.slots[sl].head; r >= 0; r = d.recs[r].next {
		if d.recs[r].svc == svc {
			return r, sl
		}
	}
	return -1, sl
}

// insert adds a record for (sess, svc); -1 when full. Caller holds mu.
func (d *Dist) insert(sess uint64, sl int, s *svc, id uint32, server int) int32 {
	r := d.free
	if r < 0 {
		d.stats.Full++
		return -1
	}
	d.free = d.recs[r].next
	if sl < 0 {
		i := hashSess(sess) & d.mask
		for d.slots[i].used {
			i = (i + 1) & d.mask
		}
		d.slots[i] = slot{sess: sess, head: -1, used: true}
		sl = int(i)
	}
	d.recs[r] = rec{sess: sess, since: d.now, svc: id, gen: s.gen, next: d.slots[sl].head,
		server: int32(server), typ: s.cfg.Type, used: true}
	d.slots[sl].head = r
	d.stats.Records++
	d.stats.Recorded++
	return r
}

// set overwrites a record's server. Caller holds mu.
func (d *Dist) set(r int32, s *svc, server int) {
	x := &d.recs[r]
	x.server, x.gen, x.typ, x.since = int32(server), s.gen, s.cfg.Type, d.now
	d.stats.Recorded++
}

// remove releases record r of the session in slot sl; the slot goes when
// its last record does. Caller holds mu.
func (d *Dist) remove(sl int, r int32) {
	x := &d.recs[r]
	if x.pending {
		d.t.Release(x.svc, int(x.server))
	}
	head := &d.slots[sl].head
	for p := head; *p >= 0; p = &d.recs[*p].next {
		if *p == r {
			*p = x.next
			break
		}
	}
	*x = rec{next: d.free}
	d.free = r
	d.stats.Records--
	d.stats.Released++
	if *head < 0 {
		d.delSlot(sl)
	}
}

// delSlot deletes an index slot by backward shift (no tombstones).
func (d *Dist) delSlot(i int) {
	j := i
	for {
		j = int(uint64(j+1) & d.mask)
		s := &d.slots[j]
		if !s.used {
			break
		}
		home := int(hashSess(s.sess) & d.mask)
		// Move s into the hole at i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			d.slots[i] = *s
			i = j
		}
	}
	d.slots[i] = slot{}
}

// Decide returns the actual server for an up packet of user session sess
// to service svcID, recording and releasing T7 per the service's user
// session type (FIG. 33; steps of FIGS. 36-38):
//
//   - LoginUnit: the first up packet after login chooses and records;
//     later packets, flows and uses of other services in between keep it,
//     until EndSession (S141-S143; FIG. 41 with several services).
//   - ServiceUnit: kept while the session keeps using this service; the
//     first use of another service-unit service releases it and records a
//     new choice there (S144-S146). Using a login, packet or connection
//     unit service in between does not release it (the flowchart
//     overwrites only in the service-unit branch).
//   - PacketUnit: every up packet (FlowStart or UpPacket) chooses anew and
//     records; Down releases (S126-S127, S161-S162).
//   - ConnectionUnit: FlowStart chooses anew and records; FlowEnd of the
//     session's last open flow releases (S126-S127, S147-S148). An
//     UpPacket returns the recorded server (or a fresh, unrecorded choice).
//
// A kept server that is no longer usable (down, or the service was
// replaced) is chosen anew and recorded (failover, counted as Repicks).
// For every type but PacketUnit, FlowStart counts one active flow on the
// returned server (Table.Acquire) that FlowEnd gives back; the caller keeps
// the returned index in its flow state and passes it to FlowEnd. For
// PacketUnit one pick is outstanding per session and service until Down.
//
// DownPacket calls Down and FlowEnd calls FlowEnd with the recorded server
// (both return the recorded server). ok is false for an unknown service or
// when no server is up. Zero allocations; owner goroutine only.
func (d *Dist) Decide(sess uint64, svcID uint32, ev Event) (serverIdx int, ok bool) {
	switch ev {
	case FlowStart, UpPacket:
	case DownPacket:
		return d.down(sess, svcID)
	case FlowEnd:
		r, _ := d.find(sess, svcID)
		if r < 0 {
			return -1, false
		}
		idx := int(d.recs[r].server)
		d.FlowEnd(sess, svcID, idx)
		return idx, true
	default:
		return -1, false
	}
	s := d.t.load(svcID)
	if s == nil {
		d.noServer()
		return -1, false
	}
	start := ev == FlowStart
	r, sl := d.find(sess, svcID)
	switch s.cfg.Type {
	case PacketUnit:
		i := d.t.pick(s)
		if i < 0 {
			d.noServer()
			if r >= 0 {
				d.mu.Lock()
				d.remove(sl, r)
				d.mu.Unlock()
			}
			return -1, false
		}
		d.t.Acquire(svcID, i)
		d.mu.Lock()
		if r >= 0 {
			x := &d.recs[r]
			if x.pending {
				d.t.Release(x.svc, int(x.server))
			}
			d.set(r, s, i)
		} else {
			r = d.insert(sess, sl, s, svcID, i)
		}
		if r >= 0 {
			d.recs[r].pending = true
		} else {
			d.t.Release(svcID, i) // not recorded: nothing would give it back
		}
		d.mu.Unlock()
		return i, true

	case ConnectionUnit:
		if !start {
			if r >= 0 && d.t.usable(s, d.recs[r].gen, int(d.recs[r].server)) {
				return int(d.recs[r].server), true
			}
			i := d.t.pick(s)
			if i < 0 {
				d.noServer()
				return -1, false
			}
			return i, true
		}
		i := d.t.pick(s)
		if i < 0 {
			d.noServer()
			return -1, false
		}
		d.t.Acquire(svcID, i)
		d.mu.Lock()
		if r >= 0 {
			d.clearPending(r)
			d.set(r, s, i)
		} else {
			r = d.insert(sess, sl, s, svcID, i)
		}
		if r >= 0 {
			d.recs[r].flows++
		}
		d.mu.Unlock()
		return i, true

	default: // LoginUnit, ServiceUnit
		if r >= 0 {
			x := &d.recs[r]
			if d.t.usable(s, x.gen, int(x.server)) {
				i := int(x.server)
				if start {
					d.t.Acquire(svcID, i)
					d.mu.Lock()
					x.flows++
					d.mu.Unlock()
				}
				return i, true
			}
		}
		i := d.t.pick(s)
		if i < 0 {
			d.noServer()
			return -1, false
		}
		if start {
			d.t.Acquire(svcID, i)
		}
		d.mu.Lock()
		if r >= 0 {
			d.stats.Repicks++
			d.clearPending(r)
			d.set(r, s, i)
		} else {
			if s.cfg.Type == ServiceUnit && sl >= 0 {
				// S145-S146: another service-unit record of this session
				// is overwritten: release it.
				for o := d.slots[sl].head; o >= 0; o = d.recs[o].next {
					if d.recs[o].typ == ServiceUnit && d.recs[o].svc != svcID {
						d.remove(sl, o)
						sl = d.slotOf(sess) // the slot may have moved or gone
						break
					}
				}
			}
			r = d.insert(sess, sl, s, svcID, i)
		}
		if r >= 0 && start {
			d.recs[r].flows++
		}
		d.mu.Unlock()
		return i, true
	}
}

// clearPending gives back a packet-unit pick still outstanding on a record
// that is being reused under another type. Caller holds mu.
func (d *Dist) clearPending(r int32) {
	if x := &d.recs[r]; x.pending {
		d.t.Release(x.svc, int(x.server))
		x.pending = false
	}
}

func (d *Dist) noServer() {
	d.mu.Lock()
	d.stats.NoServer++
	d.mu.Unlock()
}

// Down handles a down packet of session sess from service svcID: a
// packet-unit record is released (S161-S162); other types keep theirs.
func (d *Dist) Down(sess uint64, svcID uint32) { d.down(sess, svcID) }

func (d *Dist) down(sess uint64, svcID uint32) (int, bool) {
	r, sl := d.find(sess, svcID)
	if r < 0 {
		return -1, false
	}
	x := &d.recs[r]
	i := int(x.server)
	if x.typ == PacketUnit {
		d.mu.Lock()
		d.remove(sl, r)
		d.mu.Unlock()
	}
	return i, true
}

// FlowEnd handles the end of a flow (FIN/RST or idle timeout) that
// Decide(FlowStart) gave serverIdx: the active-flow count goes back to the
// table, and a connection-unit record is released when the session's last
// flow to the service ends (S147-S148). Call it for every flow Decide
// started, also when the session ends. For a packet-unit service it does
// nothing (Down releases).
func (d *Dist) FlowEnd(sess uint64, svcID uint32, serverIdx int) {
	r, sl := d.find(sess, svcID)
	typ := ConnectionUnit
	if r >= 0 {
		typ = d.recs[r].typ
	} else if s := d.t.load(svcID); s != nil {
		typ = s.cfg.Type
	}
	if typ == PacketUnit {
		return
	}
	d.t.Release(svcID, serverIdx)
	if r < 0 {
		return
	}
	d.mu.Lock()
	x := &d.recs[r]
	if x.flows > 0 {
		x.flows--
	}
	if x.typ == ConnectionUnit && x.flows == 0 {
		d.remove(sl, r)
	}
	d.mu.Unlock()
}

// FlowMove moves a flow that Decide(FlowStart) counted on server from to
// server to: a terminated connection that risk balancing failed over or
// resumed on another server of the group (tcpproxy's Conn.Server). The
// active-flow count goes from one to the other, so least connections
// sees where the connection is, and the caller passes to to FlowEnd from
// then on. The T7 record is not changed: it is the session's choice for
// its next flows, which Decide checks again (a server gone down is
// chosen anew). -1 on either side skips that side (a server no longer
// listed). For a packet-unit service it does nothing, as FlowEnd.
// Zero allocations; owner goroutine only.
func (d *Dist) FlowMove(sess uint64, svcID uint32, from, to int) {
	if from == to {
		return
	}
	typ := ConnectionUnit
	if r, _ := d.find(sess, svcID); r >= 0 {
		typ = d.recs[r].typ
	} else if s := d.t.load(svcID); s != nil {
		typ = s.cfg.Type
	}
	if typ == PacketUnit {
		return
	}
	if from >= 0 {
		d.t.Release(svcID, from)
	}
	if to >= 0 {
		d.t.Acquire(svcID, to)
	}
}

// EndSession drops every record of the session (logout, FIG. 33: the
// session end notification), giving back outstanding packet-unit picks.
// Active-flow counts of flows still open come back through FlowEnd.
func (d *Dist) EndSession(sess uint64) {
	sl := d.slotOf(sess)
	if sl < 0 {
		return
	}
	d.mu.Lock()
	for d.slots[sl].used && d.slots[sl].sess == sess {
		d.remove(sl, d.slots[sl].head)
	}
	d.mu.Unlock()
}

// Lookup returns the recorded server of (sess, svcID) without changing
// anything.
func (d *Dist) Lookup(sess uint64, svcID uint32) (serverIdx int, ok bool) {
	r, _ := d.find(sess, svcID)
	if r < 0 {
		return -1, false
	}
	return int(d.recs[r].server), true
}

// Stats returns the counters; any goroutine.
func (d *Dist) Stats() DistStats {
	d.mu.Lock()
	s := d.stats
	d.mu.Unlock()
	return s
}

// snapshotChunk bounds how long Snapshot holds mu at a time.
const snapshotChunk = 1024

// Snapshot returns the live records, any goroutine. Each record is read
// consistently; the set is not one instant (the owner may change records
// between chunks).
func (d *Dist) Snapshot() []Record {
	type raw struct {
		sess          uint64
		since         int64
		svc, gen      uint32
		server, flows int32
		typ           UnitType
	}
	var rs []raw
	for base := 0; base < len(d.recs); base += snapshotChunk {
		d.mu.Lock()
		for i := base; i < min(base+snapshotChunk, len(d.recs)); i++ {
			x := &d.recs[i]
			if x.used {
				rs = append(rs, raw{x.sess, x.since, x.svc, x.gen, x.server, x.flows, x.typ})
			}
		}
		d.mu.Unlock()
	}
	out := make([]Record, len(rs))
	for i, x := range rs {
		out[i] = Record{Session: x.sess, Service: x.svc, Type: x.typ, ServerIdx: int(x.server), Flows: int(x.flows)}
		if x.since != 0 {
			out[i].Since = time.Unix(0, x.since)
		}
		if s := d.t.load(x.svc); s != nil {
			out[i].Name = s.cfg.Name
			if s.gen == x.gen && int(x.server) < len(s.servers) {
				out[i].Server = s.servers[x.server].addr
			}
		}
	}
	return out
}
