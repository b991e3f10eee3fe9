package rewrite_test

import (
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/rewrite"
)

// FuzzQuote fuzzes the ICMP quote reader (header.Decode's) and the error
// rewrite on it: arbitrary bytes quoted by an ICMPv4 or ICMPv6 error of
// any type. Properties: no panic; a quote Decode accepts is rewritten;
// the result parses, decodes to the new outer and quoted tuples, and
// keeps right checksums right. Seeds: the quotes of TestRewriteError's
// shapes (TCP, UDP, echo; cut short).
//
//	go test -run '^$' -fuzz '^FuzzQuote$' -fuzztime 30s ./dp/rewrite
func FuzzQuote(f *testing.F) {
	eth := func() *dptest.Builder { return dptest.Frame().Eth(macA, macB) }
	for _, q := range [][]byte{
		dptest.IP(eth().IPv4(a("10.9.0.1"), a("10.50.0.11")).UDP(1024, 53).Payload([]byte("query")).Bytes()),
		dptest.IP(eth().IPv4(a("10.9.0.1"), a("10.50.0.11")).TCP(1024, 80).Flags(0x10).Bytes())[:28],
		dptest.IP(eth().IPv4(a("10.9.0.1"), a("10.50.0.11")).ICMPEcho(5, 1).Bytes()),
		dptest.IP(eth().IPv6(a("fd00:9::1"), a("fd00:50::11")).TCP(1024, 443).Bytes()),
		dptest.IP(eth().IPv6(a("fd00:9::1"), a("fd00:50::11")).ICMPEchoReply(5, 1).Bytes()),
	} {
		v6 := q[0]>>4 == 6
		f.Add(v6, uint8(3), uint8(3), q)
		f.Add(v6, uint8(1), uint8(4), q)
		f.Add(v6, uint8(11), uint8(0), q)
	}
	f.Fuzz(func(t *testing.T, v6 bool, typ, code uint8, quote []byte) {
		b := eth()
		src, dst, nq := m("10.60.0.1"), m("10.101.0.5"), header.Tuple{Src: m("10.200.0.1"), Dst: m("10.101.0.5"), SPort: 80, DPort: 40000}
		if v6 {
			b = b.IPv6(a("fd00:60::1"), a("fd00:9::1"))
			src, dst, nq = m("fd00:60::1"), m("fd00:101::5"), header.Tuple{Src: m("fd00:200::1"), Dst: m("fd00:101::5"), SPort: 80, DPort: 40000}
		} else {
			b = b.IPv4(a("10.60.0.1"), a("10.9.0.1"))
		}
		in := b.ICMPError(typ, code, 0, quote).Bytes()
		var d header.Decoded
		if header.Decode(in, &d) != header.OK || d.Kind != header.KindICMPError {
			return
		}
		good := dptest.VerifyChecksums(in) == nil
		if !rewrite.ICMPError(in, &d, src, dst, &nq) {
			t.Fatalf("a decoded ICMP error was refused: %x", in)
		}
		var again header.Decoded
		if v := header.Decode(in, &again); v != header.OK || again.Kind != header.KindICMPError {
			t.Fatalf("rewritten error decodes as %v kind %v: %x", v, again.Kind, in)
		}
		want := nq
		want.Proto = again.Quote.Tuple.Proto
		if qt := again.Quote.Tuple; qt.Src != nq.Src || qt.Dst != nq.Dst || (qt.Proto == header.ProtoTCP || qt.Proto == header.ProtoUDP) && qt != want {
			t.Fatalf("quote reads %+v after the rewrite, want %+v", qt, nq)
		}
		if again.Tuple.Src != src || again.Tuple.Dst != dst {
			t.Fatalf("outer reads %v -> %v", again.Tuple.Src, again.Tuple.Dst)
		}
		if good {
			if err := dptest.VerifyChecksums(in); err != nil {
				t.Fatalf("right checksums broken: %v: %x", err, in)
			}
		}
	})
}
