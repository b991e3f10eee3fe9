package xlat

import (
	"encoding/binary"

	"samepath/dp/header"
)

// ipv6Walk is what walkExt learns of an IPv6 packet's extension headers.
type ipv6Walk struct {
	proto     uint8 // the upper-layer protocol (or 44's next header for a non-first fragment)
	off       int   // where the upper-layer data starts (relative to the IPv6 header)
	fragOff   int   // the fragment header, 0 if none
	segLeft   int   // offset of a nonzero Segments Left field, 0 if none
	afterFrag bool  // an extension header follows the fragment header
}

func isExt(nh uint8) bool {
	return nh == header.ProtoHopByHop || nh == header.ProtoRouting || nh == header.ProtoDstOpts || nh == header.ProtoFragment
}

// walkExt walks the hop-by-hop, routing, destination options and
// fragment headers of IPv6 packet ip (the fixed header and what follows,
// cut to what is present). It stops at anything else (the upper layer,
// or headers RFC 7915 copies as an opaque protocol: AH, ESP, ...) and
// after the fragment header of a non-first fragment. It reports false
// if a header runs past ip.
func walkExt(ip []byte, w *ipv6Walk) bool {
	*w = ipv6Walk{}
	nh := ip[6]
	cur := header.IPv6Len
	for n := 0; isExt(nh); n++ {
		if n > header.MaxExtHeaders || len(ip)-cur < 8 {
			return false
		}
		l := (int(ip[cur+1]) + 1) * 8
		switch nh {
		case header.ProtoFragment:
			if w.fragOff != 0 {
				return false
			}
			l = 8
			w.fragOff = cur
		case header.ProtoRouting:
			if ip[cur+3] != 0 && w.segLeft == 0 {
				w.segLeft = cur + 3
			}
		}
		if w.fragOff != 0 && w.fragOff != cur {
			w.afterFrag = true
		}
		if len(ip)-cur < l {
			return false
		}
		nh = ip[cur]
		cur += l
		if w.fragOff == cur-8 && nh != header.ProtoFragment && header.IPv6Fragment(ip[cur-8:]).FragOffset() != 0 {
			if isExt(nh) {
				w.afterFrag = true
			}
			break // non-first fragment: what follows is data
		}
	}
	w.proto, w.off = nh, cur
	return true
}

// from6 translates the IPv6 packet in b (RFC 7915 section 5).
func (t *Translator) from6(b []byte, d *header.Decoded, out []byte, r *Result, a *Addrs) Outcome {
	ipb := b[d.L3Off:d.IPEnd]
	ip := header.IPv6(ipb)
	var w ipv6Walk
	if !walkExt(ipb, &w) {
		return DropMalformed
	}
	if w.proto == header.ProtoICMPv4 {
		return DropICMPOtherFamily
	}
	payload := ipb[w.off:]
	first := w.fragOff == 0 || header.IPv6Fragment(ipb[w.fragOff:]).FragOffset() == 0
	// An atomic fragment (offset 0, no more fragments) is no fragment,
	// but its identification is copied all the same.
	frag := w.fragOff != 0 && !(first && !header.IPv6Fragment(ipb[w.fragOff:]).More())
	isICMP := w.proto == header.ProtoICMPv6
	hasL4 := first && (w.proto == header.ProtoTCP || w.proto == header.ProtoUDP || isICMP)
	if hasL4 && w.off+d.L3Off != d.L4Off {
		return DropMalformed // cannot happen: Parse walked the same headers
	}
	isErr := isICMP && hasL4 && header.ICMPv6(payload).IsError()

	var src4, dst4 [4]byte
	if a != nil {
		if !a.Src.Is4() || !a.Dst.Is4() {
			return DropNoMapping
		}
		src4, dst4 = [4]byte(a.Src[12:]), [4]byte(a.Dst[12:])
	} else {
		s, d6 := ip.Src(), ip.Dst()
		var ok bool
		if src4, ok = t.st.m.to4(&s); !ok {
			if !isErr {
				return DropNoMapping
			}
			src4 = t.st.m.pool4Src(&s)
		}
		if dst4, ok = t.st.m.to4(&d6); !ok {
			return DropNoMapping
		}
	}

	hl := ip.HopLimit()
	if hl <= 1 {
		return t.answer6(b, d, out, r, AnswerTimeExceeded, header.ICMPv6TimeExceeded, header.ICMPv6HopLimitExceeded, 0)
	}
	if w.afterFrag {
		return t.answer6(b, d, out, r, AnswerExtAfterFrag, header.ICMPv6DstUnreachable, header.ICMPv6AdminProhibited, 0)
	}
	if w.segLeft != 0 {
		return t.answer6(b, d, out, r, AnswerRoutingHeader, header.ICMPv6ParamProblem, 0, uint32(w.segLeft))
	}
	if a == nil && t.st.cfg.EAMHairpin && !t.inHairpin && t.st.m.inEAM4(dst4) {
		return t.hairpin(b, d, out, r)
	}
	tos := ip.TrafficClass()
	if t.st.cfg.ResetTOS {
		tos = t.st.cfg.NewTOS
	}
	if isErr {
		return t.err64(b, d, out, r, a, &w, src4, dst4, hl-1, tos)
	}
	proto := w.proto
	if isICMP {
		proto = header.ProtoICMPv4
		if frag {
			return DropFragmentedICMP
		}
		if !isEcho(true, payload[0]) {
			return DropICMPType // RFC 7915 5.2: MLD, ND and other informational messages
		}
	}
	if hasL4 && proto == header.ProtoUDP && header.UDP(payload).Checksum() == 0 {
		return DropUDPZeroChecksum6
	}
	if !frag && hasL4 && proto == header.ProtoUDP && int(header.UDP(payload).Length()) > len(payload) {
		// An atomic fragment is a whole datagram: the UDP length that
		// Parse let pass for a first fragment must fit.
		return DropMalformed
	}
	size := header.IPv4MinLen + len(payload)
	if size > t.st.cfg.IPv4MTU {
		if len(ipb) <= 1280 {
			// IPv6 promises 1280 bytes: a Packet Too Big below that is
			// useless, and the translator does not fragment IPv4.
			return DropTooBig
		}
		mtu := max(t.st.cfg.IPv4MTU+header.IPv6Len-header.IPv4MinLen, 1280)
		return t.answer6(b, d, out, r, AnswerPacketTooBig, header.ICMPv6PacketTooBig, 0, uint32(mtu))
	}
	need := d.L3Off + size
	if need > len(out) {
		return DropNoRoom
	}
	f := out[:need]
	l3 := writeL2(b, d, f, header.EtherTypeIPv4)
	h := header.IPv4(f[l3:])
	h.SetVersionIHL(header.IPv4MinLen)
	h.SetTOS(tos)
	h.SetTotalLen(uint16(size))
	id, ff := t.fragFields(ipb, &w, size)
	h.SetID(id)
	h.SetFlagsFragOffset(ff)
	h.SetTTL(hl - 1)
	h.SetProtocol(proto)
	h.SetSrc(src4)
	h.SetDst(dst4)
	h.SetChecksum(0)
	h.SetChecksum(h.CalculateChecksum())
	l4 := f[l3+header.IPv4MinLen:]
	copy(l4, payload)
	if hasL4 {
		s6, d6 := ip.Src(), ip.Dst()
		if isICMP {
			icmpEcho(l4, false, header.PseudoHeaderChecksum(header.ProtoICMPv6, s6[:], d6[:], uint16(len(payload))), 0)
		} else {
			patchL4(l4, proto, addrSum(s6[:], d6[:]), addrSum(src4[:], dst4[:]))
		}
	}
	r.Pkts[0] = Packet{Off: 0, Len: need}
	r.N = 1
	return Translated64
}

// hairpin translates an IPv6 packet whose IPv4 destination is an EAM
// address back to IPv6 (RFC 7757 appendix B.1): into the scratch buffer
// as IPv4, then from there with the source through Pool6.
func (t *Translator) hairpin(b []byte, d *header.Decoded, out []byte, r *Result) Outcome {
	var r1 Result
	o := t.from6Hairpin(b, d, &r1)
	if o.Answered() {
		// The first half's answer (to the IPv6 sender) is in scratch.
		p := r1.Pkts[0]
		if p.Len > len(out) {
			return DropNoRoom
		}
		copy(out, t.scratch[p.Off:p.Off+p.Len])
		r.Pkts[0], r.N = Packet{Off: 0, Len: p.Len}, 1
		return o
	}
	if o != Translated64 {
		return o
	}
	f := t.scratch[r1.Pkts[0].Off : r1.Pkts[0].Off+r1.Pkts[0].Len]
	var d2 header.Decoded
	if header.Decode(f, &d2) != header.OK {
		return DropMalformed
	}
	switch o = t.xlat46(f, &d2, out, r, nil, true); {
	case o == AnswerFragNeeded:
		// Too big for the IPv6 side on the way back: the IPv6 sender
		// hears it as a Packet Too Big.
		return t.answer6(b, d, out, r, AnswerPacketTooBig, header.ICMPv6PacketTooBig, 0, uint32(t.st.cfg.IPv6MTU))
	case o.Answered():
		r.N = 0
		return DropHairpin
	}
	return o
}

// from6Hairpin is the first half of a hairpin: IPv6 to IPv4 into scratch
// with EAM hairpinning off.
func (t *Translator) from6Hairpin(b []byte, d *header.Decoded, r *Result) Outcome {
	t.inHairpin = true
	o := t.from6(b, d, t.scratch, r, nil)
	t.inHairpin = false
	return o
}

// err64 translates an ICMPv6 error to ICMPv4 (RFC 7915 section 5.2-5.3),
// cut to 576 bytes.
func (t *Translator) err64(b []byte, d *header.Decoded, out []byte, r *Result, a *Addrs, ow *ipv6Walk, src4, dst4 [4]byte, ttl, tos uint8) Outcome {
	msg := b[d.L4Off:d.IPEnd]
	typ, code, rest, ok := t.map64(msg)
	if !ok {
		return DropICMPType
	}
	in := msg[header.ICMPMinLen:]
	var ext []byte
	if l := rfc4884Len6(msg); l > 0 {
		if l*8 > len(in) {
			return DropMalformed
		}
		ext = in[l*8:]
		in = in[:l*8]
	}
	if len(in) < header.IPv6Len || in[0]>>4 != 6 {
		return DropMalformed
	}
	var w ipv6Walk
	if !walkExt(in, &w) {
		return DropMalformed
	}
	qip := header.IPv6(in)
	var qsrc, qdst [4]byte
	if a != nil {
		if !a.QSrc.Is4() || !a.QDst.Is4() {
			return DropNoMapping
		}
		qsrc, qdst = [4]byte(a.QSrc[12:]), [4]byte(a.QDst[12:])
	} else {
		s, dd := qip.Src(), qip.Dst()
		var ok1, ok2 bool
		qsrc, ok1 = t.st.m.to4(&s)
		qdst, ok2 = t.st.m.to4(&dd)
		if !ok1 || !ok2 {
			return DropNoMapping
		}
	}
	qproto := w.proto
	if qproto == header.ProtoICMPv6 {
		qproto = header.ProtoICMPv4
	}
	ql4 := in[w.off:]
	qtot := header.IPv4MinLen + int(qip.PayloadLen()) - (w.off - header.IPv6Len)
	l3 := d.L3Off
	qhdr := header.IPv4MinLen
	room := 576 - header.IPv4MinLen - header.ICMPMinLen - qhdr
	body := len(ql4)
	extLen := len(ext)
	origLen := 0
	if ext != nil {
		// The original datagram part is a multiple of 4 bytes, 128 at
		// least (RFC 4884 sections 4.1, 4.5), then the extension, opaque
		// and possibly unpadded. Like Jool, an odd tail of the datagram
		// is cut rather than padded, and when the extension does not fit
		// beside 128 bytes of datagram it is left out.
		origLen = max((qhdr+body)&^3, 128)
		if origLen+extLen > room+qhdr {
			if keep := room + qhdr - extLen; keep < 128 {
				ext, extLen = nil, 0
			} else {
				origLen = keep &^ 3
			}
		}
		if ext != nil {
			body = min(body, origLen-qhdr)
		}
	}
	if ext == nil {
		body = min(body, room)
	}
	qlen := qhdr + body
	if ext != nil {
		qlen = origLen + extLen
	}
	mlen := header.ICMPMinLen + qlen
	size := header.IPv4MinLen + mlen
	need := l3 + size
	if need > len(out) {
		return DropNoRoom
	}
	f := out[:need]
	writeL2(b, d, f, header.EtherTypeIPv4)
	h := header.IPv4(f[l3:])
	h.SetVersionIHL(header.IPv4MinLen)
	h.SetTOS(tos)
	h.SetTotalLen(uint16(size))
	id, ff := t.fragFields(b[d.L3Off:d.IPEnd], ow, size)
	h.SetID(id)
	h.SetFlagsFragOffset(ff)
	h.SetTTL(ttl)
	h.SetProtocol(header.ProtoICMPv4)
	h.SetSrc(src4)
	h.SetDst(dst4)
	h.SetChecksum(0)
	h.SetChecksum(h.CalculateChecksum())
	m := f[l3+header.IPv4MinLen:]
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:], rest)
	if ext != nil {
		m[5] = uint8(origLen / 4)
	}
	q := m[header.ICMPMinLen:]
	qh := header.IPv4(q)
	qh.SetVersionIHL(header.IPv4MinLen)
	qtos := qip.TrafficClass()
	if t.st.cfg.ResetTOS {
		qtos = t.st.cfg.NewTOS
	}
	qh.SetTOS(qtos)
	qh.SetTotalLen(uint16(min(max(qtot, 0), 65535)))
	firstQ := true
	if w.fragOff != 0 {
		fr := header.IPv6Fragment(in[w.fragOff:])
		qh.SetID(uint16(fr.ID()))
		ff := fr.FragOffset() & header.IPv4FragOffsetMask
		if fr.More() {
			ff |= header.IPv4FlagMF
		}
		firstQ = fr.FragOffset() == 0
		qh.SetFlagsFragOffset(ff)
	} else if qtot > 1260 {
		qh.SetID(0)
		qh.SetFlagsFragOffset(header.IPv4FlagDF)
	} else {
		qh.SetID(0)
		qh.SetFlagsFragOffset(0)
	}
	qh.SetTTL(qip.HopLimit())
	qh.SetProtocol(qproto)
	qh.SetSrc(qsrc)
	qh.SetDst(qdst)
	qh.SetChecksum(0)
	qh.SetChecksum(qh.CalculateChecksum())
	ql := q[qhdr:]
	copy(ql, ql4[:body])
	if firstQ {
		s6, d6 := qip.Src(), qip.Dst()
		if qproto == header.ProtoICMPv4 {
			if body >= 4 {
				icmpEcho(ql, false, header.PseudoHeaderChecksum(header.ProtoICMPv6, s6[:], d6[:], uint16(max(qtot-header.IPv4MinLen, 0))), 0)
			}
		} else {
			patchL4(ql[:body], qproto, addrSum(s6[:], d6[:]), addrSum(qsrc[:], qdst[:]))
		}
	}
	if ext != nil {
		clear(q[qhdr+body : origLen])
		copy(q[origLen:], ext)
	}
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[2:], header.Fold(header.Checksum(m[:mlen], 0)))
	r.Pkts[0] = Packet{Off: 0, Len: need}
	r.N = 1
	return Translated64
}

// fragFields are the IPv4 identification and flags/offset word of the
// translation of IPv6 packet ip (walked into w) of IPv4 size size (RFC
// 7915 5.1): from the fragment header when there is one (low 16 bits of
// the ID, MF and offset copied, DF clear); otherwise DF set above 1260
// bytes with ID 0 (an atomic datagram, RFC 6864), else a generated ID.
func (t *Translator) fragFields(ip []byte, w *ipv6Walk, size int) (id, ff uint16) {
	if w.fragOff != 0 {
		fr := header.IPv6Fragment(ip[w.fragOff:])
		ff = fr.FragOffset() & header.IPv4FragOffsetMask
		if fr.More() {
			ff |= header.IPv4FlagMF
		}
		return uint16(fr.ID()), ff
	}
	if size > 1260 {
		return 0, header.IPv4FlagDF
	}
	return t.nextID(), 0
}

// rfc4884Len6 is the RFC 4884 length of an ICMPv6 error (in 64-bit
// words), for the types that carry one.
func rfc4884Len6(msg []byte) int {
	switch msg[0] {
	case header.ICMPv6DstUnreachable, header.ICMPv6TimeExceeded:
		return int(msg[4])
	}
	return 0
}

// map64 maps an ICMPv6 error's type, code and bytes 4..7 to ICMPv4 (RFC
// 7915 section 5.2).
func (t *Translator) map64(msg []byte) (typ, code uint8, rest uint32, ok bool) {
	c := msg[1]
	switch msg[0] {
	case header.ICMPv6DstUnreachable:
		typ = header.ICMPv4DstUnreachable
		switch c {
		case 0, 2, 3:
			return typ, header.ICMPv4HostUnreachable, 0, true
		case 1:
			return typ, 10, 0, true // communication with destination host administratively prohibited
		case 4:
			return typ, header.ICMPv4PortUnreachable, 0, true
		}
	case header.ICMPv6PacketTooBig:
		mtu := int(binary.BigEndian.Uint32(msg[4:]))
		mtu = min(mtu-20, t.st.cfg.IPv4MTU, t.st.cfg.IPv6MTU-20)
		return header.ICMPv4DstUnreachable, header.ICMPv4FragNeeded, uint32(max(mtu, 68)), true
	case header.ICMPv6TimeExceeded:
		return header.ICMPv4TimeExceeded, c, 0, c <= 1
	case header.ICMPv6ParamProblem:
		switch c {
		case 0:
			p, ok := ptr64(binary.BigEndian.Uint32(msg[4:]))
			return header.ICMPv4ParamProblem, 0, uint32(p) << 24, ok
		case 1:
			return header.ICMPv4DstUnreachable, header.ICMPv4ProtoUnreachable, 0, true
		}
	}
	return 0, 0, 0, false
}

// ptr64 maps an IPv6 header pointer to the IPv4 field (RFC 7915 5.2
// figure 6).
func ptr64(p uint32) (uint8, bool) {
	switch {
	case p <= 1:
		return uint8(p), true
	case p == 4 || p == 5:
		return 2, true
	case p == 6:
		return 9, true
	case p == 7:
		return 8, true
	case p >= 8 && p <= 23:
		return 12, true
	case p >= 24 && p <= 39:
		return 16, true
	}
	return 0, false
}
