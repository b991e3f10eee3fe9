package xlat

import (
	"encoding/binary"

	"samepath/dp/header"
)

// inner locates the packet quoted in an ICMP error: its IP header and the
// first bytes of its transport header, which may be cut short.
type inner struct {
	off     int // offset of the quoted IP header in the frame
	hdrLen  int
	l4Off   int // offset of the quoted transport header
	l4Avail int // bytes of it present
	proto   uint8
}

// readInner finds the quoted packet and its tuple. The quoted packet
// must be of the same IP version as the outer one and carry at least the
// transport ports (or the echo identifier).
func readInner(b []byte, p *header.Parsed, in *inner, t *Tuple) bool {
	if p.L4Off == 0 {
		return false
	}
	end := p.L4Off + p.L4Len
	off := p.L4Off + header.ICMPMinLen
	if end > len(b) || off >= end {
		return false
	}
	q := b[off:end]
	in.off = off
	if p.IPVersion == 4 {
		if len(q) < 20 || q[0]>>4 != 4 {
			return false
		}
		in.hdrLen = int(q[0]&0x0f) * 4
		if in.hdrLen < 20 || len(q) < in.hdrLen {
			return false
		}
		if binary.BigEndian.Uint16(q[6:])&0x1fff != 0 {
			return false // a quoted non-first fragment has no ports
		}
		in.proto = q[9]
		t.Src, t.Dst = Map4([4]byte(q[12:16])), Map4([4]byte(q[16:20]))
	} else {
		if len(q) < 40 || q[0]>>4 != 6 {
			return false
		}
		in.hdrLen = 40
		in.proto = q[6]
		t.Src, t.Dst = [16]byte(q[8:24]), [16]byte(q[24:40])
	}
	in.l4Off = off + in.hdrLen
	in.l4Avail = end - in.l4Off
	l4 := b[in.l4Off:end]
	switch in.proto {
	case header.ProtoTCP, header.ProtoUDP:
		if len(l4) < 4 {
			return false
		}
		t.SPort, t.DPort = binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
		return true
	case header.ProtoICMPv4, header.ProtoICMPv6:
		if len(l4) < 8 || (in.proto == header.ProtoICMPv4) != (p.IPVersion == 4) {
			return false
		}
		switch echoKind(in.proto, l4[0]) {
		case echoRequest:
			t.SPort, t.DPort = binary.BigEndian.Uint16(l4[4:]), 0
			return true
		case echoReply:
			t.SPort, t.DPort = 0, binary.BigEndian.Uint16(l4[4:])
			return true
		}
	}
	return false
}

// ReadError returns the tuple and transport protocol of the packet quoted
// in an ICMP error: the flow a NAT looks up. The quoted packet travelled
// the other way than the error does.
func ReadError(b []byte, p *header.Parsed, t *Tuple) (proto uint8, ok bool) {
	var in inner
	if !IsICMPError(b, p) || !readInner(b, p, &in, t) {
		return 0, false
	}
	return in.proto, true
}

// RewriteError translates an ICMP error: the outer addresses become src
// and dst, the quoted packet's addresses and ports become q. The quoted
// IPv4 header checksum and the quoted transport checksum (when the quote
// holds it) are updated incrementally; the ICMP checksum is recomputed
// over the whole message (errors are rare; this keeps it exact even when
// the quote is cut). It reports false, changing nothing, when the packet
// is not a translatable ICMP error or the families differ.
func RewriteError(b []byte, p *header.Parsed, src, dst [16]byte, q *Tuple) bool {
	var in inner
	var old Tuple
	v4 := p.IPVersion == 4
	if !IsICMPError(b, p) || !readInner(b, p, &in, &old) ||
		Is4(&src) != v4 || Is4(&dst) != v4 || Is4(&q.Src) != v4 || Is4(&q.Dst) != v4 {
		return false
	}
	// Outer addresses.
	var outerOld Tuple
	Read4or6(b, p, &outerOld)
	outerNew := Tuple{Src: src, Dst: dst}
	rewriteL3(b, p, &outerOld, &outerNew)

	// Quoted IP header.
	qip := b[in.off:]
	if v4 {
		cs := binary.BigEndian.Uint16(qip[10:])
		cs = header.ChecksumUpdateAddr(cs, old.Src[12:], q.Src[12:])
		cs = header.ChecksumUpdateAddr(cs, old.Dst[12:], q.Dst[12:])
		copy(qip[12:16], q.Src[12:])
		copy(qip[16:20], q.Dst[12:])
		binary.BigEndian.PutUint16(qip[10:], cs)
	} else {
		copy(qip[8:24], q.Src[:])
		copy(qip[24:40], q.Dst[:])
	}
	// Quoted transport header.
	l4 := b[in.l4Off : in.l4Off+in.l4Avail]
	switch in.proto {
	case header.ProtoTCP, header.ProtoUDP:
		csOff := 16
		if in.proto == header.ProtoUDP {
			csOff = 6
		}
		if len(l4) >= csOff+2 {
			cs := binary.BigEndian.Uint16(l4[csOff:])
			if !(in.proto == header.ProtoUDP && cs == 0 && v4) {
				cs = pseudoUpdate(cs, p.IPVersion, &old, q)
				cs = header.ChecksumUpdate16(cs, old.SPort, q.SPort)
				cs = header.ChecksumUpdate16(cs, old.DPort, q.DPort)
				if in.proto == header.ProtoUDP && cs == 0 {
					cs = 0xffff
				}
				binary.BigEndian.PutUint16(l4[csOff:], cs)
			}
		}
		binary.BigEndian.PutUint16(l4[0:], q.SPort)
		binary.BigEndian.PutUint16(l4[2:], q.DPort)
	default:
		id := q.SPort
		if echoKind(in.proto, l4[0]) == echoReply {
			id = q.DPort
		}
		binary.BigEndian.PutUint16(l4[4:], id)
		// The quoted ICMP checksum covered the whole original message,
		// which the quote may not hold: update it incrementally.
		cs := binary.BigEndian.Uint16(l4[2:])
		oldID := old.SPort
		if echoKind(in.proto, l4[0]) == echoReply {
			oldID = old.DPort
		}
		if in.proto == header.ProtoICMPv6 {
			cs = pseudoUpdate(cs, 6, &old, q)
		}
		binary.BigEndian.PutUint16(l4[2:], header.ChecksumUpdate16(cs, oldID, id))
	}
	// The ICMP message's own checksum, recomputed.
	msg := b[p.L4Off : p.L4Off+p.L4Len]
	binary.BigEndian.PutUint16(msg[2:], 0)
	var sum uint32
	if !v4 {
		sum = header.PseudoHeaderChecksum(header.ProtoICMPv6, src[:], dst[:], uint16(len(msg)))
	}
	binary.BigEndian.PutUint16(msg[2:], header.Fold(header.Checksum(msg, sum)))
	return true
}

// Read4or6 fills only t's addresses from the outer IP header.
func Read4or6(b []byte, p *header.Parsed, t *Tuple) {
	if p.IPVersion == 4 {
		ip := p.IPv4(b)
		t.Src, t.Dst = Map4(ip.Src()), Map4(ip.Dst())
		return
	}
	ip := p.IPv6(b)
	t.Src, t.Dst = ip.Src(), ip.Dst()
}
