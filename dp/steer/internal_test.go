package steer

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"samepath/dp"
	"samepath/nat"
)

// The C program counts drops under dp.Reason's numbers.
func TestReasonNumbers(t *testing.T) {
	for c, r := range map[steerReason]dp.Reason{
		steerReasonREASON_NONE:        dp.ReasonNone,
		steerReasonREASON_MALFORMED:   dp.ReasonMalformed,
		steerReasonREASON_NO_ROUTE:    dp.ReasonNoRoute,
		steerReasonREASON_ALL_DOWN:    dp.ReasonAllDown,
		steerReasonREASON_TX_ERROR:    dp.ReasonTxError,
		steerReasonREASON_NO_NEXT_HOP: dp.ReasonNoNextHop,
	} {
		if uint32(c) != uint32(r) {
			t.Errorf("C reason %d is dp.Reason %d (%v)", c, r, r)
		}
	}
}

func TestKeyEncoding(t *testing.T) {
	mac := func(b byte) nat.MAC { return nat.MAC{2, 0, 0, 0, 0, b} }
	for _, r := range []nat.T4Row{
		{Range: netip.MustParsePrefix("10.0.0.0/8"), Gateways: []nat.Gateway{{MAC: mac(1), Up: true}}},
		{Range: netip.MustParsePrefix("0.0.0.0/0"), Gateways: []nat.Gateway{{MAC: mac(1)}, {MAC: mac(2), Up: true}}},
		{Range: netip.MustParsePrefix("192.0.2.7/32"), Gateways: []nat.Gateway{{MAC: mac(3)}}},
		{Range: netip.MustParsePrefix("2001:db8::/32"), Gateways: []nat.Gateway{{MAC: mac(4), Up: true}}},
		{Range: netip.MustParsePrefix("::/0"), Gateways: []nat.Gateway{{MAC: mac(5), Up: true}}},
		{Range: netip.MustParsePrefix("2001:db8::1/128"), Gateways: make([]nat.Gateway, nat.MaxGateways)},
	} {
		k := t4Key(r.Range)
		if want := uint32(8 + r.Range.Bits()); k.Prefixlen != want {
			t.Errorf("%s: prefixlen %d, want %d", r.Range, k.Prefixlen, want)
		}
		v, err := t4Val(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRow(k, v)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	if _, err := t4Val(nat.T4Row{Gateways: make([]nat.Gateway, nat.MaxGateways+1)}); err == nil {
		t.Error("9 gateways accepted")
	}
	if _, err := decodeRow(steerT4Key{Family: 5}, steerT4Val{}); err == nil {
		t.Error("family 5 decoded")
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{
		IngressIfindex: 2, GatewayIfindex: 3,
		IngressMAC: nat.MAC{2, 0, 0, 0, 0, 1}, GatewayMAC: nat.MAC{2, 0, 0, 0, 0, 2},
		Exclude: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fe80::1%eth0")},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, f := range map[string]func(*Config){
		"no ingress ifindex":    func(c *Config) { c.IngressIfindex = 0 },
		"negative gateway":      func(c *Config) { c.GatewayIfindex = -1 },
		"zero own mac":          func(c *Config) { c.IngressMAC = nat.MAC{} },
		"multicast own mac":     func(c *Config) { c.GatewayMAC = nat.MAC{1, 0, 0x5e, 0, 0, 1} },
		"one-armed, two macs":   func(c *Config) { c.GatewayIfindex = c.IngressIfindex },
		"multicast next hop":    func(c *Config) { c.NextHopMAC = nat.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} },
		"invalid exclude entry": func(c *Config) { c.Exclude = append(c.Exclude, netip.Addr{}) },
	} {
		c := good
		c.Exclude = append([]netip.Addr{}, good.Exclude...)
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := Load(c); err == nil {
			t.Errorf("%s: Load accepted", name)
		}
	}
}

func TestActionString(t *testing.T) {
	if Redirect.String() != "redirect" || Action(9).String() != "action(9)" {
		t.Errorf("%v %v", Redirect, Action(9))
	}
}
