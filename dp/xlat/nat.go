package xlat

import (
	"encoding/binary"

	"samepath/dp/header"
)

// Tuple is a packet's addresses and ports. Addresses are 16 bytes, IPv4
// as IPv4-mapped (::ffff:a.b.c.d). For ICMP echo the identifier is the
// source port of a request and the destination port of a reply; the other
// port is 0.
type Tuple struct {
	Src, Dst     [16]byte
	SPort, DPort uint16
}

var v4prefix = [12]byte{10: 0xff, 11: 0xff}

// Map4 returns a as an IPv4-mapped 16-byte address.
func Map4(a [4]byte) (m [16]byte) {
	copy(m[:12], v4prefix[:])
	copy(m[12:], a[:])
	return m
}

// Is4 reports whether m is IPv4-mapped.
func Is4(m *[16]byte) bool { return [12]byte(m[:12]) == v4prefix }

// Echo kinds: what the ICMP identifier stands for.
const (
	notEcho = iota
	echoRequest
	echoReply
)

func echoKind(proto uint8, typ uint8) int {
	switch {
	case proto == header.ProtoICMPv4 && typ == header.ICMPv4Echo,
		proto == header.ProtoICMPv6 && typ == header.ICMPv6EchoRequest:
		return echoRequest
	case proto == header.ProtoICMPv4 && typ == header.ICMPv4EchoReply,
		proto == header.ProtoICMPv6 && typ == header.ICMPv6EchoReply:
		return echoReply
	}
	return notEcho
}

// Read fills t from the packet. It reports false when the packet has no
// ports to translate: a non-first fragment, a protocol other than TCP,
// UDP and ICMP echo, or an ICMP error (see IsICMPError).
func Read(b []byte, p *header.Parsed, t *Tuple) bool {
	if p.IPVersion == 4 {
		ip := p.IPv4(b)
		t.Src, t.Dst = Map4(ip.Src()), Map4(ip.Dst())
	} else {
		ip := p.IPv6(b)
		t.Src, t.Dst = ip.Src(), ip.Dst()
	}
	if p.L4Off == 0 {
		return false
	}
	l4 := b[p.L4Off:]
	switch p.Proto {
	case header.ProtoTCP, header.ProtoUDP:
		t.SPort = binary.BigEndian.Uint16(l4[0:])
		t.DPort = binary.BigEndian.Uint16(l4[2:])
		return true
	case header.ProtoICMPv4, header.ProtoICMPv6:
		switch echoKind(p.Proto, l4[0]) {
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

// IsICMPError reports whether the packet is an ICMP error message
// (destination unreachable, time exceeded, packet too big, parameter
// problem) whose embedded packet needs translating too.
func IsICMPError(b []byte, p *header.Parsed) bool {
	if p.L4Off == 0 {
		return false
	}
	switch p.Proto {
	case header.ProtoICMPv4:
		return header.ICMPv4(b[p.L4Off:]).IsError()
	case header.ProtoICMPv6:
		return header.ICMPv6(b[p.L4Off:]).IsError()
	}
	return false
}

// Rewrite sets the packet's addresses and ports to t, updating checksums
// incrementally. The address family must not change. It reports false,
// changing nothing, if the packet is not one Read accepts or t's family
// differs from the packet's.
func Rewrite(b []byte, p *header.Parsed, t *Tuple) bool {
	var old Tuple
	if !Read(b, p, &old) {
		return false
	}
	return RewriteFrom(b, p, &old, t)
}

// RewriteFrom is Rewrite for a caller that has already read the packet's
// tuple: old must be what a Read that returned true filled in, with the
// packet unchanged since. It saves the second read on the hot path.
func RewriteFrom(b []byte, p *header.Parsed, old, t *Tuple) bool {
	if Is4(&t.Src) != (p.IPVersion == 4) || Is4(&t.Dst) != (p.IPVersion == 4) {
		return false
	}
	rewriteL3(b, p, old, t)
	l4 := b[p.L4Off:]
	switch p.Proto {
	case header.ProtoTCP, header.ProtoUDP:
		csOff := 16
		if p.Proto == header.ProtoUDP {
			csOff = 6
		}
		cs := binary.BigEndian.Uint16(l4[csOff:])
		if p.Proto == header.ProtoUDP && cs == 0 && p.IPVersion == 4 {
			// No checksum (RFC 768): leave it absent.
			binary.BigEndian.PutUint16(l4[0:], t.SPort)
			binary.BigEndian.PutUint16(l4[2:], t.DPort)
			return true
		}
		cs = pseudoUpdate(cs, p.IPVersion, old, t)
		cs = header.ChecksumUpdate16(cs, old.SPort, t.SPort)
		cs = header.ChecksumUpdate16(cs, old.DPort, t.DPort)
		if p.Proto == header.ProtoUDP && cs == 0 {
			cs = 0xffff // 0 means "no checksum": send the other zero
		}
		binary.BigEndian.PutUint16(l4[0:], t.SPort)
		binary.BigEndian.PutUint16(l4[2:], t.DPort)
		binary.BigEndian.PutUint16(l4[csOff:], cs)
	default: // ICMP echo
		cs := binary.BigEndian.Uint16(l4[2:])
		if p.Proto == header.ProtoICMPv6 {
			cs = pseudoUpdate(cs, 6, old, t)
		}
		oldID, newID := old.SPort, t.SPort
		if echoKind(p.Proto, l4[0]) == echoReply {
			oldID, newID = old.DPort, t.DPort
		}
		cs = header.ChecksumUpdate16(cs, oldID, newID)
		binary.BigEndian.PutUint16(l4[4:], newID)
		binary.BigEndian.PutUint16(l4[2:], cs)
	}
	return true
}

// rewriteL3 sets the IP addresses, updating the IPv4 header checksum.
func rewriteL3(b []byte, p *header.Parsed, old, t *Tuple) {
	if p.IPVersion == 4 {
		ip := p.IPv4(b)
		cs := ip.Checksum()
		cs = header.ChecksumUpdateAddr(cs, old.Src[12:], t.Src[12:])
		cs = header.ChecksumUpdateAddr(cs, old.Dst[12:], t.Dst[12:])
		ip.SetSrc([4]byte(t.Src[12:]))
		ip.SetDst([4]byte(t.Dst[12:]))
		ip.SetChecksum(cs)
		return
	}
	ip := p.IPv6(b)
	ip.SetSrc(t.Src)
	ip.SetDst(t.Dst)
}

// pseudoUpdate updates a transport checksum for the pseudo-header's
// addresses changing from old to t.
func pseudoUpdate(cs uint16, version uint8, old, t *Tuple) uint16 {
	if version == 4 {
		cs = header.ChecksumUpdateAddr(cs, old.Src[12:], t.Src[12:])
		return header.ChecksumUpdateAddr(cs, old.Dst[12:], t.Dst[12:])
	}
	cs = header.ChecksumUpdateAddr(cs, old.Src[:], t.Src[:])
	return header.ChecksumUpdateAddr(cs, old.Dst[:], t.Dst[:])
}
