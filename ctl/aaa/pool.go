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

// GatewayConfig is the configured part of a T1 row (persisted). A
// gateway has an IPv4 range, an IPv6 pool, or both.
type GatewayConfig struct {
	Name  string `json:"name" yaml:"name"`
	Range string `json:"range,omitempty" yaml:"range"` // IPv4 CIDR of mobile addresses served by this gateway (Framed-IP-Address)
	// Range6 is the IPv6 pool of the gateway's mobiles. Framed6 says what
	// a mobile gets from it: "prefix" (default), a /64 of it in
	// Framed-IPv6-Prefix (RFC 3162); or "address", one address of it in
	// Framed-IPv6-Address (RFC 6911).
	Range6  string `json:"range6,omitempty" yaml:"range6"`
	Framed6 string `json:"framed6,omitempty" yaml:"framed6"`
	API     string `json:"api,omitempty" yaml:"api"`     // samepathd control API of the gateway (health probe, session events)
	MAC     string `json:"mac,omitempty" yaml:"mac"`     // MAC the LBs' T4 know the gateway by
	Admin   string `json:"admin,omitempty" yaml:"admin"` // up (default), drain, down
}

// How an IPv6 pool is handed out (GatewayConfig.Framed6).
const (
	Framed6Prefix  = "prefix"  // a /64 per mobile, Framed-IPv6-Prefix
	Framed6Address = "address" // a /128 per mobile, Framed-IPv6-Address
)

// Prefix6Bits is the length of the IPv6 prefix a mobile gets in prefix
// mode: the gateway's session gate matches a source by its /64.
const Prefix6Bits = 64

// Prefixes returns the gateway's pools (IPv4 first); c must be valid.
func (c GatewayConfig) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range []string{c.Range, c.Range6} {
		if r != "" {
			out = append(out, netip.MustParsePrefix(r))
		}
	}
	return out
}

// Gateway is a T1 row as shown (FIG. 7).
type Gateway struct {
	GatewayConfig
	Health    string `json:"health"`
	Assigned  int    `json:"assigned"`
	Size      int    `json:"size"`
	Assigned6 int    `json:"assigned6,omitempty"` // IPv6 prefixes or addresses
	Size6     int    `json:"size6,omitempty"`
}

// Family is a set of address families a mobile gets.
type Family uint8

// Families.
const (
	FamilyIPv4 Family = 1 << iota
	FamilyIPv6
	FamilyDual = FamilyIPv4 | FamilyIPv6
)

func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "ipv4"
	case FamilyIPv6:
		return "ipv6"
	case FamilyDual:
		return "dual"
	}
	return "none"
}

// ParseFamily reads "ipv4", "ipv6" or "dual" ("" is ipv4).
func ParseFamily(s string) (Family, error) {
	switch s {
	case "", "ipv4":
		return FamilyIPv4, nil
	case "ipv6":
		return FamilyIPv6, nil
	case "dual", "dual-stack", "ipv4v6":
		return FamilyDual, nil
	}
	return 0, fmt.Errorf("family %q: want ipv4, ipv6 or dual", s)
}

// Assignment is one assigned address (IPv4), or one IPv6 prefix or
// address (Bits 64 or 128; IP is its first address).
type Assignment struct {
	IP      netip.Addr `json:"ip"`
	Bits    int        `json:"bits,omitempty"` // IPv6 only: prefix length of the assignment
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

// Prefix is the assignment as a prefix: /32 for IPv4, the given length
// for IPv6.
func (a Assignment) Prefix() netip.Prefix {
	if !a.IP.IsValid() {
		return netip.Prefix{}
	}
	if a.IP.Is4() {
		return netip.PrefixFrom(a.IP, 32)
	}
	b := a.Bits
	if b == 0 {
		b = 128
	}
	return netip.PrefixFrom(a.IP, b)
}

// space is one family's pool of a gateway: a bitmap over its units (IPv4
// addresses; IPv6 /64 prefixes or addresses).
type space struct {
	prefix   netip.Prefix
	unit     int // unit length in bits: 32, 64 or 128
	baseHi   uint64
	baseLo   uint64
	used     []uint64 // reserved units set
	size     int      // usable units
	assigned int
	cursor   int
}

func addr128(a netip.Addr) (hi, lo uint64) {
	if a.Is4() {
		b := a.As4()
		return 0, uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	}
	b := a.As16()
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	return hi, lo
}

func (s *space) shift() uint {
	if s.unit == 32 {
		return 0
	}
	return uint(128 - s.unit)
}

// index is the unit holding ip (which s.prefix contains).
func (s *space) index(ip netip.Addr) int {
	hi, lo := addr128(ip)
	lo, borrow := bits.Sub64(lo, s.baseLo, 0)
	hi, _ = bits.Sub64(hi, s.baseHi, borrow)
	sh := s.shift()
	switch {
	case sh == 0:
		return int(lo)
	case sh >= 64:
		return int(hi >> (sh - 64))
	default:
		return int(lo>>sh | hi<<(64-sh))
	}
}

// addr is the first address of unit i.
func (s *space) addr(i int) netip.Addr {
	sh := s.shift()
	var dhi, dlo uint64
	switch {
	case sh == 0:
		dlo = uint64(i)
	case sh >= 64:
		dhi = uint64(i) << (sh - 64)
	default:
		dlo, dhi = uint64(i)<<sh, uint64(i)>>(64-sh)
	}
	lo, carry := bits.Add64(s.baseLo, dlo, 0)
	hi, _ := bits.Add64(s.baseHi, dhi, carry)
	if s.unit == 32 {
		return netip.AddrFrom4([4]byte{byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo)})
	}
	var b [16]byte
	for k := 0; k < 8; k++ {
		b[7-k], b[15-k] = byte(hi>>(8*k)), byte(lo>>(8*k))
	}
	return netip.AddrFrom16(b)
}

func (s *space) set(i int)        { s.used[i/64] |= 1 << (i % 64) }
func (s *space) clear(i int)      { s.used[i/64] &^= 1 << (i % 64) }
func (s *space) isSet(i int) bool { return s.used[i/64]&(1<<(i%64)) != 0 }
func (s *space) full() bool       { return s.assigned >= s.size }

// free finds a free index (next fit from the cursor), or -1.
func (s *space) free() int {
	n := len(s.used)
	start := s.cursor / 64
	for k := 0; k <= n; k++ {
		w := (start + k) % n
		if inv := ^s.used[w]; inv != 0 {
			i := w*64 + bits.TrailingZeros64(inv)
			s.cursor = i + 1
			return i
		}
	}
	return -1
}

// unitOf is the assignment key of ip in s: the address itself, or the
// first address of its /64 in prefix mode.
func (s *space) unitOf(ip netip.Addr) netip.Addr {
	if s.unit == 32 || s.unit == 128 {
		return ip
	}
	p, _ := ip.Prefix(s.unit)
	return p.Addr()
}

// bits of the assignments s hands out (0 for IPv4).
func (s *space) assignBits() int {
	if s.unit == 32 {
		return 0
	}
	return s.unit
}

// maxUnitBits bounds the bitmap (2^20 units is 128 KiB): an IPv4 range
// up to a /12, an IPv6 prefix pool up to a /44, an IPv6 address pool up
// to a /108.
const maxUnitBits = 20

// minPrefixBits is the largest IPv4 range (2^maxUnitBits addresses).
const minPrefixBits = 32 - maxUnitBits

func newSpace(p netip.Prefix, unit int) *space {
	p = p.Masked()
	n := 1 << (unit - p.Bits())
	s := &space{prefix: p, unit: unit}
	s.baseHi, s.baseLo = addr128(p.Addr())
	words := (n + 63) / 64
	s.used = make([]uint64, words)
	for i := n; i < words*64; i++ {
		s.set(i)
	}
	s.size = n
	switch {
	case unit == 32 && p.Bits() <= 30: // network and broadcast addresses are not hosts
		s.set(0)
		s.set(n - 1)
		s.size -= 2
	case unit == 128 && s.baseLo == 0:
		// The Subnet-Router anycast address (RFC 4291 2.6.1) of the /64
		// is no host's; and an address whose interface id is zero would
		// read, at the gateway, as a whole /64.
		s.set(0)
		s.size--
	}
	return s
}

type gwEntry struct {
	cfg    GatewayConfig
	v4, v6 *space // nil: no pool of that family
	health string
}

func (g *gwEntry) eligible() bool {
	return g.cfg.Admin == AdminUp && g.health != HealthDown
}

// spaceOf is g's pool holding ip, or nil.
func (g *gwEntry) spaceOf(ip netip.Addr) *space {
	for _, s := range []*space{g.v4, g.v6} {
		if s != nil && s.prefix.Contains(ip) {
			return s
		}
	}
	return nil
}

func (g *gwEntry) family(f Family) *space {
	if f == FamilyIPv6 {
		return g.v6
	}
	return g.v4
}

// has reports whether g has room in every family of f.
func (g *gwEntry) has(f Family) bool {
	for _, x := range []Family{FamilyIPv4, FamilyIPv6} {
		if f&x != 0 && (g.family(x) == nil || g.family(x).full()) {
			return false
		}
	}
	return true
}

// serves reports whether g has a pool of every family of f.
func (g *gwEntry) serves(f Family) bool {
	return (f&FamilyIPv4 == 0 || g.v4 != nil) && (f&FamilyIPv6 == 0 || g.v6 != nil)
}

// load is what FIG. 5 S11 compares for f: the assigned count of the
// family, or of both.
func (g *gwEntry) load(f Family) int {
	n := 0
	if f&FamilyIPv4 != 0 && g.v4 != nil {
		n += g.v4.assigned
	}
	if f&FamilyIPv6 != 0 && g.v6 != nil {
		n += g.v6.assigned
	}
	return n
}

func newGwEntry(c GatewayConfig) (*gwEntry, error) {
	if err := ValidateGateway(&c); err != nil {
		return nil, err
	}
	g := &gwEntry{cfg: c, health: HealthUnknown}
	if c.Range != "" {
		g.v4 = newSpace(netip.MustParsePrefix(c.Range), 32)
	}
	if c.Range6 != "" {
		unit := Prefix6Bits
		if c.Framed6 == Framed6Address {
			unit = 128
		}
		g.v6 = newSpace(netip.MustParsePrefix(c.Range6), unit)
	}
	return g, nil
}

// ValidateGateway checks and normalizes a gateway row.
func ValidateGateway(c *GatewayConfig) error {
	if c.Name == "" || strings.ContainsAny(c.Name, " \t/") {
		return fmt.Errorf("gateway name %q: empty or has blanks or '/'", c.Name)
	}
	if c.Range == "" && c.Range6 == "" {
		return fmt.Errorf("gateway %s: no range (IPv4) and no range6 (IPv6)", c.Name)
	}
	if c.Range != "" {
		p, err := netip.ParsePrefix(c.Range)
		if err != nil {
			return fmt.Errorf("gateway %s: range: %w", c.Name, err)
		}
		if !p.Addr().Is4() {
			return fmt.Errorf("gateway %s: range %s: only IPv4 ranges (Framed-IP-Address); IPv6 goes in range6", c.Name, c.Range)
		}
		if p.Bits() < minPrefixBits {
			return fmt.Errorf("gateway %s: range %s larger than /%d", c.Name, c.Range, minPrefixBits)
		}
		c.Range = p.Masked().String()
	}
	switch c.Framed6 {
	case "":
		if c.Range6 != "" {
			c.Framed6 = Framed6Prefix
		}
	case Framed6Prefix, Framed6Address:
	default:
		return fmt.Errorf("gateway %s: framed6 %q: want prefix or address", c.Name, c.Framed6)
	}
	if c.Range6 != "" {
		p, err := netip.ParsePrefix(c.Range6)
		if err != nil {
			return fmt.Errorf("gateway %s: range6: %w", c.Name, err)
		}
		if !p.Addr().Is6() || p.Addr().Is4In6() {
			return fmt.Errorf("gateway %s: range6 %s: not an IPv6 prefix", c.Name, c.Range6)
		}
		unit := Prefix6Bits
		if c.Framed6 == Framed6Address {
			unit = 128
		}
		if p.Bits() > unit {
			return fmt.Errorf("gateway %s: range6 %s: longer than the /%d each mobile gets (framed6 %s)", c.Name, c.Range6, unit, c.Framed6)
		}
		if unit-p.Bits() > maxUnitBits {
			return fmt.Errorf("gateway %s: range6 %s: more than 2^%d %ss (framed6 %s: at most a /%d)", c.Name, c.Range6, maxUnitBits, c.Framed6, c.Framed6, unit-maxUnitBits)
		}
		c.Range6 = p.Masked().String()
	}
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
// assignments (FIG. 5 steps S10-S16), per address family: a device holds
// at most one IPv4 address and one IPv6 prefix (or address), both from
// the same gateway. Safe for concurrent use.
type Pool struct {
	mu    sync.Mutex
	p     Persister
	now   func() time.Time
	ttl   time.Duration
	gws   map[string]*gwEntry
	order []*gwEntry // by name: deterministic S10 scan
	byIP  map[netip.Addr]*Assignment
	byDev map[famKey]*Assignment
	byUsr map[famKey]*Assignment
	c     PoolCounters
}

// famKey is a device or user in one family.
type famKey struct {
	id  string
	fam Family
}

func famOf(ip netip.Addr) Family {
	if ip.Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// PoolCounters count assignment outcomes.
type PoolCounters struct {
	Assigned      uint64 `json:"assigned"`
	Assigned6     uint64 `json:"assigned6"`
	Reused        uint64 `json:"reused"`
	RejectNoGW    uint64 `json:"reject_no_gateway"`
	RejectFull    uint64 `json:"reject_full"`
	RejectFamily  uint64 `json:"reject_family"` // the device's gateway has no pool (or no room) for a family it asked for
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
	return &Pool{p: p, now: now, ttl: pendingTTL, gws: map[string]*gwEntry{}, byIP: map[netip.Addr]*Assignment{}, byDev: map[famKey]*Assignment{}, byUsr: map[famKey]*Assignment{}}
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
// Records written before IPv6 (no range6, no bits) read as IPv4-only
// gateways and IPv4 assignments; an IPv6 assignment is re-keyed to its
// unit of the gateway's pool (a /64 in prefix mode), so a record written
// under another framed6 mode is still found by its address.
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
	var fix []store.Op
	err = s.ForEach(store.BucketAssign, func(k, v []byte) error {
		var a Assignment
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("assignment %s: %w", k, err)
		}
		g, sp := pl.gwFor(a.IP)
		if g == nil {
			fix = append(fix, store.Del(store.BucketAssign, append([]byte(nil), k...)))
			return nil
		}
		a.Gateway = g.cfg.Name
		a.persisted = a.PendingUntil
		if u := sp.unitOf(a.IP); u != a.IP || a.Bits != sp.assignBits() {
			fix = append(fix, store.Del(store.BucketAssign, append([]byte(nil), k...)))
			a.IP, a.Bits = u, sp.assignBits()
			if pl.byIP[a.IP] != nil {
				return nil // two old records in one unit: the first stays
			}
			fix = append(fix, pl.persist(&a))
		}
		pl.insert(g, &a)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load assignments: %w", err)
	}
	if len(fix) > 0 {
		pl.p.Enqueue(fix, nil, nil)
	}
	return nil
}

// gwFor is the gateway and its pool holding ip.
func (pl *Pool) gwFor(ip netip.Addr) (*gwEntry, *space) {
	for _, g := range pl.order {
		if s := g.spaceOf(ip); s != nil {
			return g, s
		}
	}
	return nil, nil
}

func (pl *Pool) insert(g *gwEntry, a *Assignment) {
	if s := g.spaceOf(a.IP); s != nil {
		i := s.index(a.IP)
		if !s.isSet(i) {
			s.set(i)
			s.assigned++
		}
	}
	f := famOf(a.IP)
	pl.byIP[a.IP] = a
	pl.byDev[famKey{a.Device, f}] = a
	if a.User != "" {
		pl.byUsr[famKey{a.User, f}] = a
	}
}

func (pl *Pool) remove(a *Assignment) store.Op {
	if g := pl.gws[a.Gateway]; g != nil {
		if s := g.spaceOf(a.IP); s != nil {
			i := s.index(a.IP)
			if s.isSet(i) {
				s.clear(i)
				s.assigned--
			}
		}
	}
	f := famOf(a.IP)
	delete(pl.byIP, a.IP)
	if pl.byDev[famKey{a.Device, f}] == a {
		delete(pl.byDev, famKey{a.Device, f})
	}
	if a.User != "" && pl.byUsr[famKey{a.User, f}] == a {
		delete(pl.byUsr, famKey{a.User, f})
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

// Assign runs FIG. 5 for an IPv4 address (AssignFamily with FamilyIPv4).
func (pl *Pool) Assign(device, user string) (Assignment, uint64, error) {
	g, seq, err := pl.AssignFamily(device, user, FamilyIPv4)
	return g.V4, seq, err
}

// Grant is what one login gets: an IPv4 address, an IPv6 prefix (or
// address), or both; a family not asked for (or not given) is zero.
type Grant struct {
	V4 Assignment
	V6 Assignment
}

// AssignFamily runs FIG. 5 for the families in fam: an assignment the
// device holds is kept (S4/S7); a family it lacks comes from the gateway
// of the one it holds, so both of a device's addresses are on one
// gateway; a device holding none gets each from the eligible gateway
// with the fewest assigned in those families that has room in all of
// them (S10-S16). It returns copies and the store sequence to wait for.
func (pl *Pool) AssignFamily(device, user string, fam Family) (Grant, uint64, error) {
	if fam&FamilyDual == 0 {
		return Grant{}, 0, fmt.Errorf("no address family asked for")
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	now := pl.now()
	var gr Grant
	var seq uint64
	var home *gwEntry // the gateway of what the device holds
	for _, f := range []Family{FamilyIPv4, FamilyIPv6} {
		if a := pl.byDev[famKey{device, f}]; a != nil {
			home = pl.gws[a.Gateway]
			if fam&f != 0 {
				pl.reuse(a, user, now)
				seq = max(seq, a.seq)
				if f == FamilyIPv4 {
					gr.V4 = *a
				} else {
					gr.V6 = *a
				}
			}
		}
	}
	var need Family
	if fam&FamilyIPv4 != 0 && !gr.V4.IP.IsValid() {
		need |= FamilyIPv4
	}
	if fam&FamilyIPv6 != 0 && !gr.V6.IP.IsValid() {
		need |= FamilyIPv6
	}
	if need == 0 {
		return gr, seq, nil
	}
	best := home
	if best != nil {
		if !best.has(need) {
			pl.c.RejectFamily++
			return Grant{}, 0, fmt.Errorf("%w: gateway %s of the device's other address has no %s room", ErrFamily, best.cfg.Name, need)
		}
	} else {
		anyEligible := false
		for _, g := range pl.order { // S10: every record
			if !g.eligible() || !g.serves(need) { // S12
				continue
			}
			anyEligible = true
			if !g.has(need) {
				continue
			}
			if best == nil || g.load(need) < best.load(need) { // S11
				best = g
			}
		}
		if best == nil {
			if anyEligible {
				pl.c.RejectFull++
				return Grant{}, 0, ErrRangesFull
			}
			pl.c.RejectNoGW++
			return Grant{}, 0, ErrNoHealthyGateway
		}
	}
	var fresh []*Assignment
	for _, f := range []Family{FamilyIPv4, FamilyIPv6} {
		if need&f == 0 {
			continue
		}
		s := best.family(f)
		i := s.free() // S13, S14
		if i < 0 {
			for _, a := range fresh {
				pl.remove(a)
			}
			pl.c.RejectFull++
			return Grant{}, 0, ErrRangesFull
		}
		a := &Assignment{IP: s.addr(i), Bits: s.assignBits(), Gateway: best.cfg.Name, Device: device, User: user, PendingUntil: now.Add(pl.ttl), Since: now, Gen: 1}
		pl.insert(best, a) // S15, S16
		fresh = append(fresh, a)
	}
	for _, a := range fresh {
		pl.write(a)
		seq = max(seq, a.seq)
		if a.IP.Is4() {
			pl.c.Assigned++
			gr.V4 = *a
		} else {
			pl.c.Assigned6++
			gr.V6 = *a
		}
	}
	return gr, seq, nil
}

// reuse is S4/S7 for an assignment the device holds.
func (pl *Pool) reuse(a *Assignment, user string, now time.Time) {
	a.Gen++
	if !a.Bound {
		a.PendingUntil = now.Add(pl.ttl)
	}
	f := famOf(a.IP)
	if user != "" && a.User != user {
		if a.User != "" && pl.byUsr[famKey{a.User, f}] == a {
			delete(pl.byUsr, famKey{a.User, f})
		}
		a.User = user
		pl.byUsr[famKey{user, f}] = a
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
}

// ErrFamily refuses an address family the device's gateway cannot give.
var ErrFamily = errors.New("address family not available")

// Bind marks ip as used by session of device and returns the assignment
// (its Gen is what the session presents to Release). An address that
// nobody holds is claimed for the device (a Start for an address assigned
// before a restart that lost it, or by another AAA), counted. An IPv6
// address in a prefix pool binds the /64 holding it.
func (pl *Pool) Bind(ip netip.Addr, device, user, session string) (Assignment, []store.Op, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	g, sp := pl.gwFor(ip)
	if sp != nil {
		ip = sp.unitOf(ip)
	}
	if a := pl.byIP[ip]; a != nil {
		if a.Device != device {
			pl.c.BindConflict++
			return *a, nil, ErrAddressConflict
		}
		a.Bound, a.Session, a.PendingUntil = true, session, time.Time{}
		a.Gen++
		return *a, []store.Op{pl.persist(a)}, nil
	}
	if g == nil {
		pl.c.BindNotInPool++
		return Assignment{}, nil, ErrNotInRange
	}
	var ops []store.Op
	if old := pl.byDev[famKey{device, famOf(ip)}]; old != nil && !old.Bound { // the device moved: its old pending address goes back
		ops = append(ops, pl.remove(old))
	}
	a := &Assignment{IP: ip, Bits: sp.assignBits(), Gateway: g.cfg.Name, Device: device, User: user, Bound: true, Session: session, Since: pl.now(), Gen: 1}
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

// ByDevice returns the assignment of device: its IPv4 address, else its
// IPv6 one.
func (pl *Pool) ByDevice(device string) (Assignment, bool) {
	g := pl.DeviceGrant(device)
	if g.V4.IP.IsValid() {
		return g.V4, true
	}
	return g.V6, g.V6.IP.IsValid()
}

// DeviceGrant returns every assignment of device.
func (pl *Pool) DeviceGrant(device string) Grant {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var g Grant
	if a := pl.byDev[famKey{device, FamilyIPv4}]; a != nil {
		g.V4 = *a
	}
	if a := pl.byDev[famKey{device, FamilyIPv6}]; a != nil {
		g.V6 = *a
	}
	return g
}

// ByUser returns the latest assignment of user (IPv4 first).
func (pl *Pool) ByUser(user string) (Assignment, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, f := range []Family{FamilyIPv4, FamilyIPv6} {
		if a := pl.byUsr[famKey{user, f}]; a != nil {
			return *a, true
		}
	}
	return Assignment{}, false
}

// UserGrant returns the latest assignments of user, per family.
func (pl *Pool) UserGrant(user string) Grant {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var g Grant
	if a := pl.byUsr[famKey{user, FamilyIPv4}]; a != nil {
		g.V4 = *a
	}
	if a := pl.byUsr[famKey{user, FamilyIPv6}]; a != nil {
		g.V6 = *a
	}
	return g
}

// Assignments lists every assignment, by address (IPv4 first).
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

// GatewayOf returns the T1 row whose range (or range6) holds ip.
func (pl *Pool) GatewayOf(ip netip.Addr) (Gateway, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	g, _ := pl.gwFor(ip)
	if g == nil {
		return Gateway{}, false
	}
	return g.view(), true
}

func (g *gwEntry) view() Gateway {
	v := Gateway{GatewayConfig: g.cfg, Health: g.health}
	if g.v4 != nil {
		v.Assigned, v.Size = g.v4.assigned, g.v4.size
	}
	if g.v6 != nil {
		v.Assigned6, v.Size6 = g.v6.assigned, g.v6.size
	}
	return v
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

// PutGateway inserts or replaces a T1 row. A new range (or range6) must
// hold every address assigned in the old one, in the same framed6 mode,
// and overlap no other gateway's.
func (pl *Pool) PutGateway(c GatewayConfig) (uint64, error) {
	ng, err := newGwEntry(c)
	if err != nil {
		return 0, err
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, o := range pl.order {
		if o.cfg.Name == ng.cfg.Name {
			continue
		}
		for _, p := range ng.cfg.Prefixes() {
			for _, q := range o.cfg.Prefixes() {
				if p.Overlaps(q) {
					return 0, fmt.Errorf("gateway %s: range %s overlaps %s of gateway %s", ng.cfg.Name, p, q, o.cfg.Name)
				}
			}
		}
	}
	if old := pl.gws[ng.cfg.Name]; old != nil {
		ng.health = old.health
		for _, a := range pl.byIP {
			if a.Gateway != old.cfg.Name {
				continue
			}
			s := ng.spaceOf(a.IP)
			if s == nil {
				return 0, fmt.Errorf("gateway %s: new range leaves out assigned address %s", ng.cfg.Name, a.Prefix())
			}
			if s.unitOf(a.IP) != a.IP || s.assignBits() != a.Bits {
				return 0, fmt.Errorf("gateway %s: assigned %s is not a unit of range6 %s with framed6 %s", ng.cfg.Name, a.Prefix(), ng.cfg.Range6, ng.cfg.Framed6)
			}
			i := s.index(a.IP)
			if s.isSet(i) { // network or broadcast of the new range
				return 0, fmt.Errorf("gateway %s: assigned address %s is not a host address of %s", ng.cfg.Name, a.IP, s.prefix)
			}
			s.set(i)
			s.assigned++
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
	if n := g.load(FamilyDual); n > 0 {
		return 0, fmt.Errorf("gateway %s: %d addresses still assigned (drain it first)", name, n)
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
