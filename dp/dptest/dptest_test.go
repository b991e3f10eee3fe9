package dptest_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
)

var (
	macA = dptest.MAC("02:00:00:00:00:0a")
	macB = dptest.MAC("02:00:00:00:00:0b")
	ip4A = netip.MustParseAddr("10.1.0.1")
	ip4B = netip.MustParseAddr("192.0.2.77")
	ip6A = netip.MustParseAddr("2001:db8::1")
	ip6B = netip.MustParseAddr("2001:db8::2")
)

func eth() *dptest.Builder { return dptest.Frame().Eth(macA, macB) }

// TestBuilderKnownBytes pins the builder to a frame written out by hand.
func TestBuilderKnownBytes(t *testing.T) {
	got := dptest.Frame().Eth(macA, macB).IPv4(netip.MustParseAddr("192.168.0.1"), netip.MustParseAddr("192.168.0.199")).
		DF().TTL(64).UDP(0x1234, 0x0035).Payload([]byte{0xde, 0xad}).Bytes()
	want := []byte{
		0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x00,
		0x45, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0xb6, // RFC 1071 example header 0xb861 + (0x73-0x1e)
		192, 168, 0, 1, 192, 168, 0, 199,
		0x12, 0x34, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0xde, 0xad,
	}
	// The UDP checksum comes from a slow reference over an explicit
	// pseudo-header.
	want[40], want[41] = 0, 0
	u := header.UDP(want[34:])
	u.SetChecksum(refUDP(want))
	if d := dptest.Diff(want, got); d != "" {
		t.Fatalf("builder output differs: %s\nwant % x\ngot  % x", d, want, got)
	}
}

// refUDP is the IPv4 UDP checksum summed the slow way over an explicit
// pseudo-header.
func refUDP(f []byte) uint16 {
	ip, l4 := f[14:34], f[34:]
	buf := append(append([]byte{}, ip[12:20]...), 0, ip[9], byte(len(l4)>>8), byte(len(l4)))
	buf = append(buf, l4...)
	buf[12+6], buf[12+7] = 0, 0
	var s uint32
	for i := 0; i+1 < len(buf); i += 2 {
		s += uint32(buf[i])<<8 | uint32(buf[i+1])
	}
	if len(buf)%2 == 1 {
		s += uint32(buf[len(buf)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	c := ^uint16(s)
	if c == 0 {
		c = 0xffff
	}
	return c
}

func TestVerifyChecksums(t *testing.T) {
	udp4 := eth().IPv4(ip4A, ip4B).UDP(1, 2).Payload([]byte("abc")).Bytes()
	good := map[string][]byte{
		"udp4":          udp4,
		"udp4 none":     eth().IPv4(ip4A, ip4B).UDP(1, 2).NoUDPChecksum().Bytes(),
		"tcp6 ext":      eth().IPv6(ip6A, ip6B).HopByHop(nil).TCP(1, 2).Flags(header.FlagSYN).Bytes(),
		"icmp4 error":   eth().IPv4(ip4B, ip4A).ICMPError(3, 3, 0, dptest.IP(udp4)).Bytes(),
		"icmp6 echo":    eth().IPv6(ip6A, ip6B).ICMPEcho(1, 2).Payload([]byte("odd")).Bytes(),
		"arp":           eth().ARP(header.ARPRequest, macA, ip4A, [6]byte{}, ip4B).Bytes(),
		"ipv4 fragment": eth().IPv4(ip4A, ip4B).Frag(10, false).Proto(17).Payload([]byte("zz")).Bytes(),
	}
	for name, f := range good {
		if err := dptest.VerifyChecksums(f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	badInner := dptest.IP(udp4)
	badInner[10] ^= 1
	bad := map[string][]byte{
		"ipv4 header":    eth().IPv4(ip4A, ip4B).IPChecksum(1).UDP(1, 2).Bytes(),
		"tcp":            eth().IPv4(ip4A, ip4B).TCP(1, 2).L4Checksum(7).Bytes(),
		"udp6 zero":      eth().IPv6(ip6A, ip6B).UDP(1, 2).NoUDPChecksum().Bytes(),
		"udp4":           eth().IPv4(ip4A, ip4B).UDP(1, 2).L4Checksum(0x1111).Bytes(),
		"icmp6":          eth().IPv6(ip6A, ip6B).ICMPEcho(1, 2).L4Checksum(3).Bytes(),
		"icmp4":          eth().IPv4(ip4A, ip4B).ICMPEcho(1, 2).L4Checksum(3).Bytes(),
		"icmp4 embedded": eth().IPv4(ip4B, ip4A).ICMPError(3, 3, 0, badInner).Bytes(),
	}
	for name, f := range bad {
		if err := dptest.VerifyChecksums(f); !errors.Is(err, dptest.ErrChecksum) {
			t.Errorf("%s: VerifyChecksums = %v, want ErrChecksum", name, err)
		}
	}
	if err := dptest.VerifyChecksums([]byte{1, 2}); err == nil || errors.Is(err, dptest.ErrChecksum) {
		t.Errorf("short frame: VerifyChecksums = %v, want a parse error", err)
	}
}

func TestDiff(t *testing.T) {
	base := func() *dptest.Builder {
		return eth().IPv4(ip4A, ip4B).TTL(64).TCP(1000, 80).Flags(header.FlagSYN).Seq(1)
	}
	inner := func(port uint16) []byte {
		return dptest.IP(eth().IPv4(ip4A, ip4B).UDP(port, 53).Payload([]byte("q")).Bytes())
	}
	tests := []struct {
		name      string
		want, got []byte
		field     string // prefix of the report; "" = no difference
	}{
		{"same", base().Bytes(), base().Bytes(), ""},
		{"dst mac", base().Bytes(), base().Eth(macA, macA).Bytes(), "eth.dst: want 02:00:00:00:00:0b, got 02:00:00:00:00:0a"},
		{"vlan", base().Bytes(), base().VLAN(3).Bytes(), "eth.type"},
		{"ttl", base().Bytes(), base().TTL(63).Bytes(), "ipv4.ttl: want 64 (0x40), got 63 (0x3f)"},
		{"src", base().Bytes(), eth().IPv4(ip4B, ip4B).TCP(1000, 80).Flags(header.FlagSYN).Seq(1).Bytes(), "ipv4.src: want 10.1.0.1, got 192.0.2.77"},
		{"flags", base().Bytes(), base().Flags(header.FlagSYN | header.FlagACK).Bytes(), "tcp.flags: want S, got SA"},
		{"tcp checksum only", base().Bytes(), base().L4Checksum(5).Bytes(), "tcp.checksum"},
		{"payload", base().Payload([]byte("ab")).Bytes(), base().Payload([]byte("ax")).Bytes(), "tcp.payload[1]"},
		{"ipv6 hop limit", eth().IPv6(ip6A, ip6B).UDP(1, 2).Bytes(), eth().IPv6(ip6A, ip6B).TTL(1).UDP(1, 2).Bytes(), "ipv6.hop_limit"},
		{"ext headers", eth().IPv6(ip6A, ip6B).HopByHop(nil).UDP(1, 2).Bytes(), eth().IPv6(ip6A, ip6B).DstOpts(nil).UDP(1, 2).Bytes(), "ipv6.next_header"},
		{"icmp embedded port", eth().IPv4(ip4B, ip4A).ICMPError(3, 3, 0, inner(1)).Bytes(), eth().IPv4(ip4B, ip4A).ICMPError(3, 3, 0, inner(2)).Bytes(), "icmpv4.embedded.udp.src_port: want 1"},
		{"icmp embedded truncated", eth().IPv4(ip4B, ip4A).ICMPError(3, 3, 0, inner(1)[:28]).Bytes(), eth().IPv4(ip4B, ip4A).ICMPError(3, 3, 0, inner(7)[:28]).Bytes(), "icmpv4.embedded.udp.src_port: want 1"},
		{"arp", eth().ARP(1, macA, ip4A, macB, ip4B).Bytes(), eth().ARP(2, macA, ip4A, macB, ip4B).Bytes(), "arp.op"},
		{"padding", base().PadTo(60).Bytes(), base().Bytes(), "eth.padding length: want 6, got 0"},
		{"unparsable", []byte{1, 2, 3}, []byte{1, 2, 4}, "frame[2]"},
		{"parse verdicts", base().Bytes(), base().Bytes()[:40], "parse: want ok, got short"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := dptest.Diff(tc.want, tc.got)
			if tc.field == "" {
				if d != "" {
					t.Errorf("Diff = %q, want none", d)
				}
				return
			}
			if !strings.HasPrefix(d, tc.field) {
				t.Errorf("Diff = %q, want it to start with %q", d, tc.field)
			}
		})
	}
}

func TestGoldenShape(t *testing.T) {
	// Golden is plain data; this guards the field names the pipelines use.
	g := dptest.Golden{Name: "x", In: []byte{1}, InPort: 0, Want: nil, WantPort: -1, WantDrop: 3}
	if g.WantDrop.String() == "unknown" {
		t.Errorf("WantDrop %d is not a dp.Reason name", g.WantDrop)
	}
}
