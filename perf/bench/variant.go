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
