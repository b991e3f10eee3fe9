package tcpsplit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"samepath/perf/bench"
	"samepath/testbed/linkem"
	"samepath/testbed/topo"
)

// Addresses of the scenario.
var (
	MobileIP = netip.MustParseAddr("10.1.0.1")     // the mobile (client)
	LanIP    = netip.MustParseAddr("10.1.255.254") // the DUT toward the mobile
	WanIP    = netip.MustParseAddr("10.2.255.254") // the DUT toward the server (HAProxy connects from it)
	ServerIP = netip.MustParseAddr("10.2.0.1")     // the server
	NATAddr  = netip.MustParseAddr("10.2.255.101") // samepathd's key-port address (the terminator's too)
	RepIP    = netip.MustParseAddr("10.30.0.1")    // the representative address the mobile downloads from
)

// Ports: the server's, and one representative port per way through.
const (
	ServerPort  = 5001
	NATPort     = 80 // samepathd service mode nat
	TermPort    = 81 // samepathd service mode terminate
	HAProxyPort = 82 // HAProxy, mode tcp, bound to RepIP in the DUT namespace
)

// Topo is the scenario's path, veth all the way:
//
//	ns mob       ns air (wireless)     ns dut (gateway)     ns wan (wired)       ns srv
//	[m] <-veth-> [a0  linkem  a1] <-veth-> [In  DUT  Out] <-veth-> [w0  linkem  w1] <-veth-> [s]
//	client            or a bridge           samepathd / HAProxy       or a bridge            server
//
// The air and wan namespaces bridge their two ends, with linkem when the
// case emulates that side and with a kernel bridge when it does not.
type Topo struct {
	Prefix                        string
	Mob, Air, DUT, Wan, Srv       string // namespaces
	M, A0, A1, In, Out, W0, W1, S string // devices
	InMAC                         net.HardwareAddr
	MMAC, SMAC                    net.HardwareAddr // the mobile's and the server's (the l2fwd reference's next hops)
	mu                            sync.Mutex
	ems                           []*linkem.Emulator
	cancel                        context.CancelFunc
	done                          chan error
}

// NewTopo names the topology after this process.
func NewTopo(prefix string) *Topo {
	id := strconv.FormatInt(int64(os.Getpid()), 36)
	p := fmt.Sprintf("%s-%d", prefix, os.Getpid())
	return &Topo{Prefix: p, Mob: p + "-mob", Air: p + "-air", DUT: p + "-dut", Wan: p + "-wan", Srv: p + "-srv",
		M: "m" + id, A0: "a0" + id, A1: "a1" + id, In: "i" + id, Out: "o" + id, W0: "w0" + id, W1: "w1" + id, S: "s" + id,
		InMAC: net.HardwareAddr{0x02, 0x5e, 0, 0, 1, 0x02}, MMAC: net.HardwareAddr{0x02, 0x5e, 0, 0, 1, 0x01}, SMAC: net.HardwareAddr{0x02, 0x5e, 0, 0, 1, 0x04}}
}

// Bench is the view of the topology perf/bench's DUT starters use.
func (t *Topo) Bench() *bench.Topology {
	return &bench.Topology{Prefix: t.Prefix, DUT: t.DUT, In: t.In, Out: t.Out}
}

// Up creates namespaces, links, addresses and routes; on error it
// removes what it made.
func (t *Topo) Up() (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Down())
		}
	}()
	nss := []string{t.Mob, t.Air, t.DUT, t.Wan, t.Srv}
	h := map[string]*topo.NS{}
	for _, ns := range nss {
		if err := topo.CreateNetns(ns); err != nil {
			return err
		}
		n, err := topo.Open(ns)
		if err != nil {
			return err
		}
		defer n.Close()
		h[ns] = n
	}
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0x5e, 0, 0, 1, b} }
	for _, v := range []struct {
		a, an string
		am    net.HardwareAddr
		b, bn string
		bm    net.HardwareAddr
	}{{t.Mob, t.M, t.MMAC, t.Air, t.A0, mac(0x11)}, {t.Air, t.A1, mac(0x12), t.DUT, t.In, t.InMAC},
		{t.DUT, t.Out, mac(3), t.Wan, t.W0, mac(0x21)}, {t.Wan, t.W1, mac(0x22), t.Srv, t.S, t.SMAC}} {
		if err := topo.Veth(h[v.a], v.an, v.am, h[v.b], v.bn, v.bm); err != nil {
			return err
		}
	}
	for _, a := range []struct {
		ns, dev string
		p       string
	}{{t.Mob, t.M, "10.1.0.1/16"}, {t.DUT, t.In, "10.1.255.254/16"}, {t.DUT, t.Out, "10.2.255.254/16"}, {t.Srv, t.S, "10.2.0.1/16"}} {
		if err := h[a.ns].AddrReplace(a.dev, netip.MustParsePrefix(a.p)); err != nil {
			return err
		}
	}
	for _, l := range []struct{ ns, dev string }{{t.Mob, t.M}, {t.Mob, "lo"}, {t.Air, t.A0}, {t.Air, t.A1}, {t.DUT, t.In}, {t.DUT, t.Out},
		{t.DUT, "lo"}, {t.Wan, t.W0}, {t.Wan, t.W1}, {t.Srv, t.S}, {t.Srv, "lo"}} {
		if err := h[l.ns].Up(l.dev); err != nil {
			return err
		}
	}
	// The relays (linkem, the bridge) take whole frames: the kernel ends
	// that send into them compute checksums and segment in software (a
	// veth would hand over partial checksums, which AF_XDP passes on as
	// they are), and the relays' own ends do no GRO.
	for _, e := range []struct{ ns, dev string }{{t.Mob, t.M}, {t.Srv, t.S}} {
		if err := topo.SetTxChecksum(e.ns, e.dev, false); err != nil {
			return err
		}
	}
	for _, e := range []struct{ ns, dev string }{{t.Air, t.A0}, {t.Air, t.A1}, {t.Wan, t.W0}, {t.Wan, t.W1}} {
		if err := topo.SetGRO(e.ns, e.dev, false); err != nil {
			return err
		}
	}
	for _, ns := range nss {
		for _, kv := range [][2]string{{"net/ipv4/conf/all/rp_filter", "0"}, {"net/ipv4/conf/default/rp_filter", "0"},
			{"net/ipv6/conf/all/disable_ipv6", "1"}} {
			if err := topo.Sysctl(ns, kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	for _, r := range []struct {
		ns  string
		dst string
		via netip.Addr
	}{{t.Mob, "0.0.0.0/0", LanIP}, {t.Srv, "0.0.0.0/0", WanIP}} {
		if out, err := topo.Command(r.ns, "ip", "route", "replace", r.dst, "via", r.via.String()).CombinedOutput(); err != nil {
			return fmt.Errorf("route %s via %s in %s: %w: %s", r.dst, r.via, r.ns, err, strings.TrimSpace(string(out)))
		}
	}
	for _, l := range []struct{ ns, dev string }{{t.Mob, t.M}, {t.DUT, t.In}, {t.DUT, t.Out}, {t.Srv, t.S}} {
		if err := h[l.ns].WaitOperUp(l.dev, 5*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// Down stops the relays, kills what runs in the namespaces and removes them.
func (t *Topo) Down() error {
	errs := []error{t.StopRelays(), topo.KillProcs(t.Prefix+"-", 2*time.Second)}
	for _, ns := range []string{t.Mob, t.Air, t.DUT, t.Wan, t.Srv} {
		if err := topo.DeleteNetns(ns); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// StartRelays bridges the air and wan namespaces: with linkem (in this
// process: wireless and wired settings in both directions) where the
// setting is non-nil, with a kernel bridge where it is nil.
func (t *Topo) StartRelays(wireless, wired *linkem.Config) error {
	if err := t.StopRelays(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var ems []*linkem.Emulator
	fail := func(err error) error {
		cancel()
		for _, e := range ems {
			e.Close()
		}
		return err
	}
	for _, s := range []struct {
		ns, a, b string
		c        *linkem.Config
	}{{t.Air, t.A0, t.A1, wireless}, {t.Wan, t.W0, t.W1, wired}} {
		if err := unbridge(s.ns, s.a, s.b); err != nil {
			return fail(err)
		}
		if s.c == nil {
			if err := bridge(s.ns, s.a, s.b); err != nil {
				return fail(err)
			}
			continue
		}
		ba := *s.c
		ba.Seed++
		var e *linkem.Emulator
		if err := topo.Do(s.ns, func() (err error) { e, err = linkem.Open(s.a, s.b, *s.c, ba); return err }); err != nil {
			return fail(err)
		}
		ems = append(ems, e)
	}
	done := make(chan error, len(ems))
	for _, e := range ems {
		go func() { done <- e.Run(ctx) }()
	}
	t.mu.Lock()
	t.ems, t.cancel, t.done = ems, cancel, done
	t.mu.Unlock()
	return nil
}

// RelayStats sums the linkem counters of both relays per direction
// (toward the server: up; toward the mobile: down). Bridges count nothing.
func (t *Topo) RelayStats() (up, down linkem.Stats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.ems {
		ab, ba := e.Stats()
		up, down = addStats(up, ab), addStats(down, ba)
	}
	return up, down
}

func addStats(a, b linkem.Stats) linkem.Stats {
	return linkem.Stats{Frames: a.Frames + b.Frames, Forwarded: a.Forwarded + b.Forwarded, Bytes: a.Bytes + b.Bytes,
		Lost: a.Lost + b.Lost, QueueDrop: a.QueueDrop + b.QueueDrop, Oversize: a.Oversize + b.Oversize,
		TxErrors: a.TxErrors + b.TxErrors, RxDrops: a.RxDrops + b.RxDrops}
}

func subStats(a, b linkem.Stats) linkem.Stats {
	return linkem.Stats{Frames: a.Frames - b.Frames, Forwarded: a.Forwarded - b.Forwarded, Bytes: a.Bytes - b.Bytes,
		Lost: a.Lost - b.Lost, QueueDrop: a.QueueDrop - b.QueueDrop, Oversize: a.Oversize - b.Oversize,
		TxErrors: a.TxErrors - b.TxErrors, RxDrops: a.RxDrops - b.RxDrops}
}

// StopRelays stops the linkem relays (bridges stay until the next
// StartRelays or Down).
func (t *Topo) StopRelays() error {
	t.mu.Lock()
	ems, cancel, done := t.ems, t.cancel, t.done
	t.ems, t.cancel, t.done = nil, nil, nil
	t.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	var errs []error
	for range ems {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	for _, e := range ems {
		if err := e.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

const bridgeName = "br0"

func bridge(ns, a, b string) error {
	n, err := topo.Open(ns)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.Bridge(bridgeName); err != nil {
		return err
	}
	for _, l := range []string{a, b} {
		if err := n.SetMaster(l, bridgeName); err != nil {
			return err
		}
	}
	return nil
}

// unbridge removes ns's bridge if there is one.
func unbridge(ns, a, b string) error {
	n, err := topo.Open(ns)
	if err != nil {
		return err
	}
	defer n.Close()
	l, err := n.Link(bridgeName)
	if err != nil {
		return nil // none
	}
	if err := n.H.LinkDel(l); err != nil {
		return fmt.Errorf("delete bridge %s/%s: %w", ns, bridgeName, err)
	}
	return nil
}
