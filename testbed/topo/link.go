package topo

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is an open named namespace: a netlink handle bound to it and its fd.
type NS struct {
	Name string
	H    *netlink.Handle
	fd   netns.NsHandle
}

// Open opens the named namespace ns for configuration.
func Open(ns string) (*NS, error) {
	fd, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", ns, err)
	}
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		fd.Close()
		return nil, fmt.Errorf("netlink handle in %s: %w", ns, err)
	}
	return &NS{Name: ns, H: h, fd: fd}, nil
}

// Close releases the handle and the namespace fd.
func (n *NS) Close() {
	if n == nil {
		return
	}
	n.H.Close()
	n.fd.Close()
}

func (n *NS) link(name string) (netlink.Link, error) {
	l, err := n.H.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("link %s/%s: %w", n.Name, name, err)
	}
	return l, nil
}

// Link returns the link NAME in this namespace.
func (n *NS) Link(name string) (netlink.Link, error) { return n.link(name) }

// Veth creates a veth pair with end aName (MAC aMAC) in a and end bName (MAC
// bMAC) in b. A nil MAC leaves the kernel's random one. Both ends stay down.
func Veth(a *NS, aName string, aMAC net.HardwareAddr, b *NS, bName string, bMAC net.HardwareAddr) error {
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: aName, HardwareAddr: aMAC},
		PeerName:         bName,
		PeerHardwareAddr: bMAC,
		PeerNamespace:    netlink.NsFd(b.fd),
	}
	if err := a.H.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s/%s <-> %s/%s: %w", a.Name, aName, b.Name, bName, err)
	}
	return nil
}

// Bridge creates bridge NAME (no STP, no multicast snooping, no forwarding
// delay) and brings it up.
func (n *NS) Bridge(name string) error {
	off := false
	// No VlanFiltering attribute: this kernel has no bridge VLAN support
	// (the attribute alone is refused with EOPNOTSUPP).
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &off}
	if err := n.H.LinkAdd(br); err != nil {
		return fmt.Errorf("bridge %s/%s: %w", n.Name, name, err)
	}
	return n.Up(name)
}

// SetMaster enslaves link to bridge.
func (n *NS) SetMaster(link, bridge string) error {
	l, err := n.link(link)
	if err != nil {
		return err
	}
	b, err := n.link(bridge)
	if err != nil {
		return err
	}
	if err := n.H.LinkSetMaster(l, b); err != nil {
		return fmt.Errorf("enslave %s/%s to %s: %w", n.Name, link, bridge, err)
	}
	return nil
}

// Up sets link NAME up.
func (n *NS) Up(name string) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if err := n.H.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s/%s up: %w", n.Name, name, err)
	}
	return nil
}

// Down sets link NAME down.
func (n *NS) Down(name string) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if err := n.H.LinkSetDown(l); err != nil {
		return fmt.Errorf("set %s/%s down: %w", n.Name, name, err)
	}
	return nil
}

// SetPromisc turns promiscuous mode on link NAME on.
func (n *NS) SetPromisc(name string) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if err := n.H.SetPromiscOn(l); err != nil {
		return fmt.Errorf("promisc %s/%s: %w", n.Name, name, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	bits := 128
	if a.Is4() {
		bits = 32
	}
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

// AddrReplace puts address p (address with prefix length, e.g. 10.1.1.2/24)
// on link NAME, without duplicate address detection.
func (n *NS) AddrReplace(name string, p netip.Prefix) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := n.H.AddrReplace(l, a); err != nil {
		return fmt.Errorf("address %s on %s/%s: %w", p, n.Name, name, err)
	}
	return nil
}

// Route is one route: Dst via Via (optional) out of Dev (optional), in Table
// (0 = main). OnLink marks a gateway that is not in any on-link prefix.
type Route struct {
	Dst    netip.Prefix
	Via    netip.Addr
	Dev    string
	Table  int
	OnLink bool
}

func (n *NS) nlRoute(r Route) (*netlink.Route, error) {
	nr := &netlink.Route{Dst: ipNet(r.Dst), Table: r.Table}
	if r.Dst.Bits() == 0 {
		// netlink encodes a nil Dst as the default route of the family.
		nr.Dst = nil
		if r.Dst.Addr().Is4() {
			nr.Family = netlink.FAMILY_V4
		} else {
			nr.Family = netlink.FAMILY_V6
		}
	}
	if r.Via.IsValid() {
		nr.Gw = net.IP(r.Via.AsSlice())
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.Dev != "" {
		l, err := n.link(r.Dev)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = l.Attrs().Index
	}
	if r.OnLink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	return nr, nil
}

// RouteReplace adds or replaces route r.
func (n *NS) RouteReplace(r Route) error {
	nr, err := n.nlRoute(r)
	if err != nil {
		return err
	}
	if err := n.H.RouteReplace(nr); err != nil {
		return fmt.Errorf("route %s via %v dev %q in %s: %w", r.Dst, r.Via, r.Dev, n.Name, err)
	}
	return nil
}

// RouteDel deletes route r; a missing route is not an error.
func (n *NS) RouteDel(r Route) error {
	nr, err := n.nlRoute(r)
	if err != nil {
		return err
	}
	if err := n.H.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s in %s: %w", r.Dst, n.Name, err)
	}
	return nil
}

// RuleAdd adds the policy rule "from SRC lookup TABLE" with priority prio.
func (n *NS) RuleAdd(src netip.Prefix, table, prio int) error {
	return n.ruleAdd(src, netip.Prefix{}, table, prio)
}

// RuleAddTo adds the policy rule "to DST lookup TABLE" with priority prio.
func (n *NS) RuleAddTo(dst netip.Prefix, table, prio int) error {
	return n.ruleAdd(netip.Prefix{}, dst, table, prio)
}

func (n *NS) ruleAdd(src, dst netip.Prefix, table, prio int) error {
	r := netlink.NewRule()
	fam := src
	if src.IsValid() {
		r.Src = ipNet(src)
	} else {
		r.Dst = ipNet(dst)
		fam = dst
	}
	r.Table = table
	r.Priority = prio
	if fam.Addr().Is4() {
		r.Family = netlink.FAMILY_V4
	} else {
		r.Family = netlink.FAMILY_V6
	}
	if err := n.H.RuleAdd(r); err != nil {
		return fmt.Errorf("rule from %v to %v lookup %d in %s: %w", src, dst, table, n.Name, err)
	}
	return nil
}

// LinkStats returns the kernel's receive and transmit counters of link NAME.
func (n *NS) LinkStats(name string) (*netlink.LinkStatistics, error) {
	l, err := n.link(name)
	if err != nil {
		return nil, err
	}
	if l.Attrs().Statistics == nil {
		return nil, fmt.Errorf("link %s/%s: no statistics", n.Name, name)
	}
	return l.Attrs().Statistics, nil
}

// WaitOperUp waits until link NAME's operational state is up (carrier on and
// processed by the kernel's link watch, which may lag by up to a second;
// until then the device's queue discards what is sent, so the first ARP or ND
// probe would be lost).
func (n *NS) WaitOperUp(name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := n.link(name)
		if err != nil {
			return err
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("link %s/%s not up after %v (state %s)", n.Name, name, timeout, l.Attrs().OperState)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
