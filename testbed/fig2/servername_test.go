package fig2

import (
	"net/netip"
	"testing"
)

// TestServerName: a server is named by either of its LAN addresses (the
// gateway tests read IPv6 NAT records as well as IPv4 ones).
func TestServerName(t *testing.T) {
	p, err := NewPlan("sptbx", 2, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ip, want string }{
		{"10.20.0.11", "a1"},
		{"fd00:20::11", "a1"},
		{"fd00:20::22", "b2"},
		{"fd00:20::99", "fd00:20::99"},
	} {
		if got := p.ServerName(netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("ServerName(%s) = %q, want %q", c.ip, got, c.want)
		}
	}
}
