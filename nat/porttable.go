package nat

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"
)

// Binding is one T5 record (FIGS. 22 and 32): a flow of a mobile, the
// key port the gateway gave it, and the actual server it goes to.
//
// The table writes every field; the owner reads them through the
// pointer Binding returns and must not write them.
type Binding struct {
	Flow    FlowKey  // the mobile's view: Src = mobile IP:port, Dst = representative (or real destination) IP:port
	GwAddr  Addr16   // the gateway address the key port belongs to
	GwPort  uint16   // the key: the unique source port toward the server (ICMP echo: the identifier)
	Server  Addr16   // actual server chosen (= Flow.Dst when not balanced, R-GW-3)
	SPort   uint16   // actual server port (0 for ICMP echo)
	Session uint64   // user session id (T3) the flow belongs to; 0 if none
	Service uint32   // service index (T6/T11), or 0
	State   TCPState // TCP only; TCPNone otherwise
	// Created and LastSeen are on the owner's clock (ns, see PortTable).
	Created, LastSeen int64
	// Per-direction counters (up = mobile -> server); bytes are what the
	// caller passes to Touch (whole IP packets in the gateway).
	UpPackets, UpBytes, DownPackets, DownBytes uint64
}

// PortTableConfig configures one port table (one shard, one owner).
type PortTableConfig struct {
	// GwAddrs are the gateway's own addresses that key ports are
	// allocated on, IPv4 and/or IPv6. Each address gives
	// PortMax-PortMin+1 keys per protocol (TCP, UDP, ICMP echo), so more
	// than about 64 K flows of one protocol need several addresses.
	GwAddrs []netip.Addr
	// PortMin..PortMax is the key port range (inclusive) on every
	// address. Shards of one gateway address take disjoint ranges
	// (see SplitPorts).
	PortMin, PortMax uint16
	// Capacity is the most live bindings; all memory is allocated for
	// it in NewPortTable.
	Capacity int
	// Timeouts are the idle timeouts.
	Timeouts Timeouts
	// PortReuseDelay is how long a freed key port rests before it is
	// handed out again, so late packets of the old flow never reach a
	// new one. 2 minutes: one MSL (RFC 9293); after a TCP close the port
	// is idle for TCPTimeWait + PortReuseDelay.
	PortReuseDelay time.Duration
	// PeerAddrs are other gateways' key-port addresses (state sync,
	// R-GW-9): bindings on them are only installed (Install), never
	// allocated, so that this table can carry a peer's flows when it
	// takes over the peer's addresses. Same port range as GwAddrs.
	PeerAddrs []netip.Addr
}

// MaxCapacity bounds PortTableConfig.Capacity (16 M flows, several GB).
const MaxCapacity = 1 << 24

// DefaultPortTableConfig returns ports 1024-65535, 262 144 flows, the
// RFC timeouts and a 2-minute reuse delay. GwAddrs must still be set.
func DefaultPortTableConfig() PortTableConfig {
	return PortTableConfig{
		PortMin:        1024,
		PortMax:        65535,
		Capacity:       1 << 18,
		Timeouts:       DefaultTimeouts(),
		PortReuseDelay: 2 * time.Minute,
	}
}

// Validate checks the config.
func (c PortTableConfig) Validate() error {
	if len(c.GwAddrs) == 0 {
		return errors.New("port table: no gateway address")
	}
	if len(c.GwAddrs) > 1<<16-2 {
		return fmt.Errorf("port table: %d gateway addresses, at most %d", len(c.GwAddrs), 1<<16-2)
	}
	if len(c.GwAddrs)+len(c.PeerAddrs) > 1<<16-2 {
		return fmt.Errorf("port table: %d gateway and peer addresses, at most %d", len(c.GwAddrs)+len(c.PeerAddrs), 1<<16-2)
	}
	seen := make(map[netip.Addr]bool, len(c.GwAddrs))
	for _, a := range append(append([]netip.Addr(nil), c.GwAddrs...), c.PeerAddrs...) {
		if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("port table: gateway address %q is not a unicast address without zone", a)
		}
		u := a.Unmap()
		if seen[u] {
			return fmt.Errorf("port table: gateway address %s listed twice", u)
		}
		seen[u] = true
	}
	if c.PortMin == 0 || c.PortMin > c.PortMax {
		return fmt.Errorf("port table: port range %d-%d: want 1 <= min <= max", c.PortMin, c.PortMax)
	}
	if c.Capacity < 1 || c.Capacity > MaxCapacity {
		return fmt.Errorf("port table: capacity %d: want 1..%d", c.Capacity, MaxCapacity)
	}
	if c.PortReuseDelay < 0 {
		return fmt.Errorf("port table: negative port reuse delay %v", c.PortReuseDelay)
	}
	if err := c.Timeouts.Validate(); err != nil {
		return fmt.Errorf("port table: %w", err)
	}
	return nil
}

// Errors from Create. They are sentinels (no allocation on the hot path).
var (
	ErrExhausted = errors.New("port table: no free key port") // every port of the family is bound or resting
	ErrFull      = errors.New("port table: at capacity")
	ErrExists    = errors.New("port table: flow already bound")
	ErrProto     = errors.New("port table: protocol not supported")
	ErrFamily    = errors.New("port table: no gateway address of the server's family")
)

// PortTableStats are the table's counters; Stats may be called from any
// goroutine.
type PortTableStats struct {
	Live      int               // bindings now
	Created   uint64            // bindings created (key ports allocated)
	Removed   [NumCauses]uint64 // bindings removed, by cause
	Exhausted uint64            // Create failed with ErrExhausted
	Full      uint64            // Create failed with ErrFull
}

// upEnt is one cell of the up index: the low 32 bits of the key's hash
// (its home cell is h & mask) and the binding id + 1 (0: empty).
type upEnt struct{ h, id uint32 }

// sessEnt is one cell of the session index: a session id and the first
// binding (id + 1) of its list; head 0: empty.
type sessEnt struct {
	s    uint64
	head uint32
	_    uint32
}

// slot is the owner's record of one binding: the Binding and the links
// that only the owner uses.
type slot struct {
	b            Binding
	gi           uint16    // gateway address index + 1; 0: slot free
	pubState     TCPState  // State last published
	snext, sprev uint32    // session list, id + 1
	livePos      uint32    // index in PortTable.live
	pubMark      uint32    // low bits of the packet count last published
	pubTick      uint32    // pubTickOf(clock) when last published
	tag          [2]uint64 // the owner's name for the flow, journaled with it (sync.go)
}

// pubTickOf is the republish period's number at now: about a second
// (2^30 ns). Expire republishes a binding's counters at most once per
// period, so publishing costs at most one sequence-locked write per
// active binding per second.
func pubTickOf(now int64) uint32 { return uint32(now >> 30) }

// pubWords is the size of a published binding in words.
const pubWords = 15

// pubSlot is a binding as readers see it: words written with atomic
// stores by the owner inside a sequence lock (seq odd while writing),
// read with atomic loads by readers, who retry when seq moved.
type pubSlot struct {
	seq atomic.Uint64
	w   [pubWords]atomic.Uint64
}

// PortTable is T5 for one gateway worker: the port-key NAT bindings.
//
// Ownership: one goroutine, the owner (the gateway worker polling one
// queue), is the only writer, and is the only caller of every method
// except Snapshot, Stats and Len. A gateway with several workers runs one
// table per worker (a shard) with disjoint port ranges (SplitPorts), so
// a down packet's key port names its shard.
//
// Lookups: Up finds a binding by the mobile's 5-tuple in an open
// addressing hash index (linear probing, load at most 1/2, deletion by
// backward shift, no tombstones) over a flat array of 8-byte cells that
// hold no pointer, so the GC never scans it. Down finds a binding by
// (gateway address, key port, protocol) in a flat array indexed by the
// port: no hashing at all. Bindings live in a slab preallocated for
// Capacity; ids are slab indexes, stable until the binding is removed,
// then reused.
//
// Ports: per gateway address and protocol class (TCP, UDP, ICMP echo), a
// FIFO ring of free ports (portRing) allocates in O(1) and keeps freed
// ports out of use for PortReuseDelay. A mobile's flows use the same
// gateway address while it has free ports ("paired" pooling, RFC 4787
// REQ-2), chosen by a hash of the mobile's address; a full address
// passes to the next of the family. Mapping is per flow (a unique key
// port per flow is what identifies the user session, FIG. 22), i.e.
// RFC 4787's address-and-port-dependent mapping.
//
// Clock: now is a coarse monotonic time in nanoseconds that the owner
// reads once per poll round (for instance time.Since of a start time)
// and passes to Create, Touch, Expire and DeleteSession. The table keeps
// the largest value it was given, so a clock that steps back is ignored;
// Delete stamps the freed port with that value.
//
// Readers: Snapshot and Stats run on any goroutine, never lock and never
// make the owner wait. Each slab slot has a published copy written by
// the owner inside a per-slot sequence lock with atomic words, so a
// reader copies a consistent binding or retries. The owner publishes a
// binding whole when it is created, removes it when it ends, republishes
// it when its TCP state changes (a few times per connection), and
// refreshes its counters and LastSeen when the expiry sweep visits it
// (Expire) if they changed, at most about once a second per binding;
// not on every packet: an atomic store costs about 20 ns here (an XCHG),
// against about 1 ns for the plain stores Touch does. So Snapshot sees
// bindings and their TCP states exactly, but their counters lag by up to
// one sweep pass (ceil(Len/budget) Expire calls) or about a second,
// whichever is longer.
//
// Allocation: NewPortTable allocates everything; Up, Down, Create,
// Touch, SetServer, Delete, Expire and DeleteSession allocate nothing
// (TestZeroAllocs). Speed and memory per flow: BenchmarkUp, BenchmarkDown,
// BenchmarkTouch, BenchmarkCreateDelete, BenchmarkExpire and
// BenchmarkHold1M, recorded in BENCHMARKS.md ("nat port table").
type PortTable struct {
	// Immutable after NewPortTable.
	gw      []Addr16    // own addresses, then PeerAddrs
	nOwn    int         // gw[:nOwn] are the table's own addresses
	fam     [2][]uint16 // own gateway address indexes: [0] IPv4, [1] IPv6
	portMin uint16
	nPorts  int
	delay   int64
	to      timeoutNS
	seed    uint64

	// Owner only.
	clock    int64
	slots    []slot
	free     []uint32 // stack of free slot ids
	live     []uint32 // ids of live bindings, dense
	cursor   int      // Expire's position in live
	up       []upEnt
	upMask   uint32
	down     []uint32   // (gi*numClasses+class)*nPorts + port-portMin -> id + 1
	rings    []portRing // gi*numClasses+class
	sess     []sessEnt
	sessMask uint32

	// Shared with readers.
	pub []pubSlot
	// ptag is each slot's tag (SetTag) for readers, written under the
	// slot's pub seq; apart from pub to keep a pubSlot two cache lines.
	ptag    [][2]atomic.Uint64
	hw      atomic.Uint32 // slots [0, hw) have ever been used
	created atomic.Uint64
	removed [NumCauses]atomic.Uint64
	exhaust atomic.Uint64
	full    atomic.Uint64

	// State sync (sync.go): the journal of own-address bindings' changes,
	// if set, and the owner's one-entry push buffer.
	journal  *Journal
	jbuf     [1]Change
	installs atomic.Uint64
}

// NewPortTable validates cfg and allocates a table for cfg.Capacity
// bindings.
func NewPortTable(cfg PortTableConfig) (*PortTable, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var seed [32]byte
	for i := range 4 {
		v := rand.Uint64()
		for j := range 8 {
			seed[i*8+j] = byte(v >> (8 * j))
		}
	}
	rng := rand.New(rand.NewChaCha8(seed))
	t := &PortTable{
		portMin: cfg.PortMin,
		nPorts:  int(cfg.PortMax) - int(cfg.PortMin) + 1,
		delay:   int64(cfg.PortReuseDelay),
		to:      cfg.Timeouts.ns(),
		seed:    rng.Uint64(),
		clock:   neverUsed,
	}
	for i, a := range cfg.GwAddrs {
		a = a.Unmap()
		t.gw = append(t.gw, Addr16From(a))
		f := 1
		if a.Is4() {
			f = 0
		}
		t.fam[f] = append(t.fam[f], uint16(i))
	}
	t.nOwn = len(t.gw)
	for _, a := range cfg.PeerAddrs {
		t.gw = append(t.gw, Addr16From(a.Unmap()))
	}
	n := cfg.Capacity
	t.slots = make([]slot, n)
	t.pub = make([]pubSlot, n)
	t.ptag = make([][2]atomic.Uint64, n)
	t.free = make([]uint32, n)
	for i := range t.free {
		t.free[i] = uint32(n - 1 - i) // pop gives 0, 1, 2, ...
	}
	t.live = make([]uint32, 0, n)
	upSize := 1 << bits.Len(uint(2*n-1)) // >= 2n: load <= 1/2
	t.up = make([]upEnt, upSize)
	t.upMask = uint32(upSize - 1)
	t.sess = make([]sessEnt, upSize)
	t.sessMask = t.upMask
	t.down = make([]uint32, len(t.gw)*numClasses*t.nPorts)
	t.rings = make([]portRing, len(t.gw)*numClasses)
	for i := range t.rings {
		t.rings[i] = newPortRing(cfg.PortMin, cfg.PortMax, rng)
	}
	return t, nil
}

func (t *PortTable) tick(now int64) int64 {
	if now > t.clock {
		t.clock = now
	}
	return t.clock
}

// gwIndex returns the index of gateway address a (a short linear scan:
// gateways have few addresses).
func (t *PortTable) gwIndex(a *Addr16) (int, bool) {
	for i := range t.gw {
		if t.gw[i] == *a {
			return i, true
		}
	}
	return 0, false
}

// Up returns the binding of an up packet's flow.
func (t *PortTable) Up(k *FlowKey) (id uint32, ok bool) {
	return t.UpHashed(k, t.UpHash(k))
}

// UpHash is k's hash in the up index, for UpHashed and TouchUp.
func (t *PortTable) UpHash(k *FlowKey) uint32 { return uint32(hashKey(k, t.seed)) }

// UpHashed is Up for a key whose hash the caller already has from UpHash.
func (t *PortTable) UpHashed(k *FlowKey, h uint32) (id uint32, ok bool) {
	for i := h & t.upMask; ; i = (i + 1) & t.upMask {
		e := t.up[i]
		if e.id == 0 {
			return 0, false
		}
		if e.h == h && t.slots[e.id-1].b.Flow == *k {
			return e.id - 1, true
		}
	}
}

// TouchUp loads, for each hash in hs (from UpHash), the up-index cell
// that a lookup starts at and the binding it names, and returns a value
// made from them. A caller about to look up a batch of keys calls it
// first: the loads run in tight loops with nothing between them, so with
// many flows their cache misses overlap instead of stalling one lookup
// after another. The caller keeps the result (XORs it into a field, say)
// so that the loads are not optimized away. It changes nothing.
func (t *PortTable) TouchUp(hs []uint32) uint32 {
	var acc uint32
	for _, h := range hs {
		acc ^= t.up[h&t.upMask].id
	}
	for _, h := range hs {
		if id := t.up[h&t.upMask].id; id != 0 {
			acc ^= uint32(t.slots[id-1].b.Flow.SPort)
		}
	}
	return acc
}

// Down returns the binding that owns key port gwPort of protocol proto
// on gateway address gwAddr: the lookup of a down packet by its
// destination (or, for an ICMP error, by its embedded header's source).
// The caller filters by the server (RFC 4787 address-and-port-dependent
// filtering): DownFrom does both.
func (t *PortTable) Down(gwAddr Addr16, gwPort uint16, proto uint8) (id uint32, ok bool) {
	class, ok := protoClass(proto)
	if !ok {
		return 0, false
	}
	gi, ok := t.gwIndex(&gwAddr)
	if !ok {
		return 0, false
	}
	p := int(gwPort) - int(t.portMin)
	if p < 0 || p >= t.nPorts {
		return 0, false
	}
	v := t.down[(gi*numClasses+class)*t.nPorts+p]
	if v == 0 {
		return 0, false
	}
	// The index is per class, so only ICMP and ICMPv6 (one class) can
	// differ here, and they meet in a translated (NAT64) flow: a mobile's
	// ICMPv6 echo answered by an IPv4 server's ICMP echo reply.
	return v - 1, true
}

// DownFrom is Down that also requires the packet to come from the
// binding's actual server and port.
func (t *PortTable) DownFrom(gwAddr Addr16, gwPort uint16, proto uint8, server Addr16, sport uint16) (id uint32, ok bool) {
	id, ok = t.Down(gwAddr, gwPort, proto)
	if !ok {
		return 0, false
	}
	b := &t.slots[id].b
	if b.Server != server || b.SPort != sport {
		return 0, false
	}
	return id, true
}

// Binding returns the binding id, or nil if id is not live. The pointer
// is into the slab: owner only, read only, valid until id is removed
// (Delete, DeleteSession, Expire), after which the slot may hold another
// binding.
func (t *PortTable) Binding(id uint32) *Binding {
	if int(id) >= len(t.slots) || t.slots[id].gi == 0 {
		return nil
	}
	return &t.slots[id].b
}

// Create binds flow k to a new key port and returns its id. server and
// sport are the actual server (Flow.Dst and DPort when unbalanced); the
// key port is allocated on a gateway address of the server's family,
// since the gateway talks to the server from it. Errors (all counted or
// sentinel, no allocation): ErrExists if k is bound, ErrProto for other
// than TCP, UDP and ICMP echo, ErrFamily, ErrFull at capacity,
// ErrExhausted when every port of the family is bound or resting.
func (t *PortTable) Create(k *FlowKey, server Addr16, sport uint16, session uint64, service uint32, now int64) (id uint32, err error) {
	now = t.tick(now)
	class, ok := protoClass(k.Proto)
	if !ok {
		return 0, ErrProto
	}
	f := 1
	if server.Is4() {
		f = 0
	}
	fam := t.fam[f]
	if len(fam) == 0 {
		return 0, ErrFamily
	}
	// Find k's cell (or report it bound).
	h := uint32(hashKey(k, t.seed))
	cell := h & t.upMask
	for ; t.up[cell].id != 0; cell = (cell + 1) & t.upMask {
		if e := t.up[cell]; e.h == h && t.slots[e.id-1].b.Flow == *k {
			return 0, ErrExists
		}
	}
	if len(t.free) == 0 {
		t.full.Add(1)
		return 0, ErrFull
	}
	// The mobile's preferred address first, then the rest of the family.
	s0, s1 := words(&k.Src)
	start := int(uint32(mix64(s0^s1, t.seed)) % uint32(len(fam)))
	gi, ri := -1, 0
	for j := range fam {
		g := int(fam[(start+j)%len(fam)])
		if r := g*numClasses + class; t.rings[r].ready(now, t.delay) {
			gi, ri = g, r
			break
		}
	}
	if gi < 0 {
		t.exhaust.Add(1)
		return 0, ErrExhausted
	}
	port := t.rings[ri].alloc()

	id = t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	s := &t.slots[id]
	s.b = Binding{
		Flow: *k, GwAddr: t.gw[gi], GwPort: port,
		Server: server, SPort: sport, Session: session, Service: service,
		Created: now, LastSeen: now,
	}
	s.gi = uint16(gi + 1)
	s.tag = [2]uint64{}
	t.up[cell] = upEnt{h: h, id: id + 1}
	t.down[ri*t.nPorts+int(port-t.portMin)] = id + 1
	s.snext, s.sprev = 0, 0
	if session != 0 {
		t.sessLink(id, session)
	}
	s.livePos = uint32(len(t.live))
	t.live = append(t.live, id)
	t.publishAll(id)
	if id >= t.hw.Load() {
		t.hw.Store(id + 1)
	}
	t.created.Add(1)
	t.journalOp(id, OpCreate)
	return id, nil
}

// SetServer changes binding id's actual server and port: a terminated
// connection that risk balancing moved to another server of its group
// (dp/gw_term.go), so that the flow views name the server it is on. The
// binding is republished whole, so a reader sees the old server or the
// new one, never a mix. server must be of the family of the binding's
// gateway address (the key port was allocated there for the server's
// family). It reports false, changing nothing, if id is not live or the
// family differs. Owner only; it allocates nothing.
func (t *PortTable) SetServer(id uint32, server Addr16, sport uint16) bool {
	if int(id) >= len(t.slots) || t.slots[id].gi == 0 {
		return false
	}
	b := &t.slots[id].b
	if server.Is4() != b.GwAddr.Is4() {
		return false
	}
	b.Server, b.SPort = server, sport
	t.publishAll(id)
	return true
}

// Touch accounts one packet of bytes to binding id in direction up
// (true: from the mobile), refreshes its idle timer and, for TCP,
// advances its state from the segment's flags (TCPState.Next). Owner
// only. An id out of range or of a free slot is ignored; a stale id
// whose slot was reused updates the binding that holds it now.
func (t *PortTable) Touch(id uint32, up bool, bytes int, tcpFlags uint8, now int64) {
	if int(id) >= len(t.slots) || t.slots[id].gi == 0 {
		return
	}
	if now > t.clock {
		t.clock = now
	}
	b := &t.slots[id].b
	if up {
		b.UpPackets++
		b.UpBytes += uint64(bytes)
	} else {
		b.DownPackets++
		b.DownBytes += uint64(bytes)
	}
	if now > b.LastSeen {
		b.LastSeen = now
	}
	if b.Flow.Proto == ProtoTCP {
		if st := b.State.Next(up, tcpFlags); st != b.State {
			// A few times per connection: readers see the state at once.
			b.State = st
			t.publishMutable(id)
			t.journalOp(id, OpChange)
		}
	}
}

// Delete removes binding id; its key port rests for PortReuseDelay from
// the table's clock (the latest now it was given). It reports false if
// id is not live.
func (t *PortTable) Delete(id uint32, cause Cause) bool {
	if int(id) >= len(t.slots) || t.slots[id].gi == 0 {
		return false
	}
	t.remove(id, cause)
	return true
}

// DeleteSession removes every binding of user session session (R-GW-7:
// the session ended), calling onEnd (if not nil) with each before it
// goes. It returns how many it removed. onEnd must not modify the table.
func (t *PortTable) DeleteSession(session uint64, now int64, onEnd func(b *Binding, cause Cause)) int {
	t.tick(now)
	if session == 0 {
		return 0
	}
	cell, ok := t.sessFind(session)
	if !ok {
		return 0
	}
	n := 0
	for v := t.sess[cell].head; v != 0; {
		id := v - 1
		v = t.slots[id].snext
		if onEnd != nil {
			onEnd(&t.slots[id].b, SessionEnd)
		}
		t.remove(id, SessionEnd)
		n++
	}
	return n
}

// EachOfSession calls f with the id of every binding of session (none
// for session 0). Owner only; f must not modify the table.
func (t *PortTable) EachOfSession(session uint64, f func(id uint32)) {
	if session == 0 {
		return
	}
	cell, ok := t.sessFind(session)
	if !ok {
		return
	}
	for v := t.sess[cell].head; v != 0; v = t.slots[v-1].snext {
		f(v - 1)
	}
}

// DeleteAll removes every binding with cause, calling onEnd (if not nil)
// with each before it goes, and returns how many it removed: what a
// gateway does when it stops, so that accounting closes every open flow.
// Owner only (or after the owner stopped); onEnd must not modify the
// table.
func (t *PortTable) DeleteAll(now int64, cause Cause, onEnd func(b *Binding, cause Cause)) int {
	t.tick(now)
	n := 0
	for len(t.live) > 0 {
		id := t.live[len(t.live)-1]
		if onEnd != nil {
			onEnd(&t.slots[id].b, cause)
		}
		t.remove(id, cause)
		n++
	}
	t.cursor = 0
	return n
}

// remove unlinks binding id from every index, frees its port and slot,
// and unpublishes it.
func (t *PortTable) remove(id uint32, cause Cause) {
	s := &t.slots[id]
	b := &s.b
	t.upDelete(uint32(hashKey(&b.Flow, t.seed)), id)
	class, _ := protoClass(b.Flow.Proto)
	ri := int(s.gi-1)*numClasses + class
	t.down[ri*t.nPorts+int(b.GwPort-t.portMin)] = 0
	if int(s.gi) <= t.nOwn {
		t.journalOp(id, OpEnd)
		t.rings[ri].free(b.GwPort, t.clock) // a peer address's ports are the peer's to allocate
	}
	if b.Session != 0 {
		t.sessUnlink(id, b.Session)
	}
	last := t.live[len(t.live)-1]
	t.live[s.livePos] = last
	t.slots[last].livePos = s.livePos
	t.live = t.live[:len(t.live)-1]
	t.unpublish(id)
	s.gi = 0
	t.free = append(t.free, id)
	t.removed[cause%NumCauses].Add(1)
}

// upDelete removes id (hash h) from the up index by backward shift: the
// cells after it that may move closer to their home move up, so probe
// chains stay unbroken without tombstones.
func (t *PortTable) upDelete(h, id uint32) {
	m := t.upMask
	i := h & m
	for t.up[i].id != id+1 {
		i = (i + 1) & m
	}
	for j := (i + 1) & m; ; j = (j + 1) & m {
		e := t.up[j]
		if e.id == 0 {
			break
		}
		// e may fill hole i unless its home lies cyclically in (i, j].
		if home := e.h & m; (j-home)&m >= (j-i)&m {
			t.up[i] = e
			i = j
		}
	}
	t.up[i] = upEnt{}
}

func (t *PortTable) sessHome(s uint64) uint32 { return uint32(mix64(s, t.seed)) & t.sessMask }

func (t *PortTable) sessFind(s uint64) (uint32, bool) {
	for i := t.sessHome(s); ; i = (i + 1) & t.sessMask {
		e := &t.sess[i]
		if e.head == 0 {
			return i, false
		}
		if e.s == s {
			return i, true
		}
	}
}

// sessLink puts id at the head of its session's list.
func (t *PortTable) sessLink(id uint32, s uint64) {
	cell, ok := t.sessFind(s)
	e := &t.sess[cell]
	if ok {
		t.slots[id].snext = e.head
		t.slots[e.head-1].sprev = id + 1
	} else {
		e.s = s
	}
	e.head = id + 1
}

func (t *PortTable) sessUnlink(id uint32, s uint64) {
	sl := &t.slots[id]
	if sl.snext != 0 {
		t.slots[sl.snext-1].sprev = sl.sprev
	}
	if sl.sprev != 0 {
		t.slots[sl.sprev-1].snext = sl.snext
		sl.snext, sl.sprev = 0, 0
		return
	}
	cell, _ := t.sessFind(s)
	if sl.snext != 0 {
		t.sess[cell].head = sl.snext
		sl.snext = 0
		return
	}
	// Last binding of the session: delete the cell by backward shift.
	m := t.sessMask
	i := cell
	for j := (i + 1) & m; ; j = (j + 1) & m {
		e := t.sess[j]
		if e.head == 0 {
			break
		}
		if home := t.sessHome(e.s); (j-home)&m >= (j-i)&m {
			t.sess[i] = e
			i = j
		}
	}
	t.sess[i] = sessEnt{}
}

// Published word layout (pubSlot.w); see readPub.
func word4(b *Binding, gi uint16) uint64 {
	return uint64(b.Flow.SPort) | uint64(b.Flow.DPort)<<16 | uint64(b.Flow.Proto)<<32 |
		uint64(b.State)<<40 | uint64(gi)<<48
}

func (t *PortTable) publishAll(id uint32) {
	s := &t.slots[id]
	b := &s.b
	p := &t.pub[id]
	q := p.seq.Load()
	p.seq.Store(q + 1)
	w0, w1 := words(&b.Flow.Src)
	p.w[0].Store(w0)
	p.w[1].Store(w1)
	w0, w1 = words(&b.Flow.Dst)
	p.w[2].Store(w0)
	p.w[3].Store(w1)
	p.w[4].Store(word4(b, s.gi))
	p.w[5].Store(uint64(b.GwPort) | uint64(b.SPort)<<16 | uint64(b.Service)<<32)
	w0, w1 = words(&b.Server)
	p.w[6].Store(w0)
	p.w[7].Store(w1)
	p.w[8].Store(b.Session)
	p.w[9].Store(uint64(b.Created))
	p.w[10].Store(uint64(b.LastSeen))
	p.w[11].Store(b.UpPackets)
	p.w[12].Store(b.UpBytes)
	p.w[13].Store(b.DownPackets)
	p.w[14].Store(b.DownBytes)
	t.ptag[id][0].Store(s.tag[0])
	t.ptag[id][1].Store(s.tag[1])
	p.seq.Store(q + 2)
	s.pubMark = uint32(b.UpPackets + b.DownPackets)
	s.pubState = b.State
	s.pubTick = pubTickOf(t.clock)
}

func (t *PortTable) publishMutable(id uint32) {
	s := &t.slots[id]
	b := &s.b
	p := &t.pub[id]
	q := p.seq.Load()
	p.seq.Store(q + 1)
	p.w[4].Store(word4(b, s.gi))
	p.w[10].Store(uint64(b.LastSeen))
	p.w[11].Store(b.UpPackets)
	p.w[12].Store(b.UpBytes)
	p.w[13].Store(b.DownPackets)
	p.w[14].Store(b.DownBytes)
	p.seq.Store(q + 2)
	s.pubMark = uint32(b.UpPackets + b.DownPackets)
	s.pubState = b.State
	s.pubTick = pubTickOf(t.clock)
}

func (t *PortTable) unpublish(id uint32) {
	p := &t.pub[id]
	q := p.seq.Load()
	p.seq.Store(q + 1)
	p.w[4].Store(0)
	p.seq.Store(q + 2)
}

// readPub copies published slot i; ok is false if it holds no binding.
func (t *PortTable) readPub(i uint32) (b Binding, ok bool) {
	b, _, ok = t.readPubTag(i)
	return b, ok
}

// readPubTag is readPub with the binding's tag.
func (t *PortTable) readPubTag(i uint32) (b Binding, tag [2]uint64, ok bool) {
	p := &t.pub[i]
	var w [pubWords]uint64
	for try := 0; ; try++ {
		if try > 0 && try%64 == 0 {
			runtime.Gosched() // the owner is mid-write; let it finish
		}
		q := p.seq.Load()
		if q&1 != 0 {
			continue
		}
		for j := range w {
			w[j] = p.w[j].Load()
		}
		tag = [2]uint64{t.ptag[i][0].Load(), t.ptag[i][1].Load()}
		if p.seq.Load() == q {
			break
		}
	}
	gi := uint16(w[4] >> 48)
	if gi == 0 || int(gi) > len(t.gw) {
		return Binding{}, [2]uint64{}, false
	}
	b.Flow = FlowKey{
		Src: addrFromWords(w[0], w[1]), Dst: addrFromWords(w[2], w[3]),
		SPort: uint16(w[4]), DPort: uint16(w[4] >> 16), Proto: uint8(w[4] >> 32),
	}
	b.State = TCPState(w[4] >> 40)
	b.GwAddr = t.gw[gi-1]
	b.GwPort, b.SPort, b.Service = uint16(w[5]), uint16(w[5]>>16), uint32(w[5]>>32)
	b.Server = addrFromWords(w[6], w[7])
	b.Session = w[8]
	b.Created, b.LastSeen = int64(w[9]), int64(w[10])
	b.UpPackets, b.UpBytes, b.DownPackets, b.DownBytes = w[11], w[12], w[13], w[14]
	return b, tag, true
}

// Snapshot calls f with a copy of each live binding until f returns
// false. Any goroutine; lock-free; the owner never waits for it. Each
// copy is consistent; the set is not one instant's (bindings created or
// removed meanwhile may or may not appear), and counters, LastSeen and
// State are as of the binding's last publication (see PortTable).
func (t *PortTable) Snapshot(f func(b Binding) bool) {
	t.SnapshotTags(func(b Binding, _ [2]uint64) bool { return f(b) })
}

// SnapshotTags is Snapshot with each binding's tag (SetTag), as of the
// binding's last publication: the state sync's dump and refresh carry
// the flows' accounting names with it.
func (t *PortTable) SnapshotTags(f func(b Binding, tag [2]uint64) bool) {
	n := t.hw.Load()
	for i := range n {
		if b, tag, ok := t.readPubTag(i); ok && !f(b, tag) {
			return
		}
	}
}

// Stats returns the counters. Any goroutine.
func (t *PortTable) Stats() PortTableStats {
	var s PortTableStats
	var rm uint64
	for c := range s.Removed {
		s.Removed[c] = t.removed[c].Load()
		rm += s.Removed[c]
	}
	s.Created = t.created.Load() // after Removed: Live is never negative
	s.Live = int(s.Created - rm)
	s.Exhausted = t.exhaust.Load()
	s.Full = t.full.Load()
	return s
}

// Len returns the number of live bindings. Any goroutine.
func (t *PortTable) Len() int { return t.Stats().Live }

// Capacity returns the most bindings the table holds.
func (t *PortTable) Capacity() int { return len(t.slots) }

// KeyPorts returns the key ports of one protocol class: gateway
// addresses times the port range. Flows of one class beyond it fail
// with ErrExhausted.
func (t *PortTable) KeyPorts() int { return len(t.gw) * t.nPorts }
