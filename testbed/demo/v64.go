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
//     (UDP, ICMP echo, TCP in NAT mode);
//   - terminated: web-a64, TCP at group A's IPv6 representative address
//     on Term64Port, mode terminate, servers a1 and a2 on IPv4: the
//     terminator's mobile side speaks IPv6 with the mobile, its server
//     side IPv4 from the gateway's IPv4 NAT address. It exists when the
//     gateways run a terminator (GWNAT.TermPortMin; make demo's default).

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

// services64 is web-a64's entry in the gateways' services ("" without a
// terminator: a terminate service needs gw.terminate).
func services64(p *fig2.Plan, n GWNAT) string {
	if n.TermPortMin == 0 {
		return ""
	}
	srv := func(name string) string {
		s, _ := p.Server(name)
		return netip.AddrPortFrom(s.LAN.IPv4.Addr(), fig2.HTTPPort).String()
	}
	return fmt.Sprintf(`    - {name: %s, rep: "%s", proto: tcp, type: connection, policy: rr, service_type: web, mode: terminate,
       servers: [{addr: "%s"}, {addr: "%s"}]}
`, Term64Service, Term64Rep(p), srv("a1"), srv("a2"))
}
