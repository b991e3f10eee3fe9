package xlat_test

import (
	"bytes"
	"net/netip"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

var (
	macA = dptest.MAC("02:00:00:00:00:01")
	macB = dptest.MAC("02:00:00:00:00:02")
)

func a(s string) netip.Addr { return netip.MustParseAddr(s) }
func m(s string) [16]byte   { return a(s).As16() }

func parse(t *testing.T, f []byte) *header.Parsed {
	t.Helper()
	var p header.Parsed
	if v := header.Parse(f, &p); v != header.OK {
		t.Fatalf("parse: %v", v)
	}
	return &p
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
			p := parse(t, in)
			var got xlat.Tuple
			if !xlat.Read(in, p, &got) || got.SPort != tc.ports[0] || got.DPort != tc.ports[1] || got.Src != m(tc.from[0]) {
				t.Fatalf("Read = %+v", got)
			}
			nt := xlat.Tuple{Src: m(tc.from[2]), Dst: m(tc.from[3]), SPort: tc.ports[2], DPort: tc.ports[3]}
			if !xlat.Rewrite(in, p, &nt) {
				t.Fatal("Rewrite refused")
			}
			if !bytes.Equal(in, want) {
				t.Errorf("rewritten packet differs from a fresh build: %s", dptest.Diff(want, in))
			}
			// RewriteFrom, given the tuple Read returned, writes the same.
			again := tc.b(a(tc.from[0]), a(tc.from[1]), tc.ports[0], tc.ports[1])
			if !xlat.RewriteFrom(again, parse(t, again), &got, &nt) {
				t.Fatal("RewriteFrom refused")
			}
			if !bytes.Equal(again, want) {
				t.Errorf("RewriteFrom's packet differs from a fresh build: %s", dptest.Diff(want, again))
			}
		})
	}
}

func TestRewriteUDPZeroChecksum(t *testing.T) {
	b := func(s, d netip.Addr) []byte {
		return dptest.Frame().Eth(macA, macB).IPv4(s, d).UDP(1, 2).NoUDPChecksum().Payload([]byte("z")).Bytes()
	}
	in := b(a("10.0.0.1"), a("10.0.0.2"))
	p := parse(t, in)
	nt := xlat.Tuple{Src: m("10.0.0.3"), Dst: m("10.0.0.4"), SPort: 5, DPort: 6}
	xlat.Rewrite(in, p, &nt)
	u := p.UDP(in)
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
	for name, tc := range map[string]struct {
		f []byte
		t xlat.Tuple
	}{
		"non-first fragment": {frag, xlat.Tuple{Src: m("10.0.0.3"), Dst: m("10.0.0.4")}},
		"gre":                {gre, xlat.Tuple{Src: m("10.0.0.3"), Dst: m("10.0.0.4")}},
		"family change":      {udp, xlat.Tuple{Src: m("fd00::3"), Dst: m("10.0.0.4")}},
	} {
		before := append([]byte(nil), tc.f...)
		if xlat.Rewrite(tc.f, parse(t, tc.f), &tc.t) {
			t.Errorf("%s: Rewrite accepted", name)
		}
		var old xlat.Tuple
		if p := parse(t, tc.f); xlat.Read(tc.f, p, &old) && xlat.RewriteFrom(tc.f, p, &old, &tc.t) {
			t.Errorf("%s: RewriteFrom accepted", name)
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
			p := parse(t, in)
			if !xlat.IsICMPError(in, p) {
				t.Fatal("not seen as an ICMP error")
			}
			var q xlat.Tuple
			if _, ok := xlat.ReadError(in, p, &q); !ok || q.Src != m(tc.qFrom[0]) || q.SPort != tc.qPorts[0] || q.DPort != tc.qPorts[1] {
				t.Fatalf("ReadError = %+v", q)
			}
			nq := xlat.Tuple{Src: m(tc.qFrom[2]), Dst: m(tc.qFrom[3]), SPort: tc.qPorts[2], DPort: tc.qPorts[3]}
			if !xlat.RewriteError(in, p, m(tc.outer[2]), m(tc.outer[3]), &nq) {
				t.Fatal("RewriteError refused")
			}
			if !bytes.Equal(in, want) {
				t.Errorf("translated error differs from a fresh build: %s", dptest.Diff(want, in))
			}
		})
	}
}

func TestRewriteAllocs(t *testing.T) {
	f := dptest.Frame().Eth(macA, macB).IPv4(a("10.0.0.1"), a("10.0.0.2")).TCP(1, 2).Bytes()
	var p header.Parsed
	header.Parse(f, &p)
	t1 := xlat.Tuple{Src: m("10.0.0.3"), Dst: m("10.0.0.4"), SPort: 5, DPort: 6}
	t2 := xlat.Tuple{Src: m("10.0.0.1"), Dst: m("10.0.0.2"), SPort: 1, DPort: 2}
	if n := testing.AllocsPerRun(1000, func() { xlat.Rewrite(f, &p, &t1); xlat.Rewrite(f, &p, &t2) }); n != 0 {
		t.Errorf("Rewrite allocates %v", n)
	}
}

func BenchmarkRewriteV4TCP(b *testing.B) {
	f := dptest.Frame().Eth(macA, macB).IPv4(a("10.0.0.1"), a("10.0.0.2")).TCP(1, 2).Bytes()
	var p header.Parsed
	header.Parse(f, &p)
	ts := [2]xlat.Tuple{{Src: m("10.0.0.3"), Dst: m("10.0.0.4"), SPort: 5, DPort: 6}, {Src: m("10.0.0.1"), Dst: m("10.0.0.2"), SPort: 1, DPort: 2}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		xlat.Rewrite(f, &p, &ts[i&1])
	}
}
