// Package steertest gives tests of the steering offload (dp/steer) what
// they need as root: named network namespaces and veth pairs, and a
// Sandbox (one namespace, one veth pair) whose two ends a steer.Config can
// name as ingress and gateway side, so BPF_PROG_RUN tests and the
// differential test against dp.LB need no other setup. Everything is
// removed in t.Cleanup. Callers gate their tests with privtest.Require.
package steertest

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"samepath/dp/steer"
	"samepath/nat"
	"samepath/testbed/privtest"
)

// The MACs Sandbox.Config uses, for building golden frames.
var (
	IngressMAC = nat.MAC{0x02, 0x00, 0x00, 0x00, 0x01, 0x01} // LB, ingress side
	GatewayMAC = nat.MAC{0x02, 0x00, 0x00, 0x00, 0x02, 0x01} // LB, gateway side
	NextHopMAC = nat.MAC{0x02, 0x00, 0x00, 0x00, 0x01, 0xfe} // NAS/router
	PeerMAC    = nat.MAC{0x02, 0x00, 0x00, 0x00, 0x01, 0x02} // ingress veth's peer
)

// NS is a named network namespace (visible to `ip netns exec`).
type NS struct {
	Name string
	h    netns.NsHandle
	nl   *netlink.Handle
}

// NewNS creates a namespace named privtest.Name("st", suffix) and deletes
// it in t.Cleanup; links inside it go with it.
func NewNS(t testing.TB, suffix string) *NS {
	t.Helper()
	name := privtest.Name("st", suffix)
	errc := make(chan error, 1)
	go func() {
		// NewNamed moves the calling thread into the namespace; the thread
		// stays locked, so it exits with this goroutine and never runs
		// other code in the namespace.
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	n := &NS{Name: name}
	t.Cleanup(func() {
		if n.nl != nil {
			n.nl.Close()
		}
		if n.h.IsOpen() {
			n.h.Close()
		}
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	n.h = h
	if n.nl, err = netlink.NewHandleAt(h); err != nil {
		t.Fatalf("netlink in %s: %v", name, err)
	}
	return n
}

// Netlink returns a netlink handle working in the namespace.
func (n *NS) Netlink() *netlink.Handle { return n.nl }

// Do runs f on an OS thread inside the namespace and returns its error.
// Sockets and BPF links f creates stay bound to the namespace afterwards.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread exits with the goroutine instead of
		// carrying the namespace to other goroutines.
		runtime.LockOSThread()
		if err := netns.Set(n.h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Veth creates a veth pair, end aName in a and bName in b, with the given
// MACs, brings both up and returns their ifindexes.
func Veth(t testing.TB, a *NS, aName string, aMAC nat.MAC, b *NS, bName string, bMAC nat.MAC) (aIfindex, bIfindex int) {
	t.Helper()
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: aName, HardwareAddr: net.HardwareAddr(aMAC[:])},
		PeerName:         bName,
		PeerHardwareAddr: net.HardwareAddr(bMAC[:]),
		PeerNamespace:    netlink.NsFd(b.h),
	}
	if err := a.nl.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s/%s: %v", aName, bName, err)
	}
	la, err := a.nl.LinkByName(aName)
	if err != nil {
		t.Fatalf("veth %s: %v", aName, err)
	}
	lb, err := b.nl.LinkByName(bName)
	if err != nil {
		t.Fatalf("veth %s: %v", bName, err)
	}
	if err := errors.Join(a.nl.LinkSetUp(la), b.nl.LinkSetUp(lb)); err != nil {
		t.Fatalf("veth %s/%s up: %v", aName, bName, err)
	}
	return la.Attrs().Index, lb.Attrs().Index
}

// Sandbox is a namespace holding one veth pair: IngressIfindex carries
// IngressMAC, GatewayIfindex GatewayMAC.
type Sandbox struct {
	NS                             *NS
	IngressIfindex, GatewayIfindex int
}

// New makes a Sandbox, removed in t.Cleanup.
func New(t testing.TB) *Sandbox {
	t.Helper()
	ns := NewNS(t, "sb")
	in, gw := Veth(t, ns, "lbin", IngressMAC, ns, "lbgw", GatewayMAC)
	return &Sandbox{NS: ns, IngressIfindex: in, GatewayIfindex: gw}
}

// Config returns a two-armed steer.Config for the sandbox with next hop
// NextHopMAC and no excluded addresses.
func (s *Sandbox) Config() steer.Config {
	return steer.Config{
		IngressIfindex: s.IngressIfindex, GatewayIfindex: s.GatewayIfindex,
		IngressMAC: IngressMAC, GatewayMAC: GatewayMAC, NextHopMAC: NextHopMAC,
	}
}

// Load loads an offload for cfg inside the sandbox (so its ifindexes
// resolve) and closes it in t.Cleanup. Run works on it from any goroutine.
func (s *Sandbox) Load(t testing.TB, cfg steer.Config) *steer.Offload {
	t.Helper()
	var o *steer.Offload
	err := s.NS.Do(func() (err error) {
		o, err = steer.Load(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("load offload: %v", err)
	}
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Errorf("close offload: %v", err)
		}
	})
	return o
}
