package rewrite_test

import (
	"bytes"
	"net/netip"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/rewrite"
)

var (
	macA = dptest.MAC("02:00:00:00:00:01")
	macB = dptest.MAC("02:00:00:00:00:02")
)

func a(s string) netip.Addr    { return netip.MustParseAddr(s) }
func m(s string) header.Addr16 { return header.Addr16From(a(s)) }

func decode(t *testing.T, f []byte) *header.Decoded {
	t.Helper()
	var d header.Decoded
	if v := header.Decode(f, &d); v != header.OK {
		t.Fatalf("decode: %v", v)
	}
	return &d
}

// TestRewrite translates packets of every kind and compares each with the
// same packet built from scratch with the new addresses and ports, which
// checks every incrementally updated checksum against a full computation.
func TestRewrite(t *testing.T) {
	type build func(src, dst netip.Addr, sport, dport uint16) []byte
	eth := func() *dptest.Builder { return dptest.Frame().Eth(macA, macB) }
	v4 := func(src, dst netip.Addr) *dptest.Builder { return eth().IPv4(src, dst).TTL(61).ID(777) }
	v6 := func(src, dst netip.Addr) *dptest.Builder { return eth().IPv6(src, dst) }
	for _, tc := range []struct {
		name       string
		b          build
		from, to   [4]string // src, dst, then the new src, dst
		ports      [4]uint16
		echoReply  bool
		echoDirect bool
	}{
		{name: "v4 udp", b: func(s, d netip.Addr, sp, dp uint16) []byte {
			return v4(s, d).UDP(sp, dp).Payload([]byte("hello")).Bytes()
		},
			from: [4]string{"10.101.0.5", "10.200.0.1", "10.9.0.1", "10.50.0.11"}, ports: [4]uint16{40000, 53, 1024, 5353}},
		{name: "v4 tcp with options", b: func(s, d netip.Addr, sp, dp uint16) []byte {
			return v4(s, d).IPOptions([]byte{1, 1, 1, 0}).TCP(sp, dp).Flags(0x18).Seq(99).Ack(7).TCPOptions([]byte{1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8}).Payload(bytes.Repeat([]byte("x"), 333)).Bytes()
		}, from: [4]string{"10.101.0.5", "10.200.0.1", "10.9.0.1", "10.50.0.11"}, ports: [4]uint16{40000, 80, 65535, 8080}},
		{name: "v6 udp", b: func(s, d netip.Addr, sp, dp uint16) []byte { return v6(s, d).UDP(sp, dp).Payload([]byte("q")).Bytes() },
			from: [4]string{"fd00:101::5", "fd00:200::1", "fd00:9::1", "fd00:50::11"}, ports: [4]uint16{1, 2, 3, 4}},
		{name: "v6 tcp", b: func(s, d netip.Addr, sp, dp uint16) []byte { return v6(s, d).TCP(sp, dp).Flags(0x02).Bytes() },
			from: [4]string{"fd00:101::5", "fd00:200::1", "fd00:9::1", "fd00:50::11"}, ports: [4]uint16{50000, 443, 1025, 443}},
		{name: "v4 echo request", b: func(s, d netip.Addr, sp, dp uint16) []byte {
			return v4(s, d).ICMPEcho(sp, 9).Payload([]byte("ping")).Bytes()
		},
			from: [4]string{"10.101.0.5", "10.200.0.1", "10.9.0.1", "10.50.0.11"}, ports: [4]uint16{4321, 0, 2000, 0}},
		{name: "v6 echo reply", b: func(s, d netip.Addr, sp, dp uint16) []byte { return v6(s, d).ICMPEchoReply(dp, 9).Bytes() },
			from: [4]string{"fd00:50::11", "fd00:9::1", "fd00:200::1", "fd00:101::5"}, ports: [4]uint16{0, 2000, 0, 4321}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.b(a(tc.from[0]), a(tc.from[1]), tc.ports[0], tc.ports[1])
			want := tc.b(a(tc.from[2]), a(tc.from[3]), tc.ports[2], tc.ports[3])
			d := decode(t, in)
			if got := d.Tuple; d.Kind != header.KindFlow || got.SPort != tc.ports[0] || got.DPort != tc.ports[1] || got.Src != m(tc.from[0]) {
				t.Fatalf("Decode = %v %+v", d.Kind, got)
			}
			nt := header.Tuple{Src: m(tc.from[2]), Dst: m(tc.from[3]), SPort: tc.ports[2], DPort: tc.ports[3]}
			if !rewrite.Flow(in, d, &nt) {
				t.Fatal("Flow refused")
			}
			if !bytes.Equal(in, want) {
				t.Errorf("rewritten packet differs from a fresh build: %s", dptest.Diff(want, in))
			}
			// The decoded tuple follows the rewrite: it is what a second
			// Decode reads.
			if again := decode(t, in); again.Tuple != d.Tuple {
				t.Errorf("tuple after Flow %+v, decoded again %+v", d.Tuple, again.Tuple)
			}
		})
	}
}

func TestRewriteUDPZeroChecksum(t *testing.T) {
	b := func(s, d netip.Addr) []byte {
		return dptest.Frame().Eth(macA, macB).IPv4(s, d).UDP(1, 2).NoUDPChecksum().Payload([]byte("z")).Bytes()
	}
	in := b(a("10.0.0.1"), a("10.0.0.2"))
	d := decode(t, in)
	nt := header.Tuple{Src: m("10.0.0.3"), Dst: m("10.0.0.4"), SPort: 5, DPort: 6}
	if !rewrite.Flow(in, d, &nt) {
		t.Fatal("Flow refused")
	}
	u := d.UDP(in)
	if u.Checksum() != 0 || u.SrcPort() != 5 || u.DstPort() != 6 {
		t.Errorf("udp without checksum: csum %#x ports %d %d", u.Checksum(), u.SrcPort(), u.DstPort())
	}
	if err := dptest.VerifyChecksums(in); err != nil {
		t.Error(err)
	}
}

func TestRewriteRefuses(t *testing.T) {
	frag := dptest.Frame().Eth(macA, macB).IPv4(a("10.0.0.1"), a("10.0.0.2")).Frag(10, false).Proto(17).Payload(make([]byte, 16)).Bytes()
	gre := dptest.Frame().Eth(macA, macB).IPv4(a("10.0.0.1"), a("10.0.0.2")).Proto(47).Payload(make([]byte, 16)).Bytes()
	udp := dptest.Frame().Eth(macA, macB).IPv4(a("10.0.0.1"), a("10.0.0.2")).UDP(1, 2).Bytes()
	// ICMP of the other family: protocol 58 over IPv4 with an echo
	// request's bytes, and protocol 1 over IPv6.
	icmp6in4 := dptest.Frame().Eth(macA, macB).IPv4(a("10.0.0.1"), a("10.0.0.2")).Proto(58).Payload([]byte{128, 0, 0, 0, 0, 7, 0, 1}).Bytes()
	icmp4in6 := dptest.Frame().Eth(macA, macB).IPv6(a("fd00::1"), a("fd00::2")).Proto(1).Payload([]byte{8, 0, 0, 0, 0, 7, 0, 1}).Bytes()
	for name, tc := range map[string]struct {
		f []byte
		t header.Tuple
	}{
		"non-first fragment": {frag, header.Tuple{Src: m("10.0.0.3"), Dst: m("10.0.0.4")}},
		"gre":                {gre, header.Tuple{Src: m("10.0.0.3"), Dst: m("10.0.0.4")}},
		"family change":      {udp, header.Tuple{Src: m("fd00::3"), Dst: m("10.0.0.4")}},
		"icmpv6 over ipv4":   {icmp6in4, header.Tuple{Src: m("10.0.0.3"), Dst: m("10.0.0.4"), SPort: 9}},
		"icmpv4 over ipv6":   {icmp4in6, header.Tuple{Src: m("fd00::3"), Dst: m("fd00::4"), SPort: 9}},
	} {
		before := append([]byte(nil), tc.f...)
		if rewrite.Flow(tc.f, decode(t, tc.f), &tc.t) {
			t.Errorf("%s: Flow accepted", name)
		}
		if !bytes.Equal(before, tc.f) {
			t.Errorf("%s: refused rewrite changed the frame", name)
		}
	}
}

// TestRewriteError translates ICMP errors both ways and compares with
// errors built from scratch around the translated quoted packet.
func TestRewriteError(t *testing.T) {
	eth := func() *dptest.Builder { return dptest.Frame().Eth(macA, macB) }
	for _, tc := range []struct {
		name string
		v6   bool
		// quoted packet before and after
		qFrom, qTo [4]string
		qPorts     [4]uint16
		outer      [4]string
		typ, code  uint8
		tcp, echo  bool
		cut        int // bytes of the quoted transport header kept (0 = all)
	}{
		{name: "v4 port unreachable from the server, quoting udp", qFrom: [4]string{"10.9.0.1", "10.50.0.11", "10.200.0.1", "10.101.0.5"},
			qPorts: [4]uint16{1024, 5353, 53, 40000}, outer: [4]string{"10.50.0.11", "10.9.0.1", "10.200.0.1", "10.101.0.5"}, typ: 3, code: 3},
		{name: "v4 time exceeded from a router, quoting tcp cut at 8 bytes", tcp: true, cut: 8,
			qFrom: [4]string{"10.9.0.1", "10.50.0.11", "10.200.0.1", "10.101.0.5"}, qPorts: [4]uint16{1024, 80, 80, 40000},
			outer: [4]string{"10.60.0.1", "10.9.0.1", "10.60.0.1", "10.101.0.5"}, typ: 11},
		{name: "v4 frag needed quoting echo", echo: true, qFrom: [4]string{"10.9.0.1", "10.50.0.11", "10.200.0.1", "10.101.0.5"},
			qPorts: [4]uint16{2000, 0, 4321, 0}, outer: [4]string{"10.50.0.11", "10.9.0.1", "10.200.0.1", "10.101.0.5"}, typ: 3, code: 4},
		{name: "v6 packet too big quoting tcp", v6: true, tcp: true, qFrom: [4]string{"fd00:9::1", "fd00:50::11", "fd00:200::1", "fd00:101::5"},
			qPorts: [4]uint16{1024, 443, 443, 50000}, outer: [4]string{"fd00:50::11", "fd00:9::1", "fd00:200::1", "fd00:101::5"}, typ: 2},
		{name: "v6 unreachable quoting udp", v6: true, qFrom: [4]string{"fd00:9::1", "fd00:50::11", "fd00:200::1", "fd00:101::5"},
			qPorts: [4]uint16{1024, 53, 53, 50000}, outer: [4]string{"fd00:50::11", "fd00:9::1", "fd00:200::1", "fd00:101::5"}, typ: 1, code: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			quote := func(s, d string, sp, dp uint16) []byte {
				b := eth()
				if tc.v6 {
					b = b.IPv6(a(s), a(d))
				} else {
					b = b.IPv4(a(s), a(d)).ID(5)
				}
				switch {
				case tc.tcp:
					b = b.TCP(sp, dp).Flags(0x10).Seq(1000)
				case tc.echo:
					b = b.ICMPEcho(sp, 1).Payload([]byte("abcdefgh"))
				default:
					b = b.UDP(sp, dp).Payload([]byte("query"))
				}
				ip := dptest.IP(b.Bytes())
				if tc.cut > 0 {
					hl := 40
					if !tc.v6 {
						hl = int(ip[0]&0xf) * 4
					}
					ip = ip[:hl+tc.cut]
				}
				return ip
			}
			build := func(os, od string, q []byte) []byte {
				b := eth()
				if tc.v6 {
					b = b.IPv6(a(os), a(od))
				} else {
					b = b.IPv4(a(os), a(od))
				}
				return b.ICMPError(tc.typ, tc.code, 1400, q).Bytes()
			}
			in := build(tc.outer[0], tc.outer[1], quote(tc.qFrom[0], tc.qFrom[1], tc.qPorts[0], tc.qPorts[1]))
			want := build(tc.outer[2], tc.outer[3], quote(tc.qFrom[2], tc.qFrom[3], tc.qPorts[2], tc.qPorts[3]))
			d := decode(t, in)
			if d.Kind != header.KindICMPError || !d.IsICMPError(in) {
				t.Fatalf("not seen as an ICMP error: kind %v", d.Kind)
			}
			if q := d.Quote.Tuple; q.Src != m(tc.qFrom[0]) || q.SPort != tc.qPorts[0] || q.DPort != tc.qPorts[1] {
				t.Fatalf("quote = %+v", q)
			}
			nq := header.Tuple{Src: m(tc.qFrom[2]), Dst: m(tc.qFrom[3]), SPort: tc.qPorts[2], DPort: tc.qPorts[3]}
			if !rewrite.ICMPError(in, d, m(tc.outer[2]), m(tc.outer[3]), &nq) {
				t.Fatal("ICMPError refused")
			}
			if !bytes.Equal(in, want) {
				t.Errorf("translated error differs from a fresh build: %s", dptest.Diff(want, in))
			}
		})
	}
}

func TestRewriteAllocs(t *testing.T) {
	f := dptest.Frame().Eth(macA, macB).IPv4(a("10.0.0.1"), a("10.0.0.2")).TCP(1, 2).Bytes()
	var d header.Decoded
	t1 := header.Tuple{Src: m("10.0.0.3"), Dst: m("10.0.0.4"), SPort: 5, DPort: 6}
	t2 := header.Tuple{Src: m("10.0.0.1"), Dst: m("10.0.0.2"), SPort: 1, DPort: 2}
	if n := testing.AllocsPerRun(1000, func() {
		header.Decode(f, &d)
		rewrite.Flow(f, &d, &t1)
		rewrite.Flow(f, &d, &t2)
	}); n != 0 {
		t.Errorf("Decode and Flow allocate %v", n)
	}
}

func BenchmarkRewriteV4TCP(b *testing.B) {
	f := dptest.Frame().Eth(macA, macB).IPv4(a("10.0.0.1"), a("10.0.0.2")).TCP(1, 2).Bytes()
	var d header.Decoded
	header.Decode(f, &d)
	ts := [2]header.Tuple{{Src: m("10.0.0.3"), Dst: m("10.0.0.4"), SPort: 5, DPort: 6}, {Src: m("10.0.0.1"), Dst: m("10.0.0.2"), SPort: 1, DPort: 2}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rewrite.Flow(f, &d, &ts[i&1])
	}
}
