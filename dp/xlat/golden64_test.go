package xlat_test

import (
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

// TestGolden64 covers RFC 7915 section 5 (IPv6 to IPv4).
func TestGolden64(t *testing.T) {
	udp := v6(h6, s6).TTL(64).TOS(0x10).UDP(4000, 53).Payload(data).Bytes()
	hop1 := v6(h6, s6).TTL(1).UDP(4000, 53).Payload(data).Bytes()
	rh := v6(h6, s6).Routing(0, 1, make([]byte, 20)).UDP(4000, 53).Payload(data).Bytes()
	afterFrag := v6(h6, s6).Fragment(0, true, 5).DstOpts([]byte{1, 0}).UDP(4000, 53).Payload(data).Bytes()
	tooBig := v6(h6, s6).UDP(4000, 53).Payload(big(1400 - 28 + 1)).Bytes()
	checkGolden(t, []golden{
		{name: "udp: addresses, hop limit-1, traffic class to TOS, DF clear at 1260 bytes or less, ID generated (5.1)", in: udp,
			want: [][]byte{v4(h4, s4).TTL(63).TOS(0x10).UDP(4000, 53).Payload(data).Bytes()}, o: xlat.Translated64, idFromGot: true},
		{name: "TOS reset (5.1)", mod: func(c *xlat.Config) { c.ResetTOS, c.NewTOS = true, 0x20 }, in: udp,
			want: [][]byte{v4(h4, s4).TTL(63).TOS(0x20).UDP(4000, 53).Payload(data).Bytes()}, o: xlat.Translated64, idFromGot: true},
		{name: "1261 bytes: DF set, ID 0 (5.1)", in: v6(h6, s6).TCP(1, 2).Payload(big(1261 - 40)).Bytes(),
			want: [][]byte{v4(h4, s4).TTL(63).DF().TCP(1, 2).Payload(big(1261 - 40)).Bytes()}, o: xlat.Translated64},
		{name: "first fragment: ID's low 16 bits, MF, DF clear, no fragment header (5.1)",
			in:   v6(h6, s6).Fragment(0, true, 0x87654321).UDP(4000, 53).Payload(data[:32]).Bytes(),
			want: [][]byte{v4(h4, s4).TTL(63).ID(0x4321).Frag(0, true).UDP(4000, 53).Payload(data[:32]).Bytes()}, o: xlat.Translated64},
		{name: "non-first fragment: offset copied (5.1)",
			in:   v6(h6, s6).Fragment(300, false, 0x87654321).Proto(17).Payload(data).Bytes(),
			want: [][]byte{v4(h4, s4).TTL(63).ID(0x4321).Frag(300, false).Proto(17).Payload(data).Bytes()}, o: xlat.Translated64},
		{name: "atomic fragment: ID copied, nothing else (5.1)",
			in:   v6(h6, s6).Fragment(0, false, 0x1234).ICMPEcho(3, 4).Payload(data).Bytes(),
			want: [][]byte{v4(h4, s4).TTL(63).ID(0x1234).ICMPEcho(3, 4).Payload(data).Bytes()}, o: xlat.Translated64},
		{name: "hop-by-hop, destination options and a spent routing header skipped (5.1)",
			in:   v6(h6, s6).HopByHop([]byte{1, 0}).DstOpts([]byte{1, 2, 0, 0}).Routing(0, 0, make([]byte, 20)).UDP(4000, 53).Payload(data).Bytes(),
			want: [][]byte{v4(h4, s4).TTL(63).UDP(4000, 53).Payload(data).Bytes()}, o: xlat.Translated64, idFromGot: true},
		{name: "routing header with segments left: parameter problem pointing at it (5.1)", in: rh,
			want: [][]byte{answer6(h6).ICMPError(4, 0, 43, dptest.IP(rh)).Bytes()}, o: xlat.AnswerRoutingHeader},
		{name: "extension header after the fragment header: ICMPv6 1/1", in: afterFrag,
			want: [][]byte{answer6(h6).ICMPError(1, 1, 0, dptest.IP(afterFrag)).Bytes()}, o: xlat.AnswerExtAfterFrag},
		{name: "hop limit 1: time exceeded 3/0", in: hop1,
			want: [][]byte{answer6(h6).ICMPError(3, 0, 0, dptest.IP(hop1)).Bytes()}, o: xlat.AnswerTimeExceeded},
		{name: "too big for the IPv4 side: packet too big with its MTU + 20 (5.1)", mod: func(c *xlat.Config) { c.IPv4MTU = 1400 }, in: tooBig,
			want: [][]byte{answer6(h6).ICMPError(2, 0, 1420, dptest.IP(tooBig)[:1232]).Bytes()}, o: xlat.AnswerPacketTooBig},
		{name: "too big for a small IPv4 MTU but within 1280: dropped (no IPv4 fragmentation)", mod: func(c *xlat.Config) { c.IPv4MTU = 576 },
			in: v6(h6, s6).UDP(4000, 53).Payload(big(1000)).Bytes(), o: xlat.DropTooBig},
		{name: "echo request 128 -> 8 (5.2)", in: v6(h6, s6).ICMPEcho(9, 1).Payload(data).Bytes(),
			want: [][]byte{v4(h4, s4).TTL(63).ICMPEcho(9, 1).Payload(data).Bytes()}, o: xlat.Translated64, idFromGot: true},
		{name: "echo reply 129 -> 0 (5.2)", in: v6(h6, s6).ICMPEchoReply(9, 1).Payload(data).Bytes(),
			want: [][]byte{v4(h4, s4).TTL(63).ICMPEchoReply(9, 1).Payload(data).Bytes()}, o: xlat.Translated64, idFromGot: true},
		{name: "neighbor solicitation dropped (5.2)", in: v6(h6, s6).ICMP(135, 0, 0).Payload(make([]byte, 16)).Bytes(), o: xlat.DropICMPType},
		{name: "MLD query dropped (5.2)", in: v6(h6, s6).ICMP(130, 0, 0).Payload(make([]byte, 16)).Bytes(), o: xlat.DropICMPType},
		{name: "protocol 1 over IPv6 dropped (5.1)", in: v6(h6, s6).Proto(1).Payload(make([]byte, 8)).Bytes(), o: xlat.DropICMPOtherFamily},
		{name: "fragmented echo dropped", in: v6(h6, s6).Fragment(0, true, 1).ICMPEcho(1, 1).Payload(data[:16]).Bytes(), o: xlat.DropFragmentedICMP},
		{name: "no next header (59) copied (5.1)", in: v6(h6, s6).Bytes(),
			want: [][]byte{v4(h4, s4).TTL(63).Proto(59).Bytes()}, o: xlat.Translated64, idFromGot: true},
		{name: "802.1Q tag kept on an answer, MACs swapped",
			in:   dptest.Frame().Eth(macA, macB).VLAN(9).IPv6(h6, s6).TTL(1).UDP(1, 2).Bytes(),
			want: [][]byte{dptest.Frame().Eth(macB, macA).VLAN(9).IPv6(own6, h6).TTL(64).ICMPError(3, 0, 0, dptest.IP(v6(h6, s6).TTL(1).UDP(1, 2).Bytes())).Bytes()}, o: xlat.AnswerTimeExceeded},
		{name: "source without mapping dropped", in: v6(a("2001:db8:99::1"), s6).UDP(1, 2).Bytes(), o: xlat.DropNoMapping},
		{name: "hairpin: an EAM IPv4 destination goes back to IPv6, its source through Pool6 (RFC 7757 B.1)",
			in:   v6(h6, a("64:ff9b::c000:206")).TTL(30).UDP(1, 2).Payload(data).Bytes(),
			want: [][]byte{v6(a("64:ff9b::c000:205"), a("2001:db8:1::6")).TTL(29).UDP(1, 2).Payload(data).Bytes()}, o: xlat.Hairpinned},
		{name: "hairpin too big for the IPv6 side: packet too big to the sender", mod: func(c *xlat.Config) { c.IPv6MTU = 1280 }, in: hairpinBig,
			want: [][]byte{answer6(h6).ICMPError(2, 0, 1280, dptest.IP(hairpinBig)[:1232]).Bytes()}, o: xlat.AnswerPacketTooBig},
		{name: "hairpin too big for the IPv4 side on the way: packet too big to the sender", mod: func(c *xlat.Config) { c.IPv4MTU = 1300 }, in: hairpinBig,
			want: [][]byte{answer6(h6).ICMPError(2, 0, 1320, dptest.IP(hairpinBig)[:1232]).Bytes()}, o: xlat.AnswerPacketTooBig},
		{name: "UDP checksum 0 over IPv6 dropped (RFC 8200 8.1)", in: v6(h6, s6).UDP(1, 2).L4Checksum(0).Bytes(), o: xlat.DropUDPZeroChecksum6},
		{name: "atomic fragment whose UDP length runs past it dropped", in: v6(h6, s6).Fragment(0, false, 1).UDP(1, 2).UDPLength(200).Payload(data).Bytes(), o: xlat.DropMalformed},
	})
}

// TestGoldenDrops46 covers the IPv4 drops without an RFC 7915 rule of
// their own.
func TestGoldenDrops46(t *testing.T) {
	checkGolden(t, []golden{
		{name: "protocol 44 over IPv4 (an IPv6 extension header number) dropped", in: v4(s4, h4).Proto(44).Payload(make([]byte, 16)).Bytes(), o: xlat.DropProtocol},
		{name: "protocol 0 over IPv4 dropped", in: v4(s4, h4).Proto(0).Payload(make([]byte, 16)).Bytes(), o: xlat.DropProtocol},
		{name: "fragmented ICMP dropped", in: v4(s4, h4).Frag(0, true).ICMPEcho(1, 1).Payload(data[:16]).Bytes(), o: xlat.DropFragmentedICMP},
	})
}

// TestNoRoom: an out buffer too small is a counted drop, never a panic.
func TestNoRoom(t *testing.T) {
	tr := newT(t, nil)
	for name, f := range hotShapes() {
		var d header.Decoded
		header.Decode(f, &d)
		var r xlat.Result
		for _, n := range []int{0, 20, 60} {
			if o := tr.Translate(f, &d, make([]byte, n), &r); o != xlat.DropNoRoom || r.N != 0 {
				t.Errorf("%s into %d bytes: %v, %d packets", name, n, o, r.N)
			}
		}
	}
	if tr.Counters[xlat.DropNoRoom] == 0 {
		t.Error("not counted")
	}
}

var hairpinBig = v6(h6, a("64:ff9b::c000:206")).UDP(1, 2).Payload(big(1400)).Bytes()

// TestICMPError64 covers RFC 7915 sections 5.2 and 5.3.
func TestICMPError64(t *testing.T) {
	// s6 sent to h6 through the translator; h6 (or a router) answers.
	quote := dptest.IP(v6(s6, h6).TTL(17).UDP(53, 4000).Payload(data).Bytes())
	want := dptest.IP(v4(s4, h4).TTL(17).UDP(53, 4000).Payload(data).Bytes())
	quoteEcho := dptest.IP(v6(s6, h6).TTL(5).ICMPEchoReply(7, 2).Payload(data).Bytes())
	wantEcho := dptest.IP(v4(s4, h4).TTL(5).ICMPEchoReply(7, 2).Payload(data).Bytes())
	quoteBig := dptest.IP(v6(s6, h6).TTL(17).TCP(53, 4000).Payload(big(1400)).Bytes())
	wantBig := dptest.IP(v4(s4, h4).TTL(17).DF().TCP(53, 4000).Payload(big(1400)).Bytes())[:576-28]
	quoteFrag := dptest.IP(v6(s6, h6).TTL(17).Fragment(0, true, 0xabcd1234).UDP(53, 4000).Payload(data[:16]).Bytes())
	wantFrag := dptest.IP(v4(s4, h4).TTL(17).ID(0x1234).Frag(0, true).UDP(53, 4000).Payload(data[:16]).Bytes())
	router := a("2001:db8:ffff:9::1")
	err := func(typ, code uint8, rest uint32, q []byte) []byte {
		return v6(h6, s6).ICMPError(typ, code, rest, q).Bytes()
	}
	out := func(typ, code uint8, rest uint32, q []byte) []byte {
		return v4(h4, s4).TTL(63).ICMPError(typ, code, rest, q).Bytes()
	}
	checkGolden(t, []golden{
		{name: "port unreachable 1/4 -> 3/3, quote translated, its hop limit kept", in: err(1, 4, 0, quote),
			want: [][]byte{out(3, 3, 0, want)}, o: xlat.Translated64, idFromGot: true},
		{name: "no route 1/0 -> 3/1, quoting an echo reply 129 -> 0", in: err(1, 0, 0, quoteEcho),
			want: [][]byte{out(3, 1, 0, wantEcho)}, o: xlat.Translated64, idFromGot: true},
		{name: "admin prohibited 1/1 -> 3/10", in: err(1, 1, 0, quote), want: [][]byte{out(3, 10, 0, want)}, o: xlat.Translated64, idFromGot: true},
		{name: "address unreachable 1/3 -> 3/1", in: err(1, 3, 0, quote), want: [][]byte{out(3, 1, 0, want)}, o: xlat.Translated64, idFromGot: true},
		{name: "time exceeded 3/1 -> 11/1", in: err(3, 1, 0, quote), want: [][]byte{out(11, 1, 0, want)}, o: xlat.Translated64, idFromGot: true},
		{name: "packet too big 1400 -> frag needed 1380", in: err(2, 0, 1400, quote), want: [][]byte{out(3, 4, 1380, want)}, o: xlat.Translated64, idFromGot: true},
		{name: "packet too big 1280 -> frag needed 1260", in: err(2, 0, 1280, quote), want: [][]byte{out(3, 4, 1260, want)}, o: xlat.Translated64, idFromGot: true},
		{name: "packet too big 9000 -> frag needed within the IPv4 MTU", in: err(2, 0, 9000, quote), want: [][]byte{out(3, 4, 1480, want)}, o: xlat.Translated64, idFromGot: true},
		{name: "parameter problem pointer 7 (hop limit) -> 12/0 pointer 8", in: err(4, 0, 7, quote),
			want: [][]byte{out(12, 0, 8<<24, want)}, o: xlat.Translated64, idFromGot: true},
		{name: "parameter problem pointer 24 -> 12/0 pointer 16", in: err(4, 0, 24, quote),
			want: [][]byte{out(12, 0, 16<<24, want)}, o: xlat.Translated64, idFromGot: true},
		{name: "parameter problem 4/1 (next header) -> protocol unreachable 3/2", in: err(4, 1, 0, quote),
			want: [][]byte{out(3, 2, 0, want)}, o: xlat.Translated64, idFromGot: true},
		{name: "destination unreachable with an RFC 4884 extension: 128 bytes of datagram become 108, padded to 128, lengths in 4-byte words",
			in:   err(1, 4, 16<<24, append(pad(quote, 128), ext4884...)),
			want: [][]byte{out(3, 3, 32<<16, append(pad(want, 128), ext4884...))}, o: xlat.Translated64, idFromGot: true},
		{name: "parameter problem pointer 2 (flow label) dropped", in: err(4, 0, 2, quote), o: xlat.DropICMPType},
		{name: "parameter problem 4/2 dropped", in: err(4, 2, 0, quote), o: xlat.DropICMPType},
		{name: "quoted fragment: ID, MF copied into the quoted IPv4 header", in: err(1, 4, 0, quoteFrag),
			want: [][]byte{out(3, 3, 0, wantFrag)}, o: xlat.Translated64, idFromGot: true},
		{name: "error cut to 576 bytes; the quoted 1420-byte packet gets DF", in: err(1, 4, 0, quoteBig),
			want: [][]byte{out(3, 3, 0, wantBig)}, o: xlat.Translated64, idFromGot: true},
		{name: "untranslatable error source: the RFC 6791 pool (RFC 6791 section 3)",
			mod:  func(c *xlat.Config) { c.RFC6791v4 = netipPrefix("203.0.113.99/32") },
			in:   v6(router, s6).ICMPError(3, 0, 0, quote).Bytes(),
			want: [][]byte{v4(a("203.0.113.99"), s4).TTL(63).ICMPError(11, 0, 0, want).Bytes()}, o: xlat.Translated64, idFromGot: true},
		{name: "untranslatable error source, empty pool: the translator's own address",
			in:   v6(router, s6).ICMPError(3, 0, 0, quote).Bytes(),
			want: [][]byte{v4(own4, s4).TTL(63).ICMPError(11, 0, 0, want).Bytes()}, o: xlat.Translated64, idFromGot: true},
		{name: "untranslatable source of a non-error dropped", in: v6(router, s6).UDP(1, 2).Bytes(), o: xlat.DropNoMapping},
	})
}
