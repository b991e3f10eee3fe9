package demo

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"samepath/ctl/nas"
	"samepath/testbed/fig2"
	"samepath/testbed/topo"
)

// IPv6 subscribers (issue 15): samepath-control's T1 gets each
// gateway's IPv6 range as range6 (a /64 per mobile, Framed-IPv6-Prefix),
// the gateways NAT IPv6 on NATAddr6 and balance the groups' IPv6
// representative addresses to the servers' IPv6 addresses, with the
// same session types and service types as IPv4. Mobiles whose
// Options.Stacks say "ipv6" or "dual" get a prefix at Login, and take an
// address in it (fig2.SetMobileAddr6).

// NATAddr6 is gateway g's IPv6 key-port address on LAN2.
func NATAddr6(g int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("fd00:20::10%d", g)) }

// nat6YAML is the IPv6 entry of gateway g's nat.addrs list.
func nat6YAML(g int) string { return ", " + NATAddr6(g).String() }

// range6YAML is the range6 entry of gateway g's T1 row ("" without an
// IPv6 range in the plan).
func range6YAML(g fig2.Gateway) string {
	for _, r := range g.Ranges {
		if r.Addr().Is6() {
			return fmt.Sprintf(", range6: %q, framed6: prefix", r.String())
		}
	}
	return ""
}

// stackYAML is a user's stack entry ("" for the default, ipv4).
func stackYAML(stack string) string {
	if stack == "" {
		return ""
	}
	return fmt.Sprintf(", stack: %s", stack)
}

// services6 are the IPv6 services of the gateways, the twins of
// startGWs' IPv4 ones: web-a6, web-b6 and dns-a6.
func services6(p *fig2.Plan) string {
	srv := func(name string, port int) string {
		s, _ := p.Server(name)
		return netip.AddrPortFrom(s.LAN.IPv6.Addr(), uint16(port)).String()
	}
	gA, gB := p.Groups[0], p.Groups[1]
	rep := func(a netip.Addr, port int) string { return netip.AddrPortFrom(a, uint16(port)).String() }
	return fmt.Sprintf(`    - {name: web-a6, rep: "%s", proto: tcp, type: connection, policy: rr, service_type: web,
       servers: [{addr: "%s"}, {addr: "%s"}]}
    - {name: web-b6, rep: "%s", proto: tcp, type: login, policy: rr, service_type: video,
       servers: [{addr: "%s"}, {addr: "%s"}]}
    - {name: dns-a6, rep: "%s", proto: udp, type: packet, policy: rr, service_type: dns,
       servers: [{addr: "%s"}, {addr: "%s"}]}
`, rep(gA.VIPv6, fig2.HTTPPort), srv("a1", fig2.HTTPPort), srv("a2", fig2.HTTPPort),
		rep(gB.VIPv6, fig2.HTTPPort), srv("b1", fig2.HTTPPort), srv("b2", fig2.HTTPPort),
		rep(gA.VIPv6, fig2.DNSPort), srv("a1", fig2.DNSPort), srv("a2", fig2.DNSPort))
}

// grantText is an Access-Accept's addresses as the steps show them.
func grantText(g nas.Grant) string {
	var parts []string
	if g.IP.IsValid() {
		parts = append(parts, g.IP.String())
	}
	if g.IP6.IsValid() {
		parts = append(parts, g.IP6.String())
	}
	return strings.Join(parts, " ")
}

// MobileAddrs are the addresses the AAA gave mobile at its last Login:
// its IPv4 address and IPv6 prefix, each zero when not given.
func (s *System) MobileAddrs(mobile string) (netip.Addr, netip.Prefix, error) {
	ms, _, err := s.mobile(mobile)
	if err != nil {
		return netip.Addr{}, netip.Prefix{}, err
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	v4 := ms.ip
	if !v4.Is4() {
		v4 = netip.Addr{}
	}
	return v4, ms.ip6, nil
}

// Radclient sends mobile's Access-Request with FreeRADIUS's radclient
// from the NAS of its current ingress point (a RADIUS client of
// samepath-control) and returns radclient's output. It changes nothing
// a Login has not: the AAA keeps the addresses the device holds.
func (s *System) Radclient(ctx context.Context, mobile string) (string, error) {
	ms, m, err := s.mobile(mobile)
	if err != nil {
		return "", err
	}
	in := s.TB.Plan.Ingress[m.Ingress-1]
	attrs := fmt.Sprintf("User-Name=%s,User-Password=%s,Calling-Station-Id=%s,Message-Authenticator=0x00", ms.user, ms.password, ms.device)
	cmd := topo.CommandContext(ctx, in.NAS.NS, "radclient", "-x", "-r", "2", "-t", "2", s.TB.Plan.Ctl.RADIUS.String(), "auth", s.RADIUSSecret)
	cmd.Stdin = strings.NewReader(attrs)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("radclient for %s at nas%d: %w", mobile, in.Index, err)
	}
	return string(out), nil
}
