package header_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/dp/dptest"
	"samepath/dp/header"
)

var (
	macA = dptest.MAC("02:00:00:00:00:0a")
	macB = dptest.MAC("02:00:00:00:00:0b")
	ip4A = netip.MustParseAddr("10.1.0.1")
	ip4B = netip.MustParseAddr("192.0.2.77")
	ip6A = netip.MustParseAddr("2001:db8::1")
	ip6B = netip.MustParseAddr("2001:db8:ffff::abcd")
)

func eth() *dptest.Builder { return dptest.Frame().Eth(macA, macB) }

// mod returns f after applying change to a copy.
func mod(f []byte, change func(b []byte)) []byte {
	b := append([]byte(nil), f...)
	change(b)
	return b
}

type parseCase struct {
	name  string
	frame []byte
	want  header.Verdict
	p     header.Parsed // compared only when want is OK
}

func parseCases() []parseCase {
	udp4 := eth().IPv4(ip4A, ip4B).UDP(1000, 53).Payload([]byte("hello")).Bytes()
	tcp4 := eth().IPv4(ip4A, ip4B).TCP(40000, 80).Flags(header.FlagSYN).TCPOptions([]byte{2, 4, 5, 0xb4}).Bytes()
	tcp6 := eth().IPv6(ip6A, ip6B).TCP(40000, 443).Flags(header.FlagACK).Payload(make([]byte, 100)).Bytes()
	ah := make([]byte, 24)
	ah[0], ah[1] = header.ProtoNoNext, 4
	var eightDst, nineDst = eth().IPv6(ip6A, ip6B), eth().IPv6(ip6A, ip6B)
	for i := 0; i < 8; i++ {
		eightDst.DstOpts(nil)
		nineDst.DstOpts(nil)
	}
	nineDst.DstOpts(nil)
	return []parseCase{
		{"udp4", udp4, header.OK, header.Parsed{EtherType: 0x0800, L3Off: 14, L4Off: 34, IPVersion: 4, Proto: 17, L4Len: 13, IPEnd: 47}},
		{"udp4 padded", eth().IPv4(ip4A, ip4B).UDP(1000, 53).Payload([]byte("hello")).PadTo(60).Bytes(), header.OK,
			header.Parsed{EtherType: 0x0800, L3Off: 14, L4Off: 34, IPVersion: 4, Proto: 17, L4Len: 13, IPEnd: 47}},
		{"udp4 no checksum", eth().IPv4(ip4A, ip4B).UDP(1, 2).NoUDPChecksum().Bytes(), header.OK,
			header.Parsed{EtherType: 0x0800, L3Off: 14, L4Off: 34, IPVersion: 4, Proto: 17, L4Len: 8, IPEnd: 42}},
		{"tcp4 vlan options", eth().VLAN(0x2064).IPv4(ip4A, ip4B).IPOptions([]byte{1, 1, 1, 1}).TCP(1, 2).TCPOptions([]byte{2, 4, 5, 0xb4}).Bytes(), header.OK,
			header.Parsed{EtherType: 0x0800, HasVLAN: true, VLANTCI: 0x2064, L3Off: 18, L4Off: 42, IPVersion: 4, Proto: 6, L4Len: 24, IPEnd: 66}},
		{"tcp4", tcp4, header.OK, header.Parsed{EtherType: 0x0800, L3Off: 14, L4Off: 34, IPVersion: 4, Proto: 6, L4Len: 24, IPEnd: 58}},
		{"icmp4 echo", eth().IPv4(ip4A, ip4B).ICMPEcho(7, 1).Payload(make([]byte, 56)).Bytes(), header.OK,
			header.Parsed{EtherType: 0x0800, L3Off: 14, L4Off: 34, IPVersion: 4, Proto: 1, L4Len: 64, IPEnd: 98}},
		{"icmp4 error", eth().IPv4(ip4B, ip4A).ICMPError(header.ICMPv4DstUnreachable, header.ICMPv4PortUnreachable, 0, dptest.IP(udp4)).Bytes(), header.OK,
			header.Parsed{EtherType: 0x0800, L3Off: 14, L4Off: 34, IPVersion: 4, Proto: 1, L4Len: 8 + 33, IPEnd: 14 + 20 + 41}},
		{"ipv4 first fragment", eth().IPv4(ip4A, ip4B).Frag(0, true).UDP(5, 6).UDPLength(3000).Payload(make([]byte, 1472)).Bytes(), header.OK,
			header.Parsed{EtherType: 0x0800, L3Off: 14, L4Off: 34, IPVersion: 4, Proto: 17, Fragment: true, L4Len: 1480, IPEnd: 1514}},
		{"ipv4 later fragment", eth().IPv4(ip4A, ip4B).Frag(185, false).Proto(17).Payload(make([]byte, 100)).Bytes(), header.OK,
			header.Parsed{EtherType: 0x0800, L3Off: 14, IPVersion: 4, Proto: 17, Fragment: true, FragOffset: 185, IPEnd: 134}},
		{"ipv4 unknown proto", eth().IPv4(ip4A, ip4B).Proto(47).Payload([]byte{1, 2}).Bytes(), header.OK,
			header.Parsed{EtherType: 0x0800, L3Off: 14, L4Off: 34, IPVersion: 4, Proto: 47, L4Len: 2, IPEnd: 36}},
		{"tcp6", tcp6, header.OK, header.Parsed{EtherType: 0x86dd, L3Off: 14, L4Off: 54, IPVersion: 6, Proto: 6, L4Len: 120, IPEnd: 174}},
		{"udp6 hop-by-hop dstopts", eth().IPv6(ip6A, ip6B).HopByHop([]byte{5, 2, 0, 0}).DstOpts(make([]byte, 12)).UDP(1, 2).Bytes(), header.OK,
			header.Parsed{EtherType: 0x86dd, L3Off: 14, L4Off: 14 + 40 + 8 + 16, IPVersion: 6, Proto: 17, L4Len: 8, IPEnd: 86, ExtHeaders: 2}},
		{"udp6 routing", eth().IPv6(ip6A, ip6B).Routing(4, 0, make([]byte, 20)).UDP(1, 2).Bytes(), header.OK,
			header.Parsed{EtherType: 0x86dd, L3Off: 14, L4Off: 14 + 40 + 24, IPVersion: 6, Proto: 17, L4Len: 8, IPEnd: 86, ExtHeaders: 1}},
		{"icmp6 first fragment", eth().IPv6(ip6A, ip6B).Fragment(0, true, 99).ICMPEcho(1, 2).Payload(make([]byte, 1000)).Bytes(), header.OK,
			header.Parsed{EtherType: 0x86dd, L3Off: 14, L4Off: 62, IPVersion: 6, Proto: 58, Fragment: true, L4Len: 1008, IPEnd: 1070, FragOff: 54, ExtHeaders: 1}},
		{"icmp6 later fragment", eth().IPv6(ip6A, ip6B).HopByHop(nil).Fragment(100, false, 99).Proto(58).Payload(make([]byte, 3)).Bytes(), header.OK,
			header.Parsed{EtherType: 0x86dd, L3Off: 14, IPVersion: 6, Proto: 58, Fragment: true, FragOffset: 100, IPEnd: 14 + 40 + 16 + 3, FragOff: 62, ExtHeaders: 2}},
		{"icmp6 echo", eth().IPv6(ip6A, ip6B).ICMPEcho(1, 2).Bytes(), header.OK,
			header.Parsed{EtherType: 0x86dd, L3Off: 14, L4Off: 54, IPVersion: 6, Proto: 58, L4Len: 8, IPEnd: 62}},
		{"ipv6 AH then no next", eth().IPv6(ip6A, ip6B).Proto(header.ProtoAH).Payload(ah).Bytes(), header.OK,
			header.Parsed{EtherType: 0x86dd, L3Off: 14, IPVersion: 6, Proto: 59, IPEnd: 78, ExtHeaders: 1}},
		{"ipv6 ESP", eth().IPv6(ip6A, ip6B).Proto(header.ProtoESP).Payload(make([]byte, 16)).Bytes(), header.OK,
			header.Parsed{EtherType: 0x86dd, L3Off: 14, L4Off: 54, IPVersion: 6, Proto: 50, L4Len: 16, IPEnd: 70}},
		{"ipv6 no next header", eth().IPv6(ip6A, ip6B).Bytes(), header.OK,
			header.Parsed{EtherType: 0x86dd, L3Off: 14, IPVersion: 6, Proto: 59, IPEnd: 54}},
		{"ipv6 eight ext headers", eightDst.Bytes(), header.OK,
			header.Parsed{EtherType: 0x86dd, L3Off: 14, IPVersion: 6, Proto: 59, IPEnd: 54 + 64, ExtHeaders: 8}},
		{"arp request", eth().ARP(header.ARPRequest, macA, ip4A, [6]byte{}, ip4B).PadTo(60).Bytes(), header.OK,
			header.Parsed{EtherType: 0x0806, L3Off: 14, IPEnd: 42}},
		{"lldp raw", eth().EtherType(0x88cc).Payload([]byte{1, 2, 3}).Bytes(), header.OK,
			header.Parsed{EtherType: 0x88cc, L3Off: 14}},
		{"double vlan is not ip", eth().VLAN(1).EtherType(0x8100).Payload(make([]byte, 40)).Bytes(), header.OK,
			header.Parsed{EtherType: 0x8100, HasVLAN: true, VLANTCI: 1, L3Off: 18}},

		{"empty", nil, header.Short, header.Parsed{}},
		{"short ethernet", make([]byte, 13), header.Short, header.Parsed{}},
		{"short vlan", mod(make([]byte, 17), func(b []byte) { b[12], b[13] = 0x81, 0 }), header.Short, header.Parsed{}},
		{"short ipv4", udp4[:14+19], header.Short, header.Parsed{}},
		{"ipv4 bad version", mod(udp4, func(b []byte) { b[14] = 0x65 }), header.BadVersion, header.Parsed{}},
		{"ipv4 ihl 4", mod(udp4, func(b []byte) { b[14] = 0x44 }), header.BadHeaderLen, header.Parsed{}},
		{"ipv4 ihl past frame", mod(udp4[:14+24], func(b []byte) { b[14] = 0x4f }), header.Short, header.Parsed{}},
		{"ipv4 total below ihl", eth().IPv4(ip4A, ip4B).UDP(1, 2).IPLength(19).Bytes(), header.BadTotalLen, header.Parsed{}},
		{"ipv4 total past frame", eth().IPv4(ip4A, ip4B).UDP(1, 2).IPLength(29).Bytes(), header.Short, header.Parsed{}},
		{"tcp data offset 4", mod(tcp4, func(b []byte) { b[34+12] = 0x40 }), header.BadTCP, header.Parsed{}},
		{"tcp data offset past payload", mod(tcp4, func(b []byte) { b[34+12] = 0x70 }), header.BadTCP, header.Parsed{}},
		{"tcp short", eth().IPv4(ip4A, ip4B).Proto(6).Payload(make([]byte, 19)).Bytes(), header.BadTCP, header.Parsed{}},
		{"udp length past payload", eth().IPv4(ip4A, ip4B).UDP(1, 2).UDPLength(9).Bytes(), header.BadUDP, header.Parsed{}},
		{"udp length below 8", eth().IPv4(ip4A, ip4B).UDP(1, 2).UDPLength(7).Bytes(), header.BadUDP, header.Parsed{}},
		{"udp short", eth().IPv6(ip6A, ip6B).Proto(17).Payload(make([]byte, 7)).Bytes(), header.BadUDP, header.Parsed{}},
		{"first fragment without udp header", eth().IPv4(ip4A, ip4B).Frag(0, true).Proto(17).Payload(make([]byte, 4)).Bytes(), header.BadFragment, header.Parsed{}},
		{"icmp4 short", eth().IPv4(ip4A, ip4B).Proto(1).Payload(make([]byte, 7)).Bytes(), header.BadICMP, header.Parsed{}},
		{"icmp6 short", eth().IPv6(ip6A, ip6B).Proto(58).Payload(make([]byte, 4)).Bytes(), header.BadICMP, header.Parsed{}},
		{"short ipv6", tcp6[:53], header.Short, header.Parsed{}},
		{"ipv6 payload past frame", eth().IPv6(ip6A, ip6B).UDP(1, 2).IPLength(9).Bytes(), header.Short, header.Parsed{}},
		{"ipv6 bad version", mod(tcp6, func(b []byte) { b[14] = 0x40 }), header.BadVersion, header.Parsed{}},
		{"ipv6 ext past payload", eth().IPv6(ip6A, ip6B).HopByHop(make([]byte, 10)).IPLength(8).Payload(make([]byte, 20)).Bytes(), header.BadExtHeader, header.Parsed{}},
		{"ipv6 ext under 8 bytes", eth().IPv6(ip6A, ip6B).Proto(0).Payload(make([]byte, 7)).Bytes(), header.BadExtHeader, header.Parsed{}},
		{"ipv6 hop-by-hop not first", eth().IPv6(ip6A, ip6B).DstOpts(nil).HopByHop(nil).Bytes(), header.BadExtHeader, header.Parsed{}},
		{"ipv6 nine ext headers", nineDst.Bytes(), header.BadExtHeader, header.Parsed{}},
		{"ipv6 two fragment headers", eth().IPv6(ip6A, ip6B).Fragment(0, true, 1).Fragment(0, true, 1).UDP(1, 2).Bytes(), header.BadExtHeader, header.Parsed{}},
		{"arp short", eth().ARP(header.ARPReply, macA, ip4A, macB, ip4B).Bytes()[:41], header.Short, header.Parsed{}},
		{"arp not ethernet", mod(eth().ARP(header.ARPReply, macA, ip4A, macB, ip4B).Bytes(), func(b []byte) { b[15] = 6 }), header.BadARP, header.Parsed{}},
	}
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			var p header.Parsed
			v := header.Parse(tc.frame, &p)
			if v != tc.want {
				t.Fatalf("Parse = %v, want %v (parsed %+v)", v, tc.want, p)
			}
			if v != header.OK {
				return
			}
			if d := cmp.Diff(tc.p, p); d != "" {
				t.Errorf("Parsed mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// TestParseTruncated checks that every accepted IP frame cut anywhere before
// the end of its IP packet is rejected, never accepted or panicking.
func TestParseTruncated(t *testing.T) {
	for _, tc := range parseCases() {
		if tc.want != header.OK || tc.p.IPEnd == 0 {
			continue
		}
		for n := 0; n < tc.p.IPEnd; n++ {
			var p header.Parsed
			if v := header.Parse(tc.frame[:n], &p); v == header.OK {
				t.Errorf("%s cut to %d of %d bytes: Parse = OK", tc.name, n, tc.p.IPEnd)
			}
		}
	}
}

func TestVerdictString(t *testing.T) {
	seen := map[string]bool{}
	for v := header.OK; v < header.NumVerdicts; v++ {
		s := v.String()
		if s == "" || s == "unknown" || seen[s] {
			t.Errorf("Verdict(%d).String() = %q: empty, unknown or duplicate", v, s)
		}
		seen[s] = true
	}
	if got := header.NumVerdicts.String(); got != "unknown" {
		t.Errorf("out-of-range verdict String() = %q, want unknown", got)
	}
}

func TestParseAllocs(t *testing.T) {
	for _, tc := range parseCases() {
		var p header.Parsed
		f := tc.frame
		if n := testing.AllocsPerRun(100, func() { header.Parse(f, &p) }); n != 0 {
			t.Errorf("%s: Parse allocates %v times", tc.name, n)
		}
	}
}

func BenchmarkParseUDP4(b *testing.B) {
	f := eth().IPv4(ip4A, ip4B).UDP(1000, 53).Payload(make([]byte, 64)).Bytes()
	benchParse(b, f)
}

func BenchmarkParseTCP4VLAN(b *testing.B) {
	f := eth().VLAN(100).IPv4(ip4A, ip4B).TCP(1000, 80).Flags(header.FlagACK).Payload(make([]byte, 1400)).Bytes()
	benchParse(b, f)
}

func BenchmarkParseTCP6Ext(b *testing.B) {
	f := eth().IPv6(ip6A, ip6B).HopByHop(nil).DstOpts(nil).TCP(1000, 80).Payload(make([]byte, 1400)).Bytes()
	benchParse(b, f)
}

func benchParse(b *testing.B, f []byte) {
	var p header.Parsed
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if header.Parse(f, &p) != header.OK {
			b.Fatal("parse failed")
		}
	}
}
