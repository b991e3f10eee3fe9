package bench

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"samepath/testbed/topo"
)

// Topology is the path every packet scenario uses:
//
//	ns Gen           ns DUT                         ns Sink
//	[GenDev] <-veth-> [In]  (device under test)  [Out] <-veth-> [SinkDev]
//	 pktgen live          XDP / kernel / samepathd         XDP counting sink
//
// Addresses (used by the kernel forwarding baseline): Gen 10.1.255.1/16,
// DUT In 10.1.255.254/16, DUT Out 10.2.255.254/16, Sink 10.2.255.1/16; the
// generator sends from 10.1.0.0/16 to DstIP 10.2.0.1, which the DUT resolves
// to the sink's MAC with a permanent neighbour entry.
type Topology struct {
	Prefix                         string
	Gen, DUT, Sink                 string // namespace names
	GenDev, In, Out, SinkDev       string // device names (short: the NAPI thread name keeps 15 chars)
	GenMAC, InMAC, OutMAC, SinkMAC net.HardwareAddr
	SrcIP, DstIP                   netip.Addr
}

// NewTopology names a topology after this process: namespace names carry
// prefix and PID, device names a base-36 PID so that the kernel's
// `napi/DEV-ID` thread names stay unique within their 15 characters.
func NewTopology(prefix string) *Topology {
	id := strconv.FormatInt(int64(os.Getpid()), 36)
	p := fmt.Sprintf("%s-%d", prefix, os.Getpid())
	return &Topology{
		Prefix: p,
		Gen:    p + "-gen", DUT: p + "-dut", Sink: p + "-sink",
		GenDev: "g" + id, In: "i" + id, Out: "o" + id, SinkDev: "s" + id,
		GenMAC:  net.HardwareAddr{0x02, 0x5e, 0, 0, 0, 0x01},
		InMAC:   net.HardwareAddr{0x02, 0x5e, 0, 0, 0, 0x02},
		OutMAC:  net.HardwareAddr{0x02, 0x5e, 0, 0, 0, 0x03},
		SinkMAC: net.HardwareAddr{0x02, 0x5e, 0, 0, 0, 0x04},
		SrcIP:   netip.MustParseAddr("10.1.0.1"),
		DstIP:   netip.MustParseAddr("10.2.0.1"),
	}
}

// Up creates the namespaces and links. On error it removes what it made.
func (t *Topology) Up() (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Down())
		}
	}()
	for _, ns := range []string{t.Gen, t.DUT, t.Sink} {
		if err := topo.CreateNetns(ns); err != nil {
			return err
		}
	}
	g, err := topo.Open(t.Gen)
	if err != nil {
		return err
	}
	defer g.Close()
	d, err := topo.Open(t.DUT)
	if err != nil {
		return err
	}
	defer d.Close()
	s, err := topo.Open(t.Sink)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := topo.Veth(g, t.GenDev, t.GenMAC, d, t.In, t.InMAC); err != nil {
		return err
	}
	if err := topo.Veth(d, t.Out, t.OutMAC, s, t.SinkDev, t.SinkMAC); err != nil {
		return err
	}
	addrs := []struct {
		ns  *topo.NS
		dev string
		p   string
	}{{g, t.GenDev, "10.1.255.1/16"}, {d, t.In, "10.1.255.254/16"}, {d, t.Out, "10.2.255.254/16"}, {s, t.SinkDev, "10.2.255.1/16"}}
	for _, a := range addrs {
		if err := a.ns.AddrReplace(a.dev, netip.MustParsePrefix(a.p)); err != nil {
			return err
		}
		if err := a.ns.Up(a.dev); err != nil {
			return err
		}
	}
	for _, ns := range []string{t.Gen, t.DUT, t.Sink} {
		if err := ns2sysctl(ns); err != nil {
			return err
		}
	}
	// The DUT resolves the generator's destination to the sink's MAC.
	if err := topo.Command(t.DUT, "ip", "neigh", "replace", t.DstIP.String(), "lladdr", t.SinkMAC.String(),
		"dev", t.Out, "nud", "permanent").Run(); err != nil {
		return fmt.Errorf("neighbour %s on %s: %w", t.DstIP, t.Out, err)
	}
	return nil
}

func ns2sysctl(ns string) error {
	for _, kv := range [][2]string{{"net/ipv4/conf/all/rp_filter", "0"}, {"net/ipv4/conf/default/rp_filter", "0"},
		{"net/ipv6/conf/all/disable_ipv6", "1"}} {
		if err := topo.Sysctl(ns, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// Down removes the namespaces (and with them the links and attachments)
// and kills any process still running in them.
func (t *Topology) Down() error {
	errs := []error{topo.KillProcs(t.Prefix+"-", 2*time.Second)}
	for _, ns := range []string{t.Gen, t.DUT, t.Sink} {
		if err := topo.DeleteNetns(ns); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// NAPIThread is one threaded-NAPI kernel thread and where it may run.
type NAPIThread struct {
	Name    string
	PID     int
	Allowed string // Cpus_allowed_list
	Policy  string // scheduling policy and priority
}

func policy(pid int) string {
	a, err := unix.SchedGetAttr(pid, 0)
	if err != nil {
		return "?"
	}
	switch a.Policy {
	case unix.SCHED_FIFO:
		return fmt.Sprintf("SCHED_FIFO %d", a.Priority)
	case unix.SCHED_RR:
		return fmt.Sprintf("SCHED_RR %d", a.Priority)
	case 0: // SCHED_OTHER
		return fmt.Sprintf("SCHED_OTHER nice %d", a.Nice)
	}
	return fmt.Sprintf("policy %d", a.Policy)
}

// PinNAPI turns on threaded NAPI for dev in ns and pins its napi/DEV-*
// kernel threads to cpu; with fifo > 0 it also makes them SCHED_FIFO at
// that priority (so other tasks on a shared box cannot delay them). It
// returns the threads found (none when the device has no NAPI yet: veth
// gets it with an XDP program or GRO).
func PinNAPI(ns, dev string, cpu, fifo int) ([]NAPIThread, error) {
	if out, err := topo.Command(ns, "sh", "-c", "echo 1 > /sys/class/net/"+dev+"/threaded").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("threaded napi on %s/%s: %w: %s", ns, dev, err, strings.TrimSpace(string(out)))
	}
	ths, err := napiThreads(dev)
	if err != nil {
		return nil, err
	}
	var set unix.CPUSet
	set.Set(cpu)
	for i := range ths {
		if err := unix.SchedSetaffinity(ths[i].PID, &set); err != nil {
			return nil, fmt.Errorf("pin %s (pid %d) to cpu %d: %w", ths[i].Name, ths[i].PID, cpu, err)
		}
		if fifo > 0 {
			if err := unix.SchedSetAttr(ths[i].PID, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: uint32(fifo)}, 0); err != nil {
				return nil, fmt.Errorf("SCHED_FIFO %d for %s (pid %d): %w", fifo, ths[i].Name, ths[i].PID, err)
			}
		}
		ths[i].Allowed = allowed(ths[i].PID)
		ths[i].Policy = policy(ths[i].PID)
	}
	return ths, nil
}

// napiThreads finds kernel threads named napi/DEV-* by their comm, as
// `pgrep '^napi/DEV-'` would (not pgrep -f: kernel threads have no cmdline).
func napiThreads(dev string) ([]NAPIThread, error) {
	want := "napi/" + dev + "-"
	if len(want) > 15 {
		want = want[:15]
	}
	dirs, err := filepath.Glob("/proc/[0-9]*/comm")
	if err != nil {
		return nil, err
	}
	var out []NAPIThread
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(b))
		if !strings.HasPrefix(name, want) {
			continue
		}
		pid, err := strconv.Atoi(strings.Split(p, "/")[2])
		if err != nil {
			continue
		}
		out = append(out, NAPIThread{Name: name, PID: pid})
	}
	return out, nil
}

func allowed(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// XDPMode reports how XDP is attached to dev in ns, as `ip link` names it:
// "xdp" (native/driver), "xdpgeneric", "xdpoffload", "xdpmulti" or "none".
func XDPMode(ns, dev string) (string, error) {
	h, err := topo.Open(ns)
	if err != nil {
		return "", err
	}
	defer h.Close()
	l, err := h.Link(dev)
	if err != nil {
		return "", err
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached {
		return "none", nil
	}
	switch x.AttachMode {
	case 1:
		return "xdp", nil
	case 2:
		return "xdpgeneric", nil
	case 3:
		return "xdpoffload", nil
	case 4:
		return "xdpmulti", nil
	}
	return fmt.Sprintf("mode%d", x.AttachMode), nil
}

// CleanStale removes the topologies of runs with this prefix whose process
// is gone (a crashed or killed run), and returns the namespaces removed.
func CleanStale(prefix string) ([]string, error) {
	names, err := topo.ListNetns(prefix + "-")
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	seen := map[int]bool{}
	for _, n := range names {
		rest := strings.TrimPrefix(n, prefix+"-")
		pidS, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidS)
		if !ok || err != nil || seen[pid] {
			continue
		}
		seen[pid] = true
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // still running
		}
		t := &Topology{Prefix: fmt.Sprintf("%s-%d", prefix, pid)}
		t.Gen, t.DUT, t.Sink = t.Prefix+"-gen", t.Prefix+"-dut", t.Prefix+"-sink"
		if err := t.Down(); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, t.Gen, t.DUT, t.Sink)
	}
	return removed, errors.Join(errs...)
}
