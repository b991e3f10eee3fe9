package fig2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"samepath/testbed/topo"
)

// SetMobileAddr gives mobile (its name, e.g. "mob1") the IPv4 address v4,
// the way an AAA's Framed-IP-Address does at login: the /32 moves on every
// one of the mobile's wireless links, the NAS of its current ingress point
// routes the new address to it, every gateway routes it to that ingress
// point's LB, and the old address's routes go. Connections bound to the old
// address break. v4 must lie in a gateway's IPv4 range (the LBs' T4 and the
// servers' routes cover only those) and belong to no other mobile;
// Mobile.Gateway follows the address. The IPv6 address is left alone. The
// state file is updated.
func (tb *Testbed) SetMobileAddr(mobile string, v4 netip.Addr) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
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
	g, err := tb.Plan.checkMobileAddr(m.Name, v4)
	if err != nil {
		return err
	}
	if v4 == m.IPv4 {
		return nil
	}
	if err := readdress(tb.Plan, m, m.IPv4, v4); err != nil {
		return err
	}
	m.IPv4, m.Gateway = v4, g
	for i := range m.Wireless {
		m.Wireless[i].IPv4 = netip.PrefixFrom(v4, 32)
	}
	return tb.save()
}

// refreshLocked re-reads what other processes may have changed (a mobile's
// ingress point and IPv4 address) from the state file. Called with tb.mu
// and the run lock held.
func (tb *Testbed) refreshLocked() {
	cur, err := Load(tb.stateDir, tb.Plan.Prefix)
	if err != nil {
		return
	}
	for _, cm := range cur.Plan.Mobiles {
		m, err := tb.Plan.Mobile(cm.Name)
		if err != nil || len(cm.Wireless) != len(m.Wireless) {
			continue
		}
		m.Ingress = cm.Ingress
		if cm.IPv4.Is4() {
			m.IPv4, m.Gateway = cm.IPv4, cm.Gateway
			for i := range m.Wireless {
				m.Wireless[i].IPv4 = cm.Wireless[i].IPv4
			}
		}
		if cm.IPv6.Is6() {
			m.IPv6 = cm.IPv6
			for i := range m.Wireless {
				m.Wireless[i].IPv6 = cm.Wireless[i].IPv6
			}
		}
	}
}

// checkMobileAddr says which gateway's range holds v4 (1-based), or why
// mobile may not have it.
func (p *Plan) checkMobileAddr(mobile string, v4 netip.Addr) (int, error) {
	if !v4.Is4() {
		return 0, fmt.Errorf("fig2: mobile address %v: want IPv4", v4)
	}
	for _, o := range p.Mobiles {
		if o.Name != mobile && o.IPv4 == v4 {
			return 0, fmt.Errorf("fig2: %s already has %s", o.Name, v4)
		}
	}
	for _, g := range p.Gateways {
		for _, r := range g.Ranges {
			if r.Contains(v4) {
				if v4 == r.Masked().Addr() || r.Bits() <= 30 && v4 == lastAddr(r) {
					return 0, fmt.Errorf("fig2: %s is the network or broadcast address of %s", v4, r)
				}
				return g.Index, nil
			}
		}
	}
	return 0, fmt.Errorf("fig2: %s is in no gateway's range", v4)
}

func lastAddr(r netip.Prefix) netip.Addr {
	b := r.Masked().Addr().As4()
	host := uint32(1)<<(32-r.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// readdress moves m's host address old (a /32 or /128; invalid: none)
// to new, of the same family, in the mobile, its current NAS and the
// gateways.
func readdress(p *Plan, m *Mobile, old, new netip.Addr) error {
	if m.Ingress < 1 || m.Ingress > len(p.Ingress) {
		return fmt.Errorf("fig2: %s: ingress %d: want 1..%d", m.Name, m.Ingress, len(p.Ingress))
	}
	oldP, newP := netip.PrefixFrom(old, old.BitLen()), netip.PrefixFrom(new, new.BitLen())
	mob, err := topo.Open(m.NS)
	if err != nil {
		return err
	}
	defer mob.Close()
	for _, w := range m.Wireless {
		if err := mob.AddrReplace(w.Name, newP); err != nil {
			return err
		}
		if old.IsValid() {
			if err := addrDel(mob, w.Name, oldP); err != nil {
				return err
			}
		}
	}
	in := p.Ingress[m.Ingress-1]
	s := m.NASSide[m.Ingress-1]
	nas, err := topo.Open(s.NS)
	if err != nil {
		return err
	}
	defer nas.Close()
	if err := nas.RouteReplace(topo.Route{Dst: newP, Dev: s.Name}); err != nil {
		return err
	}
	if old.IsValid() {
		if err := nas.RouteDel(topo.Route{Dst: oldP, Dev: s.Name}); err != nil {
			return err
		}
	}
	via := in.LB.LAN.IPv4.Addr()
	if new.Is6() {
		via = in.LB.LAN.IPv6.Addr()
	}
	for _, g := range p.Gateways {
		gw, err := topo.Open(g.NS)
		if err != nil {
			return err
		}
		err = gw.RouteReplace(topo.Route{Dst: newP, Via: via})
		if err == nil && old.IsValid() {
			err = gw.RouteDel(topo.Route{Dst: oldP, Via: via})
		}
		gw.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// addrDel removes address a from link; an address that is not there is
// not an error.
func addrDel(n *topo.NS, link string, a netip.Prefix) error {
	l, err := n.Link(link)
	if err != nil {
		return err
	}
	na := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
	if err := n.H.AddrDel(l, na); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("delete address %s on %s/%s: %w", a, n.Name, link, err)
	}
	return nil
}
