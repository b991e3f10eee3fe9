package header_test

import (
	"encoding/binary"
	"testing"

	"samepath/dp/header"
)

// FuzzDecode feeds arbitrary frames to Decode, the gateway's one read of
// a packet (Parse, then the tuple, TCP flags, kind and an ICMP error's
// quote). Properties: no panic; the tuple's addresses are the IP
// header's, its ports the transport header's (or the echo identifier);
// a quote lies inside the ICMP message and its tuple is what its bytes
// say; wrong-family ICMP is always opaque. Seeds: parseCases' frames.
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 30s ./dp/header
func FuzzDecode(f *testing.F) {
	for _, tc := range parseCases() {
		f.Add(tc.frame)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d header.Decoded
		if header.Decode(b, &d) != header.OK || d.IPVersion == 0 {
			return
		}
		ip := b[d.L3Off:d.IPEnd]
		var src, dst header.Addr16
		if d.IPVersion == 4 {
			src, dst = header.Addr16V4([4]byte(ip[12:16])), header.Addr16V4([4]byte(ip[16:20]))
		} else {
			src, dst = header.Addr16(ip[8:24]), header.Addr16(ip[24:40])
		}
		if d.Tuple.Src != src || d.Tuple.Dst != dst || d.Tuple.Proto != d.Proto {
			t.Fatalf("tuple %+v, header says %v -> %v proto %d", d.Tuple, src, dst, d.Proto)
		}
		wrongFamily := (d.Proto == header.ProtoICMPv4 && d.IPVersion == 6) || (d.Proto == header.ProtoICMPv6 && d.IPVersion == 4)
		switch d.Kind {
		case header.KindFlow:
			if d.L4Off == 0 || wrongFamily {
				t.Fatalf("flow without a transport header (L4Off %d) or of the other family", d.L4Off)
			}
			l4 := b[d.L4Off : d.L4Off+d.L4Len]
			switch d.Proto {
			case header.ProtoTCP, header.ProtoUDP:
				if d.Tuple.SPort != binary.BigEndian.Uint16(l4) || d.Tuple.DPort != binary.BigEndian.Uint16(l4[2:]) {
					t.Fatalf("ports %d %d", d.Tuple.SPort, d.Tuple.DPort)
				}
			default:
				if id := binary.BigEndian.Uint16(l4[4:]); d.Tuple.SPort != id && d.Tuple.DPort != id {
					t.Fatalf("echo identifier %d, tuple %+v", id, d.Tuple)
				}
			}
		case header.KindICMPError:
			q := &d.Quote
			end := d.L4Off + d.L4Len
			if wrongFamily || q.Off != d.L4Off+header.ICMPMinLen || q.L4Off != q.Off+q.HdrLen || q.L4Off+q.L4Avail != end || q.L4Avail < 4 {
				t.Fatalf("quote %+v outside the message %d..%d", q, d.L4Off, end)
			}
			if !d.IsICMPError(b) {
				t.Fatal("a quote, but IsICMPError says no")
			}
		default:
			if d.Tuple.SPort != 0 || d.Tuple.DPort != 0 {
				t.Fatalf("opaque packet with ports %+v", d.Tuple)
			}
		}
		if wrongFamily && d.Kind != header.KindOpaque {
			t.Fatalf("wrong-family ICMP decoded as %v", d.Kind)
		}
	})
}
