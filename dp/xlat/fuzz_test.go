package xlat_test

import (
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

// FuzzXlat fuzzes Translate both ways: raw bytes taken as an IPv4 or
// IPv6 packet (by their version nibble) in an Ethernet frame, under a
// configuration picked by mode (UDP checksum amending, the lowest IPv6
// MTU, small MTUs), through Translate or TranslateWith. Properties: no panic; every frame Translate emits
// parses, is of the family its outcome says, fits out; and when every
// checksum of the input was right, every checksum of the output is.
// Seeds: the golden tests' shapes.
//
//	go test -run '^$' -fuzz '^FuzzXlat$' -fuzztime 30s ./dp/xlat
func FuzzXlat(f *testing.F) {
	quote4 := dptest.IP(v4(h4, s4).TTL(17).UDP(4000, 53).Payload(data).Bytes())
	quote6 := dptest.IP(v6(s6, h6).TTL(17).TCP(53, 4000).Payload(data).Bytes())
	for _, fr := range [][]byte{
		v4(s4, h4).UDP(53, 4000).Payload(data).Bytes(),
		v4(s4, h4).IPOptions([]byte{131, 7, 4, 0, 0, 0, 0}).TCP(80, 1).Bytes(),
		v4(s4, h4).ICMPEcho(1, 2).Payload(data).Bytes(),
		v4(s4, h4).ID(5).Frag(0, true).UDP(1, 2).NoUDPChecksum().Payload(data[:16]).Bytes(),
		v4(s4, h4).UDP(53, 4000).Payload(big(3000)).Bytes(),
		v4(s4, h4).ICMPError(3, 4, 1400, quote4).Bytes(),
		v4(r4, h4).ICMPError(11, 0, 0, quote4[:28]).Bytes(),
		v6(h6, s6).UDP(4000, 53).Payload(data).Bytes(),
		v6(h6, s6).HopByHop([]byte{1, 0}).Fragment(0, true, 7).TCP(1, 2).Bytes(),
		v6(h6, s6).Fragment(0, true, 7).DstOpts([]byte{1, 0}).UDP(1, 2).Bytes(),
		v6(h6, s6).Routing(0, 1, make([]byte, 20)).UDP(1, 2).Bytes(),
		v6(h6, s6).ICMPEchoReply(3, 4).Payload(data).Bytes(),
		v6(h6, s6).ICMPError(2, 0, 1300, quote6).Bytes(),
		v6(a("2001:db8:ffff::9"), s6).ICMPError(1, 4, 0, quote6[:48]).Bytes(),
		v6(h6, a("64:ff9b::c000:206")).UDP(1, 2).Bytes(),
	} {
		f.Add(uint8(0), dptest.IP(fr))
		f.Add(uint8(7), dptest.IP(fr))
		f.Add(uint8(8), dptest.IP(fr))
	}
	trs := make([]*xlat.Translator, 8)
	for i := range trs {
		trs[i] = newT(f, func(c *xlat.Config) {
			c.AmendUDPZeroChecksum = i&1 != 0
			if i&2 != 0 {
				c.LowestIPv6MTU = 1402
			}
			if i&4 != 0 {
				c.IPv4MTU, c.IPv6MTU = 576, 1280
				c.RFC6791v4 = netipPrefix("203.0.113.128/25")
			}
		})
	}
	out := make([]byte, xlat.OutLen(70000))
	f.Fuzz(func(t *testing.T, mode uint8, ip []byte) {
		in := ethFrame(ip)
		var d header.Decoded
		if header.Decode(in, &d) != header.OK {
			return
		}
		// VerifyChecksums skips the transport of fragments; an atomic
		// fragment becomes an unfragmented packet whose transport the
		// output check does verify, so check it here.
		good := d.IPVersion != 0 && dptest.VerifyChecksums(in) == nil && (!d.Fragment || l4Good(in, &d))
		if d.Proto == header.ProtoUDP && d.L4Off != 0 && int(header.UDP(d.L4(in)).Length()) != d.L4Len {
			// VerifyChecksums sums the whole IP payload; a checksum the
			// translator computes covers the UDP length (RFC 768), as
			// receivers do.
			good = false
		}
		var r xlat.Result
		var o xlat.Outcome
		if mode&8 != 0 {
			// The NAT64's entry, with addresses of the right families.
			a := xlat.Addrs{Src: header.Addr16From(s6), Dst: header.Addr16From(h6), QSrc: header.Addr16From(h6), QDst: header.Addr16From(s6)}
			if d.IPVersion == 6 {
				a = xlat.Addrs{Src: header.Addr16From(h4), Dst: header.Addr16From(s4), QSrc: header.Addr16From(s4), QDst: header.Addr16From(h4)}
			}
			o = trs[mode&7].TranslateWith(in, &d, &a, out, &r)
		} else {
			o = trs[mode&7].Translate(in, &d, out, &r)
		}
		if o.Dropped() {
			if r.N != 0 {
				t.Fatalf("%v with %d packets", o, r.N)
			}
			return
		}
		if r.N < 1 || r.N > xlat.MaxPackets {
			t.Fatalf("%v with %d packets", o, r.N)
		}
		for i := 0; i < r.N; i++ {
			p := r.Pkts[i]
			if p.Off < 0 || p.Len <= 0 || p.Off+p.Len > len(out) {
				t.Fatalf("packet %d at %d+%d", i, p.Off, p.Len)
			}
			fr := out[p.Off : p.Off+p.Len]
			var pp header.Parsed
			if v := header.Parse(fr, &pp); v != header.OK {
				t.Fatalf("%v: packet %d does not parse: %v\nin  %x\nout %x", o, i, v, ip, fr)
			}
			want := uint8(4)
			switch {
			case o == xlat.Translated46 || o == xlat.Fragmented46 || o == xlat.Hairpinned:
				want = 6
			case o.Answered():
				want = d.IPVersion
			}
			if pp.IPVersion != want {
				t.Fatalf("%v: packet %d is IPv%d", o, i, pp.IPVersion)
			}
			if pp.IPEnd != len(fr) {
				t.Fatalf("%v: packet %d: IP ends at %d of %d", o, i, pp.IPEnd, len(fr))
			}
			if good {
				if err := dptest.VerifyChecksums(fr); err != nil {
					t.Fatalf("%v: packet %d: %v\nin  %x\nout %x", o, i, err, ip, fr)
				}
			}
		}
	})
}

// l4Good reports whether the transport checksum of d's packet, taken as
// a whole datagram, is right (true when there is no transport header).
func l4Good(b []byte, d *header.Decoded) bool {
	if d.L4Off == 0 {
		return true
	}
	ph := d.PseudoHeaderChecksum(b)
	l4 := d.L4(b)
	switch d.Proto {
	case header.ProtoTCP:
		return header.TCP(l4).IsChecksumValid(ph)
	case header.ProtoUDP:
		return header.UDP(l4).IsChecksumValid(ph, d.IPVersion == 6)
	case header.ProtoICMPv4:
		return d.IPVersion != 4 || header.ICMPv4(l4).IsChecksumValid()
	case header.ProtoICMPv6:
		return d.IPVersion != 6 || header.ICMPv6(l4).IsChecksumValid(ph)
	}
	return true
}
