package gwe2e

// The address families the gateway tests run over (issue 15): each case
// runs once over IPv4 and once over IPv6 on the same system, with the
// mobile's address, the groups' representative addresses, the servers'
// addresses, the gateway's NAT key address and the services of that
// family. testbed/demo configures each service twice, the IPv6 twin
// named with a "6" (web-a6 beside web-a). Neighbour discovery stays with
// the kernels (R-LB-5); the gateways hold their IPv6 NAT address
// deprecated, so that their own connections never use it.

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"

	"samepath/ctl/api"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
)

// family is one address family of the parametrized cases.
type family struct {
	name string // the subtest's name
	v6   bool
}

var families = []family{{name: "ipv4"}, {name: "ipv6", v6: true}}

// forFamilies runs body once per family, each as a subtest.
func forFamilies(t *testing.T, body func(t *testing.T, f family)) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { body(t, f) })
	}
}

// addr is the mobile's address of the family (fig2's plan gives each
// mobile one of each in its gateway's ranges).
func (f family) addr(m *fig2.Mobile) netip.Addr {
	if f.v6 {
		return m.IPv6
	}
	return m.IPv4
}

// vip is group g's (0: A, 1: B) representative address.
func (f family) vip(sys *demo.System, g int) netip.Addr {
	if f.v6 {
		return sys.TB.Plan.Groups[g].VIPv6
	}
	return sys.TB.Plan.Groups[g].VIPv4
}

// rep is group g's representative address with port.
func (f family) rep(sys *demo.System, g int, port uint16) string {
	return netip.AddrPortFrom(f.vip(sys, g), port).String()
}

// svc is the name of the family's twin of the IPv4 service name.
func (f family) svc(name string) string {
	if f.v6 {
		return name + "6"
	}
	return name
}

// natAddr is gateway g's key-port address.
func (f family) natAddr(g int) netip.Addr {
	if f.v6 {
		return demo.NATAddr6(g)
	}
	return demo.NATAddr(g)
}

// server is the named server's address of the family with port.
func (f family) server(t *testing.T, sys *demo.System, name string, port uint16) string {
	t.Helper()
	return netip.AddrPortFrom(f.serverAddr(t, sys, name), port).String()
}

// serverAddr is the named server's address of the family.
func (f family) serverAddr(t *testing.T, sys *demo.System, name string) netip.Addr {
	t.Helper()
	s, err := sys.TB.Plan.Server(name)
	if err != nil {
		t.Fatal(err)
	}
	if f.v6 {
		return s.LAN.IPv6.Addr()
	}
	return s.LAN.IPv4.Addr()
}

// etherType is the family's EtherType.
func (f family) etherType() uint16 {
	if f.v6 {
		return 0x86dd
	}
	return 0x0800
}

// minTCPFrame is the shortest Ethernet frame of a TCP segment of the
// family: Ethernet, IP header without options, TCP header.
func (f family) minTCPFrame() int {
	if f.v6 {
		return 14 + 40 + 20
	}
	return 14 + 20 + 20
}

// tcpdumpIP is how tcpdump -nn starts a line of an IP packet of the
// family ("IP 10.0.0.1.80 > ...", "IP6 fd00::1.80 > ...").
func (f family) tcpdumpIP() string {
	if f.v6 {
		return "IP6"
	}
	return "IP"
}

// v6Starts numbers the IPv6 sessions started, for unique session ids.
var v6Starts atomic.Uint64

// startSession starts a session of the mobile's address of the family
// on its gateway, as the session manager does after Accounting Start.
// An IPv6 session is IPv6-only (IP is the mobile's address, no IP6):
// it opens the gate of that address alone, beside any IPv4 session of
// the same device.
func (f family) startSession(ctx context.Context, sys *demo.System, m *fig2.Mobile) error {
	if !f.v6 {
		return sys.StartSession(ctx, m.Name)
	}
	id := fmt.Sprintf("gwe2e-%s-v6-%d", m.Name, v6Starts.Add(1))
	ev := api.SessionEvent{Event: api.EventStart, SessionID: id, DeviceID: "IMEI-" + m.Name, IP: m.IPv6.String(), Seq: 1}
	if err := sys.GWs[m.Gateway-1].SessionEvent(ctx, ev); err != nil {
		return fmt.Errorf("ipv6 session start for %s: %w", m.Name, err)
	}
	return nil
}
