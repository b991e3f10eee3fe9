package fig2

import (
	"fmt"
	"net/netip"
)

// SetMobileAddr6 gives mobile an IPv6 address in prefix, the way an AAA's
// Framed-IPv6-Prefix (a /64) or Framed-IPv6-Address (a /128) does at
// login: the address is prefix's own for a /128, else the prefix with
// the mobile's interface identifier (MobileIID). Its /128 moves on every
// wireless link, the NAS of its current ingress point routes it to the
// mobile, every gateway routes it to that ingress point's LB, and the
// old address's routes go; `testbed move` moves them from then on.
// prefix must lie in a gateway's IPv6 range and the address belong to
// no other mobile; Mobile.Gateway follows the address (a dual-stack
// mobile's two addresses are of one gateway). The IPv4 address is left
// alone. It returns the address.
func (tb *Testbed) SetMobileAddr6(mobile string, prefix netip.Prefix) (netip.Addr, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	unlock, err := lockRun(tb.stateDir, tb.Plan.Prefix)
	if err != nil {
		return netip.Addr{}, err
	}
	defer unlock()
	tb.refreshLocked()
	m, err := tb.Plan.Mobile(mobile)
	if err != nil {
		return netip.Addr{}, err
	}
	v6, g, err := tb.Plan.checkMobileAddr6(m, prefix)
	if err != nil {
		return netip.Addr{}, err
	}
	if v6 == m.IPv6 {
		return v6, nil
	}
	if err := readdress(tb.Plan, m, m.IPv6, v6); err != nil {
		return netip.Addr{}, err
	}
	m.IPv6, m.Gateway = v6, g
	for i := range m.Wireless {
		m.Wireless[i].IPv6 = netip.PrefixFrom(v6, 128)
	}
	return v6, tb.save()
}

// MobileIID is the interface identifier (the low 64 bits) mobile i
// (1-based, "mobI") takes in a delegated /64: 0x100 + i, so that two
// mobiles re-addressed into each other's prefixes never collide with
// each other or with the plan's addresses (::10 and up).
func MobileIID(i int) uint64 { return 0x100 + uint64(i) }

// checkMobileAddr6 is the address m takes in prefix and the gateway
// whose range holds it, or why it may not.
func (p *Plan) checkMobileAddr6(m *Mobile, prefix netip.Prefix) (netip.Addr, int, error) {
	if !prefix.Addr().Is6() || prefix.Addr().Is4In6() || (prefix.Bits() != 64 && prefix.Bits() != 128) {
		return netip.Addr{}, 0, fmt.Errorf("fig2: mobile prefix %v: want an IPv6 /64 or /128", prefix)
	}
	v6 := prefix.Addr()
	if prefix.Bits() == 64 {
		if m.IPv6.IsValid() && prefix.Contains(m.IPv6) {
			v6 = m.IPv6 // already in it
		} else {
			var idx int
			fmt.Sscanf(m.Name, "mob%d", &idx)
			b := prefix.Masked().Addr().As16()
			iid := MobileIID(idx)
			for k := 0; k < 8; k++ {
				b[15-k] = byte(iid >> (8 * k))
			}
			v6 = netip.AddrFrom16(b)
		}
	}
	for _, o := range p.Mobiles {
		if o.Name != m.Name && o.IPv6 == v6 {
			return netip.Addr{}, 0, fmt.Errorf("fig2: %s already has %s", o.Name, v6)
		}
	}
	for _, g := range p.Gateways {
		for _, r := range g.Ranges {
			if r.Addr().Is6() && r.Contains(v6) {
				return v6, g.Index, nil
			}
		}
	}
	return netip.Addr{}, 0, fmt.Errorf("fig2: %s is in no gateway's IPv6 range", v6)
}
