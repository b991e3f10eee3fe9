package steer

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"samepath/dp"
	"samepath/nat"
)

// Errors.
var (
	ErrClosed   = errors.New("steer: offload closed")
	ErrAttached = errors.New("steer: already attached")
)

// Side is the interface a frame arrives on.
type Side uint8

const (
	IngressSide Side = iota // toward the NAS/router: up frames
	GatewaySide             // toward the gateways: down frames
)

func (s Side) String() string {
	if s == GatewaySide {
		return "gateway"
	}
	return "ingress"
}

// Action is an XDP verdict.
type Action uint32

const (
	Aborted  Action = 0 // XDP_ABORTED
	Drop     Action = 1 // XDP_DROP
	Pass     Action = 2 // XDP_PASS: the kernel gets the frame
	TX       Action = 3 // XDP_TX: back out the receiving interface
	Redirect Action = 4 // XDP_REDIRECT: out the other interface
)

var actionNames = [...]string{"aborted", "drop", "pass", "tx", "redirect"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint32(a))
}

// Counters are the offload's packet counters, summed over CPUs.
type Counters struct {
	RxPackets, RxBytes uint64 // frames the offload handled (not passed)
	TxPackets, TxBytes uint64 // frames it transmitted
	Passed             uint64 // frames left to the kernel (R-LB-5)
	Drops              [dp.NumReasons]uint64
}

// Dropped is the total of all drop counters.
func (c Counters) Dropped() uint64 {
	var n uint64
	for _, d := range c.Drops {
		n += d
	}
	return n
}

// The C program has room for 32 drop reasons; this fails to compile if
// dp.Reason outgrows it.
var _ [len(steerCounters{}.Drops) - int(dp.NumReasons)]struct{}

// Offload is the loaded steering program and its maps. Its methods may be
// called from any goroutine; T4 updates, next hop changes, Attach and Close
// are serialized.
type Offload struct {
	cfg   Config
	objs  steerObjects
	inner *ebpf.MapSpec // template of the T4 tries swapped into objs.T4

	mu     sync.Mutex
	links  []link.Link
	closed bool
}

// Load checks cfg, loads the program and its maps into the kernel and
// fills them: own MACs, exclude set, egress interfaces (the ifindexes must
// exist in the calling thread's network namespace), next hop and an empty
// T4 (every up frame is dropped as no_route until Sync). It does not
// attach; see Attach.
func Load(cfg Config) (*Offload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	spec, err := loadSteer()
	if err != nil {
		return nil, fmt.Errorf("steer: %w", err)
	}
	oneArmed := uint8(0)
	if cfg.IngressIfindex == cfg.GatewayIfindex {
		oneArmed = 1
	}
	for name, v := range map[string]any{
		steerVarIngressMac: [6]byte(cfg.IngressMAC),
		steerVarGatewayMac: [6]byte(cfg.GatewayMAC),
		steerVarOneArmed:   oneArmed,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("steer: set %s: %w", name, err)
		}
	}
	var ex4 [][4]byte
	var ex6 [][16]byte
	for _, a := range cfg.Exclude {
		a = a.WithZone("")
		if a.Is4() {
			ex4 = append(ex4, a.As4())
		} else {
			ex6 = append(ex6, a.As16())
		}
	}
	spec.Maps[steerMapExclude4].MaxEntries = uint32(max(1, len(ex4)))
	spec.Maps[steerMapExclude6].MaxEntries = uint32(max(1, len(ex6)))

	o := &Offload{cfg: cfg, inner: spec.Maps[steerMapT4].InnerMap.Copy()}
	if err := spec.LoadAndAssign(&o.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("steer: load: %+v", ve)
		}
		return nil, fmt.Errorf("steer: load: %w", err)
	}
	if err := o.fill(ex4, ex6); err != nil {
		o.objs.Close()
		return nil, err
	}
	return o, nil
}

func (o *Offload) fill(ex4 [][4]byte, ex6 [][16]byte) error {
	one := uint8(1)
	for _, a := range ex4 {
		if err := o.objs.Exclude4.Put(a, one); err != nil {
			return fmt.Errorf("steer: exclude %s: %w", netip.AddrFrom4(a), err)
		}
	}
	for _, a := range ex6 {
		if err := o.objs.Exclude6.Put(a, one); err != nil {
			return fmt.Errorf("steer: exclude %s: %w", netip.AddrFrom16(a), err)
		}
	}
	for slot, ifindex := range map[uint32]int{slotIngress: o.cfg.IngressIfindex, slotGateway: o.cfg.GatewayIfindex} {
		if err := o.objs.TxPorts.Put(slot, uint32(ifindex)); err != nil {
			return fmt.Errorf("steer: devmap slot %d ifindex %d: %w", slot, ifindex, err)
		}
	}
	if err := o.setNextHop(o.cfg.NextHopMAC); err != nil {
		return err
	}
	return o.sync(nil)
}

// Sync makes rows the offload's T4, atomically: it builds a new LPM trie
// and swaps it in, so every packet sees the old table or the new one
// (doc.go). Rows are checked as nat.T4 checks them (overlaps rejected), so
// the trie's longest-prefix match gives the same row as nat.T4's lookup.
// Its signature fits (*nat.T4).OnChange, which keeps both tables equal.
func (o *Offload) Sync(rows []nat.T4Row) error {
	if _, err := nat.NewT4(rows); err != nil {
		return fmt.Errorf("steer: sync: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	return o.sync(rows)
}

func (o *Offload) sync(rows []nat.T4Row) error {
	spec := o.inner.Copy()
	spec.MaxEntries = uint32(max(1, len(rows)))
	trie, err := ebpf.NewMap(spec)
	if err != nil {
		return fmt.Errorf("steer: sync: new trie: %w", err)
	}
	// The outer map holds its own reference once the swap is done; the old
	// trie is freed by the kernel after readers still using it finish.
	defer trie.Close()
	for _, r := range rows {
		v, err := t4Val(r)
		if err != nil {
			return fmt.Errorf("steer: sync: %w", err)
		}
		if err := trie.Put(t4Key(r.Range), v); err != nil {
			return fmt.Errorf("steer: sync: row %s: %w", r.Range, err)
		}
	}
	if err := o.objs.T4.Put(uint32(0), trie); err != nil {
		return fmt.Errorf("steer: sync: swap trie: %w", err)
	}
	return nil
}

// Table reads the T4 the program uses now, sorted by range. It is for
// checks and debugging, not the packet path.
func (o *Offload) Table() ([]nat.T4Row, error) {
	var id ebpf.MapID
	if err := o.objs.T4.Lookup(uint32(0), &id); err != nil {
		return nil, fmt.Errorf("steer: table: %w", err)
	}
	trie, err := ebpf.NewMapFromID(id)
	if err != nil {
		return nil, fmt.Errorf("steer: table: open trie %d: %w", id, err)
	}
	defer trie.Close()
	var rows []nat.T4Row
	var k steerT4Key
	var v steerT4Val
	it := trie.Iterate()
	for it.Next(&k, &v) {
		r, err := decodeRow(k, v)
		if err != nil {
			return nil, fmt.Errorf("steer: table: %w", err)
		}
		rows = append(rows, r)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("steer: table: %w", err)
	}
	t, err := nat.NewT4(rows) // sorts the rows as nat.T4 does
	if err != nil {
		return nil, fmt.Errorf("steer: table: %w", err)
	}
	return t.Rows(), nil
}

// SetNextHop sets the ingress-side next hop MAC for down frames; the zero
// MAC means unknown (down frames are dropped as no_next_hop). The change
// is atomic for readers.
func (o *Offload) SetNextHop(m nat.MAC) error {
	if m != (nat.MAC{}) && !unicast(m) {
		return fmt.Errorf("steer: next hop %s is not unicast", m)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	return o.setNextHop(m)
}

func (o *Offload) setNextHop(m nat.MAC) error {
	if m == (nat.MAC{}) {
		err := o.objs.NextHop.Delete(uint32(0))
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("steer: clear next hop: %w", err)
		}
		return nil
	}
	if err := o.objs.NextHop.Put(uint32(0), steerMacVal{Mac: m}); err != nil {
		return fmt.Errorf("steer: next hop %s: %w", m, err)
	}
	return nil
}

// Program returns the program for frames arriving on side s: steer_up for
// the ingress side, steer_down for the gateway side. The Offload owns it.
func (o *Offload) Program(s Side) *ebpf.Program {
	if s == GatewaySide {
		return o.objs.SteerDown
	}
	return o.objs.SteerUp
}

// Attach attaches the programs in native (driver) mode through bpf links:
// steer_up to the ingress-side interface and, unless the LB is one-armed,
// steer_down to the gateway-side one. The ifindexes are resolved in the
// calling thread's network namespace. Close detaches; the kernel also
// detaches when the process dies, since the links are not pinned.
func (o *Offload) Attach() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	if len(o.links) > 0 {
		return ErrAttached
	}
	type att struct {
		side    Side
		ifindex int
	}
	atts := []att{{IngressSide, o.cfg.IngressIfindex}}
	if o.cfg.GatewayIfindex != o.cfg.IngressIfindex {
		atts = append(atts, att{GatewaySide, o.cfg.GatewayIfindex})
	}
	for _, a := range atts {
		l, err := link.AttachXDP(link.XDPOptions{
			Program:   o.Program(a.side),
			Interface: a.ifindex,
			Flags:     link.XDPDriverMode,
		})
		if err != nil {
			o.detach()
			return fmt.Errorf("steer: attach %s side (ifindex %d, native mode): %w", a.side, a.ifindex, err)
		}
		o.links = append(o.links, l)
	}
	return nil
}

// Detach removes the programs from the interfaces; the maps stay loaded.
func (o *Offload) Detach() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.detach()
}

func (o *Offload) detach() error {
	var errs []error
	for _, l := range o.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	o.links = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("steer: detach: %w", err)
	}
	return nil
}

// Close detaches and unloads everything. The daemon calls it on
// SIGTERM/SIGINT. Closing twice is harmless.
func (o *Offload) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	err := o.detach()
	if cerr := o.objs.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("steer: close: %w", cerr))
	}
	return err
}

// Counters reads the per-CPU counters and sums them.
func (o *Offload) Counters() (Counters, error) {
	var per []steerCounters
	if err := o.objs.Stats.Lookup(uint32(0), &per); err != nil {
		return Counters{}, fmt.Errorf("steer: counters: %w", err)
	}
	var c Counters
	for _, p := range per {
		c.RxPackets += p.RxPackets
		c.RxBytes += p.RxBytes
		c.TxPackets += p.TxPackets
		c.TxBytes += p.TxBytes
		c.Passed += p.Passed
		for i := range c.Drops {
			c.Drops[i] += p.Drops[i]
		}
	}
	return c, nil
}

// Run runs the program for side s once on a copy of frame through
// BPF_PROG_RUN (no packet is sent) and returns the frame as the program
// left it and its verdict. Counters count the run. It is for tests (the
// differential test against dp.LB) and needs no attachment; it allocates.
func (o *Offload) Run(frame []byte, s Side) ([]byte, Action, error) {
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256), Repeat: 1}
	ret, err := o.Program(s).Run(&opts)
	if err != nil {
		return nil, 0, fmt.Errorf("steer: run %s side: %w", s, err)
	}
	return opts.DataOut, Action(ret), nil
}
