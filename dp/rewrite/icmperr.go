package rewrite

import (
	"encoding/binary"

	"samepath/dp/header"
)

// ICMPError rewrites an ICMP error: the outer addresses become src and
// dst, the quoted packet's addresses and ports become q. d must be a
// KindICMPError packet as header.Decode read it (d.Quote locates the
// quoted packet), unchanged since. The quoted IPv4 header checksum and
// the quoted transport checksum (when the quote holds it) are updated
// incrementally; the ICMP checksum is recomputed over the whole message
// (errors are rare; this keeps it exact even when the quote is cut). It
// reports false, changing nothing, when d is no such error or a family
// differs from the packet's.
func ICMPError(b []byte, d *header.Decoded, src, dst header.Addr16, q *header.Tuple) bool {
	v4 := d.IPVersion == 4
	if d.Kind != header.KindICMPError || src.Is4() != v4 || dst.Is4() != v4 || q.Src.Is4() != v4 || q.Dst.Is4() != v4 {
		return false
	}
	in, old := &d.Quote, &d.Quote.Tuple
	rewriteL3(b, &d.Parsed, d.Tuple.Src, d.Tuple.Dst, src, dst)
	d.Tuple.Src, d.Tuple.Dst = src, dst

	// Quoted IP header.
	qip := b[in.Off : in.Off+in.HdrLen]
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
	// Quoted transport header: Decode saw at least its ports (TCP, UDP)
	// or its first eight bytes (ICMP echo).
	l4 := b[in.L4Off : in.L4Off+in.L4Avail]
	switch old.Proto {
	case header.ProtoTCP, header.ProtoUDP:
		csOff := 16
		if old.Proto == header.ProtoUDP {
			csOff = 6
		}
		if len(l4) >= csOff+2 {
			cs := binary.BigEndian.Uint16(l4[csOff:])
			if !(old.Proto == header.ProtoUDP && cs == 0 && v4) {
				cs = pseudoUpdate(cs, v4, old.Src, old.Dst, q.Src, q.Dst)
				cs = header.ChecksumUpdate16(cs, old.SPort, q.SPort)
				cs = header.ChecksumUpdate16(cs, old.DPort, q.DPort)
				if old.Proto == header.ProtoUDP && cs == 0 {
					cs = 0xffff
				}
				binary.BigEndian.PutUint16(l4[csOff:], cs)
			}
		}
		binary.BigEndian.PutUint16(l4[0:], q.SPort)
		binary.BigEndian.PutUint16(l4[2:], q.DPort)
	default:
		oldID, id := old.SPort, q.SPort
		if header.IsEchoReply(old.Proto, l4[0]) {
			oldID, id = old.DPort, q.DPort
		}
		binary.BigEndian.PutUint16(l4[4:], id)
		// The quoted ICMP checksum covered the whole original message,
		// which the quote may not hold: update it incrementally.
		cs := binary.BigEndian.Uint16(l4[2:])
		if !v4 {
			cs = pseudoUpdate(cs, false, old.Src, old.Dst, q.Src, q.Dst)
		}
		binary.BigEndian.PutUint16(l4[2:], header.ChecksumUpdate16(cs, oldID, id))
	}
	old.Src, old.Dst, old.SPort, old.DPort = q.Src, q.Dst, q.SPort, q.DPort
	// The ICMP message's own checksum, recomputed.
	msg := b[d.L4Off : d.L4Off+d.L4Len]
	binary.BigEndian.PutUint16(msg[2:], 0)
	var sum uint32
	if !v4 {
		sum = header.PseudoHeaderChecksum(header.ProtoICMPv6, src[:], dst[:], uint16(len(msg)))
	}
	binary.BigEndian.PutUint16(msg[2:], header.Fold(header.Checksum(msg, sum)))
	return true
}
