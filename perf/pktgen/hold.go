package pktgen

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dispatcherHold keeps the generator program attached to a veth pair that
// is never brought up, so that it stays in the kernel's XDP dispatcher for
// the whole run.
//
// Why: every BPF_PROG_RUN with live frames adds its program to the XDP
// dispatcher and removes it when the call returns (bpf_prog_change_xdp).
// Each change rewrites the dispatcher's code (text_poke), which on this
// box's paravirtualised guest takes hundreds of microseconds with
// interrupts off and sends a synchronising IPI to every CPU, the device
// under test's included: perf showed ~10% of the generator's core in it.
// While another attachment holds the program, a run only bumps the entry's
// reference count. The pair carries no traffic (it stays down).
type dispatcherHold struct {
	name string
	lk   link.Link
}

// holdPrefix starts the names of the hold pairs: holdPrefix, the pid in
// hex, '-', a sequence number in this process.
const holdPrefix = "spgh"

var holdSeq atomic.Uint32

// holdDispatcher creates the pair in the calling thread's namespace and
// attaches prog to one end in native mode. Pairs left by dead processes
// in this namespace are deleted first.
func holdDispatcher(prog *ebpf.Program) (*dispatcherHold, error) {
	cleanStaleHolds()
	name := fmt.Sprintf("%s%x-%d", holdPrefix, os.Getpid(), holdSeq.Add(1)%1000)
	la := netlink.NewLinkAttrs()
	la.Name = name
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: name + "p"}); err != nil {
		return nil, fmt.Errorf("dispatcher hold: add veth %s: %w", name, err)
	}
	h := &dispatcherHold{name: name}
	l, err := netlink.LinkByName(name)
	if err == nil {
		h.lk, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: l.Attrs().Index, Flags: link.XDPDriverMode})
	}
	if err != nil {
		err = fmt.Errorf("dispatcher hold: attach to %s: %w", name, err)
		return nil, errors.Join(err, h.close())
	}
	return h, nil
}

// close detaches the program and deletes the pair; it must run in the
// namespace holdDispatcher ran in.
func (h *dispatcherHold) close() error {
	var errs []error
	if h.lk != nil {
		errs = append(errs, h.lk.Close())
	}
	if l, err := netlink.LinkByName(h.name); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("dispatcher hold: delete %s: %w", h.name, err))
		}
	}
	return errors.Join(errs...)
}

// cleanStaleHolds deletes the hold pairs of processes that no longer run.
func cleanStaleHolds() {
	links, err := netlink.LinkList()
	if err != nil {
		return
	}
	for _, l := range links {
		pid, ok := holdOwner(l.Attrs().Name)
		if ok && unix.Kill(pid, 0) == unix.ESRCH {
			_ = netlink.LinkDel(l) // best effort: the peer goes with it
		}
	}
}

// holdOwner parses the pid out of a hold pair's name.
func holdOwner(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, holdPrefix)
	if !ok {
		return 0, false
	}
	hexPid, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.ParseUint(hexPid, 16, 31)
	if err != nil || pid == 0 {
		return 0, false
	}
	return int(pid), true
}
