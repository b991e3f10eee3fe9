package header_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/dp/header"
)

// FuzzParse feeds arbitrary bytes to Parse and, when it says OK, runs every
// accessor of every view that applies and the checksum-updating setters on
// a copy. Properties: Parse never panics and returns a known verdict; the
// offsets it reports are ordered and inside the frame; views never index
// out of range; an incremental update keeps a valid checksum valid; setters
// do not change what Parse finds. Seeds: testdata/fuzz/FuzzParse (real
// captures from testdata/capture.sh) plus the builder frames of parseCases.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 30s ./dp/header
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases() {
		f.Add(tc.frame)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p header.Parsed
		v := header.Parse(b, &p)
		if v >= header.NumVerdicts {
			t.Fatalf("unknown verdict %d", v)
		}
		if v != header.OK {
			return
		}
		checkOffsets(t, b, &p)
		viewAll(b, &p)

		c := append([]byte(nil), b...)
		mutateChecked(t, c, &p)
		var q header.Parsed
		if w := header.Parse(c, &q); w != header.OK {
			t.Fatalf("setters turned an OK frame into %v", w)
		}
		if d := cmp.Diff(p, q); d != "" {
			t.Fatalf("setters changed the parse (-before +after):\n%s", d)
		}
	})
}

func checkOffsets(t *testing.T, b []byte, p *header.Parsed) {
	t.Helper()
	if p.L3Off != 14 && p.L3Off != 18 {
		t.Fatalf("L3Off %d", p.L3Off)
	}
	if p.HasVLAN != (p.L3Off == 18) {
		t.Fatalf("HasVLAN %v with L3Off %d", p.HasVLAN, p.L3Off)
	}
	switch p.IPVersion {
	case 0:
		if p.L4Off != 0 || p.L4Len != 0 {
			t.Fatalf("non-IP frame with L4Off %d L4Len %d", p.L4Off, p.L4Len)
		}
		if p.EtherType == header.EtherTypeARP && p.IPEnd != p.L3Off+header.ARPLen {
			t.Fatalf("ARP IPEnd %d", p.IPEnd)
		}
	case 4, 6:
		min := header.IPv4MinLen
		if p.IPVersion == 6 {
			min = header.IPv6Len
		}
		if p.IPEnd < p.L3Off+min || p.IPEnd > len(b) {
			t.Fatalf("IPEnd %d outside [%d, %d]", p.IPEnd, p.L3Off+min, len(b))
		}
		if p.L4Off != 0 {
			if p.L4Off < p.L3Off+min || p.L4Off+p.L4Len != p.IPEnd {
				t.Fatalf("L4Off %d L4Len %d IPEnd %d", p.L4Off, p.L4Len, p.IPEnd)
			}
		} else if p.L4Len != 0 {
			t.Fatalf("L4Len %d without L4Off", p.L4Len)
		}
		if p.FragOffset != 0 && p.L4Off != 0 {
			t.Fatalf("non-first fragment with L4Off %d", p.L4Off)
		}
		if p.FragOffset != 0 && !p.Fragment {
			t.Fatalf("FragOffset %d without Fragment", p.FragOffset)
		}
	default:
		t.Fatalf("IPVersion %d", p.IPVersion)
	}
}

var sink uint64

// viewAll calls every accessor of every view that applies to the frame.
func viewAll(b []byte, p *header.Parsed) {
	e := p.Ethernet(b)
	d, s := e.Dst(), e.Src()
	sink += uint64(d[0]) + uint64(s[5]) + uint64(e.Type()) + uint64(header.VLANVID(p.VLANTCI)) + uint64(header.VLANPCP(p.VLANTCI))
	if p.EtherType == header.EtherTypeARP {
		a := p.ARP(b)
		sm, tm, si, ti := a.SenderMAC(), a.TargetMAC(), a.SenderIP(), a.TargetIP()
		sink += uint64(a.Op()) + uint64(sm[0]+tm[0]+si[0]+ti[0]) + uint64(a.SenderAddr().BitLen()+a.TargetAddr().BitLen())
	}
	switch p.IPVersion {
	case 4:
		h := p.IPv4(b)
		src, dst := h.Src(), h.Dst()
		sink += uint64(h.Version()) + uint64(h.HeaderLen()) + uint64(h.TOS()) + uint64(h.TotalLen()) + uint64(h.ID()) +
			uint64(h.Flags()) + uint64(h.FragOffset()) + uint64(h.TTL()) + uint64(h.Protocol()) + uint64(h.Checksum()) +
			uint64(src[0]+dst[0]) + uint64(h.SrcAddr().BitLen()+h.DstAddr().BitLen()) + uint64(len(h.Options())+len(h.Payload())) +
			uint64(h.CalculateChecksum())
		if h.IsChecksumValid() {
			sink++
		}
	case 6:
		h := p.IPv6(b)
		src, dst := h.Src(), h.Dst()
		sink += uint64(h.Version()) + uint64(h.TrafficClass()) + uint64(h.FlowLabel()) + uint64(h.PayloadLen()) +
			uint64(h.NextHeader()) + uint64(h.HopLimit()) + uint64(src[0]+dst[15]) + uint64(h.SrcAddr().BitLen()+h.DstAddr().BitLen()) +
			uint64(len(h.Payload()))
		if p.FragOff != 0 {
			fr := header.IPv6Fragment(b[p.FragOff:])
			sink += uint64(fr.NextHeader()) + uint64(fr.FragOffset()) + uint64(fr.ID())
			if fr.More() {
				sink++
			}
		}
	}
	if p.L4Off == 0 {
		return
	}
	ph := p.PseudoHeaderChecksum(b)
	switch {
	case p.Proto == header.ProtoTCP:
		t := p.TCP(b)
		sink += uint64(t.SrcPort()) + uint64(t.DstPort()) + uint64(t.Seq()) + uint64(t.Ack()) + uint64(t.DataOffset()) +
			uint64(t.Flags()) + uint64(t.Window()) + uint64(t.Checksum()) + uint64(t.UrgentPtr()) +
			uint64(len(t.Options())+len(t.Payload())) + uint64(t.CalculateChecksum(ph))
		if t.IsChecksumValid(ph) {
			sink++
		}
	case p.Proto == header.ProtoUDP:
		u := p.UDP(b)
		sink += uint64(u.SrcPort()) + uint64(u.DstPort()) + uint64(u.Length()) + uint64(u.Checksum()) +
			uint64(len(u.Payload())) + uint64(u.CalculateChecksum(ph))
		if u.IsChecksumValid(ph, p.IPVersion == 6) {
			sink++
		}
	case p.Proto == header.ProtoICMPv4 && p.IPVersion == 4:
		m := p.ICMPv4(b)
		sink += uint64(m.Type()) + uint64(m.Code()) + uint64(m.Checksum()) + uint64(m.Ident()) + uint64(m.Seq()) +
			uint64(m.MTU()) + uint64(m.Pointer()) + uint64(len(m.Payload())+len(m.Embedded())) + uint64(m.CalculateChecksum())
		if m.IsChecksumValid() {
			sink++
		}
	case p.Proto == header.ProtoICMPv6 && p.IPVersion == 6:
		m := p.ICMPv6(b)
		sink += uint64(m.Type()) + uint64(m.Code()) + uint64(m.Checksum()) + uint64(m.Ident()) + uint64(m.Seq()) +
			uint64(m.MTU()) + uint64(m.Pointer()) + uint64(len(m.Payload())+len(m.Embedded())) + uint64(m.CalculateChecksum(ph))
		if m.IsChecksumValid(ph) {
			sink++
		}
	}
}

// mutateChecked applies NAT-style rewrites with incremental checksum updates
// to b and checks that checksums valid before stay valid.
func mutateChecked(t *testing.T, b []byte, p *header.Parsed) {
	t.Helper()
	e := p.Ethernet(b)
	e.SetSrc(e.Dst())
	e.SetDst([6]byte{2, 0, 0, 0, 0, 1})
	var oldAddr, newAddr []byte
	switch p.IPVersion {
	case 4:
		h := p.IPv4(b)
		valid := h.IsChecksumValid()
		o := h.Src()
		oldAddr, newAddr = o[:], []byte{10, 0, o[3], 1}
		h.SetSrcWithChecksumUpdate([4]byte(newAddr))
		h.DecTTL()
		if valid && !h.IsChecksumValid() {
			t.Fatalf("IPv4 checksum became invalid: %#04x, want %#04x", h.Checksum(), h.CalculateChecksum())
		}
		if !valid {
			h.SetChecksum(h.CalculateChecksum())
			if !h.IsChecksumValid() {
				t.Fatal("CalculateChecksum did not make the IPv4 header valid")
			}
		}
	case 6:
		h := p.IPv6(b)
		o := h.Src()
		n := o
		n[0], n[15] = 0xfd, o[15]+1
		oldAddr, newAddr = o[:], n[:]
		h.SetSrc(n)
		h.SetHopLimit(h.HopLimit() / 2)
	default:
		return
	}
	if p.L4Off == 0 {
		return
	}
	// Checksums are judged against the pseudo-header before and after.
	before := pseudoWith(b, p, oldAddr)
	after := p.PseudoHeaderChecksum(b)
	switch {
	case p.Proto == header.ProtoTCP:
		tc := p.TCP(b)
		valid := tc.IsChecksumValid(before)
		tc.UpdateChecksumAddr(oldAddr, newAddr)
		tc.SetSrcPortWithChecksumUpdate(tc.SrcPort() ^ 0x5a5a)
		tc.SetDstPortWithChecksumUpdate(tc.DstPort() + 1)
		if valid && !tc.IsChecksumValid(after) {
			t.Fatalf("TCP checksum became invalid: %#04x, want %#04x", tc.Checksum(), tc.CalculateChecksum(after))
		}
	case p.Proto == header.ProtoUDP:
		u := p.UDP(b)
		zero := u.Checksum() == 0
		valid := u.IsChecksumValid(before, p.IPVersion == 6)
		u.UpdateChecksumAddr(oldAddr, newAddr)
		u.SetSrcPortWithChecksumUpdate(u.SrcPort() ^ 0xffff)
		u.SetDstPortWithChecksumUpdate(0)
		if zero && u.Checksum() != 0 {
			t.Fatalf("UDP zero checksum became %#04x", u.Checksum())
		}
		if valid && !u.IsChecksumValid(after, p.IPVersion == 6) {
			t.Fatalf("UDP checksum became invalid: %#04x, want %#04x", u.Checksum(), u.CalculateChecksum(after))
		}
	case p.Proto == header.ProtoICMPv4 && p.IPVersion == 4:
		m := p.ICMPv4(b)
		valid := m.IsChecksumValid()
		m.SetIdentWithChecksumUpdate(^m.Ident())
		if valid && !m.IsChecksumValid() {
			t.Fatalf("ICMPv4 checksum became invalid")
		}
	case p.Proto == header.ProtoICMPv6 && p.IPVersion == 6:
		m := p.ICMPv6(b)
		valid := m.IsChecksumValid(before)
		m.UpdateChecksumAddr(oldAddr, newAddr)
		m.SetIdentWithChecksumUpdate(m.Ident() + 7)
		if valid && !m.IsChecksumValid(after) {
			t.Fatalf("ICMPv6 checksum became invalid")
		}
	}
}

// pseudoWith is the pseudo-header sum with the source address src.
func pseudoWith(b []byte, p *header.Parsed, src []byte) uint32 {
	if p.IPVersion == 4 {
		h := p.IPv4(b)
		return header.PseudoHeaderChecksum(p.Proto, src, h[16:20], uint16(p.L4Len))
	}
	h := p.IPv6(b)
	return header.PseudoHeaderChecksum(p.Proto, src, h[24:40], uint16(p.L4Len))
}
