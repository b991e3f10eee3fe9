package xlat_test

import (
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

// residual is the ones' complement sum of a packet's transport checksum
// check (0 when right): translation must carry a wrong checksum over as
// wrong by the same amount, never fix it and never drop the packet.
func residual(t *testing.T, f []byte) uint16 {
	t.Helper()
	var p header.Parsed
	if v := header.Parse(f, &p); v != header.OK || p.L4Off == 0 {
		t.Fatalf("parse: %v", v)
	}
	var ph uint32
	if p.Proto != header.ProtoICMPv4 {
		ph = p.PseudoHeaderChecksum(f)
	}
	return header.Fold(header.Checksum(p.L4(f), ph))
}

// TestBadChecksumKept sends packets whose transport checksum is wrong both
// ways: they are translated, the checksum adjusted and still wrong by the
// same amount (RFC 7915 sections 4.5 and 5.5 adjust, they do not check).
func TestBadChecksumKept(t *testing.T) {
	for name, in := range map[string][]byte{
		"46 udp":  v4(s4, h4).UDP(53, 4000).Payload(data).L4Checksum(0x1234).Bytes(),
		"46 tcp":  v4(s4, h4).TCP(80, 4000).Payload(data).L4Checksum(0x1234).Bytes(),
		"46 echo": v4(s4, h4).ICMPEcho(1, 2).Payload(data).L4Checksum(0x1234).Bytes(),
		"64 udp":  v6(h6, s6).UDP(4000, 53).Payload(data).L4Checksum(0x1234).Bytes(),
		"64 tcp":  v6(h6, s6).TCP(4000, 80).Payload(data).L4Checksum(0x1234).Bytes(),
		"64 echo": v6(h6, s6).ICMPEcho(1, 2).Payload(data).L4Checksum(0x1234).Bytes(),
	} {
		o, got := run(t, newT(t, nil), in)
		if !o.Translated() {
			t.Errorf("%s: %v", name, o)
			continue
		}
		if rin, rout := residual(t, in), residual(t, got[0]); rin == 0 || rin != rout {
			t.Errorf("%s: checksum residual %#x in, %#x out", name, rin, rout)
		}
	}
}

// TestBadInnerChecksumKept: an ICMP error quoting a packet with a wrong
// checksum is translated, not dropped, and the quoted checksum stays as
// wrong (RFC 7915 4.3, 5.3; STYLE.md's known traps).
func TestBadInnerChecksumKept(t *testing.T) {
	q4 := dptest.IP(v4(h4, s4).TTL(17).UDP(4000, 53).Payload(data).L4Checksum(0x1234).Bytes())
	q6 := dptest.IP(v6(s6, h6).TTL(17).TCP(53, 4000).Payload(data).L4Checksum(0x1234).Bytes())
	for name, tc := range map[string]struct{ in, quote []byte }{
		"46": {v4(s4, h4).ICMPError(3, 3, 0, q4).Bytes(), q4},
		"64": {v6(h6, s6).ICMPError(1, 4, 0, q6).Bytes(), q6},
	} {
		o, got := run(t, newT(t, nil), tc.in)
		if !o.Translated() {
			t.Fatalf("%s: %v", name, o)
		}
		if err := dptest.VerifyChecksums(got[0]); err != nil {
			t.Errorf("%s: outer: %v", name, err)
		}
		var p header.Parsed
		header.Parse(got[0], &p)
		innerOut := ethFrame(p.L4(got[0])[header.ICMPMinLen:])
		if rin, rout := residual(t, ethFrame(tc.quote)), residual(t, innerOut); rin == 0 || rin != rout {
			t.Errorf("%s: quoted checksum residual %#x in, %#x out", name, rin, rout)
		}
		var ip header.Parsed
		header.Parse(innerOut, &ip)
		ttl := innerOut[ip.L3Off+7]
		if ip.IPVersion == 4 {
			ttl = innerOut[ip.L3Off+8]
		}
		if ttl != 17 {
			t.Errorf("%s: quoted TTL %d, want 17 (not decremented)", name, ttl)
		}
	}
}

// TestTranslateWith is the stateful NAT64's entry: the caller gives the
// addresses (from its tables), Translate does the rest.
func TestTranslateWith(t *testing.T) {
	tr := newT(t, nil)
	pool4, client := a("192.0.2.200"), a("2001:db8:77::9")
	q := dptest.IP(v6(client, s6).TTL(17).UDP(4000, 53).Payload(data).Bytes())
	for _, tc := range []struct {
		name  string
		in    []byte
		addrs xlat.Addrs
		want  []byte
		o     xlat.Outcome
	}{
		{"6to4 with a pool4 source", v6(client, s6).UDP(4000, 53).Payload(data).Bytes(),
			xlat.Addrs{Src: header.Addr16From(pool4), Dst: header.Addr16From(s4)},
			v4(pool4, s4).TTL(63).UDP(4000, 53).Payload(data).Bytes(), xlat.Translated64},
		{"4to6 back to the client", v4(s4, pool4).UDP(53, 4000).Payload(data).Bytes(),
			xlat.Addrs{Src: header.Addr16From(s6), Dst: header.Addr16From(client)},
			v6(s6, client).TTL(63).UDP(53, 4000).Payload(data).Bytes(), xlat.Translated46},
		{"6to4 error with the quoted addresses given", v6(client, s6).ICMPError(1, 4, 0, q).Bytes(),
			xlat.Addrs{Src: header.Addr16From(pool4), Dst: header.Addr16From(s4), QSrc: header.Addr16From(s4), QDst: header.Addr16From(pool4)},
			v4(pool4, s4).TTL(63).ICMPError(3, 3, 0, dptest.IP(v4(s4, pool4).TTL(17).UDP(4000, 53).Payload(data).Bytes())).Bytes(), xlat.Translated64},
		{"family mismatch refused", v6(client, s6).UDP(1, 2).Bytes(),
			xlat.Addrs{Src: header.Addr16From(client), Dst: header.Addr16From(s4)}, nil, xlat.DropNoMapping},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d header.Decoded
			header.Decode(tc.in, &d)
			out := make([]byte, xlat.OutLen(len(tc.in)))
			var r xlat.Result
			o := tr.TranslateWith(tc.in, &d, &tc.addrs, out, &r)
			if o != tc.o {
				t.Fatalf("outcome %v, want %v", o, tc.o)
			}
			if tc.want == nil {
				return
			}
			got := out[r.Pkts[0].Off : r.Pkts[0].Off+r.Pkts[0].Len]
			if o == xlat.Translated64 {
				// The generated ID: take it from the output.
				w := header.IPv4(tc.want[14:])
				if tc.want[14+6]&0x40 == 0 {
					w.SetID(header.IPv4(got[14:]).ID())
					w.SetChecksum(0)
					w.SetChecksum(w.CalculateChecksum())
				}
			}
			if diff := dptest.Diff(tc.want, got); diff != "" {
				t.Error(diff)
			}
		})
	}
}
