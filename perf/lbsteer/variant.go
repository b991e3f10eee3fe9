package lbsteer

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"samepath/perf/internal/nsthread"
	"samepath/perf/xdpprog"
	"samepath/testbed/topo"
)

// Sink sides.
const (
	SinkFar = "sink" // the sink namespace behind the DUT
	SinkGen = "gen"  // back in the generator namespace (XDP_TX turns frames around)
)

// Variant is one device under test: Setup prepares the DUT namespace of a
// built Topology and returns its teardown. Baselines are what a user would
// run instead of samepath.
type Variant struct {
	Name     string // short key, e.g. "xdp-redirect"
	Label    string // table and chart label
	Baseline bool
	SinkOn   string // SinkFar or SinkGen
	// InNAPICPU is where the DUT ingress device's NAPI thread is pinned:
	// the CPU under test for in-kernel variants, away from the poller for
	// AF_XDP ones.
	InNAPICPU int
	// Skip, when it returns an error, skips the variant with that reason.
	Skip  func() error
	Setup func(t *Topology) (teardown func() error, err error)
	// Placement, when set, describes where the DUT's own pinned threads
	// (its pollers) run, after giving them SCHED_FIFO priority fifo when
	// fifo > 0, as the NAPI threads get (called after Setup).
	Placement func(fifo int) []string
	// Detail describes how the DUT runs (recorded beside the numbers).
	Detail string
}

// attach attaches prog to dev in ns in native mode.
func attach(ns, dev string, prog *ebpf.Program) (link.Link, error) {
	var l link.Link
	err := nsthread.Run(ns, -1, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return fmt.Errorf("interface %s/%s: %w", ns, dev, err)
		}
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: link.XDPDriverMode})
		if err != nil {
			return fmt.Errorf("attach xdp to %s/%s in native mode: %w", ns, dev, err)
		}
		return nil
	})
	return l, err
}

// XDPRedirect is the in-kernel XDP_REDIRECT baseline: rewrite MACs for the
// sink and redirect In -> Out through a devmap.
func XDPRedirect() Variant {
	return Variant{
		Name: "xdp-redirect", Label: "kernel XDP_REDIRECT", Baseline: true, SinkOn: SinkFar, InNAPICPU: 1,
		Detail: "perf/xdpprog fwd_redirect on In (native), devmap -> Out; In NAPI threaded on CPU1",
		Setup: func(t *Topology) (func() error, error) {
			// The devmap resolves the ifindex in the caller's namespace:
			// load it from a thread inside the DUT namespace.
			var f *xdpprog.Fwd
			err := nsthread.Run(t.DUT, -1, func() error {
				ifc, err := net.InterfaceByName(t.Out)
				if err != nil {
					return fmt.Errorf("interface %s/%s: %w", t.DUT, t.Out, err)
				}
				f, err = xdpprog.LoadFwd(t.SinkMAC, t.OutMAC, ifc.Index)
				return err
			})
			if err != nil {
				return nil, err
			}
			l, err := attach(t.DUT, t.In, f.Redirect())
			if err != nil {
				f.Close()
				return nil, err
			}
			return func() error { return errors.Join(l.Close(), f.Close()) }, nil
		},
	}
}

// XDPTx is the XDP_TX baseline: swap MACs and send back out of In; the sink
// counts in the generator's namespace.
func XDPTx() Variant {
	return Variant{
		Name: "xdp-tx", Label: "kernel XDP_TX", Baseline: true, SinkOn: SinkGen, InNAPICPU: 1,
		Detail: "perf/xdpprog fwd_tx on In (native), frames return to Gen; In NAPI threaded on CPU1",
		Setup: func(t *Topology) (func() error, error) {
			f, err := xdpprog.LoadFwd(nil, nil, 0)
			if err != nil {
				return nil, err
			}
			l, err := attach(t.DUT, t.In, f.Tx())
			if err != nil {
				f.Close()
				return nil, err
			}
			return func() error { return errors.Join(l.Close(), f.Close()) }, nil
		},
	}
}

// KernelForward is plain kernel IPv4 forwarding with GRO on the ingress veth
// (which also gives it the NAPI that frames sent by XDP need).
func KernelForward() Variant {
	return Variant{
		Name: "kernel-fwd", Label: "kernel forwarding", Baseline: true, SinkOn: SinkFar, InNAPICPU: 1,
		Detail: "ip_forward=1, GRO on In, static neighbour for the destination; In NAPI threaded on CPU1",
		Setup: func(t *Topology) (func() error, error) {
			if err := topo.Sysctl(t.DUT, "net/ipv4/ip_forward", "1"); err != nil {
				return nil, err
			}
			if err := topo.SetGRO(t.DUT, t.In, true); err != nil {
				return nil, err
			}
			return func() error {
				return errors.Join(topo.SetGRO(t.DUT, t.In, false), topo.Sysctl(t.DUT, "net/ipv4/ip_forward", "0"))
			}, nil
		},
	}
}

// Samepathd runs `bin/samepathd --config FILE` as the LB in the DUT
// namespace with the given steering ("afxdp" or "xdp"), one worker on CPU1.
func Samepathd(bin, steering string) Variant {
	var pid int
	napi := 1
	detail := "samepathd lb, steering: xdp (in-kernel offload); In NAPI threaded on CPU1"
	if steering == "afxdp" {
		napi = 0 // the poller owns CPU1; its RX queue's NAPI must not share it
		detail = "samepathd lb, steering: afxdp, 1 worker pinned to CPU1; In NAPI threaded on CPU0"
	}
	return Variant{
		Name: "samepathd-" + steering, Label: "samepathd " + steering, SinkOn: SinkFar, InNAPICPU: napi,
		Detail: detail,
		Skip: func() error {
			if _, err := os.Stat(bin); err != nil {
				return fmt.Errorf("%s not built yet (%w)", bin, err)
			}
			return nil
		},
		Setup:     func(t *Topology) (func() error, error) { return startSamepathd(t, bin, steering, &pid) },
		Placement: func(fifo int) []string { return threadPlacement("samepathd", pid, fifo) },
	}
}

// SamepathdConfig is the lb config the harness gives samepathd.
func SamepathdConfig(t *Topology, steering string) string {
	return fmt.Sprintf(`role: lb
api: 127.0.0.1:9180
steering: %s
lb:
  ingress: {iface: %s, next_hop_mac: "%s"}
  gateway_side: {iface: %s}
  t4:
    - range: 10.0.0.0/8
      gateways: [{mac: "%s", state: up}]
workers: {queues: 1, cpus: [1]}
`, steering, t.In, t.GenMAC, t.Out, t.SinkMAC)
}

// threadPlacement lists the threads of process pid that are pinned to
// fewer CPUs than the machine has (the pollers), with their CPUs, after
// making them SCHED_FIFO at priority fifo when fifo > 0.
func threadPlacement(what string, pid, fifo int) []string {
	if pid <= 0 {
		return nil
	}
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil {
		return nil
	}
	var out []string
	all := 0
	for _, tk := range tasks {
		tid, err := strconv.Atoi(filepath.Base(tk))
		if err != nil {
			continue
		}
		a := allowed(tid)
		if all == 0 {
			all = runtime.NumCPU()
		}
		if a == "?" || a == fmt.Sprintf("0-%d", all-1) {
			continue
		}
		comm, _ := os.ReadFile(tk + "/comm")
		if fifo > 0 {
			if err := unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: uint32(fifo)}, 0); err != nil {
				out = append(out, fmt.Sprintf("%s (pid %d): thread %d: SCHED_FIFO failed: %v", what, pid, tid, err))
			}
		}
		out = append(out, fmt.Sprintf("%s (pid %d): thread %d %q pinned to CPUs %s, %s", what, pid, tid, strings.TrimSpace(string(comm)), a, policy(tid)))
	}
	if len(out) == 0 {
		out = append(out, fmt.Sprintf("%s (pid %d): no thread pinned to a subset of the %d CPUs", what, pid, all))
	}
	return out
}

func startSamepathd(t *Topology, bin, steering string, pid *int) (func() error, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", t.Prefix+"-samepathd")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "lb.yaml")
	if err := os.WriteFile(cfgPath, []byte(SamepathdConfig(t, steering)), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var logs bytes.Buffer
	cmd := topo.Command(t.DUT, abs, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start samepathd: %w", err)
	}
	*pid = cmd.Process.Pid // ip netns exec execs the binary in place
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		defer os.RemoveAll(dir)
		select {
		case err := <-exited:
			return fmt.Errorf("samepathd exited early: %v: %s", err, tail(logs.String()))
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		return nil
	}
	// Ready once its XDP program sits on the ingress device.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m, err := XDPMode(t.DUT, t.In); err == nil && m != "none" {
			time.Sleep(300 * time.Millisecond)
			return stop, nil
		}
		select {
		case err := <-exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("samepathd exited: %v: %s", err, tail(logs.String()))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("samepathd attached no XDP program to %s within 15s: %s", t.In, tail(logs.String()))
		}
	}
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}
