package demo

import (
	"fmt"
	"net/netip"

	"samepath/dp/xlat"
	"samepath/testbed/fig2"
)

// IPv6 mobiles to IPv4 server groups (issue 15, R-TCP-3), either mode
// per service:
//
//   - translated: a v6 mobile names an IPv4 representative address (or
//     server) inside the gateways' RFC 6052 prefix (gw.xlat, default
//     64:ff9b::/96, NAT64Addr); the gateway balances it as that address's
//     IPv4 service (web-a, web-b, dns-a) and translates every packet
//     (UDP, ICMP echo, TCP in NAT mode); dns-a64 is such a service of its
//     own: UDP at group A's IPv6 representative address, servers on IPv4;
//   - terminated: web-a64, TCP at group A's IPv6 representative address
//     on Term64Port, mode terminate, servers a1 and a2 on IPv4: the
//     terminator's mobile side speaks IPv6 with the mobile, its server
//     side IPv4 from the gateway's IPv4 NAT address. It exists when the
//     gateways run a terminator (GWNAT.TermPortMin; make demo's default).

// DNS64Service is the translated IPv6 -> IPv4 UDP service, at group A's
// IPv6 representative address on DNS64Port.
const DNS64Service = "dns-a64"

// DNS64Port is dns-a64's port.
const DNS64Port = 5353

// DNS64Rep is dns-a64's representative address and port.
func DNS64Rep(p *fig2.Plan) netip.AddrPort {
	return netip.AddrPortFrom(p.Groups[0].VIPv6, DNS64Port)
}

// Term64Service is the name of the terminated IPv6 -> IPv4 service.
const Term64Service = "web-a64"

// Term64Port is web-a64's port at group A's IPv6 representative address.
const Term64Port = 8080

// NAT64Prefix is the gateways' RFC 6052 prefix (gw.xlat's default).
var NAT64Prefix = netip.MustParsePrefix("64:ff9b::/96")

// NAT64Addr is the IPv6 address under NAT64Prefix that embeds IPv4
// address a: what an IPv6-only mobile connects to for a.
func NAT64Addr(a netip.Addr) netip.Addr {
	return netip.AddrFrom16(xlat.Embed(NAT64Prefix, a.As4()))
}

// Term64Rep is web-a64's representative address and port.
func Term64Rep(p *fig2.Plan) netip.AddrPort {
	return netip.AddrPortFrom(p.Groups[0].VIPv6, Term64Port)
}

// services64 are the gateways' IPv6 -> IPv4 services: dns-a64, UDP at
// group A's IPv6 representative address on DNS64Port to a1 and a2 on
// IPv4 (NAT mode: translated), and web-a64 when the gateways run a
// terminator (a terminate service needs gw.terminate).
func services64(p *fig2.Plan, n GWNAT) string {
	srv := func(name string, port int) string {
		s, _ := p.Server(name)
		return netip.AddrPortFrom(s.LAN.IPv4.Addr(), uint16(port)).String()
	}
	out := fmt.Sprintf(`    - {name: %s, rep: "%s", proto: udp, type: packet, policy: rr, service_type: dns,
       servers: [{addr: "%s"}, {addr: "%s"}]}
`, DNS64Service, DNS64Rep(p), srv("a1", fig2.DNSPort), srv("a2", fig2.DNSPort))
	if n.TermPortMin == 0 {
		return out
	}
	return out + fmt.Sprintf(`    - {name: %s, rep: "%s", proto: tcp, type: connection, policy: rr, service_type: web, mode: terminate,
       servers: [{addr: "%s"}, {addr: "%s"}]}
`, Term64Service, Term64Rep(p), srv("a1", fig2.HTTPPort), srv("a2", fig2.HTTPPort))
}
