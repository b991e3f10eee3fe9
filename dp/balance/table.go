package balance

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Key is the packed T6/T11 lookup key: representative IP (IPv4 as
// IPv4-mapped IPv6, as netip.Addr.As16 gives it), port and protocol.
// No pointers, so lookups hash 19 bytes and never allocate.
type Key struct {
	Addr  [16]byte
	Port  uint16
	Proto uint8
}

// KeyOf packs a representative address.
func KeyOf(rep netip.AddrPort, proto uint8) Key {
	return Key{Addr: rep.Addr().As16(), Port: rep.Port(), Proto: proto}
}

// Errors of the control path.
var (
	ErrNoService = errors.New("no such service")
	ErrNoServer  = errors.New("no such server in service")
	ErrConflict  = errors.New("representative address already used by another service")
)

// unknownLoad marks a server without a valid agent report.
var unknownLoad = math.Float64bits(-1)

// srvState is the runtime state of one actual server that survives
// snapshot swaps (carried over by address when a service is replaced).
// Written with atomics from any goroutine; padded so two servers' hot
// counters never share a cache line.
type srvState struct {
	conns atomic.Int64  // active flows (Acquire/Release)
	rtt   atomic.Int64  // EWMA of probe RTT in ns; 0 = no sample yet
	load  atomic.Uint64 // float64 bits of CPU percent; unknownLoad = none
	picks atomic.Uint64 // new choices of this server
	fails atomic.Uint64 // failed health checks (Prober)
	_     [24]byte
}

func newSrvState() *srvState {
	s := &srvState{}
	s.load.Store(unknownLoad)
	return s
}

// svcCounter holds the rotation counters of one service; shared by all
// snapshots of the service so a state change does not restart the cycle.
type svcCounter struct {
	rr  atomic.Uint64 // round robin position, also the tie-break rotation of lc/fastest/cpu
	wrr atomic.Uint64 // position in the smooth WRR cycle
	_   [48]byte
}

// server is the immutable (per snapshot) part of an actual server.
type server struct {
	addr    netip.AddrPort
	a16     [16]byte
	weight  int
	admin   AdminState // operator's state (Server.Up, Server.Drain; SetAdmin)
	healthy bool       // Prober's state (true until a probe says otherwise)
	st      *srvState
}

func (s *server) up() bool { return s.admin == AdminUp && s.healthy }

// svc is one service in a snapshot; immutable once published.
type svc struct {
	cfg     ServiceConfig // Servers not maintained here: see servers
	key     Key
	gen     uint32 // changes when the server list changes (indexes move)
	servers []server
	up      []uint16 // indexes of servers in state up, ascending
	wrr     []uint16 // one smooth WRR cycle over up
	ctr     *svcCounter
}

// finish recomputes the derived lists after a change.
func (s *svc) finish() {
	s.up = s.up[:0:0]
	var w []int
	for i := range s.servers {
		if s.servers[i].up() {
			s.up = append(s.up, uint16(i))
			w = append(w, s.servers[i].weight)
		}
	}
	s.wrr = smoothWRR(s.up, w)
}

// index is one immutable snapshot of the whole table.
type index struct {
	byKey  map[Key]uint32
	byName map[string]uint32
	byAddr map[[16]byte][]uint32 // representative address -> its services, ascending
	svcs   []*svc                // by service index; nil = free slot
}

// Table is T6 joined with T11: representative address -> service (user
// session type, policy, server group). Readers (Lookup, Pick, Acquire,
// Observe*) never lock: they load an immutable snapshot through an atomic
// pointer and touch only atomics. Writers (Put, Delete, Set*) serialize on
// a mutex and publish a copied snapshot. A service keeps its index for its
// whole life; an index freed by Delete is reused by a later Put, with a new
// generation so stale T7 records are noticed (see Dist).
type Table struct {
	mu      sync.Mutex // writers only
	cur     atomic.Pointer[index]
	nextGen uint32
	choices [NumPolicies]atomic.Uint64
}

// NewTable builds a table from service rows; names and representative
// keys must be unique.
func NewTable(svcs []ServiceConfig) (*Table, error) {
	t := &Table{}
	t.cur.Store(&index{byKey: map[Key]uint32{}, byName: map[string]uint32{}, byAddr: map[[16]byte][]uint32{}})
	for i := range svcs {
		if _, err := t.Put(svcs[i]); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *Table) load(id uint32) *svc {
	ix := t.cur.Load()
	if int(id) >= len(ix.svcs) {
		return nil
	}
	return ix.svcs[id]
}

// Lookup finds the service of a representative address; rep is a 16-byte
// address (IPv4-mapped for IPv4). Zero allocations.
func (t *Table) Lookup(rep [16]byte, port uint16, proto uint8) (svcID uint32, ok bool) {
	id, ok := t.cur.Load().byKey[Key{Addr: rep, Port: port, Proto: proto}]
	return id, ok
}

// LookupAddrPort is Lookup for a netip.AddrPort.
func (t *Table) LookupAddrPort(rep netip.AddrPort, proto uint8) (uint32, bool) {
	id, ok := t.cur.Load().byKey[KeyOf(rep, proto)]
	return id, ok
}

// LookupAddr finds the service that answers for a representative address
// as a whole, for packets that name no port (ICMP echo): the first
// service at that address, in service index order, with a server in state
// up, or the first one when none has. Zero allocations.
func (t *Table) LookupAddr(rep [16]byte) (svcID uint32, ok bool) {
	ix := t.cur.Load()
	ids := ix.byAddr[rep]
	if len(ids) == 0 {
		return 0, false
	}
	for _, id := range ids {
		if len(ix.svcs[id].up) > 0 {
			return id, true
		}
	}
	return ids[0], true
}

// Type returns the user session type of a service (T11).
func (t *Table) Type(svcID uint32) (UnitType, bool) {
	s := t.load(svcID)
	if s == nil {
		return 0, false
	}
	return s.cfg.Type, true
}

// Mode returns a service's T11 mode.
func (t *Table) Mode(svcID uint32) (Mode, bool) {
	s := t.load(svcID)
	if s == nil {
		return 0, false
	}
	return s.cfg.Mode, true
}

// Labels returns a service's name and T9 service type (no allocation:
// the strings are the table's own).
func (t *Table) Labels(svcID uint32) (name, serviceType string, ok bool) {
	s := t.load(svcID)
	if s == nil {
		return "", "", false
	}
	return s.cfg.Name, s.cfg.ServiceType, true
}

// Pick chooses a server for a new user session record by the service's
// policy among servers in state up, counts the choice, and returns the
// server and its index. ok is false for an unknown service or when every
// server is down. Safe from any goroutine; zero allocations.
func (t *Table) Pick(svcID uint32) (server netip.AddrPort, serverIdx int, ok bool) {
	s := t.load(svcID)
	if s == nil {
		return netip.AddrPort{}, -1, false
	}
	i := t.pick(s)
	if i < 0 {
		return netip.AddrPort{}, -1, false
	}
	return s.servers[i].addr, i, true
}

// pick implements the policies on one snapshot of a service.
func (t *Table) pick(s *svc) int {
	n := len(s.up)
	if n == 0 {
		return -1
	}
	var best int
	switch s.cfg.Policy {
	case WeightedRoundRobin:
		p := s.ctr.wrr.Add(1) - 1
		best = int(s.wrr[p%uint64(len(s.wrr))])
	case LeastConn, FastestResponse, CPULoad:
		start := int((s.ctr.rr.Add(1) - 1) % uint64(n))
		best = int(s.up[start])
		for j := 1; j < n; j++ {
			i := int(s.up[(start+j)%n])
			if s.better(i, best) {
				best = i
			}
		}
	default: // RoundRobin
		best = int(s.up[(s.ctr.rr.Add(1)-1)%uint64(n)])
	}
	t.choices[s.cfg.Policy].Add(1)
	s.servers[best].st.picks.Add(1)
	return best
}

// better reports whether server a is strictly better than b under the
// service's (non round robin) policy.
func (s *svc) better(a, b int) bool {
	sa, sb := &s.servers[a], &s.servers[b]
	switch s.cfg.Policy {
	case LeastConn:
		// conns/weight smaller, compared without division.
		ca, cb := max(sa.st.conns.Load(), 0), max(sb.st.conns.Load(), 0)
		return ca*int64(sb.weight) < cb*int64(sa.weight)
	case FastestResponse:
		return rttKey(sa.st.rtt.Load()) < rttKey(sb.st.rtt.Load())
	default: // CPULoad
		return loadKey(sa.st.load.Load()) < loadKey(sb.st.load.Load())
	}
}

// rttKey orders unmeasured servers after every measured one.
func rttKey(ns int64) int64 {
	if ns <= 0 {
		return math.MaxInt64
	}
	return ns
}

// loadKey orders servers without a report after every reporting one.
func loadKey(bits uint64) float64 {
	if bits == unknownLoad {
		return math.Inf(1)
	}
	return math.Float64frombits(bits)
}

// usable reports whether a T7 record (server index of generation gen) may
// still be used: same service generation and the server is up.
func (t *Table) usable(s *svc, gen uint32, idx int) bool {
	return s.gen == gen && idx >= 0 && idx < len(s.servers) && s.servers[idx].up()
}

// Server returns a server's address by index, and whether it is up.
func (t *Table) Server(svcID uint32, serverIdx int) (addr netip.AddrPort, up bool, ok bool) {
	s := t.load(svcID)
	if s == nil || serverIdx < 0 || serverIdx >= len(s.servers) {
		return netip.AddrPort{}, false, false
	}
	v := &s.servers[serverIdx]
	return v.addr, v.up(), true
}

// Server16 is Server in packed form for the rewrite path: 16-byte address
// (IPv4-mapped for IPv4) and port.
func (t *Table) Server16(svcID uint32, serverIdx int) (addr [16]byte, port uint16, ok bool) {
	s := t.load(svcID)
	if s == nil || serverIdx < 0 || serverIdx >= len(s.servers) {
		return addr, 0, false
	}
	return s.servers[serverIdx].a16, s.servers[serverIdx].addr.Port(), true
}

// HasServer reports whether addr:port is one of the service's actual
// servers (the down filter of packet-unit flows, which send each up
// packet to a new choice and accept the answer of any).
func (t *Table) HasServer(svcID uint32, addr [16]byte, port uint16) bool {
	s := t.load(svcID)
	if s == nil {
		return false
	}
	for i := range s.servers {
		if s.servers[i].a16 == addr && s.servers[i].addr.Port() == port {
			return true
		}
	}
	return false
}

func (t *Table) state(svcID uint32, serverIdx int) *srvState {
	s := t.load(svcID)
	if s == nil || serverIdx < 0 || serverIdx >= len(s.servers) {
		return nil
	}
	return s.servers[serverIdx].st
}

// Acquire counts one more active flow on a server (least-conn).
func (t *Table) Acquire(svcID uint32, serverIdx int) {
	if st := t.state(svcID, serverIdx); st != nil {
		st.conns.Add(1)
	}
}

// Release counts one flow less; the count never goes below zero (a
// release after the server list changed cannot corrupt it).
func (t *Table) Release(svcID uint32, serverIdx int) {
	st := t.state(svcID, serverIdx)
	if st == nil {
		return
	}
	for {
		c := st.conns.Load()
		if c <= 0 || st.conns.CompareAndSwap(c, c-1) {
			return
		}
	}
}

// rttShift sets the EWMA weight of a new RTT sample to 1/4.
const rttShift = 2

// ObserveRTT feeds one health-probe RTT into the server's EWMA (fastest
// response policy).
func (t *Table) ObserveRTT(svcID uint32, serverIdx int, d time.Duration) {
	if st := t.state(svcID, serverIdx); st != nil {
		st.observeRTT(d)
	}
}

func (st *srvState) observeRTT(d time.Duration) {
	ns := max(int64(d), 1)
	for {
		old := st.rtt.Load()
		v := ns
		if old > 0 {
			v = old + (ns-old)>>rttShift
			v = max(v, 1)
		}
		if st.rtt.CompareAndSwap(old, v) {
			return
		}
	}
}

// ObserveLoad records a server's CPU load in percent (CPULoad policy). A
// negative or NaN value marks the load unknown: such servers are chosen
// only when no server of the group has a report.
func (t *Table) ObserveLoad(svcID uint32, serverIdx int, cpuPercent float64) {
	if st := t.state(svcID, serverIdx); st != nil {
		st.observeLoad(cpuPercent)
	}
}

func (st *srvState) observeLoad(cpu float64) {
	if math.IsNaN(cpu) || cpu < 0 {
		st.load.Store(unknownLoad)
		return
	}
	st.load.Store(math.Float64bits(cpu))
}

// Choices returns the number of new choices made per policy.
func (t *Table) Choices() [NumPolicies]uint64 {
	var c [NumPolicies]uint64
	for i := range c {
		c[i] = t.choices[i].Load()
	}
	return c
}

// ID returns a service's index by name.
func (t *Table) ID(name string) (uint32, bool) {
	id, ok := t.cur.Load().byName[name]
	return id, ok
}

// Put adds a service or replaces the one with the same name, and returns
// its index (unchanged on replace). Servers kept across a replace (same
// address) keep their flow counts, RTT, load and health; indexes of
// records made before a replace are invalidated (new generation).
func (t *Table) Put(c ServiceConfig) (uint32, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.cur.Load()
	key := KeyOf(c.Rep, c.Proto)
	id, exists := old.byName[c.Name]
	if other, ok := old.byKey[key]; ok && (!exists || other != id) {
		return 0, fmt.Errorf("put service %q: %w: %s %v/%d", c.Name, ErrConflict, old.svcs[other].cfg.Name, c.Rep, c.Proto)
	}
	t.nextGen++
	ns := &svc{cfg: c, key: key, gen: t.nextGen, ctr: &svcCounter{}}
	ns.cfg.Servers = nil
	var prev map[netip.AddrPort]*server
	if exists {
		ps := old.svcs[id]
		ns.ctr = ps.ctr
		prev = make(map[netip.AddrPort]*server, len(ps.servers))
		for i := range ps.servers {
			prev[ps.servers[i].addr] = &ps.servers[i]
		}
	}
	ns.servers = make([]server, len(c.Servers))
	for i, s := range c.Servers {
		w := s.Weight
		if w == 0 {
			w = 1
		}
		ns.servers[i] = server{addr: s.Addr, a16: s.Addr.Addr().As16(), weight: w, admin: adminOf(s), healthy: true}
		if p := prev[s.Addr]; p != nil {
			ns.servers[i].st, ns.servers[i].healthy = p.st, p.healthy
		} else {
			ns.servers[i].st = newSrvState()
		}
	}
	ns.finish()

	ix := &index{svcs: slices.Clone(old.svcs)}
	if !exists {
		id = uint32(len(ix.svcs))
		for i, s := range ix.svcs {
			if s == nil {
				id = uint32(i)
				break
			}
		}
		if int(id) == len(ix.svcs) {
			ix.svcs = append(ix.svcs, nil)
		}
	}
	ix.svcs[id] = ns
	ix.rebuild()
	t.cur.Store(ix)
	return id, nil
}

func (ix *index) rebuild() {
	ix.byKey = make(map[Key]uint32, len(ix.svcs))
	ix.byName = make(map[string]uint32, len(ix.svcs))
	ix.byAddr = make(map[[16]byte][]uint32, len(ix.svcs))
	for i, s := range ix.svcs {
		if s != nil {
			ix.byKey[s.key] = uint32(i)
			ix.byName[s.cfg.Name] = uint32(i)
			ix.byAddr[s.key.Addr] = append(ix.byAddr[s.key.Addr], uint32(i))
		}
	}
}

// Delete removes a service. Its index may be reused by a later Put.
func (t *Table) Delete(name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.cur.Load()
	id, ok := old.byName[name]
	if !ok {
		return fmt.Errorf("delete service %q: %w", name, ErrNoService)
	}
	ix := &index{svcs: slices.Clone(old.svcs)}
	ix.svcs[id] = nil
	for len(ix.svcs) > 0 && ix.svcs[len(ix.svcs)-1] == nil {
		ix.svcs = ix.svcs[:len(ix.svcs)-1]
	}
	ix.rebuild()
	t.cur.Store(ix)
	return nil
}

// modify applies f to a copy of a service and publishes it; indexes and
// generation stay, so T7 records remain valid.
func (t *Table) modify(name, what string, f func(s *svc) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.cur.Load()
	id, ok := old.byName[name]
	if !ok {
		return fmt.Errorf("%s: service %q: %w", what, name, ErrNoService)
	}
	ns := *old.svcs[id]
	ns.servers = slices.Clone(ns.servers)
	if err := f(&ns); err != nil {
		return fmt.Errorf("%s: service %q: %w", what, name, err)
	}
	ns.finish()
	ix := &index{byKey: old.byKey, byName: old.byName, byAddr: old.byAddr, svcs: slices.Clone(old.svcs)}
	ix.svcs[id] = &ns
	t.cur.Store(ix)
	return nil
}

func (s *svc) find(addr netip.AddrPort) (*server, error) {
	for i := range s.servers {
		if s.servers[i].addr == addr {
			return &s.servers[i], nil
		}
	}
	return nil, fmt.Errorf("%w: %v", ErrNoServer, addr)
}

// SetPolicy changes a service's policy at run time; records already made
// stay.
func (t *Table) SetPolicy(name string, p Policy) error {
	if p >= NumPolicies {
		return fmt.Errorf("set policy: %w: %d", ErrBadPolicy, uint8(p))
	}
	return t.modify(name, "set policy", func(s *svc) error { s.cfg.Policy = p; return nil })
}

// SetServerState sets a server's administrative state to up or, with
// up false, maint (see SetAdmin).
func (t *Table) SetServerState(name string, addr netip.AddrPort, up bool) error {
	return t.modify(name, "set server state", func(s *svc) error {
		v, err := s.find(addr)
		if err == nil {
			v.admin = AdminMaint
			if up {
				v.admin = AdminUp
			}
		}
		return err
	})
}

// SetServerHealth sets a server's health state; the Prober calls it on
// every transition. A server is chosen only when administratively up and
// healthy.
func (t *Table) SetServerHealth(name string, addr netip.AddrPort, healthy bool) error {
	return t.modify(name, "set server health", func(s *svc) error {
		v, err := s.find(addr)
		if err == nil {
			v.healthy = healthy
		}
		return err
	})
}

// SetWeight sets a server's weight (1..MaxWeight).
func (t *Table) SetWeight(name string, addr netip.AddrPort, w int) error {
	if w < 1 || w > MaxWeight {
		return fmt.Errorf("set weight %d: %w: want 1..%d", w, ErrBadConfig, MaxWeight)
	}
	return t.modify(name, "set weight", func(s *svc) error {
		v, err := s.find(addr)
		if err == nil {
			v.weight = w
		}
		return err
	})
}

// Services returns the rows as configured now (administrative Up,
// current weights and policies), ordered by index.
func (t *Table) Services() []ServiceConfig {
	ix := t.cur.Load()
	var out []ServiceConfig
	for _, s := range ix.svcs {
		if s == nil {
			continue
		}
		c := s.cfg
		c.Servers = make([]Server, len(s.servers))
		for i, v := range s.servers {
			c.Servers[i] = Server{Addr: v.addr, Weight: v.weight, Up: v.admin != AdminMaint, Drain: v.admin == AdminDrain}
		}
		out = append(out, c)
	}
	return out
}

// ServerStatus is the run-time view of one server.
type ServerStatus struct {
	Addr    netip.AddrPort `json:"addr"`
	Weight  int            `json:"weight"`
	Up      bool           `json:"up"`      // administrative state is not maint (up or draining)
	Admin   AdminState     `json:"admin"`   // administrative state
	Healthy bool           `json:"healthy"` // health checks
	Conns   int64          `json:"conns"`
	RTT     time.Duration  `json:"rtt_ns"`   // EWMA; 0 = no sample
	Load    float64        `json:"cpu_load"` // percent; -1 = unknown
	Picks   uint64         `json:"picks"`    // new choices of this server
	// Failures counts failed health checks (each one, before Fall damps them).
	Failures uint64 `json:"check_failures"`
}

// ServiceStatus is the run-time view of one service, for the control API
// and metrics.
type ServiceStatus struct {
	ID      uint32         `json:"id"`
	Name    string         `json:"name"`
	Rep     netip.AddrPort `json:"rep"`
	Proto   uint8          `json:"proto"`
	Type    UnitType       `json:"type"`
	Policy  Policy         `json:"policy"`
	Servers []ServerStatus `json:"servers"`
}

// Status returns every service with its servers' run-time state.
func (t *Table) Status() []ServiceStatus {
	ix := t.cur.Load()
	var out []ServiceStatus
	for id, s := range ix.svcs {
		if s == nil {
			continue
		}
		st := ServiceStatus{ID: uint32(id), Name: s.cfg.Name, Rep: s.cfg.Rep, Proto: s.cfg.Proto, Type: s.cfg.Type, Policy: s.cfg.Policy}
		for _, v := range s.servers {
			l := loadKey(v.st.load.Load())
			if math.IsInf(l, 1) {
				l = -1
			}
			st.Servers = append(st.Servers, ServerStatus{
				Addr: v.addr, Weight: v.weight, Up: v.admin != AdminMaint, Admin: v.admin, Healthy: v.healthy,
				Conns: v.st.conns.Load(), RTT: time.Duration(v.st.rtt.Load()), Load: l, Picks: v.st.picks.Load(), Failures: v.st.fails.Load(),
			})
		}
		out = append(out, st)
	}
	return out
}
