package fig2

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"samepath/testbed/topo"
)

// CountTable is the nftables table (family inet) counting what a gateway
// forwards.
const CountTable = "sptb_count"

// Policy routing tables in LB namespaces: table 100+g sends to gateway g.
const lbTableBase = 100

func build(p *Plan) (err error) {
	for _, n := range p.Namespaces() {
		if err := topo.CreateNetns(n); err != nil {
			return fmt.Errorf("fig2: %w", err)
		}
	}
	hs := map[string]*topo.NS{}
	defer func() {
		for _, h := range hs {
			h.Close()
		}
	}()
	for _, n := range p.Namespaces() {
		h, err := topo.Open(n)
		if err != nil {
			return fmt.Errorf("fig2: %w", err)
		}
		hs[n] = h
	}
	sw := hs[p.Switch]
	// The switch and the air namespace only carry frames: no IPv6 of their
	// own (no router solicitations or ND from them on our LANs).
	quiet := []string{p.Switch}
	if p.Air != "" {
		quiet = append(quiet, p.Air)
	}
	for _, n := range quiet {
		for _, k := range []string{"net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"} {
			if err := topo.Sysctl(n, k, "1"); err != nil {
				return err
			}
		}
	}
	for _, br := range []string{p.LAN1.Bridge, p.LAN2.Bridge, p.Mgmt.Bridge} {
		if err := sw.Bridge(br); err != nil {
			return err
		}
	}
	// bridged: an interface whose peer is a port of bridge br in the switch.
	bridged := func(ifc Iface, br string) error {
		port := ifc.Peer[strings.IndexByte(ifc.Peer, '/')+1:]
		if err := topo.Veth(hs[ifc.NS], ifc.Name, ifc.MAC.HW(), sw, port, mac(roleSwitch, 0, 0).HW()); err != nil {
			return err
		}
		// Each switch port gets a distinct deterministic MAC too.
		if err := setMAC(sw, port, switchPortMAC(ifc.MAC)); err != nil {
			return err
		}
		if err := sw.SetMaster(port, br); err != nil {
			return err
		}
		if err := sw.Up(port); err != nil {
			return err
		}
		return hostIface(hs[ifc.NS], ifc)
	}
	mgmt := []Iface{p.Ctl.Mgmt}
	for _, in := range p.Ingress {
		mgmt = append(mgmt, in.NAS.Mgmt, in.LB.Mgmt)
	}
	for _, g := range p.Gateways {
		mgmt = append(mgmt, g.Mgmt)
	}
	for _, m := range mgmt {
		if err := bridged(m, p.Mgmt.Bridge); err != nil {
			return err
		}
	}
	for _, in := range p.Ingress {
		if err := bridged(in.LB.LAN, p.LAN1.Bridge); err != nil {
			return err
		}
		nas, lb := hs[in.NAS.NS], hs[in.LB.NS]
		if err := topo.Veth(nas, in.NAS.ToLB.Name, in.NAS.ToLB.MAC.HW(), lb, in.LB.Ingress.Name, in.LB.Ingress.MAC.HW()); err != nil {
			return err
		}
		if err := hostIface(nas, in.NAS.ToLB); err != nil {
			return err
		}
		if err := hostIface(lb, in.LB.Ingress); err != nil {
			return err
		}
		// GRO on the peers of both LB interfaces: frames that samepathd
		// redirects with XDP into its veths reach these peers, and a veth
		// drops redirected frames unless its peer has NAPI (BENCH.md).
		if err := topo.SetGRO(in.NAS.NS, in.NAS.ToLB.Name, true); err != nil {
			return err
		}
		port := in.LB.LAN.Peer[strings.IndexByte(in.LB.LAN.Peer, '/')+1:]
		if err := topo.SetGRO(p.Switch, port, true); err != nil {
			return err
		}
		if err := dataplanePeer(in.NAS.NS, in.NAS.ToLB.Name); err != nil {
			return err
		}
		if err := dataplanePeer(p.Switch, port); err != nil {
			return err
		}
	}
	for _, g := range p.Gateways {
		if err := bridged(g.LAN1, p.LAN1.Bridge); err != nil {
			return err
		}
		if err := bridged(g.LAN2, p.LAN2.Bridge); err != nil {
			return err
		}
		for _, ifc := range []Iface{g.LAN1, g.LAN2} {
			port := ifc.Peer[strings.IndexByte(ifc.Peer, '/')+1:]
			if err := topo.SetGRO(p.Switch, port, true); err != nil {
				return err
			}
			if err := dataplanePeer(p.Switch, port); err != nil {
				return err
			}
		}
	}
	for _, s := range p.Servers {
		if err := bridged(s.LAN, p.LAN2.Bridge); err != nil {
			return err
		}
	}
	for _, m := range p.Mobiles {
		for n := range m.Wireless {
			w, s := m.Wireless[n], m.NASSide[n]
			mob, nas := hs[w.NS], hs[s.NS]
			if p.Air == "" {
				if err := topo.Veth(mob, w.Name, w.MAC.HW(), nas, s.Name, s.MAC.HW()); err != nil {
					return err
				}
			} else {
				a, b := m.Air[n][0], m.Air[n][1]
				air := hs[p.Air]
				if err := topo.Veth(mob, w.Name, w.MAC.HW(), air, a.Name, a.MAC.HW()); err != nil {
					return err
				}
				if err := topo.Veth(nas, s.Name, s.MAC.HW(), air, b.Name, b.MAC.HW()); err != nil {
					return err
				}
				// linkem relays whole frames: the senders into it compute
				// checksums and segment in software; its ends do no GRO.
				for _, e := range []struct{ ns, l string }{{w.NS, w.Name}, {s.NS, s.Name}} {
					if err := topo.SetTxChecksum(e.ns, e.l, false); err != nil {
						return err
					}
				}
				for _, l := range []string{a.Name, b.Name} {
					if err := topo.SetGRO(p.Air, l, false); err != nil {
						return err
					}
					if err := air.Up(l); err != nil {
						return err
					}
				}
			}
			// Addresses stay on every wireless link; only the current
			// one is up (attach/Move).
			if err := addrs(mob, w); err != nil {
				return err
			}
			if err := addrs(nas, s); err != nil {
				return err
			}
		}
	}
	if err := routes(p, hs); err != nil {
		return err
	}
	// Wait until every wired link is operationally up: until the kernel's
	// link watch has seen the carrier, a device discards what it sends.
	for _, ifc := range p.wired() {
		if err := hs[ifc.NS].WaitOperUp(ifc.Name, 5*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// dataplanePeer prepares a link that sends into an interface a dataplane
// (samepathd, over XDP/AF_XDP) receives on: transmit checksum offload off,
// so the kernel completes checksums in software before the frame leaves.
// A veth otherwise hands over TCP/UDP with only a partial checksum
// (CHECKSUM_PARTIAL), which the kernel on the far side would finish but a
// dataplane reading raw frames forwards unfinished: real NICs never put
// such frames on the wire, and the receiving host drops them.
func dataplanePeer(ns, link string) error {
	return topo.SetTxChecksum(ns, link, false)
}

// wired lists the host-side interfaces that are always up.
func (p *Plan) wired() []Iface {
	out := []Iface{p.Ctl.Mgmt}
	for _, in := range p.Ingress {
		out = append(out, in.NAS.ToLB, in.NAS.Mgmt, in.LB.Ingress, in.LB.LAN, in.LB.Mgmt)
	}
	for _, g := range p.Gateways {
		out = append(out, g.LAN1, g.LAN2, g.Mgmt)
	}
	for _, s := range p.Servers {
		out = append(out, s.LAN)
	}
	return out
}

// switchPortMAC derives the switch-side MAC from the host-side one.
func switchPortMAC(m MAC) MAC {
	m[3] |= 0x80
	return m
}

func setMAC(n *topo.NS, link string, m MAC) error {
	l, err := n.Link(link)
	if err != nil {
		return err
	}
	if err := n.H.LinkSetHardwareAddr(l, m.HW()); err != nil {
		return fmt.Errorf("set mac of %s/%s: %w", n.Name, link, err)
	}
	return nil
}

func addrs(n *topo.NS, ifc Iface) error {
	for _, a := range []netip.Prefix{ifc.IPv4, ifc.IPv6} {
		if a.IsValid() {
			if err := n.AddrReplace(ifc.Name, a); err != nil {
				return err
			}
		}
	}
	return nil
}

func hostIface(n *topo.NS, ifc Iface) error {
	if err := addrs(n, ifc); err != nil {
		return err
	}
	return n.Up(ifc.Name)
}

func forwarding(ns string) error {
	for _, k := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
		if err := topo.Sysctl(ns, k, "1"); err != nil {
			return err
		}
	}
	return nil
}

func routes(p *Plan, hs map[string]*topo.NS) error {
	def4, def6 := netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")
	var ranges4, ranges6 []netip.Prefix
	for _, g := range p.Gateways {
		for _, r := range g.Ranges {
			if r.Addr().Is4() {
				ranges4 = append(ranges4, r)
			} else {
				ranges6 = append(ranges6, r)
			}
		}
	}
	gw1 := p.Gateways[0]
	for _, in := range p.Ingress {
		// NAS: everything not on a wireless link goes to its LB.
		if err := forwarding(in.NAS.NS); err != nil {
			return err
		}
		nas := hs[in.NAS.NS]
		if err := nas.RouteReplace(topo.Route{Dst: def4, Via: in.LB.Ingress.IPv4.Addr()}); err != nil {
			return err
		}
		if err := nas.RouteReplace(topo.Route{Dst: def6, Via: in.LB.Ingress.IPv6.Addr()}); err != nil {
			return err
		}
		// LB as a kernel router: mobile ranges down to the NAS; up
		// traffic from gateway g's range to gateway g (what T4 does),
		// anything else to gw1.
		if err := forwarding(in.LB.NS); err != nil {
			return err
		}
		lb := hs[in.LB.NS]
		for _, r := range ranges4 {
			if err := lb.RouteReplace(topo.Route{Dst: r, Via: in.LB.NASv4}); err != nil {
				return err
			}
		}
		for _, r := range ranges6 {
			if err := lb.RouteReplace(topo.Route{Dst: r, Via: in.LB.NASv6}); err != nil {
				return err
			}
		}
		if err := lb.RouteReplace(topo.Route{Dst: def4, Via: gw1.LAN1.IPv4.Addr()}); err != nil {
			return err
		}
		if err := lb.RouteReplace(topo.Route{Dst: def6, Via: gw1.LAN1.IPv6.Addr()}); err != nil {
			return err
		}
		for _, g := range p.Gateways {
			table := lbTableBase + g.Index
			if err := lb.RouteReplace(topo.Route{Dst: def4, Via: g.LAN1.IPv4.Addr(), Table: table}); err != nil {
				return err
			}
			if err := lb.RouteReplace(topo.Route{Dst: def6, Via: g.LAN1.IPv6.Addr(), Table: table}); err != nil {
				return err
			}
			for _, r := range g.Ranges {
				// Priority below main's 32766: source ranges win, but the
				// mobile ranges' own routes (down direction) are looked up
				// first by a rule for each range as destination.
				if err := lb.RuleAdd(r, table, 1000+g.Index); err != nil {
					return err
				}
			}
		}
		if err := downRules(lb, ranges4, ranges6); err != nil {
			return err
		}
	}
	for _, g := range p.Gateways {
		if err := forwarding(g.NS); err != nil {
			return err
		}
		if err := countRules(p, g); err != nil {
			return err
		}
	}
	for _, s := range p.Servers {
		h := hs[s.NS]
		for _, g := range p.Gateways {
			for _, r := range g.Ranges {
				via := g.LAN2.IPv4.Addr()
				if r.Addr().Is6() {
					via = g.LAN2.IPv6.Addr()
				}
				if err := h.RouteReplace(topo.Route{Dst: r, Via: via}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// downRules makes traffic toward a mobile range use the main table (route to
// the NAS) before the source rules can send it back up to a gateway.
func downRules(lb *topo.NS, r4, r6 []netip.Prefix) error {
	for _, r := range append(append([]netip.Prefix(nil), r4...), r6...) {
		if err := lb.RuleAddTo(r, 254, 900); err != nil {
			return err
		}
	}
	return nil
}

// countRules installs the gateway's counters: up (from LAN1) per LB source
// MAC and in total, down (from LAN2) in total.
func countRules(p *Plan, g Gateway) error {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n chain count {\n  type filter hook forward priority 0; policy accept;\n", CountTable)
	for _, in := range p.Ingress {
		fmt.Fprintf(&b, "  iifname %q ether saddr %s counter comment \"up-lb%d\"\n", g.LAN1.Name, in.LB.LAN.MAC, in.Index)
	}
	fmt.Fprintf(&b, "  iifname %q counter comment \"up\"\n", g.LAN1.Name)
	fmt.Fprintf(&b, "  iifname %q counter comment \"down\"\n", g.LAN2.Name)
	b.WriteString(" }\n}\n")
	cmd := topo.Command(g.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.Join(fmt.Errorf("fig2: nft in %s: %w", g.NS, err), errors.New(string(out)))
	}
	return nil
}
