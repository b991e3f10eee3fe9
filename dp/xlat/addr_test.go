package xlat_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

// TestRFC6052 checks Embed and Extract against RFC 6052 section 2.4's
// table of 192.0.2.33 under every prefix length.
func TestRFC6052(t *testing.T) {
	v4 := [4]byte{192, 0, 2, 33}
	for _, tc := range []struct{ prefix, addr string }{
		{"2001:db8::/32", "2001:db8:c000:221::"},
		{"2001:db8:100::/40", "2001:db8:1c0:2:21::"},
		{"2001:db8:122::/48", "2001:db8:122:c000:2:2100::"},
		{"2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"},
		{"2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"},
		{"2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"},
		{"64:ff9b::/96", "64:ff9b::192.0.2.33"},
	} {
		p, want := netip.MustParsePrefix(tc.prefix), netip.MustParseAddr(tc.addr)
		if got := netip.AddrFrom16(xlat.Embed(p, v4)); got != want {
			t.Errorf("Embed(%v, 192.0.2.33) = %v, want %v", p, got, want)
		}
		if got, ok := xlat.Extract(p, want.As16()); !ok || got != v4 {
			t.Errorf("Extract(%v, %v) = %v %v", p, want, got, ok)
		}
		if _, ok := xlat.Extract(p, netip.MustParseAddr("2001:db9::1").As16()); ok {
			t.Errorf("Extract(%v) accepted an address outside the prefix", p)
		}
		// Every prefix length translates end to end.
		tr := newT(t, func(c *xlat.Config) {
			c.Pool6, c.EAM = p, []xlat.EAM{{IPv6: netip.PrefixFrom(h6, 128), IPv4: netip.PrefixFrom(h4, 32)}}
		})
		in := v4b(netip.AddrFrom4(v4), h4).UDP(1, 2).Bytes()
		o, got := run(t, tr, in)
		if o != xlat.Translated46 {
			t.Fatalf("%v: %v", p, o)
		}
		if d := dptest.Diff(v6(want, h6).TTL(63).UDP(1, 2).Bytes(), got[0]); d != "" {
			t.Errorf("%v: %s", p, d)
		}
	}
}

func v4b(src, dst netip.Addr) *dptest.Builder { return v4(src, dst) }

// TestEAM checks RFC 7757 mappings, including an IPv6 prefix with a
// longer suffix than its IPv4 prefix (the IPv4 suffix follows the IPv6
// prefix), and that EAM wins over Pool6.
func TestEAM(t *testing.T) {
	tr := newT(t, func(c *xlat.Config) {
		c.EAM = []xlat.EAM{
			{IPv6: netip.MustParsePrefix("2001:db8:aaaa::/72"), IPv4: netip.MustParsePrefix("198.51.100.0/24")},
			{IPv6: netip.MustParsePrefix("2001:db8:bbbb::5/128"), IPv4: netip.MustParsePrefix("203.0.113.7/32")},
		}
	})
	for _, tc := range []struct{ v6, v4 string }{
		{"2001:db8:aaaa:0:21::", "198.51.100.33"},
		{"2001:db8:bbbb::5", "203.0.113.7"}, // inside Pool6's reach too: EAM first
	} {
		in := v6(a(tc.v6), a("64:ff9b::192.0.2.1")).UDP(1, 2).Bytes()
		o, got := run(t, tr, in)
		if o != xlat.Translated64 {
			t.Fatalf("%s: %v", tc.v6, o)
		}
		if src := header.IPv4(got[0][14:]).SrcAddr(); src != a(tc.v4) {
			t.Errorf("%s -> %v, want %s", tc.v6, src, tc.v4)
		}
		back := v4(a("192.0.2.1"), a(tc.v4)).UDP(2, 1).Bytes()
		if o, got = run(t, tr, back); o != xlat.Translated46 {
			t.Fatalf("%s back: %v", tc.v4, o)
		}
		if dst := header.IPv6(got[0][14:]).DstAddr(); dst != a(tc.v6) {
			t.Errorf("%s -> %v, want %s", tc.v4, dst, tc.v6)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		key string
		mod func(*xlat.Config)
	}{
		{"pool6", func(c *xlat.Config) { c.Pool6 = netip.MustParsePrefix("64:ff9b::/80") }},
		{"pool6", func(c *xlat.Config) { c.Pool6 = netip.MustParsePrefix("64:ff9b:0:0:ff00::/64") }},
		{"pool6", func(c *xlat.Config) { c.Pool6 = netip.MustParsePrefix("10.0.0.0/8") }},
		{"pool6", func(c *xlat.Config) { c.Pool6, c.EAM = netip.Prefix{}, nil }},
		{"eam[0]", func(c *xlat.Config) { c.EAM[0].IPv6 = netip.MustParsePrefix("2001:db8::/124") }},
		{"eam[1]", func(c *xlat.Config) { c.EAM = append(c.EAM, c.EAM[0]) }},
		{"eam[0].ipv4", func(c *xlat.Config) { c.EAM[0].IPv4 = netip.Prefix{} }},
		{"ipv4_address", func(c *xlat.Config) { c.IPv4Address = netip.Addr{} }},
		{"ipv6_address", func(c *xlat.Config) { c.IPv6Address = a("::ffff:1.2.3.4") }},
		{"rfc6791v4", func(c *xlat.Config) { c.RFC6791v4 = netip.MustParsePrefix("2001:db8::/64") }},
		{"ipv6_mtu", func(c *xlat.Config) { c.IPv6MTU = 1279 }},
		{"ipv4_mtu", func(c *xlat.Config) { c.IPv4MTU = 0 }},
		{"lowest_ipv6_mtu", func(c *xlat.Config) { c.LowestIPv6MTU = 1000 }},
	} {
		c := testConfig()
		tc.mod(&c)
		err := c.Validate()
		if !errors.Is(err, xlat.ErrConfig) || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("want an error naming %s, got %v", tc.key, err)
		}
		if _, err := xlat.New(c); err == nil {
			t.Errorf("New accepted a config Validate refuses (%s)", tc.key)
		}
	}
	c := testConfig()
	if err := c.Validate(); err != nil {
		t.Errorf("test config: %v", err)
	}
}

func TestOutcomeNames(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range xlat.Outcomes() {
		n := o.String()
		if n == "" || n == "unknown" || seen[n] || strings.ToLower(n) != n {
			t.Errorf("outcome %d has name %q", o, n)
		}
		seen[n] = true
		k := 0
		for _, b := range []bool{o.Translated(), o.Answered(), o.Dropped()} {
			if b {
				k++
			}
		}
		if k != 1 {
			t.Errorf("%v is in %d of translated/answered/dropped", o, k)
		}
	}
	if xlat.NumOutcomes.String() != "unknown" {
		t.Error("NumOutcomes has a name")
	}
}
