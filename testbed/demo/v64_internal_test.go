package demo

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"samepath/dp/daemon"
	"samepath/testbed/fig2"
)

// TestV64Config: the gateways' config carries dns-a64 (group A's IPv6
// rep, its IPv4 servers, UDP, translated) and, with a terminator, web-a64
// (the same, TCP, mode terminate), and loads in samepathd; without a
// terminator it carries no web-a64 (a terminate service needs
// gw.terminate); NAT64Addr embeds as RFC 6052 says.
func TestV64Config(t *testing.T) {
	p, err := fig2.NewPlan("sptbcfg", 2, false)
	if err != nil {
		t.Fatal(err)
	}
	if s := services64(p, GWNAT{}); strings.Contains(s, Term64Service) || !strings.Contains(s, DNS64Service) {
		t.Errorf("services64 without a terminator: %q, want %s alone", s, DNS64Service)
	}
	n := GWNAT{PortMax: 59999, TermPortMin: 60000, TermPortMax: 65535}
	gw := fmt.Sprintf("role: gw\napi: 127.0.0.1:7700\ngw:\n  lan: {iface: lan1}\n  servers: {iface: lan2}\n  nat: {addrs: [%s%s], %s}\n%s  services:\n%s",
		NATAddr(1), nat6YAML(1), n.yaml(), n.termYAML(), services6(p)+services64(p, n))
	c, err := daemon.Parse([]byte(gw))
	if err != nil {
		t.Fatalf("%v\n%s", err, gw)
	}
	found := 0
	for _, s := range c.GW.Services {
		switch {
		case s.Name == Term64Service && (s.Rep != Term64Rep(p).String() || s.Mode != "terminate" || s.Proto != "tcp"):
			t.Errorf("web-a64 %+v", s)
		case s.Name == DNS64Service && (s.Rep != DNS64Rep(p).String() || s.Mode == "terminate" || s.Proto != "udp"):
			t.Errorf("dns-a64 %+v", s)
		case s.Name != Term64Service && s.Name != DNS64Service:
			continue
		}
		found++
		if len(s.Servers) != 2 {
			t.Errorf("%s servers %+v", s.Name, s.Servers)
		}
		for _, sv := range s.Servers {
			if a, err := netip.ParseAddrPort(sv.Addr); err != nil || !a.Addr().Is4() {
				t.Errorf("%s server %q: want IPv4", s.Name, sv.Addr)
			}
		}
	}
	if found != 2 {
		t.Fatalf("want %s and %s in %+v", Term64Service, DNS64Service, c.GW.Services)
	}
	if a := NAT64Addr(netip.MustParseAddr("10.30.0.1")); a != netip.MustParseAddr("64:ff9b::a1e:1") {
		t.Errorf("NAT64Addr(10.30.0.1) = %s", a)
	}
	// Why services64 needs the terminator: samepathd refuses the service
	// without gw.terminate.
	bad := strings.Replace(gw, n.termYAML(), "", 1)
	if _, err := daemon.Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "gw.terminate") {
		t.Errorf("web-a64 without gw.terminate: %v, want an error naming gw.terminate", err)
	}
}
