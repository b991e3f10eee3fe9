package fig2

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckMobileAddr6(t *testing.T) {
	p, err := NewPlan("sptbx", 2, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prefix, want string
		gw           int
		err          string
	}{
		{"fd00:101::/64", "fd00:101::10", 1, ""}, // holds mob1's plan address: kept
		{"fd00:102::/64", "fd00:102::101", 2, ""},
		{"fd00:102::77/128", "fd00:102::77", 2, ""},
		{"fd00:102::10/128", "", 0, "mob2 already has"},
		{"fd00:55::/64", "", 0, "in no gateway's IPv6 range"},
		{"fd00:101::/56", "", 0, "want an IPv6 /64 or /128"},
		{"10.101.0.0/24", "", 0, "want an IPv6"},
	} {
		m, _ := p.Mobile("mob1")
		a, g, err := p.checkMobileAddr6(m, netip.MustParsePrefix(c.prefix))
		if c.err == "" {
			if err != nil || g != c.gw || a.String() != c.want {
				t.Errorf("%s: %s gateway %d, %v; want %s %d", c.prefix, a, g, err, c.want, c.gw)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want %q", c.prefix, err, c.err)
		}
	}
}
