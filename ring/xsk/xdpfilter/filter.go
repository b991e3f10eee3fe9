package xdpfilter

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"samepath/ring/xsk"
)

// Limits compiled into bpf/filter.c (keep in step with its #defines).
const (
	// MaxIfaces is how many interfaces one Filter serves.
	MaxIfaces = 16
	// MaxQueues is the number of queues per interface the filter can
	// redirect; frames on higher queues go to the kernel.
	MaxQueues = 64
	// Map capacities of bpf/filter.c.
	maxMACs       = 256
	maxEtherTypes = 32
	maxPrefixes   = 4096
	maxExcluded   = 1024
)

const (
	flagAnyMAC = 1
	flagAnySrc = 2
	flagAnyDst = 4
)

// Standard EtherTypes.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeIPv6 = 0x86DD
)

// Match says which frames the dataplane owns. A frame matches when all of
// these hold; every other frame goes to the kernel (XDP_PASS).
type Match struct {
	// DstMACs: the frame's destination MAC is one of these; empty = any.
	DstMACs [][6]byte
	// EtherTypes: the EtherType, after at most one 802.1Q tag, is one of
	// these; empty = IPv4 and IPv6.
	EtherTypes []uint16
	// SrcPrefixes, DstPrefixes: the IPv4 or IPv6 source (destination)
	// address lies in one of these; empty = any. A non-empty list matches
	// only IP frames, and only the families it has prefixes for.
	SrcPrefixes, DstPrefixes []netip.Prefix
	// ExcludeDst: frames to these addresses (the host's own) never match,
	// so pings and SSH to the host keep working.
	ExcludeDst []netip.Addr
}

// Whatever the Match says, ICMPv6 router and neighbour discovery (types
// 133-137, found behind up to four extension headers) always goes to the
// kernel, as do frames too short for their Ethernet or VLAN header and
// IPv6 frames whose extension headers run past the end. A frame that
// passes the MAC and EtherType tests but whose IP header is malformed
// (truncated, wrong version, IHL < 5) cannot be judged by address: with
// address prefixes set it goes to the kernel (counted Malformed); without
// them it is the dataplane's and goes to the socket, where the pipeline
// counts it as a malformed drop, as the in-kernel offload (dp/steer) does.

// Validate checks the match against the maps' capacities.
func (m Match) Validate() error {
	switch {
	case len(m.DstMACs) > maxMACs:
		return fmt.Errorf("xdp filter: %d destination MACs, at most %d", len(m.DstMACs), maxMACs)
	case len(m.EtherTypes) > maxEtherTypes:
		return fmt.Errorf("xdp filter: %d EtherTypes, at most %d", len(m.EtherTypes), maxEtherTypes)
	case len(m.ExcludeDst) > maxExcluded:
		return fmt.Errorf("xdp filter: %d excluded addresses, at most %d", len(m.ExcludeDst), maxExcluded)
	case len(m.SrcPrefixes) > maxPrefixes || len(m.DstPrefixes) > maxPrefixes:
		return fmt.Errorf("xdp filter: more than %d prefixes per list", maxPrefixes)
	}
	for _, e := range m.EtherTypes {
		if e < 0x0600 || e == 0x8100 {
			return fmt.Errorf("xdp filter: EtherType %#04x is a length or a VLAN tag", e)
		}
	}
	for _, p := range append(append([]netip.Prefix(nil), m.SrcPrefixes...), m.DstPrefixes...) {
		if !p.IsValid() {
			return fmt.Errorf("xdp filter: invalid prefix %v", p)
		}
	}
	for _, a := range m.ExcludeDst {
		if !a.IsValid() {
			return errors.New("xdp filter: invalid excluded address")
		}
	}
	return nil
}

// compiled is a Match as map contents.
type compiled struct {
	flags      uint32
	macs       map[filterMacKey]bool
	etherTypes map[uint16]bool
	src4, dst4 map[filterLpm4]bool
	src6, dst6 map[filterLpm6]bool
	excl4      map[[4]byte]bool
	excl6      map[filterAddr6]bool
}

func compile(m Match) compiled {
	c := compiled{
		macs: map[filterMacKey]bool{}, etherTypes: map[uint16]bool{},
		src4: map[filterLpm4]bool{}, dst4: map[filterLpm4]bool{},
		src6: map[filterLpm6]bool{}, dst6: map[filterLpm6]bool{},
		excl4: map[[4]byte]bool{}, excl6: map[filterAddr6]bool{},
	}
	if len(m.DstMACs) == 0 {
		c.flags |= flagAnyMAC
	}
	if len(m.SrcPrefixes) == 0 {
		c.flags |= flagAnySrc
	}
	if len(m.DstPrefixes) == 0 {
		c.flags |= flagAnyDst
	}
	for _, mac := range m.DstMACs {
		c.macs[filterMacKey{Addr: mac}] = true
	}
	ets := m.EtherTypes
	if len(ets) == 0 {
		ets = []uint16{EtherTypeIPv4, EtherTypeIPv6}
	}
	for _, e := range ets {
		c.etherTypes[e] = true
	}
	addPrefixes := func(ps []netip.Prefix, v4 map[filterLpm4]bool, v6 map[filterLpm6]bool) {
		for _, p := range ps {
			p = p.Masked()
			if p.Addr().Is4() {
				v4[filterLpm4{Prefixlen: uint32(p.Bits()), Addr: p.Addr().As4()}] = true
			} else {
				v6[filterLpm6{Prefixlen: uint32(p.Bits()), Addr: p.Addr().As16()}] = true
			}
		}
	}
	addPrefixes(m.SrcPrefixes, c.src4, c.src6)
	addPrefixes(m.DstPrefixes, c.dst4, c.dst6)
	for _, a := range m.ExcludeDst {
		if a.Is4() {
			c.excl4[a.As4()] = true
		} else {
			c.excl6[filterAddr6{Addr: a.As16()}] = true
		}
	}
	return c
}

// AttachMode is how the program is attached to an interface.
type AttachMode int

const (
	// Native runs the program in the driver (veth supports it); the
	// default and the fast path.
	Native AttachMode = iota
	// Generic runs it after the kernel built an skb: works on any device,
	// slowly.
	Generic
)

// Filter is the loaded program and its maps. Its methods may be called
// from any goroutine (a signal handler's included); they serialize on a
// mutex. The kernel detaches the program when the last reference to an
// attachment goes, so a crashed process leaves nothing attached either.
type Filter struct {
	mu     sync.Mutex
	objs   filterObjects
	links  map[int]link.Link // by ifindex
	slots  map[int]uint32    // ifindex -> XSKMAP slot
	match  Match
	closed bool
}

// Load loads the program and fills its maps from m. It attaches nothing.
func Load(m Match) (*Filter, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	f := &Filter{links: map[int]link.Link{}, slots: map[int]uint32{}}
	if err := loadFilterObjects(&f.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load xdp filter: %+v", ve)
		}
		return nil, fmt.Errorf("load xdp filter: %w", err)
	}
	if err := f.setMatch(m); err != nil {
		f.objs.Close()
		return nil, err
	}
	return f, nil
}

// Program is the loaded program, e.g. for BPF_PROG_RUN in tests.
func (f *Filter) Program() *ebpf.Program { return f.objs.SamepathFilter }

// Match returns the match in force.
func (f *Filter) Match() Match {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.match
}

// SetMatch replaces the match while the program runs. The maps are
// updated in an order that never narrows the match in between: new
// entries are added, then the flags switch, then stale entries go; a
// frame that arrives meanwhile is judged by the old match, the new one,
// or their union.
func (f *Filter) SetMatch(m Match) error {
	if err := m.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return xsk.ErrClosed
	}
	return f.setMatch(m)
}

func (f *Filter) setMatch(m Match) error {
	c := compile(m)
	o := &f.objs
	var stale []func() error
	steps := []func() error{
		func() error { return sync1(o.DstMacs, c.macs, &stale) },
		func() error { return sync1(o.EtherTypes, c.etherTypes, &stale) },
		func() error { return sync1(o.Src4, c.src4, &stale) },
		func() error { return sync1(o.Dst4, c.dst4, &stale) },
		func() error { return sync1(o.Src6, c.src6, &stale) },
		func() error { return sync1(o.Dst6, c.dst6, &stale) },
		func() error { return sync1(o.Excl4, c.excl4, &stale) },
		func() error { return sync1(o.Excl6, c.excl6, &stale) },
		func() error {
			return o.ConfigMap.Put(uint32(0), filterConfig{Flags: c.flags})
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("xdp filter match: %w", err)
		}
	}
	// Only now, with the new entries and flags in force, drop the old.
	for _, s := range stale {
		if err := s(); err != nil {
			return fmt.Errorf("xdp filter match: %w", err)
		}
	}
	f.match = m
	return nil
}

// sync1 puts want's keys into m and queues the deletion of m's other keys.
func sync1[K comparable](m *ebpf.Map, want map[K]bool, stale *[]func() error) error {
	var old []K
	var k K
	var v uint8
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			old = append(old, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read map %s: %w", m.String(), err)
	}
	for k := range want {
		if err := m.Put(k, uint8(1)); err != nil {
			return fmt.Errorf("map %s put %v: %w", m.String(), k, err)
		}
	}
	*stale = append(*stale, func() error {
		for _, k := range old {
			if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("map %s delete %v: %w", m.String(), k, err)
			}
		}
		return nil
	})
	return nil
}

// slot returns (assigning if needed) the XSKMAP slot of ifindex.
func (f *Filter) slot(ifindex int) (uint32, error) {
	if s, ok := f.slots[ifindex]; ok {
		return s, nil
	}
	used := make([]bool, MaxIfaces)
	for _, s := range f.slots {
		used[s] = true
	}
	for s := range used {
		if !used[s] {
			if err := f.objs.IfSlots.Put(uint32(ifindex), uint32(s)); err != nil {
				return 0, fmt.Errorf("xdp filter slot for ifindex %d: %w", ifindex, err)
			}
			f.slots[ifindex] = uint32(s)
			return uint32(s), nil
		}
	}
	return 0, fmt.Errorf("xdp filter: more than %d interfaces", MaxIfaces)
}

// Attach attaches the program to the interface ifindex (in the network
// namespace of the calling thread). Native mode fails where the driver
// lacks XDP support rather than falling back silently.
func (f *Filter) Attach(ifindex int, mode AttachMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return xsk.ErrClosed
	}
	if _, ok := f.links[ifindex]; ok {
		return fmt.Errorf("xdp filter: already attached to ifindex %d", ifindex)
	}
	flags := link.XDPDriverMode
	if mode == Generic {
		flags = link.XDPGenericMode
	}
	if _, err := f.slot(ifindex); err != nil {
		return err
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: f.objs.SamepathFilter, Interface: ifindex, Flags: flags})
	if err != nil {
		return fmt.Errorf("attach xdp filter to ifindex %d: %w", ifindex, err)
	}
	f.links[ifindex] = l
	return nil
}

// Detach removes the program from ifindex.
func (f *Filter) Detach(ifindex int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[ifindex]
	if !ok {
		return fmt.Errorf("xdp filter: not attached to ifindex %d", ifindex)
	}
	delete(f.links, ifindex)
	if err := l.Close(); err != nil {
		return fmt.Errorf("detach xdp filter from ifindex %d: %w", ifindex, err)
	}
	return nil
}

// Register makes frames matched on the socket's interface and queue go to
// the socket. Closing the socket unregisters it (the kernel drops closed
// sockets from the map); frames for a queue without a socket go to the
// kernel.
func (f *Filter) Register(s *xsk.Socket) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return xsk.ErrClosed
	}
	key, err := f.key(s)
	if err != nil {
		return err
	}
	if err := f.objs.XsksMap.Put(key, uint32(s.FD())); err != nil {
		return fmt.Errorf("xdp filter register %s: %w", s.Name(), err)
	}
	return nil
}

// Unregister undoes Register.
func (f *Filter) Unregister(s *xsk.Socket) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return xsk.ErrClosed
	}
	key, err := f.key(s)
	if err != nil {
		return err
	}
	if err := f.objs.XsksMap.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("xdp filter unregister %s: %w", s.Name(), err)
	}
	return nil
}

func (f *Filter) key(s *xsk.Socket) (uint32, error) {
	if s.Queue() >= MaxQueues {
		return 0, fmt.Errorf("xdp filter: %s: queue %d >= %d", s.Name(), s.Queue(), MaxQueues)
	}
	slot, err := f.slot(s.Ifindex())
	if err != nil {
		return 0, err
	}
	return slot*MaxQueues + uint32(s.Queue()), nil
}

// Counters are what the program did with frames, summed over CPUs.
type Counters struct {
	Redirected uint64 // handed to an AF_XDP socket
	NoSocket   uint64 // matched, but no socket on the queue: passed
	NotOurs    uint64 // MAC, EtherType or address did not match: passed
	Excluded   uint64 // to one of the host's addresses: passed
	ND         uint64 // ICMPv6 router/neighbour discovery: passed
	Malformed  uint64 // too short or bad header to match: passed
}

// Counters reads the program's counters.
func (f *Filter) Counters() (Counters, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return Counters{}, xsk.ErrClosed
	}
	var c [6]uint64
	var per []uint64
	for i := range c {
		if err := f.objs.Counters.Lookup(uint32(i), &per); err != nil {
			return Counters{}, fmt.Errorf("xdp filter counters: %w", err)
		}
		for _, v := range per {
			c[i] += v
		}
	}
	return Counters{Redirected: c[0], NoSocket: c[1], NotOurs: c[2], Excluded: c[3], ND: c[4], Malformed: c[5]}, nil
}

// Close detaches the program from every interface and frees it and its
// maps. Calling it again does nothing. Call it from the daemon's
// SIGINT/SIGTERM path; if the process dies instead, closing its file
// descriptors detaches the program all the same.
func (f *Filter) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	var first error
	for ifindex, l := range f.links {
		if err := l.Close(); err != nil && first == nil {
			first = fmt.Errorf("detach xdp filter from ifindex %d: %w", ifindex, err)
		}
		delete(f.links, ifindex)
	}
	if err := f.objs.Close(); err != nil && first == nil {
		first = fmt.Errorf("close xdp filter: %w", err)
	}
	return first
}
