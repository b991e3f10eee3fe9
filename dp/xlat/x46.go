package xlat

import (
	"encoding/binary"

	"samepath/dp/header"
)

// from4 translates the IPv4 packet in b (RFC 7915 section 4). a holds
// caller-chosen addresses, or nil to map them. hairpin is set for the
// second half of a hairpin (from6 translated into scratch): no TTL
// decrement, source through Pool6 only.
func (t *Translator) from4(b []byte, d *header.Decoded, out []byte, r *Result, a *Addrs) Outcome {
	return t.xlat46(b, d, out, r, a, false)
}

func (t *Translator) xlat46(b []byte, d *header.Decoded, out []byte, r *Result, a *Addrs, hairpin bool) Outcome {
	ip := d.IPv4(b)
	hl := ip.HeaderLen()
	payload := b[d.L3Off+hl : d.IPEnd]
	switch d.Proto {
	case header.ProtoICMPv6:
		return DropICMPOtherFamily // RFC 7915 4.1: protocol 58 over IPv4 is dropped
	case header.ProtoHopByHop, header.ProtoRouting, header.ProtoFragment, header.ProtoDstOpts,
		header.ProtoAH, header.ProtoMobility, header.ProtoHIP, header.ProtoShim6:
		// Copied as a next header, IPv6 would parse the payload as an
		// extension header.
		return DropProtocol
	}
	isICMP := d.Proto == header.ProtoICMPv4
	isErr := isICMP && d.L4Off != 0 && header.ICMPv4(payload).IsError()

	// Addresses.
	var src, dst [16]byte
	if a != nil {
		if a.Src.Is4() || a.Dst.Is4() {
			return DropNoMapping
		}
		src, dst = a.Src, a.Dst
	} else {
		var ok bool
		if hairpin {
			src, ok = Embed(t.st.m.pool6, ip.Src()), t.st.m.hasPool6
		} else {
			src, ok = t.st.m.to6(ip.Src())
		}
		if !ok {
			if !isErr {
				return DropNoMapping
			}
			src = t.st.m.pool6Src(ip.Src())
		}
		if dst, ok = t.st.m.to6(ip.Dst()); !ok {
			return DropNoMapping
		}
	}

	ttl := ip.TTL()
	if !hairpin {
		if ttl <= 1 {
			return t.answer4(b, d, out, r, AnswerTimeExceeded, header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded, 0)
		}
		ttl--
	}
	if hl > header.IPv4MinLen && sourceRoute(ip.Options()) {
		return t.answer4(b, d, out, r, AnswerSourceRoute, header.ICMPv4DstUnreachable, 5, 0)
	}
	tc := ip.TOS()
	if t.st.cfg.ResetTrafficClass {
		tc = 0
	}
	if isErr {
		return t.err46(b, d, out, r, a, src, dst, ttl, tc, hairpin)
	}

	ff := ip.FlagsFragOffset()
	df := ff&header.IPv4FlagDF != 0
	frag := d.Fragment
	proto := d.Proto
	if isICMP {
		proto = header.ProtoICMPv6
		if frag {
			return DropFragmentedICMP
		}
		if !isEcho(false, payload[0]) {
			return DropICMPType // RFC 7915 4.2: other queries are dropped
		}
	}
	amend := false
	if d.Proto == header.ProtoUDP && d.L4Off != 0 && header.UDP(payload).Checksum() == 0 {
		if frag || !t.st.cfg.AmendUDPZeroChecksum {
			return t.answer4(b, d, out, r, AnswerUDPZeroChecksum, header.ICMPv4DstUnreachable, header.ICMPv4AdminProhibited, 0)
		}
		amend = true // computed below over the whole datagram, before any split
	}

	fh := 0
	if frag {
		fh = header.IPv6FragmentLen
	}
	size := header.IPv6Len + fh + len(payload)
	split := false
	limit := size
	if df {
		if size > t.st.cfg.IPv6MTU {
			// RFC 7915 4.2 and 6: the MTU the IPv4 sender must use so
			// that the translation fits.
			// (A fragment gains a fragment header too; Jool and Linux
			// still announce the IPv6 MTU minus 20, and so do we.)
			mtu := t.st.cfg.IPv6MTU - header.IPv6Len + header.IPv4MinLen
			return t.answer4(b, d, out, r, AnswerFragNeeded, header.ICMPv4DstUnreachable, header.ICMPv4FragNeeded, uint32(mtu))
		}
	} else if m := min(t.st.cfg.LowestIPv6MTU, t.st.cfg.IPv6MTU); size > m {
		fh = header.IPv6FragmentLen
		split = true
		limit = m
	}

	// The transport header's checksum change, computed once on a copy of
	// its first bytes.
	var sub, add uint32
	if d.L4Off != 0 {
		s4, d4 := ip.Src(), ip.Dst()
		sub = addrSum(s4[:], d4[:])
		add = addrSum(src[:], dst[:])
		if isICMP {
			// ICMPv6 covers a pseudo-header that ICMPv4 does not.
			sub = 0
			add = header.PseudoHeaderChecksum(header.ProtoICMPv6, src[:], dst[:], uint16(len(payload)))
		}
	}

	chunk := len(payload)
	if split {
		chunk = (limit - header.IPv6Len - header.IPv6FragmentLen) &^ 7
	}
	base := int(ff&header.IPv4FragOffsetMask) * 8
	mf := ff&header.IPv4FlagMF != 0
	pos, n := 0, 0
	for start := 0; ; start += chunk {
		end := min(start+chunk, len(payload))
		if n == MaxPackets {
			return DropTooBig
		}
		plen := fh + end - start
		need := d.L3Off + header.IPv6Len + plen
		if pos+need > len(out) {
			return DropNoRoom
		}
		f := out[pos : pos+need]
		l3 := writeL2(b, d, f, header.EtherTypeIPv6)
		h := header.IPv6(f[l3:])
		h.SetVersionClassFlow(tc, 0)
		h.SetPayloadLen(uint16(plen))
		h.SetHopLimit(ttl)
		h.SetSrc(src)
		h.SetDst(dst)
		if fh != 0 {
			h.SetNextHeader(header.ProtoFragment)
			more := mf || end < len(payload)
			header.IPv6Fragment(f[l3+header.IPv6Len:]).Set(proto, uint16((base+start)/8), more, uint32(ip.ID()))
		} else {
			h.SetNextHeader(proto)
		}
		l4 := f[l3+header.IPv6Len+fh:]
		copy(l4, payload[start:end])
		if start == 0 && d.L4Off != 0 {
			if isICMP {
				icmpEcho(l4, true, sub, add)
			} else {
				patchL4(l4, proto, sub, add)
			}
			if amend {
				u := header.UDP(payload[:max(min(int(header.UDP(payload).Length()), len(payload)), header.UDPLen)])
				cs := u.CalculateChecksum(header.PseudoHeaderChecksum(header.ProtoUDP, src[:], dst[:], uint16(len(u))))
				header.UDP(l4).SetChecksum(cs)
			}
		}
		r.Pkts[n] = Packet{Off: pos, Len: need}
		n++
		pos += need
		if end >= len(payload) {
			break
		}
	}
	r.N = n
	switch {
	case hairpin:
		return Hairpinned
	case n > 1:
		return Fragmented46
	}
	return Translated46
}

// sourceRoute reports whether IPv4 options opts hold an unexpired loose
// or strict source route (RFC 791: pointer not past the option's end).
func sourceRoute(opts []byte) bool {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of options
			return false
		case 1: // no operation
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return false // malformed: nothing more to read
		}
		l := int(opts[i+1])
		if (opts[i] == 131 || opts[i] == 137) && l >= 3 && int(opts[i+2]) <= l {
			return true
		}
		i += l
	}
	return false
}

// err46 translates an ICMPv4 error to ICMPv6 (RFC 7915 section 4.2-4.3):
// type and code mapped, the quoted IPv4 packet translated to IPv6
// without a TTL decrement and with its transport checksum adjusted (a
// wrong one stays wrong), and the result cut to 1280 bytes.
func (t *Translator) err46(b []byte, d *header.Decoded, out []byte, r *Result, a *Addrs, src, dst [16]byte, ttl, tc uint8, hairpin bool) Outcome {
	msg := b[d.L4Off:d.IPEnd]
	typ, code, rest, ok := map46(msg, t)
	if !ok {
		return DropICMPType
	}
	in := msg[header.ICMPMinLen:]
	// RFC 4884: a length field counts the original datagram in 32-bit
	// words; an extension structure follows it.
	ext := []byte(nil)
	if l := rfc4884Len4(msg); l > 0 {
		if l*4 > len(in) {
			return DropMalformed
		}
		ext = in[l*4:]
		in = in[:l*4]
		if typ != header.ICMPv6DstUnreachable && typ != header.ICMPv6TimeExceeded {
			// Packet Too Big and Parameter Problem have no length field
			// (RFC 4884 section 4.3): the extension cannot follow.
			ext = nil
		}
	}
	if len(in) < header.IPv4MinLen || in[0]>>4 != 4 {
		return DropMalformed
	}
	ihl := int(in[0]&0x0f) * 4
	if ihl < header.IPv4MinLen || ihl > len(in) {
		return DropMalformed
	}
	qip := header.IPv4(in)
	qsrc, qdst, ok := t.quoteAddrs6(a, qip, hairpin)
	if !ok {
		return DropNoMapping
	}
	qff := qip.FlagsFragOffset()
	qfrag := qff&(header.IPv4FlagMF|header.IPv4FragOffsetMask) != 0
	qfh := 0
	if qfrag {
		qfh = header.IPv6FragmentLen
	}
	qproto := qip.Protocol()
	if qproto == header.ProtoICMPv4 {
		qproto = header.ProtoICMPv6
	}
	ql4 := in[ihl:]

	l3 := d.L3Off
	// Layout: IPv6 | ICMPv6 (8) | quoted IPv6 (40 + qfh) | quoted L4 |
	// [padding to 8] [extension], the whole capped at 1280 bytes.
	qhdr := header.IPv6Len + qfh
	room := 1280 - header.IPv6Len - header.ICMPMinLen - qhdr
	if room < 0 {
		return DropMalformed
	}
	body := len(ql4)
	extLen := len(ext)
	var origLen int // RFC 4884 length of the translated original datagram, bytes
	if ext != nil {
		// The original datagram part is a multiple of 8 bytes, 128 at
		// least (RFC 4884 sections 4.1, 4.5), then the extension, opaque
		// and possibly unpadded. Like Jool, an odd tail of the datagram
		// is cut rather than padded, and when the extension does not fit
		// beside 128 bytes of datagram it is left out.
		origLen = max((qhdr+body)&^7, 128)
		if origLen+extLen > room+qhdr {
			if keep := room + qhdr - extLen; keep < 128 {
				ext, extLen = nil, 0
			} else {
				origLen = keep &^ 7
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
	need := l3 + header.IPv6Len + mlen
	if need > len(out) {
		return DropNoRoom
	}
	f := out[:need]
	writeL2(b, d, f, header.EtherTypeIPv6)
	h := header.IPv6(f[l3:])
	h.SetVersionClassFlow(tc, 0)
	h.SetPayloadLen(uint16(mlen))
	h.SetNextHeader(header.ProtoICMPv6)
	h.SetHopLimit(ttl)
	h.SetSrc(src)
	h.SetDst(dst)
	m := f[l3+header.IPv6Len:]
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:], rest)
	if ext != nil {
		m[4] = uint8(origLen / 8)
	}
	q := m[header.ICMPMinLen:]
	qh := header.IPv6(q)
	qtc := qip.TOS()
	if t.st.cfg.ResetTrafficClass {
		qtc = 0
	}
	qh.SetVersionClassFlow(qtc, 0)
	tl := int(qip.TotalLen())
	qh.SetPayloadLen(uint16(max(tl-ihl, 0) + qfh))
	qh.SetHopLimit(qip.TTL())
	qh.SetSrc(qsrc)
	qh.SetDst(qdst)
	if qfrag {
		qh.SetNextHeader(header.ProtoFragment)
		header.IPv6Fragment(q[header.IPv6Len:]).Set(qproto, qff&header.IPv4FragOffsetMask, qff&header.IPv4FlagMF != 0, uint32(qip.ID()))
	} else {
		qh.SetNextHeader(qproto)
	}
	ql := q[qhdr:]
	copy(ql, ql4[:body])
	if qff&header.IPv4FragOffsetMask == 0 {
		s4, d4 := qip.Src(), qip.Dst()
		if qproto == header.ProtoICMPv6 {
			if body >= 4 {
				icmpEcho(ql, true, 0, header.PseudoHeaderChecksum(header.ProtoICMPv6, qsrc[:], qdst[:], uint16(max(tl-ihl, 0))))
			}
		} else {
			patchL4(ql[:body], qproto, addrSum(s4[:], d4[:]), addrSum(qsrc[:], qdst[:]))
		}
	}
	if ext != nil {
		clear(q[qhdr+body : origLen])
		copy(q[origLen:], ext)
	}
	binary.BigEndian.PutUint16(m[2:], 0)
	ph := header.PseudoHeaderChecksum(header.ProtoICMPv6, src[:], dst[:], uint16(mlen))
	binary.BigEndian.PutUint16(m[2:], header.Fold(header.Checksum(m[:mlen], ph)))
	r.Pkts[0] = Packet{Off: 0, Len: need}
	r.N = 1
	return Translated46
}

// quoteAddrs6 maps the quoted IPv4 packet's addresses (RFC 7915 4.3).
// In a hairpin the quoted destination is the outer source's
// counterpart, so it goes through Pool6 as that one did.
func (t *Translator) quoteAddrs6(a *Addrs, q header.IPv4, hairpin bool) (src, dst [16]byte, ok bool) {
	if a != nil {
		return a.QSrc, a.QDst, !a.QSrc.Is4() && !a.QDst.Is4()
	}
	s, ok1 := t.st.m.to6(q.Src())
	var dd [16]byte
	ok2 := t.st.m.hasPool6
	if hairpin {
		dd = Embed(t.st.m.pool6, q.Dst())
	} else {
		dd, ok2 = t.st.m.to6(q.Dst())
	}
	return s, dd, ok1 && ok2
}

// rfc4884Len4 is the RFC 4884 length of an ICMPv4 error (in 32-bit
// words), for the types that carry one.
func rfc4884Len4(msg []byte) int {
	switch msg[0] {
	case header.ICMPv4DstUnreachable, header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
		return int(msg[5])
	}
	return 0
}

// map46 maps an ICMPv4 error's type, code and bytes 4..7 to ICMPv6 (RFC
// 7915 section 4.2).
func map46(msg []byte, t *Translator) (typ, code uint8, rest uint32, ok bool) {
	c := msg[1]
	switch msg[0] {
	case header.ICMPv4DstUnreachable:
		typ = header.ICMPv6DstUnreachable
		switch c {
		case 0, 1, 5, 6, 7, 8, 11, 12:
			return typ, header.ICMPv6NoRoute, 0, true
		case 9, 10, 13, 15:
			return typ, header.ICMPv6AdminProhibited, 0, true
		case 3:
			return typ, header.ICMPv6PortUnreachable, 0, true
		case 2: // protocol unreachable: parameter problem at the next header
			return header.ICMPv6ParamProblem, 1, 6, true
		case 4:
			return header.ICMPv6PacketTooBig, 0, t.mtu46(msg), true
		}
	case header.ICMPv4TimeExceeded:
		return header.ICMPv6TimeExceeded, c, 0, c <= 1
	case header.ICMPv4ParamProblem:
		if c != 0 && c != 2 {
			return 0, 0, 0, false
		}
		p, ok := ptr46(msg[4])
		return header.ICMPv6ParamProblem, 0, uint32(p), ok
	}
	return 0, 0, 0, false
}

// ptr46 maps an IPv4 header pointer to the IPv6 field (RFC 7915 4.2
// figure 3).
func ptr46(p uint8) (uint8, bool) {
	switch {
	case p <= 1:
		return p, true
	case p <= 3:
		return 4, true
	case p == 8:
		return 7, true
	case p == 9:
		return 6, true
	case p >= 12 && p <= 15:
		return 8, true
	case p >= 16 && p <= 19:
		return 24, true
	}
	return 0, false
}

// plateaus are RFC 1191 section 7's MTU plateaus.
var plateaus = [...]int{65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68}

// mtu46 is the MTU of the Packet Too Big that translates a Fragmentation
// Needed (RFC 7915 4.2): the IPv4 MTU plus 20 (or, when a router sent 0,
// the plateau below the quoted total length), no more than either side's
// MTU allows, and never below 1280.
func (t *Translator) mtu46(msg []byte) uint32 {
	mtu := int(binary.BigEndian.Uint16(msg[6:]))
	if mtu == 0 && len(msg) >= header.ICMPMinLen+4 {
		tl := int(binary.BigEndian.Uint16(msg[header.ICMPMinLen+2:]))
		mtu = 68
		for _, p := range plateaus {
			if p < tl {
				mtu = p
				break
			}
		}
	}
	mtu = min(mtu+20, t.st.cfg.IPv6MTU, t.st.cfg.IPv4MTU+20)
	return uint32(max(mtu, 1280))
}
