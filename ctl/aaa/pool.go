package aaa

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"samepath/ctl/store"
)

// Administrative and health states of a gateway.
const (
	AdminUp    = "up"    // assign addresses, LBs may send traffic
	AdminDrain = "drain" // no new assignments, existing sessions stay
	AdminDown  = "down"  // no new assignments, LBs told the gateway is down

	HealthUp      = "up"
	HealthDown    = "down"
	HealthUnknown = "unknown" // not probed (no API URL) or not yet decided: treated as up
)

// Assignment refusal reasons, sent in Reply-Message.
var (
	ErrNoHealthyGateway = errors.New("no healthy gateway accepts new sessions")
	ErrRangesFull       = errors.New("address ranges of all healthy gateways are full")
	ErrAddressConflict  = errors.New("address is assigned to another device")
	ErrNotInRange       = errors.New("address is in no gateway's range")
)

// Persister is where the tables write their changes (a *store.Store).
type Persister interface {
	Enqueue(ops []store.Op, log [][]byte, onCommit func()) uint64
}

// GatewayConfig is the configured part of a T1 row (persisted).
type GatewayConfig struct {
	Name  string `json:"name" yaml:"name"`
	Range string `json:"range" yaml:"range"`           // IPv4 CIDR of mobile addresses served by this gateway
	API   string `json:"api,omitempty" yaml:"api"`     // samepathd control API of the gateway (health probe, session events)
	MAC   string `json:"mac,omitempty" yaml:"mac"`     // MAC the LBs' T4 know the gateway by
	Admin string `json:"admin,omitempty" yaml:"admin"` // up (default), drain, down
}

// Gateway is a T1 row as shown (FIG. 7).
type Gateway struct {
	GatewayConfig
	Health   string `json:"health"`
	Assigned int    `json:"assigned"`
	Size     int    `json:"size"`
}

// Assignment is one assigned address.
type Assignment struct {
	IP      netip.Addr `json:"ip"`
	Gateway string     `json:"gateway"`
	Device  string     `json:"device"`
	User    string     `json:"user,omitempty"`
	// Bound is true while a session (T3) uses the address; Session names it.
	Bound   bool   `json:"bound"`
	Session string `json:"session,omitempty"`
	// PendingUntil: an unbound assignment is reclaimed after this time.
	PendingUntil time.Time `json:"pending_until,omitzero"`
	Since        time.Time `json:"since"`
	// Gen counts authentications and bindings of this assignment; a session
	// releases the address only if nothing happened to it since it bound.
	Gen uint64 `json:"gen"`

	seq       uint64    // store sequence of the last write of this record
	persisted time.Time // PendingUntil as last written
}

type gwEntry struct {
	cfg      GatewayConfig
	prefix   netip.Prefix
	base     uint32
	used     []uint64 // bitmap over the range; reserved addresses set
	size     int      // usable addresses
	assigned int
	cursor   int
	health   string
}

func (g *gwEntry) eligible() bool {
	return g.cfg.Admin == AdminUp && g.health != HealthDown
}

func (g *gwEntry) index(ip netip.Addr) int {
	b := ip.As4()
	return int(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) - g.base)
}

func (g *gwEntry) addr(i int) netip.Addr {
	v := g.base + uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (g *gwEntry) set(i int)        { g.used[i/64] |= 1 << (i % 64) }
func (g *gwEntry) clear(i int)      { g.used[i/64] &^= 1 << (i % 64) }
func (g *gwEntry) isSet(i int) bool { return g.used[i/64]&(1<<(i%64)) != 0 }

// free finds a free index (next fit from the cursor), or -1.
func (g *gwEntry) free() int {
	n := len(g.used)
	start := g.cursor / 64
	for k := 0; k <= n; k++ {
		w := (start + k) % n
		if inv := ^g.used[w]; inv != 0 {
			i := w*64 + bits.TrailingZeros64(inv)
			g.cursor = i + 1
			return i
		}
	}
	return -1
}

// minPrefixBits bounds the bitmap (a /12 is 128 KiB).
const minPrefixBits = 12

func newGwEntry(c GatewayConfig) (*gwEntry, error) {
	if err := ValidateGateway(&c); err != nil {
		return nil, err
	}
	p := netip.MustParsePrefix(c.Range).Masked()
	n := 1 << (32 - p.Bits())
	b := p.Addr().As4()
	g := &gwEntry{cfg: c, prefix: p, base: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), health: HealthUnknown}
	words := (n + 63) / 64
	g.used = make([]uint64, words)
	for i := n; i < words*64; i++ {
		g.set(i)
	}
	g.size = n
	if p.Bits() <= 30 { // network and broadcast addresses are not hosts
		g.set(0)
		g.set(n - 1)
		g.size -= 2
	}
	return g, nil
}

// ValidateGateway checks and normalizes a gateway row.
func ValidateGateway(c *GatewayConfig) error {
	if c.Name == "" || strings.ContainsAny(c.Name, " \t/") {
		return fmt.Errorf("gateway name %q: empty or has blanks or '/'", c.Name)
	}
	p, err := netip.ParsePrefix(c.Range)
	if err != nil {
		return fmt.Errorf("gateway %s: range: %w", c.Name, err)
	}
	if !p.Addr().Is4() {
		return fmt.Errorf("gateway %s: range %s: only IPv4 ranges (Framed-IP-Address)", c.Name, c.Range)
	}
	if p.Bits() < minPrefixBits {
		return fmt.Errorf("gateway %s: range %s larger than /%d", c.Name, c.Range, minPrefixBits)
	}
	c.Range = p.Masked().String()
	if c.MAC != "" {
		hw, err := net.ParseMAC(c.MAC)
		if err != nil || len(hw) != 6 {
			return fmt.Errorf("gateway %s: mac %q: not an Ethernet MAC", c.Name, c.MAC)
		}
		c.MAC = hw.String()
	}
	switch c.Admin {
	case "":
		c.Admin = AdminUp
	case AdminUp, AdminDrain, AdminDown:
	default:
		return fmt.Errorf("gateway %s: admin state %q: want up, drain or down", c.Name, c.Admin)
	}
	if c.API != "" && !strings.Contains(c.API, "://") {
		c.API = "http://" + c.API
	}
	return nil
}

// Pool is T1 (gateways, their ranges and states) plus the address
// assignments (FIG. 5 steps S10-S16). Safe for concurrent use.
type Pool struct {
	mu    sync.Mutex
	p     Persister
	now   func() time.Time
	ttl   time.Duration
	gws   map[string]*gwEntry
	order []*gwEntry // by name: deterministic S10 scan
	byIP  map[netip.Addr]*Assignment
	byDev map[string]*Assignment
	byUsr map[string]*Assignment
	c     PoolCounters
}

// PoolCounters count assignment outcomes.
type PoolCounters struct {
	Assigned      uint64 `json:"assigned"`
	Reused        uint64 `json:"reused"`
	RejectNoGW    uint64 `json:"reject_no_gateway"`
	RejectFull    uint64 `json:"reject_full"`
	Released      uint64 `json:"released"`
	Expired       uint64 `json:"expired_pending"`
	BindClaimed   uint64 `json:"bind_claimed_unassigned"`
	BindConflict  uint64 `json:"bind_conflict"`
	BindNotInPool uint64 `json:"bind_not_in_range"`
}

// NewPool returns an empty pool; pendingTTL is how long an address assigned
// by Access-Accept waits for its Accounting Start.
func NewPool(p Persister, now func() time.Time, pendingTTL time.Duration) *Pool {
	if now == nil {
		now = time.Now
	}
	return &Pool{p: p, now: now, ttl: pendingTTL, gws: map[string]*gwEntry{}, byIP: map[netip.Addr]*Assignment{}, byDev: map[string]*Assignment{}, byUsr: map[string]*Assignment{}}
}

func (pl *Pool) reorder() {
	pl.order = pl.order[:0]
	for _, g := range pl.gws {
		pl.order = append(pl.order, g)
	}
	sort.Slice(pl.order, func(i, j int) bool { return pl.order[i].cfg.Name < pl.order[j].cfg.Name })
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("aaa: marshal %T: %v", v, err)) // plain structs: cannot fail
	}
	return b
}

// Load restores gateways and assignments from the store (call before use).
func (pl *Pool) Load(s *store.Store) error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	err := s.ForEach(store.BucketGateways, func(k, v []byte) error {
		var c GatewayConfig
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("gateway %s: %w", k, err)
		}
		g, err := newGwEntry(c)
		if err != nil {
			return err
		}
		pl.gws[c.Name] = g
		return nil
	})
	if err != nil {
		return fmt.Errorf("load gateways: %w", err)
	}
	pl.reorder()
	var orphans []store.Op
	err = s.ForEach(store.BucketAssign, func(k, v []byte) error {
		var a Assignment
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("assignment %s: %w", k, err)
		}
		g := pl.gwFor(a.IP)
		if g == nil {
			orphans = append(orphans, store.Del(store.BucketAssign, append([]byte(nil), k...)))
			return nil
		}
		a.Gateway = g.cfg.Name
		a.persisted = a.PendingUntil
		pl.insert(g, &a)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load assignments: %w", err)
	}
	if len(orphans) > 0 {
		pl.p.Enqueue(orphans, nil, nil)
	}
	return nil
}

func (pl *Pool) gwFor(ip netip.Addr) *gwEntry {
	for _, g := range pl.order {
		if g.prefix.Contains(ip) {
			return g
		}
	}
	return nil
}

func (pl *Pool) insert(g *gwEntry, a *Assignment) {
	i := g.index(a.IP)
	if !g.isSet(i) {
		g.set(i)
		g.assigned++
	}
	pl.byIP[a.IP] = a
	pl.byDev[a.Device] = a
	if a.User != "" {
		pl.byUsr[a.User] = a
	}
}

func (pl *Pool) remove(a *Assignment) store.Op {
	if g := pl.gws[a.Gateway]; g != nil {
		i := g.index(a.IP)
		if g.isSet(i) {
			g.clear(i)
			g.assigned--
		}
	}
	delete(pl.byIP, a.IP)
	if pl.byDev[a.Device] == a {
		delete(pl.byDev, a.Device)
	}
	if a.User != "" && pl.byUsr[a.User] == a {
		delete(pl.byUsr, a.User)
	}
	return store.Del(store.BucketAssign, a.IP.AsSlice())
}

func (pl *Pool) persist(a *Assignment) store.Op {
	a.persisted = a.PendingUntil
	return store.Put(store.BucketAssign, a.IP.AsSlice(), mustJSON(a))
}

// write enqueues a on its own and remembers the sequence.
func (pl *Pool) write(a *Assignment) {
	a.seq = pl.p.Enqueue([]store.Op{pl.persist(a)}, nil, nil)
}

// Assign runs FIG. 5: an assignment of the device is kept (S4/S7);
// otherwise the eligible gateway with the fewest assigned addresses gives a
// free address (S10-S16). It returns the assignment (a copy) and the store
// sequence to wait for before answering.
func (pl *Pool) Assign(device, user string) (Assignment, uint64, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	now := pl.now()
	if a := pl.byDev[device]; a != nil {
		a.Gen++
		if !a.Bound {
			a.PendingUntil = now.Add(pl.ttl)
		}
		if user != "" && a.User != user {
			if a.User != "" && pl.byUsr[a.User] == a {
				delete(pl.byUsr, a.User)
			}
			a.User = user
			pl.byUsr[user] = a
			pl.write(a)
		}
		pl.c.Reused++
		// A re-login changes nothing durable except a pending deadline; it is
		// rewritten only when the stored one is less than half a TTL ahead,
		// so repeated logins cost no disk write. (Gen is kept in memory:
		// after a restart a release may free an address re-authenticated
		// during the session; its next Start claims it again through Bind.)
		if !a.Bound && a.persisted.Before(now.Add(pl.ttl/2)) {
			pl.write(a)
		}
		return *a, a.seq, nil
	}
	var best *gwEntry
	anyEligible := false
	for _, g := range pl.order { // S10: every record
		if !g.eligible() { // S12
			continue
		}
		anyEligible = true
		if g.assigned >= g.size {
			continue
		}
		if best == nil || g.assigned < best.assigned { // S11
			best = g
		}
	}
	if best == nil {
		if anyEligible {
			pl.c.RejectFull++
			return Assignment{}, 0, ErrRangesFull
		}
		pl.c.RejectNoGW++
		return Assignment{}, 0, ErrNoHealthyGateway
	}
	i := best.free() // S13, S14
	if i < 0 {
		pl.c.RejectFull++
		return Assignment{}, 0, ErrRangesFull
	}
	a := &Assignment{IP: best.addr(i), Gateway: best.cfg.Name, Device: device, User: user, PendingUntil: now.Add(pl.ttl), Since: now, Gen: 1}
	pl.insert(best, a) // S15, S16
	pl.c.Assigned++
	pl.write(a)
	return *a, a.seq, nil
}

// Bind marks ip as used by session of device and returns the assignment
// (its Gen is what the session presents to Release). An address that
// nobody holds is claimed for the device (a Start for an address assigned
// before a restart that lost it, or by another AAA), counted.
func (pl *Pool) Bind(ip netip.Addr, device, user, session string) (Assignment, []store.Op, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if a := pl.byIP[ip]; a != nil {
		if a.Device != device {
			pl.c.BindConflict++
			return *a, nil, ErrAddressConflict
		}
		a.Bound, a.Session, a.PendingUntil = true, session, time.Time{}
		a.Gen++
		return *a, []store.Op{pl.persist(a)}, nil
	}
	g := pl.gwFor(ip)
	if g == nil {
		pl.c.BindNotInPool++
		return Assignment{}, nil, ErrNotInRange
	}
	var ops []store.Op
	if old := pl.byDev[device]; old != nil && !old.Bound { // the device moved: its old pending address goes back
		ops = append(ops, pl.remove(old))
	}
	a := &Assignment{IP: ip, Gateway: g.cfg.Name, Device: device, User: user, Bound: true, Session: session, Since: pl.now(), Gen: 1}
	pl.insert(g, a)
	pl.c.BindClaimed++
	return *a, append(ops, pl.persist(a)), nil
}

// Release returns ip to its range when session (which bound it at
// generation gen) ends. If the device authenticated again since, the
// address stays assigned, pending its next Start; if another session holds
// it now, nothing changes.
func (pl *Pool) Release(ip netip.Addr, device, session string, gen uint64) []store.Op {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	a := pl.byIP[ip]
	if a == nil || a.Device != device || a.Session != session {
		return nil
	}
	if a.Gen != gen {
		a.Bound, a.Session = false, ""
		a.PendingUntil = pl.now().Add(pl.ttl)
		return []store.Op{pl.persist(a)}
	}
	pl.c.Released++
	return []store.Op{pl.remove(a)}
}

// Expire reclaims unbound assignments whose Start never came.
func (pl *Pool) Expire() uint64 {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	now := pl.now()
	var ops []store.Op
	for _, a := range pl.byIP {
		if !a.Bound && !a.PendingUntil.IsZero() && now.After(a.PendingUntil) {
			ops = append(ops, pl.remove(a))
			pl.c.Expired++
		}
	}
	if len(ops) == 0 {
		return 0
	}
	return pl.p.Enqueue(ops, nil, nil)
}

// ByDevice returns the assignment of device.
func (pl *Pool) ByDevice(device string) (Assignment, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	a := pl.byDev[device]
	if a == nil {
		return Assignment{}, false
	}
	return *a, true
}

// ByUser returns the latest assignment of user.
func (pl *Pool) ByUser(user string) (Assignment, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	a := pl.byUsr[user]
	if a == nil {
		return Assignment{}, false
	}
	return *a, true
}

// Assignments lists every assignment, by address.
func (pl *Pool) Assignments() []Assignment {
	pl.mu.Lock()
	out := make([]Assignment, 0, len(pl.byIP))
	for _, a := range pl.byIP {
		out = append(out, *a)
	}
	pl.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// GatewayOf returns the T1 row whose range holds ip.
func (pl *Pool) GatewayOf(ip netip.Addr) (Gateway, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	g := pl.gwFor(ip)
	if g == nil {
		return Gateway{}, false
	}
	return g.view(), true
}

func (g *gwEntry) view() Gateway {
	return Gateway{GatewayConfig: g.cfg, Health: g.health, Assigned: g.assigned, Size: g.size}
}

// Gateways returns T1, by name.
func (pl *Pool) Gateways() []Gateway {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	out := make([]Gateway, 0, len(pl.order))
	for _, g := range pl.order {
		out = append(out, g.view())
	}
	return out
}

// Gateway returns one T1 row.
func (pl *Pool) Gateway(name string) (Gateway, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	g := pl.gws[name]
	if g == nil {
		return Gateway{}, false
	}
	return g.view(), true
}

// PutGateway inserts or replaces a T1 row. A new range must hold every
// address assigned in the old one and overlap no other gateway's range.
func (pl *Pool) PutGateway(c GatewayConfig) (uint64, error) {
	ng, err := newGwEntry(c)
	if err != nil {
		return 0, err
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, o := range pl.order {
		if o.cfg.Name != ng.cfg.Name && o.prefix.Overlaps(ng.prefix) {
			return 0, fmt.Errorf("gateway %s: range %s overlaps %s of gateway %s", ng.cfg.Name, ng.cfg.Range, o.cfg.Range, o.cfg.Name)
		}
	}
	if old := pl.gws[ng.cfg.Name]; old != nil {
		ng.health = old.health
		for _, a := range pl.byIP {
			if a.Gateway != old.cfg.Name {
				continue
			}
			if !ng.prefix.Contains(a.IP) {
				return 0, fmt.Errorf("gateway %s: new range %s leaves out assigned address %s", ng.cfg.Name, ng.cfg.Range, a.IP)
			}
			i := ng.index(a.IP)
			if ng.isSet(i) { // network or broadcast of the new range
				return 0, fmt.Errorf("gateway %s: assigned address %s is not a host address of %s", ng.cfg.Name, a.IP, ng.cfg.Range)
			}
			ng.set(i)
			ng.assigned++
		}
	}
	pl.gws[ng.cfg.Name] = ng
	pl.reorder()
	return pl.p.Enqueue([]store.Op{store.Put(store.BucketGateways, []byte(ng.cfg.Name), mustJSON(ng.cfg))}, nil, nil), nil
}

// DeleteGateway removes a T1 row that has no assigned address.
func (pl *Pool) DeleteGateway(name string) (uint64, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	g := pl.gws[name]
	if g == nil {
		return 0, fmt.Errorf("gateway %s: %w", name, ErrNotFound)
	}
	if g.assigned > 0 {
		return 0, fmt.Errorf("gateway %s: %d addresses still assigned (drain it first)", name, g.assigned)
	}
	delete(pl.gws, name)
	pl.reorder()
	return pl.p.Enqueue([]store.Op{store.Del(store.BucketGateways, []byte(name))}, nil, nil), nil
}

// ErrNotFound is returned for a missing row.
var ErrNotFound = errors.New("not found")

// SetAdmin changes a gateway's administrative state.
func (pl *Pool) SetAdmin(name, admin string) (Gateway, uint64, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	g := pl.gws[name]
	if g == nil {
		return Gateway{}, 0, fmt.Errorf("gateway %s: %w", name, ErrNotFound)
	}
	switch admin {
	case AdminUp, AdminDrain, AdminDown:
	default:
		return Gateway{}, 0, fmt.Errorf("gateway %s: admin state %q: want up, drain or down", name, admin)
	}
	g.cfg.Admin = admin
	return g.view(), pl.p.Enqueue([]store.Op{store.Put(store.BucketGateways, []byte(name), mustJSON(g.cfg))}, nil, nil), nil
}

// SetHealth records a probe verdict (HealthUp/HealthDown/HealthUnknown); it
// reports whether the state changed.
func (pl *Pool) SetHealth(name, health string) (Gateway, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	g := pl.gws[name]
	if g == nil {
		return Gateway{}, false
	}
	changed := g.health != health
	g.health = health
	return g.view(), changed
}

// Counters returns a copy of the counters.
func (pl *Pool) Counters() PoolCounters {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.c
}

// LBState is what the LBs' T4 should say about a gateway: down when its
// administrative state is down or health says down.
func LBState(g Gateway) string {
	if g.Admin == AdminDown || g.Health == HealthDown {
		return "down"
	}
	return "up"
}
