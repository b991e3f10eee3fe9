package bench

import (
	"bytes"
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
	"samepath/perf/pktgen"
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
	// Observe, when set, is called after each case while the DUT still
	// runs; what it returns is kept as the sample's Note (e.g. the DUT's
	// own counters for that case).
	Observe func(c Case) string
	// Frame, when set, adjusts the generated frames of a case for this
	// variant, after Config.Frame (e.g. IPv6 frames for a translating
	// variant beside IPv4 ones of the same flows).
	Frame func(t *Topology, c Case, f *pktgen.FrameSpec)
}

// Attach attaches prog to dev in ns in native mode.
func Attach(ns, dev string, prog *ebpf.Program) (link.Link, error) {
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

// ThreadPlacement lists the threads of process pid that are pinned to
// fewer CPUs than the machine has (the pollers), with their CPUs, after
// making them SCHED_FIFO at priority fifo when fifo > 0.
func ThreadPlacement(what string, pid, fifo int) []string {
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

// StartSamepathd runs `bin --config FILE` with config as the file's
// contents in the DUT namespace, stores its pid, and returns once its XDP
// program sits on the ingress device (or an error with the tail of its
// log). The returned stop function ends it (SIGTERM, then SIGKILL after 5s)
// and reports an early exit as an error.
func StartSamepathd(t *Topology, bin, config string, pid *int) (func() error, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", t.Prefix+"-samepathd")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "samepathd.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop, err := StartDUT(t, "samepathd", []string{abs, "--config", cfgPath}, pid)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return func() error {
		defer os.RemoveAll(dir)
		return stop()
	}, nil
}

// StartDUT runs argv in the DUT namespace as the device under test named
// what, stores its pid, and returns once an XDP program sits on the
// ingress device (or an error with the tail of its output). The returned
// stop function ends it (SIGTERM, then SIGKILL after 5s) and reports an
// early exit as an error.
func StartDUT(t *Topology, what string, argv []string, pid *int) (func() error, error) {
	var logs bytes.Buffer
	cmd := topo.Command(t.DUT, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	*pid = cmd.Process.Pid // ip netns exec execs the binary in place
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited early: %v: %s", what, err, tail(logs.String()))
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
			return nil, fmt.Errorf("%s exited: %v: %s", what, err, tail(logs.String()))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s attached no XDP program to %s within 15s: %s", what, t.In, tail(logs.String()))
		}
	}
}

// PktgenBeside is the pktgen binary in the directory of samepathd's (both
// are built into bin/).
func PktgenBeside(samepathd string) string {
	return filepath.Join(filepath.Dir(samepathd), "pktgen")
}

// L2FwdName is the AF_XDP reference variant's name.
const L2FwdName = "afxdp-l2fwd"

// L2Fwd is the AF_XDP reference device under test: `pktgen fwd`
// (perf/l2fwd), samepath's engine with no pipeline, forwarding In -> Out
// with the MAC rewrite of an L2 forwarder, one worker on CPU1 and the
// ingress NAPI on CPU0 as for samepathd's AF_XDP variants. It is what any
// AF_XDP program gets on this path; samepathd's numbers read against it
// give the pipeline's cost.
func L2Fwd(pktgenBin string) Variant {
	var pid int
	return Variant{
		Name: L2FwdName, Label: "AF_XDP l2fwd (engine only)", SinkOn: SinkFar, InNAPICPU: 0,
		Detail: "pktgen fwd (perf/l2fwd): samepath's engine without a pipeline, MAC rewrite only, 1 worker pinned to CPU1; In NAPI threaded on CPU0",
		Skip: func() error {
			if _, err := os.Stat(pktgenBin); err != nil {
				return fmt.Errorf("%s not built yet (%w)", pktgenBin, err)
			}
			return nil
		},
		Setup: func(t *Topology) (func() error, error) {
			abs, err := filepath.Abs(pktgenBin)
			if err != nil {
				return nil, err
			}
			return StartDUT(t, "pktgen fwd", []string{abs, "fwd", "-in", t.In, "-out", t.Out, "-dst-mac", t.SinkMAC.String(), "-cpu", "1"}, &pid)
		},
		Placement: func(fifo int) []string { return ThreadPlacement("pktgen fwd", pid, fifo) },
	}
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}
