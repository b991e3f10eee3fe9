package nat

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// MaxGateways is the most gateways (primary + substitutes) one T4 row holds.
// The in-kernel steering offload sizes its map values by it.
const MaxGateways = 8

// MAC is an Ethernet address.
type MAC [6]byte

// ParseMAC parses "02:00:00:00:00:01".
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return MAC{}, err
	}
	if len(hw) != 6 {
		return MAC{}, fmt.Errorf("mac %q: want 6 bytes, got %d", s, len(hw))
	}
	return MAC(hw), nil
}

func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// Gateway is one entry of a T4 row: a gateway's MAC and whether it is up.
type Gateway struct {
	MAC MAC
	Up  bool
}

// T4Row maps a source address range to the primary gateway (Gateways[0])
// and its substitutes in order.
type T4Row struct {
	Range    netip.Prefix
	Gateways []Gateway
}

// Result of a T4 lookup.
type Result uint8

const (
	Found   Result = iota // a gateway in state up was found
	NoRow                 // no row holds the address
	AllDown               // the row's gateways are all down
)

// Errors from T4 updates.
var (
	ErrOverlap  = errors.New("t4 ranges overlap")
	ErrNotFound = errors.New("t4 row not found")
)

// interval is one row compiled for binary search: [lo, hi] over the
// address as a 128-bit number (IPv4 as ::ffff:a.b.c.d).
type interval struct {
	loHi, loLo uint64
	hiHi, hiLo uint64
	gw         MAC  // first gateway in state up
	ok         bool // false: all down
	// ctr counts the packets steered by this row to gw (ok) or dropped
	// with all its gateways down.
	ctr *SteerCounter
}

// SteerCounter counts the up packets the LB steered by one T4 row to one
// gateway, or dropped because all the row's gateways were down. One lives
// as long as its row names the gateway, across table updates, so a state
// change does not reset it. Adds are atomic: the LB adds once per batch
// (dp.LB), readers use T4.SteerCounts. Padded to a cache line, so two
// rows' counters never share one.
type SteerCounter struct {
	n atomic.Uint64
	_ [56]byte
}

// Add counts n packets.
func (c *SteerCounter) Add(n uint64) { c.n.Add(n) }

// steerKey names a SteerCounter: a row's range and the gateway (zero MAC:
// the row's all-down counter; T4 MACs are never zero).
type steerKey struct {
	r  netip.Prefix
	gw MAC
}

// SteerCount is one counter's value (T4.SteerCounts).
type SteerCount struct {
	Range   netip.Prefix
	Gateway MAC // zero: packets dropped with all the row's gateways down
	Packets uint64
}

type t4snap struct {
	rows []T4Row    // as given, sorted by range
	v4   []interval // sorted, disjoint
	v6   []interval
}

// T4 is the LB balancing policy table. Lookups are lock-free and
// allocation-free; updates build a new snapshot and publish it atomically,
// so a worker sees either the old table or the new one, never a mix.
type T4 struct {
	cur atomic.Pointer[t4snap]
	mu  sync.Mutex // serializes writers
	// ctrs holds the steering counters of the current rows (under mu).
	ctrs map[steerKey]*SteerCounter
	// onChange, if set, is called with the new rows after each update,
	// under the writer lock (used to mirror T4 into the XDP offload).
	onChange func([]T4Row) error
}

// NewT4 returns a table holding rows.
func NewT4(rows []T4Row) (*T4, error) {
	t := &T4{}
	s, err := compile(rows)
	if err != nil {
		return nil, err
	}
	t.ctrs = t.attachCounters(s)
	t.cur.Store(s)
	return t, nil
}

// OnChange registers f to be called with the full table after every update
// and once now. If f fails, the update is not applied to this table either,
// so the two never disagree.
func (t *T4) OnChange(f func([]T4Row) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := f(t.cur.Load().rows); err != nil {
		return err
	}
	t.onChange = f
	return nil
}

// Validate checks one row.
func (r T4Row) Validate() error {
	if !r.Range.IsValid() {
		return errors.New("t4 row: invalid range")
	}
	if r.Range.Addr().Is4In6() {
		return fmt.Errorf("t4 row %s: write IPv4-mapped ranges as IPv4", r.Range)
	}
	if r.Range != r.Range.Masked() {
		return fmt.Errorf("t4 row %s: host bits set (want %s)", r.Range, r.Range.Masked())
	}
	if len(r.Gateways) == 0 {
		return fmt.Errorf("t4 row %s: no gateway", r.Range)
	}
	if len(r.Gateways) > MaxGateways {
		return fmt.Errorf("t4 row %s: %d gateways, at most %d", r.Range, len(r.Gateways), MaxGateways)
	}
	for i, g := range r.Gateways {
		if g.MAC == (MAC{}) || g.MAC[0]&1 != 0 {
			return fmt.Errorf("t4 row %s: gateway %d: %s is not a unicast MAC", r.Range, i, g.MAC)
		}
	}
	return nil
}

func bounds(p netip.Prefix) (loHi, loLo, hiHi, hiLo uint64) {
	a := p.Addr()
	bits := p.Bits()
	if a.Is4() {
		a = netip.AddrFrom16(a.As16())
		bits += 96
	}
	b := a.As16()
	loHi = binary.BigEndian.Uint64(b[:8])
	loLo = binary.BigEndian.Uint64(b[8:])
	hiHi, hiLo = loHi, loLo
	host := 128 - bits
	switch {
	case host >= 64:
		hiLo = ^uint64(0)
		if host == 128 {
			hiHi = ^uint64(0)
		} else {
			hiHi |= (uint64(1) << (host - 64)) - 1
		}
	case host > 0:
		hiLo |= (uint64(1) << host) - 1
	}
	return
}

func less(aHi, aLo, bHi, bLo uint64) bool { return aHi < bHi || (aHi == bHi && aLo < bLo) }

func compile(rows []T4Row) (*t4snap, error) {
	s := &t4snap{rows: make([]T4Row, len(rows))}
	for i, r := range rows {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		s.rows[i] = T4Row{Range: r.Range, Gateways: slices.Clone(r.Gateways)}
	}
	slices.SortFunc(s.rows, func(a, b T4Row) int {
		if c := a.Range.Addr().Compare(b.Range.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Range.Bits(), b.Range.Bits())
	})
	for _, r := range s.rows {
		iv := interval{}
		iv.loHi, iv.loLo, iv.hiHi, iv.hiLo = bounds(r.Range)
		for _, g := range r.Gateways {
			if g.Up {
				iv.gw, iv.ok = g.MAC, true
				break
			}
		}
		list := &s.v6
		if r.Range.Addr().Is4() {
			list = &s.v4
		}
		if n := len(*list); n > 0 {
			prev := (*list)[n-1]
			if !less(prev.hiHi, prev.hiLo, iv.loHi, iv.loLo) {
				return nil, fmt.Errorf("%w: %s", ErrOverlap, r.Range)
			}
		}
		*list = append(*list, iv)
	}
	return s, nil
}

func search(list []interval, hi, lo uint64) (MAC, Result) {
	iv, r := searchIv(list, hi, lo)
	if r != Found {
		return MAC{}, r
	}
	return iv.gw, Found
}

// searchIv is search returning the interval (nil with NoRow).
func searchIv(list []interval, hi, lo uint64) (*interval, Result) {
	// Last interval whose lo <= addr.
	i, j := 0, len(list)
	for i < j {
		h := int(uint(i+j) >> 1)
		if !less(hi, lo, list[h].loHi, list[h].loLo) {
			i = h + 1
		} else {
			j = h
		}
	}
	if i == 0 {
		return nil, NoRow
	}
	iv := &list[i-1]
	if less(iv.hiHi, iv.hiLo, hi, lo) {
		return nil, NoRow
	}
	if !iv.ok {
		return iv, AllDown
	}
	return iv, Found
}

// LookupV4 finds the gateway for IPv4 source address src.
func (t *T4) LookupV4(src [4]byte) (MAC, Result) {
	return search(t.cur.Load().v4, 0, 0xffff<<32|uint64(binary.BigEndian.Uint32(src[:])))
}

// LookupV6 finds the gateway for IPv6 source address src. IPv4-mapped
// addresses match IPv4 rows.
func (t *T4) LookupV6(src [16]byte) (MAC, Result) {
	hi := binary.BigEndian.Uint64(src[:8])
	lo := binary.BigEndian.Uint64(src[8:])
	list := t.cur.Load().v6
	if hi == 0 && lo>>32 == 0xffff {
		list = t.cur.Load().v4
	}
	return search(list, hi, lo)
}

// SteerV4 is LookupV4 that also returns the row's steering counter for
// the outcome: the chosen gateway's (Found), the row's all-down one
// (AllDown); nil with NoRow. The LB adds to it once per batch.
func (t *T4) SteerV4(src [4]byte) (MAC, Result, *SteerCounter) {
	iv, r := searchIv(t.cur.Load().v4, 0, 0xffff<<32|uint64(binary.BigEndian.Uint32(src[:])))
	if iv == nil {
		return MAC{}, r, nil
	}
	return iv.gw, r, iv.ctr
}

// SteerV6 is SteerV4 for IPv6 (IPv4-mapped addresses match IPv4 rows).
func (t *T4) SteerV6(src [16]byte) (MAC, Result, *SteerCounter) {
	hi := binary.BigEndian.Uint64(src[:8])
	lo := binary.BigEndian.Uint64(src[8:])
	s := t.cur.Load()
	list := s.v6
	if hi == 0 && lo>>32 == 0xffff {
		list = s.v4
	}
	iv, r := searchIv(list, hi, lo)
	if iv == nil {
		return MAC{}, r, nil
	}
	return iv.gw, r, iv.ctr
}

// Lookup finds the gateway for addr.
func (t *T4) Lookup(addr netip.Addr) (MAC, Result) {
	if addr.Is4() {
		return t.LookupV4(addr.As4())
	}
	return t.LookupV6(addr.As16())
}

// Rows returns a copy of the table, sorted by range.
func (t *T4) Rows() []T4Row {
	rows := t.cur.Load().rows
	out := make([]T4Row, len(rows))
	for i, r := range rows {
		out[i] = T4Row{Range: r.Range, Gateways: slices.Clone(r.Gateways)}
	}
	return out
}

func (t *T4) apply(rows []T4Row) error {
	s, err := compile(rows)
	if err != nil {
		return err
	}
	ctrs := t.attachCounters(s)
	if t.onChange != nil {
		if err := t.onChange(s.rows); err != nil {
			return fmt.Errorf("t4 mirror: %w", err)
		}
	}
	t.ctrs = ctrs
	t.cur.Store(s)
	return nil
}

// attachCounters gives each interval of s its steering counter and
// returns the counters of s's rows: those of t's that s still names
// (same range and gateway) carry over, the others start at 0. Under mu.
func (t *T4) attachCounters(s *t4snap) map[steerKey]*SteerCounter {
	ctrs := make(map[steerKey]*SteerCounter, 2*len(s.rows))
	get := func(k steerKey) *SteerCounter {
		c := ctrs[k]
		if c == nil {
			if c = t.ctrs[k]; c == nil {
				c = &SteerCounter{}
			}
			ctrs[k] = c
		}
		return c
	}
	i4, i6 := 0, 0
	for _, r := range s.rows {
		for _, g := range r.Gateways {
			get(steerKey{r.Range, g.MAC})
		}
		var iv *interval
		if r.Range.Addr().Is4() {
			iv = &s.v4[i4]
			i4++
		} else {
			iv = &s.v6[i6]
			i6++
		}
		down := get(steerKey{r.Range, MAC{}}) // kept while the row is: a recovery does not reset it
		if iv.ok {
			iv.ctr = get(steerKey{r.Range, iv.gw})
		} else {
			iv.ctr = down
		}
	}
	return ctrs
}

// SteerCounts returns every row's steering counters, by range and
// gateway; a row's all-down counter appears once it counted a packet.
func (t *T4) SteerCounts() []SteerCount {
	t.mu.Lock()
	out := make([]SteerCount, 0, len(t.ctrs))
	for k, c := range t.ctrs {
		n := c.n.Load()
		if k.gw == (MAC{}) && n == 0 {
			continue
		}
		out = append(out, SteerCount{Range: k.r, Gateway: k.gw, Packets: n})
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b SteerCount) int {
		if c := a.Range.Addr().Compare(b.Range.Addr()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Range.Bits(), b.Range.Bits()); c != 0 {
			return c
		}
		return bytes.Compare(a.Gateway[:], b.Gateway[:])
	})
	return out
}

// Replace swaps in a whole new table atomically.
func (t *T4) Replace(rows []T4Row) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.apply(rows)
}

// Put inserts the row for r.Range, or replaces the row with that range.
func (t *T4) Put(r T4Row) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	rows := t.Rows()
	i := slices.IndexFunc(rows, func(x T4Row) bool { return x.Range == r.Range })
	if i >= 0 {
		rows[i] = r
	} else {
		rows = append(rows, r)
	}
	return t.apply(rows)
}

// Delete removes the row for prefix p.
func (t *T4) Delete(p netip.Prefix) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	rows := t.Rows()
	i := slices.IndexFunc(rows, func(x T4Row) bool { return x.Range == p })
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	return t.apply(slices.Delete(rows, i, i+1))
}

// SetGatewayState marks the gateway with mac up or down in every row that
// names it, in one atomic update. It returns how many rows name it.
func (t *T4) SetGatewayState(mac MAC, up bool) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rows := t.Rows()
	n := 0
	for _, r := range rows {
		for i := range r.Gateways {
			if bytes.Equal(r.Gateways[i].MAC[:], mac[:]) {
				r.Gateways[i].Up = up
				n++
			}
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: no row names gateway %s", ErrNotFound, mac)
	}
	return n, t.apply(rows)
}
