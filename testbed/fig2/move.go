package fig2

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"samepath/testbed/topo"
)

// Move moves mobile (its name, e.g. "mob1") to ingress point ingress
// (1..NumIngress), the way a PPP session is suspended on one NAS and resumed
// on another: the link to the old NAS goes down, the link to the new one
// comes up with the same addresses, the new NAS routes the mobile's addresses
// to it and every gateway routes them to the new ingress point's LB ("routes
// follow"). Open connections survive; frames in flight on the old link are
// lost, as on a real handover. The state file is updated.
//
// The mobile keeps what it holds now, not the plan's built-in address:
// the address SetMobileAddr gave it (the state file), or one set by hand
// on its current link in place of that (adopted, when in a gateway's
// range), and the routes it has out of its current link besides the
// default ones (moved to the new link).
func (tb *Testbed) Move(mobile string, ingress int) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	// Moves from several processes (`testbed move`) are serialised by a
	// lock beside the state file; the state is re-read under it.
	unlock, err := lockRun(tb.stateDir, tb.Plan.Prefix)
	if err != nil {
		return err
	}
	defer unlock()
	tb.refreshLocked()
	m, err := tb.Plan.Mobile(mobile)
	if err != nil {
		return err
	}
	if ingress < 1 || ingress > len(tb.Plan.Ingress) {
		return fmt.Errorf("fig2: ingress %d: want 1..%d", ingress, len(tb.Plan.Ingress))
	}
	held, routes, err := current(m)
	if err != nil {
		return err
	}
	if held.IsValid() && held != m.IPv4 {
		if g, err := tb.Plan.checkMobileAddr(m.Name, held); err == nil {
			if err := dropRoutes(tb.Plan, m, m.IPv4); err != nil {
				return err
			}
			m.IPv4, m.Gateway = held, g
			for i := range m.Wireless {
				m.Wireless[i].IPv4 = netip.PrefixFrom(held, 32)
			}
		}
	}
	if err := attach(tb.Plan, m, ingress); err != nil {
		return err
	}
	if err := carryRoutes(m, routes); err != nil {
		return err
	}
	return tb.save()
}

// MoveIndex is Move by mobile number (1-based).
func (tb *Testbed) MoveIndex(mobile, ingress int) error {
	return tb.Move(fmt.Sprintf("mob%d", mobile), ingress)
}

func attach(p *Plan, m *Mobile, n int) (err error) {
	if n < 1 || n > len(p.Ingress) {
		return fmt.Errorf("fig2: ingress %d: want 1..%d", n, len(p.Ingress))
	}
	open := map[string]*topo.NS{}
	defer func() {
		for _, h := range open {
			h.Close()
		}
	}()
	h := func(ns string) (*topo.NS, error) {
		if x, ok := open[ns]; ok {
			return x, nil
		}
		x, err := topo.Open(ns)
		if err != nil {
			return nil, err
		}
		open[ns] = x
		return x, nil
	}
	mob, err := h(m.NS)
	if err != nil {
		return err
	}
	v4, v6 := netip.PrefixFrom(m.IPv4, 32), netip.PrefixFrom(m.IPv6, 128)
	// The old links go down first (PPP suspension) ...
	for k := 1; k <= len(p.Ingress); k++ {
		if k == n {
			continue
		}
		w, s := m.Wireless[k-1], m.NASSide[k-1]
		nas, err := h(s.NS)
		if err != nil {
			return err
		}
		if err := mob.Down(w.Name); err != nil {
			return err
		}
		if err := nas.Down(s.Name); err != nil {
			return err
		}
		for _, d := range []netip.Prefix{v4, v6} {
			if err := nas.RouteDel(topo.Route{Dst: d, Dev: s.Name}); err != nil {
				return err
			}
		}
	}
	// ... then the new one comes up and routes follow.
	w, s := m.Wireless[n-1], m.NASSide[n-1]
	nas, err := h(s.NS)
	if err != nil {
		return err
	}
	if err := nas.Up(s.Name); err != nil {
		return err
	}
	if err := mob.Up(w.Name); err != nil {
		return err
	}
	if err := addrs(nas, s); err != nil {
		return err
	}
	if err := addrs(mob, w); err != nil {
		return err
	}
	// The new link carries traffic once the kernel has seen its carrier.
	if err := mob.WaitOperUp(w.Name, 5*time.Second); err != nil {
		return err
	}
	if err := nas.WaitOperUp(s.Name, 5*time.Second); err != nil {
		return err
	}
	// ... once its IPv6 addresses are usable (not tentative) at both ends
	// ...
	if err := waitAddrUsable(nas, s, 5*time.Second); err != nil {
		return err
	}
	if err := waitAddrUsable(mob, w, 5*time.Second); err != nil {
		return err
	}
	// ... and, as on a PPP link, which has no neighbor discovery, each
	// end knows the other's link address for IPv6. Left to ND, the
	// mobile's first solicitation for PeerV6 on a link just up is at
	// times ignored by the NAS (seen in captures: the NAS answers only
	// the retry, RetransTimer = 1 s later); meanwhile the mobile's up
	// packets wait, and the gateway, which learns a move from them
	// (R-GW-4), keeps sending the down ones (the servers'
	// retransmissions) to the old LB. ARP shows no such window.
	if err := permNeigh(nas, s.Name, m.IPv6, w.MAC); err != nil {
		return err
	}
	if err := permNeigh(mob, w.Name, p.Ingress[n-1].NAS.PeerV6, s.MAC); err != nil {
		return err
	}
	for _, d := range []netip.Prefix{v4, v6} {
		if err := nas.RouteReplace(topo.Route{Dst: d, Dev: s.Name}); err != nil {
			return err
		}
	}
	in := p.Ingress[n-1]
	if err := mob.RouteReplace(topo.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: in.NAS.PeerV4, Dev: w.Name, OnLink: true}); err != nil {
		return err
	}
	if err := mob.RouteReplace(topo.Route{Dst: netip.MustParsePrefix("::/0"), Via: in.NAS.PeerV6, Dev: w.Name}); err != nil {
		return err
	}
	for _, g := range p.Gateways {
		gw, err := h(g.NS)
		if err != nil {
			return err
		}
		if err := gw.RouteReplace(topo.Route{Dst: v4, Via: in.LB.LAN.IPv4.Addr()}); err != nil {
			return err
		}
		if err := gw.RouteReplace(topo.Route{Dst: v6, Via: in.LB.LAN.IPv6.Addr()}); err != nil {
			return err
		}
	}
	m.Ingress = n
	return nil
}

// lockRun takes the run's lock file (StateDir/PREFIX.lock) exclusively.
func lockRun(stateDir, prefix string) (unlock func(), err error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("fig2: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(stateDir, prefix+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("fig2: lock %s: %w", prefix, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("fig2: lock %s: %w", prefix, err)
	}
	return func() { f.Close() }, nil
}

// SetLBForwarding turns kernel IP forwarding (IPv4 and IPv6) in LB n's
// namespace on or off. Off proves that a dataplane attached there carries
// the traffic; ARP/ND and local traffic keep working either way.
func (tb *Testbed) SetLBForwarding(n int, on bool) error {
	if n < 1 || n > len(tb.Plan.Ingress) {
		return fmt.Errorf("fig2: ingress %d: want 1..%d", n, len(tb.Plan.Ingress))
	}
	v := "0"
	if on {
		v = "1"
	}
	ns := tb.Plan.Ingress[n-1].LB.NS
	for _, k := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
		if err := topo.Sysctl(ns, k, v); err != nil {
			return err
		}
	}
	return nil
}

// current reads the mobile's current link: the IPv4 /32 it holds (the
// plan's when it is there, else the first other one; invalid when none)
// and its routes out of the link other than the kernel's and the
// default ones (attach sets those). Read before the link goes down: the
// kernel drops a down link's routes.
func current(m *Mobile) (netip.Addr, []netlink.Route, error) {
	if m.Ingress < 1 || m.Ingress > len(m.Wireless) {
		return netip.Addr{}, nil, nil
	}
	mob, err := topo.Open(m.NS)
	if err != nil {
		return netip.Addr{}, nil, err
	}
	defer mob.Close()
	l, err := mob.Link(m.Wireless[m.Ingress-1].Name)
	if err != nil {
		return netip.Addr{}, nil, err
	}
	as, err := mob.H.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, nil, fmt.Errorf("fig2: addresses of %s/%s: %w", m.NS, l.Attrs().Name, err)
	}
	var held netip.Addr
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if ones, _ := a.Mask.Size(); !ok || ones != 32 {
			continue
		}
		if ip == m.IPv4 {
			held = ip
			break
		}
		if !held.IsValid() {
			held = ip
		}
	}
	rs, err := mob.H.RouteList(l, netlink.FAMILY_ALL)
	if err != nil {
		return netip.Addr{}, nil, fmt.Errorf("fig2: routes of %s/%s: %w", m.NS, l.Attrs().Name, err)
	}
	var keep []netlink.Route
	for _, r := range rs {
		if r.Protocol == unix.RTPROT_KERNEL || r.Dst == nil || r.Table != unix.RT_TABLE_MAIN {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			continue // default routes: attach points them at the new NAS
		}
		keep = append(keep, r)
	}
	return held, keep, nil
}

// carryRoutes puts routes (read by current) on the mobile's new link.
func carryRoutes(m *Mobile, routes []netlink.Route) error {
	if len(routes) == 0 {
		return nil
	}
	mob, err := topo.Open(m.NS)
	if err != nil {
		return err
	}
	defer mob.Close()
	l, err := mob.Link(m.Wireless[m.Ingress-1].Name)
	if err != nil {
		return err
	}
	for _, r := range routes {
		r.LinkIndex = l.Attrs().Index
		if err := mob.H.RouteReplace(&r); err != nil {
			return fmt.Errorf("fig2: carry route %s to %s/%s: %w", r.Dst, m.NS, l.Attrs().Name, err)
		}
	}
	return nil
}

// dropRoutes removes m's former address a (one it no longer holds on
// its current link) from its other wireless links, and every NAS's and
// gateway's route to it.
func dropRoutes(p *Plan, m *Mobile, a netip.Addr) error {
	if !a.IsValid() {
		return nil
	}
	mob, err := topo.Open(m.NS)
	if err != nil {
		return err
	}
	for _, w := range m.Wireless {
		if err = addrDel(mob, w.Name, netip.PrefixFrom(a, 32)); err != nil {
			break
		}
	}
	mob.Close()
	if err != nil {
		return err
	}
	for _, s := range m.NASSide {
		nas, err := topo.Open(s.NS)
		if err != nil {
			return err
		}
		err = nas.RouteDel(topo.Route{Dst: netip.PrefixFrom(a, 32), Dev: s.Name})
		nas.Close()
		if err != nil {
			return err
		}
	}
	for _, g := range p.Gateways {
		gw, err := topo.Open(g.NS)
		if err != nil {
			return err
		}
		err = gw.RouteDel(topo.Route{Dst: netip.PrefixFrom(a, 32)})
		gw.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// waitAddrUsable waits until ifc's IPv6 address is on its link and no
// longer tentative (IFA_F_TENTATIVE clear): until then the kernel neither
// answers neighbor solicitations for it nor sends from it.
func waitAddrUsable(n *topo.NS, ifc Iface, timeout time.Duration) error {
	if !ifc.IPv6.IsValid() {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		l, err := n.Link(ifc.Name)
		if err != nil {
			return err
		}
		as, err := n.H.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("fig2: addresses of %s/%s: %w", n.Name, ifc.Name, err)
		}
		state := "absent"
		for _, a := range as {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip == ifc.IPv6.Addr() {
				state = "tentative"
				if a.Flags&unix.IFA_F_TENTATIVE == 0 {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fig2: address %s on %s/%s not usable after %v (%s)", ifc.IPv6, n.Name, ifc.Name, timeout, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// permNeigh sets a permanent neighbor entry ip -> mac on link name.
func permNeigh(n *topo.NS, name string, ip netip.Addr, mac MAC) error {
	l, err := n.Link(name)
	if err != nil {
		return err
	}
	e := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V6, State: netlink.NUD_PERMANENT,
		IP: net.IP(ip.AsSlice()), HardwareAddr: mac.HW()}
	if err := n.H.NeighSet(e); err != nil {
		return fmt.Errorf("fig2: neighbor %s on %s/%s: %w", ip, n.Name, name, err)
	}
	return nil
}
