package rewrite

import (
	"encoding/binary"

	"samepath/dp/header"
)

// Flow sets the packet's addresses and ports to to, updating checksums
// incrementally from d.Tuple, which must be what header.Decode read with
// the packet unchanged since; d.Tuple then holds to's addresses and
// ports. The address family must not change. It reports false, changing
// nothing, if d is not a KindFlow packet or to's family differs from the
// packet's. For ICMP echo only the identifier is rewritten: to.SPort of
// a request, to.DPort of a reply.
func Flow(b []byte, d *header.Decoded, to *header.Tuple) bool {
	v4 := d.IPVersion == 4
	if d.Kind != header.KindFlow || to.Src.Is4() != v4 || to.Dst.Is4() != v4 {
		return false
	}
	old := &d.Tuple
	rewriteL3(b, &d.Parsed, old.Src, old.Dst, to.Src, to.Dst)
	l4 := b[d.L4Off : d.L4Off+d.L4Len]
	switch d.Proto {
	case header.ProtoTCP, header.ProtoUDP:
		csOff := 16
		if d.Proto == header.ProtoUDP {
			csOff = 6
		}
		cs := binary.BigEndian.Uint16(l4[csOff:])
		binary.BigEndian.PutUint16(l4[0:], to.SPort)
		binary.BigEndian.PutUint16(l4[2:], to.DPort)
		if d.Proto == header.ProtoUDP && cs == 0 && v4 {
			break // no checksum (RFC 768): leave it absent
		}
		cs = pseudoUpdate(cs, v4, old.Src, old.Dst, to.Src, to.Dst)
		cs = header.ChecksumUpdate16(cs, old.SPort, to.SPort)
		cs = header.ChecksumUpdate16(cs, old.DPort, to.DPort)
		if d.Proto == header.ProtoUDP && cs == 0 {
			cs = 0xffff // 0 means "no checksum": send the other zero
		}
		binary.BigEndian.PutUint16(l4[csOff:], cs)
	default: // ICMP echo
		cs := binary.BigEndian.Uint16(l4[2:])
		if !v4 {
			cs = pseudoUpdate(cs, false, old.Src, old.Dst, to.Src, to.Dst)
		}
		oldID, newID := old.SPort, to.SPort
		if header.IsEchoReply(d.Proto, l4[0]) {
			oldID, newID = old.DPort, to.DPort
		}
		cs = header.ChecksumUpdate16(cs, oldID, newID)
		binary.BigEndian.PutUint16(l4[4:], newID)
		binary.BigEndian.PutUint16(l4[2:], cs)
	}
	old.Src, old.Dst, old.SPort, old.DPort = to.Src, to.Dst, to.SPort, to.DPort
	return true
}

// rewriteL3 sets the IP addresses from src, dst to nsrc, ndst, updating
// the IPv4 header checksum.
func rewriteL3(b []byte, p *header.Parsed, src, dst, nsrc, ndst header.Addr16) {
	if p.IPVersion == 4 {
		ip := p.IPv4(b)
		cs := ip.Checksum()
		cs = header.ChecksumUpdateAddr(cs, src[12:], nsrc[12:])
		cs = header.ChecksumUpdateAddr(cs, dst[12:], ndst[12:])
		ip.SetSrc([4]byte(nsrc[12:]))
		ip.SetDst([4]byte(ndst[12:]))
		ip.SetChecksum(cs)
		return
	}
	ip := p.IPv6(b)
	ip.SetSrc(nsrc)
	ip.SetDst(ndst)
}

// pseudoUpdate updates a transport checksum for the pseudo-header's
// addresses changing from src, dst to nsrc, ndst.
func pseudoUpdate(cs uint16, v4 bool, src, dst, nsrc, ndst header.Addr16) uint16 {
	if v4 {
		cs = header.ChecksumUpdateAddr(cs, src[12:], nsrc[12:])
		return header.ChecksumUpdateAddr(cs, dst[12:], ndst[12:])
	}
	cs = header.ChecksumUpdateAddr(cs, src[:], nsrc[:])
	return header.ChecksumUpdateAddr(cs, dst[:], ndst[:])
}
