package header

import (
	"encoding/binary"
	"net/netip"
)

// Addr16 is an IP address as 16 bytes: IPv6 as is, IPv4 as the
// IPv4-mapped address ::ffff:a.b.c.d. It is comparable and holds no
// pointer, so it can sit in packed hash keys (unlike netip.Addr, whose
// zone is a pointer).
type Addr16 [16]byte

// v4prefix is the first 12 bytes of an IPv4-mapped address.
var v4prefix = [12]byte{10: 0xff, 11: 0xff}

// Addr16From returns a as 16 bytes, mapping IPv4 to ::ffff:a.b.c.d.
// The zone of a scoped IPv6 address is dropped.
func Addr16From(a netip.Addr) Addr16 { return Addr16(a.As16()) }

// Addr16V4 returns the IPv4-mapped form of the IPv4 address b.
func Addr16V4(b [4]byte) Addr16 {
	var a Addr16
	copy(a[:12], v4prefix[:])
	copy(a[12:], b[:])
	return a
}

// Is4 reports whether a is an IPv4-mapped address.
func (a Addr16) Is4() bool { return [12]byte(a[:12]) == v4prefix }

// Addr returns a as a netip.Addr, IPv4-mapped addresses as IPv4.
func (a Addr16) Addr() netip.Addr { return netip.AddrFrom16(a).Unmap() }

func (a Addr16) String() string { return a.Addr().String() }

// Tuple is a packet's flow identity, packed: addresses, transport ports
// and protocol. For ICMP echo the identifier stands in for a port: it is
// SPort of a request and DPort of a reply, the other port being 0.
//
// It is 40 bytes, comparable and holds no pointer (Tailscale's
// net/flowtrack): the gateway's flow table uses it as its key as it is
// (nat.FlowKey), so a packet's tuple is decoded once and never converted.
// The padding is a blank field, so == ignores it.
type Tuple struct {
	Src, Dst     Addr16
	SPort, DPort uint16
	Proto        uint8
	_            [3]byte
}

// Kind is what Decode makes of a parsed IP packet.
type Kind uint8

const (
	// KindOpaque: nothing a NAT can translate: a non-first fragment, a
	// protocol other than TCP, UDP and ICMP, ICMP of the other family
	// (protocol 58 over IPv4, 1 over IPv6), an ICMP type that is neither
	// echo nor error, or an ICMP error whose quote cannot be read. Only
	// the tuple's addresses and protocol are set.
	KindOpaque Kind = iota
	// KindFlow: TCP, UDP or ICMP echo; the tuple's ports are set.
	KindFlow
	// KindICMPError: an ICMP error of the packet's own family quoting a
	// packet of that family with its ports; Decoded.Quote is set.
	KindICMPError
)

// Quote locates the packet quoted in an ICMP error (RFC 792, RFC 4443):
// its IP header and as much of its transport header as the error holds,
// at least its ports (or echo identifier). Offsets are into the frame.
type Quote struct {
	Off     int   // the quoted IP header
	HdrLen  int   // its length
	L4Off   int   // the quoted transport header
	L4Avail int   // bytes of it present (>= 4; >= 8 for ICMP)
	Tuple   Tuple // the quoted packet's addresses, ports and protocol
}

// Decoded is one packet decoded once: Parse's offsets, then the tuple and
// the few fields a NAT branches on. Everything in it was read within the
// lengths Parse checked.
type Decoded struct {
	Parsed
	Kind     Kind
	TCPFlags uint8 // TCP only
	Tuple    Tuple // addresses and Proto for every IP packet, ports for KindFlow
	Quote    Quote // KindICMPError only
}

// Decode parses frame b into d (which it overwrites) and, for an IP
// packet, reads its tuple. It reads only bytes that Parse bounded, so it
// never panics whatever b holds, and it does not allocate. d is only
// meaningful when the verdict is OK; IPVersion 0 means "not IP".
func Decode(b []byte, d *Decoded) Verdict {
	if v := Parse(b, &d.Parsed); v != OK {
		return v
	}
	d.Kind, d.TCPFlags, d.Quote = KindOpaque, 0, Quote{}
	d.Tuple = Tuple{Proto: d.Proto}
	switch d.IPVersion {
	case 4:
		ip := IPv4(b[d.L3Off:d.IPEnd])
		d.Tuple.Src, d.Tuple.Dst = Addr16V4(ip.Src()), Addr16V4(ip.Dst())
	case 6:
		ip := IPv6(b[d.L3Off:d.IPEnd])
		d.Tuple.Src, d.Tuple.Dst = ip.Src(), ip.Dst()
	default:
		return OK
	}
	if d.L4Off == 0 {
		return OK // a non-first fragment, or no next header
	}
	l4 := b[d.L4Off : d.L4Off+d.L4Len]
	switch d.Proto {
	case ProtoTCP:
		d.Tuple.SPort, d.Tuple.DPort = binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
		d.TCPFlags = TCP(l4).Flags()
		d.Kind = KindFlow
	case ProtoUDP:
		d.Tuple.SPort, d.Tuple.DPort = binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
		d.Kind = KindFlow
	case ProtoICMPv4, ProtoICMPv6:
		if !ICMPOfFamily(d.Proto, d.IPVersion) {
			return OK // Parse checked no length for it: opaque
		}
		if echoID(d.Proto, l4, &d.Tuple) {
			d.Kind = KindFlow
			return OK
		}
		if icmpIsError(d.Proto, l4[0]) && readQuote(b, &d.Parsed, &d.Quote) {
			d.Kind = KindICMPError
		}
	}
	return OK
}

// ICMPOfFamily reports whether ICMP protocol proto belongs to IP version
// v: ICMPv4 (1) over IPv4, ICMPv6 (58) over IPv6. Any other pairing is
// just an unknown protocol to that IP version.
func ICMPOfFamily(proto, v uint8) bool {
	return (proto == ProtoICMPv4 && v == 4) || (proto == ProtoICMPv6 && v == 6)
}

// IsEchoReply reports whether the ICMP message type typ of protocol
// proto is an echo reply (whose identifier is the tuple's DPort).
func IsEchoReply(proto, typ uint8) bool {
	return (proto == ProtoICMPv4 && typ == ICMPv4EchoReply) || (proto == ProtoICMPv6 && typ == ICMPv6EchoReply)
}

// echoID sets t's ports from an echo request or reply (msg is at least
// ICMPMinLen bytes) and reports whether msg is one.
func echoID(proto uint8, msg []byte, t *Tuple) bool {
	id := binary.BigEndian.Uint16(msg[4:])
	switch {
	case (proto == ProtoICMPv4 && msg[0] == ICMPv4Echo) || (proto == ProtoICMPv6 && msg[0] == ICMPv6EchoRequest):
		t.SPort, t.DPort = id, 0
		return true
	case IsEchoReply(proto, msg[0]):
		t.SPort, t.DPort = 0, id
		return true
	}
	return false
}

func icmpIsError(proto, typ uint8) bool {
	if proto == ProtoICMPv4 {
		return ICMPv4{typ}.IsError()
	}
	return ICMPv6{typ}.IsError()
}

// readQuote finds the packet quoted in the ICMP error that d holds (of
// d's own family, at least ICMPMinLen bytes) and its tuple. The quote
// must be of the outer packet's IP version, and hold the ports (or the
// echo identifier); a quoted non-first fragment has none.
func readQuote(b []byte, d *Parsed, q *Quote) bool {
	end := d.L4Off + d.L4Len
	off := d.L4Off + ICMPMinLen
	if off >= end {
		return false
	}
	in := b[off:end]
	q.Off = off
	t := &q.Tuple
	if d.IPVersion == 4 {
		if len(in) < IPv4MinLen || in[0]>>4 != 4 {
			return false
		}
		q.HdrLen = int(in[0]&0x0f) * 4
		if q.HdrLen < IPv4MinLen || len(in) < q.HdrLen {
			return false
		}
		if binary.BigEndian.Uint16(in[6:])&IPv4FragOffsetMask != 0 {
			return false
		}
		t.Proto = in[9]
		t.Src, t.Dst = Addr16V4([4]byte(in[12:16])), Addr16V4([4]byte(in[16:20]))
	} else {
		if len(in) < IPv6Len || in[0]>>4 != 6 {
			return false
		}
		q.HdrLen = IPv6Len
		t.Proto = in[6]
		t.Src, t.Dst = Addr16(in[8:24]), Addr16(in[24:40])
	}
	q.L4Off = off + q.HdrLen
	q.L4Avail = end - q.L4Off
	l4 := b[q.L4Off:end]
	switch t.Proto {
	case ProtoTCP, ProtoUDP:
		if len(l4) < 4 {
			return false
		}
		t.SPort, t.DPort = binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
		return true
	case ProtoICMPv4, ProtoICMPv6:
		if len(l4) < ICMPMinLen || !ICMPOfFamily(t.Proto, d.IPVersion) {
			return false
		}
		return echoID(t.Proto, l4, t)
	}
	return false
}
