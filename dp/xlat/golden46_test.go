package xlat_test

import (
	"bytes"
	"net/netip"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

func big(n int) []byte { return bytes.Repeat([]byte{0x5a}, n) }

// TestGolden46 covers RFC 7915 section 4 (IPv4 to IPv6).
func TestGolden46(t *testing.T) {
	udpIn := v4(s4, h4).TTL(64).TOS(0xb8).ID(77).DF().UDP(53, 4000).Payload(data).Bytes()
	tooBig := v4(s4, h4).DF().UDP(53, 4000).Payload(big(1481 - 28)).Bytes()
	zero := v4(s4, h4).UDP(53, 4000).NoUDPChecksum().Payload(data).Bytes()
	zeroFrag := v4(s4, h4).Frag(0, true).UDP(53, 4000).NoUDPChecksum().Payload(data[:24]).Bytes()
	ttl1 := v4(s4, h4).TTL(1).UDP(53, 4000).Payload(data).Bytes()
	lsrr := v4(s4, h4).IPOptions([]byte{131, 7, 4, 0, 0, 0, 0}).UDP(53, 4000).Payload(data).Bytes()
	checkGolden(t, []golden{
		{name: "udp: addresses, TTL-1, TOS to traffic class, flow label 0, DF dropped, no fragment header (4.1)",
			in:   udpIn,
			want: [][]byte{v6(s6, h6).TTL(63).TOS(0xb8).UDP(53, 4000).Payload(data).Bytes()}, o: xlat.Translated46},
		{name: "traffic class reset (4.1)", mod: func(c *xlat.Config) { c.ResetTrafficClass = true }, in: udpIn,
			want: [][]byte{v6(s6, h6).TTL(63).UDP(53, 4000).Payload(data).Bytes()}, o: xlat.Translated46},
		{name: "tcp: options of IPv4 dropped, TCP options kept (4.1)",
			in:   v4(s4, h4).IPOptions([]byte{7, 7, 4, 0, 0, 0, 0}).TCP(80, 40000).Flags(0x12).Seq(9).Ack(10).TCPOptions([]byte{2, 4, 5, 0xb4}).Payload(data).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).TCP(80, 40000).Flags(0x12).Seq(9).Ack(10).TCPOptions([]byte{2, 4, 5, 0xb4}).Payload(data).Bytes()}, o: xlat.Translated46},
		{name: "expired source route translated (4.1)",
			in:   v4(s4, h4).IPOptions([]byte{131, 7, 8, 1, 2, 3, 4}).UDP(53, 4000).Payload(data).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).UDP(53, 4000).Payload(data).Bytes()}, o: xlat.Translated46},
		{name: "unexpired source route: ICMPv4 3/5 (4.1)", in: lsrr,
			want: [][]byte{answer4(s4).ICMPError(3, 5, 0, dptest.IP(lsrr)).Bytes()}, o: xlat.AnswerSourceRoute},
		{name: "echo request 8 -> 128 (4.2)", in: v4(s4, h4).ICMPEcho(9, 1).Payload(data).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).ICMPEcho(9, 1).Payload(data).Bytes()}, o: xlat.Translated46},
		{name: "echo reply 0 -> 129 (4.2)", in: v4(s4, h4).ICMPEchoReply(9, 1).Payload(data).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).ICMPEchoReply(9, 1).Payload(data).Bytes()}, o: xlat.Translated46},
		{name: "timestamp dropped (4.2)", in: v4(s4, h4).ICMP(13, 0, 0).Payload(make([]byte, 12)).Bytes(), o: xlat.DropICMPType},
		{name: "protocol 58 over IPv4 dropped (4.1)", in: v4(s4, h4).Proto(58).Payload(make([]byte, 8)).Bytes(), o: xlat.DropICMPOtherFamily},
		{name: "unknown protocol copied (4.1)", in: v4(s4, h4).Proto(33).Payload(data).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).Proto(33).Payload(data).Bytes()}, o: xlat.Translated46},
		{name: "first fragment: fragment header with the IPv4 ID, M set (4.1)",
			in:   v4(s4, h4).ID(0x1234).Frag(0, true).UDP(53, 4000).Payload(data[:32]).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).Fragment(0, true, 0x1234).UDP(53, 4000).Payload(data[:32]).Bytes()}, o: xlat.Translated46},
		{name: "non-first fragment: offset and ID copied (4.1)",
			in:   v4(s4, h4).ID(0x1234).Frag(5, false).Proto(17).Payload(data).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).Fragment(5, false, 0x1234).Proto(17).Payload(data).Bytes()}, o: xlat.Translated46},
		{name: "DF set, too big for the IPv6 side: Fragmentation Needed with the IPv6 MTU - 20 (4, 6)", in: tooBig,
			want: [][]byte{answer4(s4).ICMPError(3, 4, 1480, dptest.IP(tooBig)[:548]).Bytes()}, o: xlat.AnswerFragNeeded},
		{name: "DF set, above the lowest IPv6 MTU but within the MTU: not fragmented (4)",
			in:   v4(s4, h4).DF().UDP(53, 4000).Payload(big(1400)).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).UDP(53, 4000).Payload(big(1400)).Bytes()}, o: xlat.Translated46},
		{name: "UDP without checksum refused: ICMPv4 3/13 (4.5)", in: zero,
			want: [][]byte{answer4(s4).ICMPError(3, 13, 0, dptest.IP(zero)).Bytes()}, o: xlat.AnswerUDPZeroChecksum},
		{name: "UDP without checksum amended (4.5)", mod: func(c *xlat.Config) { c.AmendUDPZeroChecksum = true }, in: zero,
			want: [][]byte{v6(s6, h6).TTL(63).UDP(53, 4000).Payload(data).Bytes()}, o: xlat.Translated46},
		{name: "UDP fragment without checksum refused even when amending (4.5)", mod: func(c *xlat.Config) { c.AmendUDPZeroChecksum = true }, in: zeroFrag,
			want: [][]byte{answer4(s4).ICMPError(3, 13, 0, dptest.IP(zeroFrag)).Bytes()}, o: xlat.AnswerUDPZeroChecksum},
		{name: "TTL 1: ICMPv4 time exceeded (4.1)", in: ttl1,
			want: [][]byte{answer4(s4).ICMPError(11, 0, 0, dptest.IP(ttl1)).Bytes()}, o: xlat.AnswerTimeExceeded},
		{name: "802.1Q tag kept, inner EtherType IPv6",
			in:   dptest.Frame().Eth(macA, macB).VLAN(7).IPv4(s4, h4).UDP(53, 4000).Payload(data).Bytes(),
			want: [][]byte{dptest.Frame().Eth(macA, macB).VLAN(7).IPv6(s6, h6).TTL(63).UDP(53, 4000).Payload(data).Bytes()}, o: xlat.Translated46},
		{name: "destination without mapping dropped", mod: func(c *xlat.Config) { c.Pool6 = netipPrefixZero }, in: udpIn, o: xlat.DropNoMapping},
	})
}

// TestFragment46 checks the IPv4 packets (DF clear) bigger than the lowest
// IPv6 MTU: fragments of at most that size, 8-byte aligned, with the
// IPv4 ID, which reassemble to the unfragmented translation (RFC 7915
// section 4 and 4.1).
func TestFragment46(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lowest int
		in     []byte
		n      int
	}{
		{"3000 bytes at 1280", 1280, v4(s4, h4).ID(0x4242).UDP(53, 4000).Payload(big(3000)).Bytes(), 3},
		{"1500 bytes at 1402: first fragment 1400", 1402, v4(s4, h4).ID(7).TCP(80, 1).Payload(big(1460)).Bytes(), 2},
		{"UDP without checksum amended, then split: the checksum covers the whole datagram", 1280,
			v4(s4, h4).ID(11).UDP(53, 4000).NoUDPChecksum().Payload(big(2000)).Bytes(), 2},
		{"a fragment re-fragmented keeps its offset and MF", 1280, v4(s4, h4).ID(9).Frag(100, true).Proto(17).Payload(big(1472)).Bytes(), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newT(t, func(c *xlat.Config) { c.LowestIPv6MTU, c.AmendUDPZeroChecksum = tc.lowest, true })
			o, got := run(t, tr, tc.in)
			if o != xlat.Fragmented46 || len(got) != tc.n {
				t.Fatalf("outcome %v, %d packets; want %v, %d", o, len(got), xlat.Fragmented46, tc.n)
			}
			whole := newT(t, func(c *xlat.Config) { c.LowestIPv6MTU, c.IPv6MTU, c.AmendUDPZeroChecksum = 65535, 65535, true })
			_, one := run(t, whole, tc.in)
			var p0 header.Parsed
			header.Parse(one[0], &p0)
			// Data of the whole translation after its (fragment) header.
			ref := one[0][p0.L3Off+header.IPv6Len:]
			if p0.FragOff != 0 {
				ref = one[0][p0.FragOff+8:]
			}
			var v4p header.Parsed
			header.Parse(tc.in, &v4p)
			in4 := header.IPv4(tc.in[v4p.L3Off:])
			base := int(in4.FragOffset()) * 8
			var re []byte
			for i, f := range got {
				var p header.Parsed
				if v := header.Parse(f, &p); v != header.OK || p.FragOff == 0 {
					t.Fatalf("fragment %d: %v, fragment header at %d", i, v, p.FragOff)
				}
				if len(f)-p.L3Off > tc.lowest {
					t.Errorf("fragment %d is %d bytes, over %d", i, len(f)-p.L3Off, tc.lowest)
				}
				fh := header.IPv6Fragment(f[p.FragOff:])
				if fh.ID() != uint32(in4.ID()) {
					t.Errorf("fragment %d: ID %#x, want %#x", i, fh.ID(), in4.ID())
				}
				if int(fh.FragOffset())*8 != base+len(re) {
					t.Errorf("fragment %d: offset %d, want %d", i, int(fh.FragOffset())*8, base+len(re))
				}
				last := i == len(got)-1
				if fh.More() != (!last || in4.FlagsFragOffset()&header.IPv4FlagMF != 0) {
					t.Errorf("fragment %d: M %v", i, fh.More())
				}
				payload := f[p.FragOff+8:]
				if !last && len(payload)%8 != 0 {
					t.Errorf("fragment %d carries %d bytes, not a multiple of 8", i, len(payload))
				}
				re = append(re, payload...)
			}
			if !bytes.Equal(re, ref) {
				t.Errorf("fragments reassemble to %d bytes that differ from the whole translation (%d bytes)", len(re), len(ref))
			}
			if err := dptest.VerifyChecksums(one[0]); err != nil {
				t.Errorf("the whole translation: %v", err)
			}
		})
	}
}

// TestICMPError46 covers RFC 7915 sections 4.2 and 4.3: ICMPv4 errors
// become ICMPv6 errors; the quoted packet is translated, keeps its TTL,
// and its transport checksum is adjusted.
func TestICMPError46(t *testing.T) {
	// h4 sent to s4; the error comes back from the server or a router.
	quoteUDP := dptest.IP(v4(h4, s4).TTL(17).ID(3).UDP(4000, 53).Payload(data).Bytes())
	want6UDP := dptest.IP(v6(h6, s6).TTL(17).UDP(4000, 53).Payload(data).Bytes())
	quoteEcho := dptest.IP(v4(h4, s4).TTL(5).ICMPEcho(7, 2).Payload(data).Bytes())
	want6Echo := dptest.IP(v6(h6, s6).TTL(5).ICMPEcho(7, 2).Payload(data).Bytes())
	quoteTCP := dptest.IP(v4(h4, s4).TTL(9).TCP(40000, 80).Flags(0x02).Seq(1).Bytes())[:28]
	want6TCP := dptest.IP(v6(h6, s6).TTL(9).TCP(40000, 80).Flags(0x02).Seq(1).Bytes())
	// The cut quote's IPv6 payload length still says 20 (the TCP header).
	want6TCP = want6TCP[:48]
	bigQuote := dptest.IP(v4(h4, s4).TTL(17).UDP(4000, 53).Payload(big(1400)).Bytes())
	bigWant := dptest.IP(v6(h6, s6).TTL(17).UDP(4000, 53).Payload(big(1400)).Bytes())[:1280-48]
	fn := func(mtu uint32, q []byte) []byte { return v4(r4, h4).ICMPError(3, 4, mtu, q).Bytes() }
	ptb := func(mtu uint32, q []byte) []byte { return v6(r6, h6).TTL(63).ICMPError(2, 0, mtu, q).Bytes() }
	// A router's Fragmentation Needed with MTU 0 (RFC 1191 section 5)
	// quoting a 1500-byte packet: the plateau below 1500 is 1492.
	quote1500 := dptest.IP(v4(h4, s4).TTL(17).DF().UDP(4000, 53).Payload(big(1472)).Bytes())
	want1500 := dptest.IP(v6(h6, s6).TTL(17).UDP(4000, 53).Payload(big(1472)).Bytes())[:1280-48]
	checkGolden(t, []golden{
		{name: "port unreachable 3/3 -> 1/4, quote translated, its TTL kept",
			in:   v4(s4, h4).ICMPError(3, 3, 0, quoteUDP).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).ICMPError(1, 4, 0, want6UDP).Bytes()}, o: xlat.Translated46},
		{name: "host unreachable 3/1 -> 1/0, quoting an echo request 8 -> 128",
			in:   v4(r4, h4).ICMPError(3, 1, 0, quoteEcho).Bytes(),
			want: [][]byte{v6(r6, h6).TTL(63).ICMPError(1, 0, 0, want6Echo).Bytes()}, o: xlat.Translated46},
		{name: "time exceeded 11/0 -> 3/0, quote cut to 8 bytes of TCP",
			in:   v4(r4, h4).ICMPError(11, 0, 0, quoteTCP).Bytes(),
			want: [][]byte{v6(r6, h6).TTL(63).ICMPError(3, 0, 0, want6TCP).Bytes()}, o: xlat.Translated46},
		{name: "protocol unreachable 3/2 -> parameter problem 4/1 pointer 6",
			in:   v4(s4, h4).ICMPError(3, 2, 0, quoteUDP).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).ICMPError(4, 1, 6, want6UDP).Bytes()}, o: xlat.Translated46},
		{name: "admin prohibited 3/13 -> 1/1", in: v4(s4, h4).ICMPError(3, 13, 0, quoteUDP).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).ICMPError(1, 1, 0, want6UDP).Bytes()}, o: xlat.Translated46},
		{name: "parameter problem pointer 9 (protocol) -> 4/0 pointer 6",
			in:   v4(r4, h4).ICMPError(12, 0, 9<<24, quoteUDP).Bytes(),
			want: [][]byte{v6(r6, h6).TTL(63).ICMPError(4, 0, 6, want6UDP).Bytes()}, o: xlat.Translated46},
		{name: "parameter problem pointer 16 (destination) -> 4/0 pointer 24",
			in:   v4(r4, h4).ICMPError(12, 0, 16<<24, quoteUDP).Bytes(),
			want: [][]byte{v6(r6, h6).TTL(63).ICMPError(4, 0, 24, want6UDP).Bytes()}, o: xlat.Translated46},
		{name: "parameter problem pointer 10 (checksum) has no IPv6 field: dropped",
			in: v4(r4, h4).ICMPError(12, 0, 10<<24, quoteUDP).Bytes(), o: xlat.DropICMPType},
		{name: "frag needed 1400 -> packet too big 1420", in: fn(1400, quoteUDP), want: [][]byte{ptb(1420, want6UDP)}, o: xlat.Translated46},
		{name: "frag needed 1261 -> packet too big 1281", in: fn(1261, quoteUDP), want: [][]byte{ptb(1281, want6UDP)}, o: xlat.Translated46},
		{name: "frag needed 1000 -> packet too big 1280 (the IPv6 floor)", in: fn(1000, quoteUDP), want: [][]byte{ptb(1280, want6UDP)}, o: xlat.Translated46},
		{name: "frag needed 1500 -> 1500, not above the IPv6 side's MTU", in: fn(1500, quoteUDP), want: [][]byte{ptb(1500, want6UDP)}, o: xlat.Translated46},
		{name: "frag needed 0 -> RFC 1191 plateau below the quoted 1500 bytes, 1492, + 20",
			mod: func(c *xlat.Config) { c.IPv4MTU, c.IPv6MTU = 9000, 9000 }, in: fn(0, quote1500), want: [][]byte{ptb(1512, want1500)}, o: xlat.Translated46},
		{name: "error cut to 1280 bytes", in: v4(s4, h4).ICMPError(3, 3, 0, bigQuote).Bytes(),
			want: [][]byte{v6(s6, h6).TTL(63).ICMPError(1, 4, 0, bigWant).Bytes()}, o: xlat.Translated46},
		{name: "frag needed with an RFC 4884 extension: packet too big has no length field, the extension is left out",
			in:   v4(r4, h4).ICMPError(3, 4, 32<<16|1400, append(pad(quoteUDP, 128), ext4884...)).Bytes(),
			want: [][]byte{ptb(1420, pad(want6UDP, 148))}, o: xlat.Translated46},
		{name: "time exceeded with an unpadded RFC 4884 extension: the 128-byte datagram part grows to 148, cut to 144 (8-byte words), then the extension",
			in:   v4(r4, h4).ICMPError(11, 0, 32<<16, append(pad(quoteUDP, 128), ext4884...)).Bytes(),
			want: [][]byte{v6(r6, h6).TTL(63).ICMPError(3, 0, 144/8<<24, append(pad(want6UDP, 144), ext4884...)).Bytes()}, o: xlat.Translated46},
		{name: "redirect dropped", in: v4(r4, h4).ICMPError(5, 1, 0, quoteUDP).Bytes(), o: xlat.DropICMPType},
		{name: "source quench dropped", in: v4(r4, h4).ICMPError(4, 0, 0, quoteUDP).Bytes(), o: xlat.DropICMPType},
		{name: "error quoting garbage dropped", in: v4(r4, h4).ICMPError(3, 1, 0, []byte{0x45, 0, 0}).Bytes(), o: xlat.DropMalformed},
		{name: "untranslatable error source: the RFC 6791 pool (RFC 6791 section 3)",
			mod: func(c *xlat.Config) {
				c.Pool6 = netipPrefixZero
				c.RFC6791v6 = netipPrefix("2001:db8:6791::1/128")
				c.EAM = append(c.EAM, eamServer)
			},
			in: v4(r4, h4).ICMPError(3, 1, 0, quoteUDP).Bytes(),
			want: [][]byte{v6(a("2001:db8:6791::1"), h6).TTL(63).ICMPError(1, 0, 0,
				dptest.IP(v6(h6, a("2001:db8:5::7")).TTL(17).UDP(4000, 53).Payload(data).Bytes())).Bytes()}, o: xlat.Translated46},
		{name: "untranslatable error source, empty pool: the translator's own address",
			mod: func(c *xlat.Config) { c.Pool6 = netipPrefixZero; c.EAM = append(c.EAM, eamServer) },
			in:  v4(r4, h4).ICMPError(3, 1, 0, quoteUDP).Bytes(),
			want: [][]byte{v6(own6, h6).TTL(63).ICMPError(1, 0, 0,
				dptest.IP(v6(h6, a("2001:db8:5::7")).TTL(17).UDP(4000, 53).Payload(data).Bytes())).Bytes()}, o: xlat.Translated46},
		{name: "an error with TTL 1 is not answered", in: v4(r4, h4).TTL(1).ICMPError(3, 1, 0, quoteUDP).Bytes(), o: xlat.DropErrorNoAnswer},
	})
}

// eamServer maps the IPv4 server network for configurations without Pool6.
var eamServer = xlat.EAM{IPv6: netipPrefix("2001:db8:5::/120"), IPv4: netipPrefix("203.0.113.0/24")}

var _ = header.OK

var netipPrefixZero netip.Prefix

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// ext4884 is an RFC 4884 extension structure (version 2, checksum 0, one
// 8-byte object), opaque to the translator; it is left unpadded (odd
// length) as senders may.
var ext4884 = []byte{0x20, 0, 0, 0, 0, 8, 1, 1, 1, 2, 3, 4, 5}

// pad cuts or zero-pads b to n bytes.
func pad(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}
