package dptest

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"samepath/dp/header"
)

// Builder assembles one Ethernet frame layer by layer and computes every
// length and checksum in Bytes. Start with Frame(); methods return the
// builder for chaining. Field methods (TTL, Flags, Seq, ...) apply to the
// layer they name, whenever they are called. Misuse (TCP without an IP
// layer, an IPv4 address for IPv6) panics with a message: it is a bug in
// the test, not input.
type Builder struct {
	src, dst  [6]byte
	vlan      bool
	tci       uint16
	etherType uint16
	etSet     bool

	ipv     uint8 // 0, 4 or 6
	ipSrc   netip.Addr
	ipDst   netip.Addr
	ttl     uint8
	tos     uint8
	id      uint16
	fragW   uint16 // IPv4 flags+offset word
	ipOpts  []byte
	proto   int // -1: from L4
	flow    uint32
	ext     []ext
	ipCsum  *uint16
	ipTotal *uint16 // override IPv4 total length / IPv6 payload length

	l4       uint8 // 0 none, protoTCP, protoUDP, protoICMP
	sport    uint16
	dport    uint16
	seq, ack uint32
	flags    uint8
	window   uint16
	urgent   uint16
	tcpOpts  []byte
	udpNoCs  bool
	udpLen   *uint16
	icmpType uint8
	icmpCode uint8
	icmpRest uint32
	l4Csum   *uint16

	arp     bool
	arpOp   uint16
	arpSMAC [6]byte
	arpSIP  netip.Addr
	arpTMAC [6]byte
	arpTIP  netip.Addr

	payload []byte
	padTo   int
}

type ext struct {
	typ  uint8
	data []byte // bytes after next-header and length (fragment: all 6)
}

const (
	l4TCP  = 6
	l4UDP  = 17
	l4ICMP = 1 // ICMPv4 or ICMPv6 by IP version
)

// Frame starts a frame with zero MAC addresses and no layers.
func Frame() *Builder { return &Builder{ttl: 64, window: 65535, proto: -1} }

// Eth sets the source and destination MAC addresses.
func (b *Builder) Eth(src, dst [6]byte) *Builder { b.src, b.dst = src, dst; return b }

// VLAN adds one 802.1Q tag with tag control information tci.
func (b *Builder) VLAN(tci uint16) *Builder { b.vlan, b.tci = true, tci; return b }

// EtherType sets the (inner) EtherType, for raw frames; the IP and ARP
// methods set it themselves unless it was set explicitly.
func (b *Builder) EtherType(t uint16) *Builder { b.etherType, b.etSet = t, true; return b }

// IPv4 adds an IPv4 header (TTL 64, ID 0, no flags unless set).
func (b *Builder) IPv4(src, dst netip.Addr) *Builder {
	if !src.Is4() || !dst.Is4() {
		panic(fmt.Sprintf("dptest: IPv4(%v, %v): need IPv4 addresses", src, dst))
	}
	b.ipv, b.ipSrc, b.ipDst = 4, src, dst
	return b
}

// IPv6 adds an IPv6 header (hop limit 64).
func (b *Builder) IPv6(src, dst netip.Addr) *Builder {
	if !src.Is6() || src.Is4In6() || !dst.Is6() || dst.Is4In6() {
		panic(fmt.Sprintf("dptest: IPv6(%v, %v): need IPv6 addresses", src, dst))
	}
	b.ipv, b.ipSrc, b.ipDst = 6, src, dst
	return b
}

// TTL sets the IPv4 TTL or IPv6 hop limit.
func (b *Builder) TTL(v uint8) *Builder { b.ttl = v; return b }

// TOS sets the IPv4 type of service or IPv6 traffic class.
func (b *Builder) TOS(v uint8) *Builder { b.tos = v; return b }

// ID sets the IPv4 identification.
func (b *Builder) ID(v uint16) *Builder { b.id = v; return b }

// DF sets the IPv4 don't-fragment flag.
func (b *Builder) DF() *Builder { b.fragW |= header.IPv4FlagDF; return b }

// Frag sets the IPv4 fragment offset (8-byte units) and MF flag. The
// transport layer, if any, is still written (and checksummed) as given.
func (b *Builder) Frag(offset uint16, more bool) *Builder {
	b.fragW = b.fragW&header.IPv4FlagDF | offset&header.IPv4FragOffsetMask
	if more {
		b.fragW |= header.IPv4FlagMF
	}
	return b
}

// IPOptions sets IPv4 options (padded with zeros to a multiple of 4).
func (b *Builder) IPOptions(o []byte) *Builder { b.ipOpts = o; return b }

// Proto overrides the IP protocol / last next-header value (default: from
// the transport layer, or 59 "no next header" for IPv6 without one, 255 for
// IPv4 without one).
func (b *Builder) Proto(p uint8) *Builder { b.proto = int(p); return b }

// FlowLabel sets the IPv6 flow label.
func (b *Builder) FlowLabel(v uint32) *Builder { b.flow = v; return b }

// IPChecksum forces the IPv4 header checksum (to build bad frames).
func (b *Builder) IPChecksum(v uint16) *Builder { b.ipCsum = &v; return b }

// IPLength forces the IPv4 total length or IPv6 payload length.
func (b *Builder) IPLength(v uint16) *Builder { b.ipTotal = &v; return b }

// HopByHop adds an IPv6 hop-by-hop options header with options opts,
// padded (PadN) to a multiple of 8 bytes. Extension headers are written in
// the order they are added.
func (b *Builder) HopByHop(opts []byte) *Builder { return b.optExt(header.ProtoHopByHop, opts) }

// DstOpts adds an IPv6 destination options header (see HopByHop).
func (b *Builder) DstOpts(opts []byte) *Builder { return b.optExt(header.ProtoDstOpts, opts) }

// Routing adds an IPv6 routing header of type typ with segments left left
// and data (padded with zeros to a multiple of 8 after the first 4 bytes).
func (b *Builder) Routing(typ, left uint8, data []byte) *Builder {
	d := append([]byte{typ, left}, data...)
	for (len(d)+2)%8 != 0 {
		d = append(d, 0)
	}
	b.ext = append(b.ext, ext{typ: header.ProtoRouting, data: d})
	return b
}

// Fragment adds an IPv6 fragment header (offset in 8-byte units).
func (b *Builder) Fragment(offset uint16, more bool, id uint32) *Builder {
	d := make([]byte, 6)
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(d[0:], v)
	binary.BigEndian.PutUint32(d[2:], id)
	b.ext = append(b.ext, ext{typ: header.ProtoFragment, data: d})
	return b
}

func (b *Builder) optExt(typ uint8, opts []byte) *Builder {
	d := append([]byte(nil), opts...)
	if pad := (8 - (len(d)+2)%8) % 8; pad == 1 {
		d = append(d, 0) // Pad1
	} else if pad > 1 {
		d = append(d, 1, byte(pad-2)) // PadN
		d = append(d, make([]byte, pad-2)...)
	}
	b.ext = append(b.ext, ext{typ: typ, data: d})
	return b
}

// TCP adds a TCP header (window 65535, no flags until Flags).
func (b *Builder) TCP(sport, dport uint16) *Builder {
	b.l4, b.sport, b.dport = l4TCP, sport, dport
	return b
}

func (b *Builder) Flags(f uint8) *Builder       { b.flags = f; return b }
func (b *Builder) Seq(v uint32) *Builder        { b.seq = v; return b }
func (b *Builder) Ack(v uint32) *Builder        { b.ack = v; return b }
func (b *Builder) Window(v uint16) *Builder     { b.window = v; return b }
func (b *Builder) Urgent(v uint16) *Builder     { b.urgent = v; return b }
func (b *Builder) TCPOptions(o []byte) *Builder { b.tcpOpts = o; return b }

// UDP adds a UDP header.
func (b *Builder) UDP(sport, dport uint16) *Builder {
	b.l4, b.sport, b.dport = l4UDP, sport, dport
	return b
}

// NoUDPChecksum leaves the UDP checksum 0 ("none", IPv4 only).
func (b *Builder) NoUDPChecksum() *Builder { b.udpNoCs = true; return b }

// UDPLength forces the UDP length field.
func (b *Builder) UDPLength(v uint16) *Builder { b.udpLen = &v; return b }

// ICMPEcho adds an echo request (ICMPv4 type 8 or ICMPv6 type 128 by the
// IP version).
func (b *Builder) ICMPEcho(id, seq uint16) *Builder {
	return b.icmp(header.ICMPv4Echo, header.ICMPv6EchoRequest, 0, uint32(id)<<16|uint32(seq))
}

// ICMPEchoReply adds an echo reply.
func (b *Builder) ICMPEchoReply(id, seq uint16) *Builder {
	return b.icmp(header.ICMPv4EchoReply, header.ICMPv6EchoReply, 0, uint32(id)<<16|uint32(seq))
}

// ICMP adds any ICMP message of the IP layer's family: typ, code, bytes
// 4..7 (rest) and, as Payload, the body.
func (b *Builder) ICMP(typ, code uint8, rest uint32) *Builder {
	b.l4, b.icmpType, b.icmpCode, b.icmpRest = l4ICMP, typ, code, rest
	return b
}

// ICMPError adds an ICMP error message embedding invoking, an IP packet
// (use IP(frame) to take one from a built frame; cut it as senders do).
func (b *Builder) ICMPError(typ, code uint8, rest uint32, invoking []byte) *Builder {
	b.ICMP(typ, code, rest)
	b.payload = append([]byte(nil), invoking...)
	return b
}

func (b *Builder) icmp(t4, t6 uint8, code uint8, rest uint32) *Builder {
	t := t4
	if b.ipv == 6 {
		t = t6
	} else if b.ipv != 4 {
		panic("dptest: ICMP needs an IP layer first")
	}
	return b.ICMP(t, code, rest)
}

// L4Checksum forces the transport checksum (to build bad frames).
func (b *Builder) L4Checksum(v uint16) *Builder { b.l4Csum = &v; return b }

// ARP makes the frame an Ethernet/IPv4 ARP packet.
func (b *Builder) ARP(op uint16, senderMAC [6]byte, senderIP netip.Addr, targetMAC [6]byte, targetIP netip.Addr) *Builder {
	if !senderIP.Is4() || !targetIP.Is4() {
		panic("dptest: ARP needs IPv4 addresses")
	}
	b.arp, b.arpOp = true, op
	b.arpSMAC, b.arpSIP, b.arpTMAC, b.arpTIP = senderMAC, senderIP, targetMAC, targetIP
	return b
}

// Payload sets the bytes after the last header.
func (b *Builder) Payload(p []byte) *Builder { b.payload = append([]byte(nil), p...); return b }

// PadTo appends zero bytes after the packet until the frame is n bytes
// long (60 is the Ethernet minimum without FCS).
func (b *Builder) PadTo(n int) *Builder { b.padTo = n; return b }

// Bytes serializes the frame into a new slice.
func (b *Builder) Bytes() []byte {
	if b.l4 != 0 && b.ipv == 0 {
		panic("dptest: transport layer needs an IP layer")
	}
	f := make([]byte, header.EthernetLen, 128+len(b.payload))
	e := header.Ethernet(f)
	e.SetDst(b.dst)
	e.SetSrc(b.src)
	et := b.etherType
	if !b.etSet {
		switch {
		case b.arp:
			et = header.EtherTypeARP
		case b.ipv == 4:
			et = header.EtherTypeIPv4
		case b.ipv == 6:
			et = header.EtherTypeIPv6
		}
	}
	if b.vlan {
		e.SetType(header.EtherTypeVLAN)
		f = binary.BigEndian.AppendUint16(f, b.tci)
		f = binary.BigEndian.AppendUint16(f, et)
	} else {
		e.SetType(et)
	}
	switch {
	case b.arp:
		a := make(header.ARP, header.ARPLen)
		a.SetEthernetIPv4(b.arpOp)
		a.SetSenderMAC(b.arpSMAC)
		a.SetSenderIP(b.arpSIP.As4())
		a.SetTargetMAC(b.arpTMAC)
		a.SetTargetIP(b.arpTIP.As4())
		f = append(f, a...)
		f = append(f, b.payload...)
	case b.ipv == 4:
		f = b.appendIPv4(f)
	case b.ipv == 6:
		f = b.appendIPv6(f)
	default:
		f = append(f, b.payload...)
	}
	for len(f) < b.padTo {
		f = append(f, 0)
	}
	return f
}

func (b *Builder) protoNum(none uint8) uint8 {
	switch {
	case b.proto >= 0:
		return uint8(b.proto)
	case b.l4 == l4ICMP && b.ipv == 6:
		return header.ProtoICMPv6
	case b.l4 != 0:
		return b.l4
	}
	return none
}

func (b *Builder) appendIPv4(f []byte) []byte {
	opts := append([]byte(nil), b.ipOpts...)
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	hl := header.IPv4MinLen + len(opts)
	if hl > header.IPv4MaxLen {
		panic("dptest: IPv4 options longer than 40 bytes")
	}
	l3 := len(f)
	f = append(f, make([]byte, header.IPv4MinLen)...)
	f = append(f, opts...)
	proto := b.protoNum(255)
	src, dst := b.ipSrc.As4(), b.ipDst.As4()
	f = b.appendL4(f, proto, src[:], dst[:])
	h := header.IPv4(f[l3:])
	h.SetVersionIHL(hl)
	h.SetTOS(b.tos)
	tl := uint16(len(f) - l3)
	if b.ipTotal != nil {
		tl = *b.ipTotal
	}
	h.SetTotalLen(tl)
	h.SetID(b.id)
	h.SetFlagsFragOffset(b.fragW)
	h.SetTTL(b.ttl)
	h.SetProtocol(proto)
	h.SetSrc(src)
	h.SetDst(dst)
	c := header.IPv4(f[l3 : l3+hl]).CalculateChecksum()
	if b.ipCsum != nil {
		c = *b.ipCsum
	}
	h.SetChecksum(c)
	return f
}

func (b *Builder) appendIPv6(f []byte) []byte {
	l3 := len(f)
	f = append(f, make([]byte, header.IPv6Len)...)
	proto := b.protoNum(header.ProtoNoNext)
	first := proto
	if len(b.ext) > 0 {
		first = b.ext[0].typ
	}
	for i, x := range b.ext {
		next := proto
		if i+1 < len(b.ext) {
			next = b.ext[i+1].typ
		}
		f = append(f, next)
		if x.typ == header.ProtoFragment {
			f = append(f, 0)
		} else {
			f = append(f, uint8((len(x.data)+2)/8-1))
		}
		f = append(f, x.data...)
	}
	src, dst := b.ipSrc.As16(), b.ipDst.As16()
	f = b.appendL4(f, proto, src[:], dst[:])
	h := header.IPv6(f[l3:])
	h.SetVersionClassFlow(b.tos, b.flow)
	pl := uint16(len(f) - l3 - header.IPv6Len)
	if b.ipTotal != nil {
		pl = *b.ipTotal
	}
	h.SetPayloadLen(pl)
	h.SetNextHeader(first)
	h.SetHopLimit(b.ttl)
	h.SetSrc(src)
	h.SetDst(dst)
	return f
}

// appendL4 appends the transport header and payload with its checksum.
func (b *Builder) appendL4(f []byte, proto uint8, src, dst []byte) []byte {
	l4 := len(f)
	switch b.l4 {
	case l4TCP:
		opts := append([]byte(nil), b.tcpOpts...)
		for len(opts)%4 != 0 {
			opts = append(opts, 0) // EOL padding
		}
		f = append(f, make([]byte, header.TCPMinLen)...)
		f = append(f, opts...)
		f = append(f, b.payload...)
		t := header.TCP(f[l4:])
		t.SetSrcPort(b.sport)
		t.SetDstPort(b.dport)
		t.SetSeq(b.seq)
		t.SetAck(b.ack)
		t.SetDataOffset(header.TCPMinLen + len(opts))
		t.SetFlags(b.flags)
		t.SetWindow(b.window)
		t.SetUrgentPtr(b.urgent)
		c := t.CalculateChecksum(header.PseudoHeaderChecksum(proto, src, dst, uint16(len(t))))
		if b.l4Csum != nil {
			c = *b.l4Csum
		}
		t.SetChecksum(c)
	case l4UDP:
		f = append(f, make([]byte, header.UDPLen)...)
		f = append(f, b.payload...)
		u := header.UDP(f[l4:])
		u.SetSrcPort(b.sport)
		u.SetDstPort(b.dport)
		ul := uint16(len(u))
		if b.udpLen != nil {
			ul = *b.udpLen
		}
		u.SetLength(ul)
		var c uint16
		if !b.udpNoCs {
			c = u.CalculateChecksum(header.PseudoHeaderChecksum(proto, src, dst, uint16(len(u))))
		}
		if b.l4Csum != nil {
			c = *b.l4Csum
		}
		u.SetChecksum(c)
	case l4ICMP:
		f = append(f, make([]byte, header.ICMPMinLen)...)
		f = append(f, b.payload...)
		m := f[l4:]
		m[0], m[1] = b.icmpType, b.icmpCode
		binary.BigEndian.PutUint32(m[4:], b.icmpRest)
		var c uint16
		if b.ipv == 6 {
			c = header.ICMPv6(m).CalculateChecksum(header.PseudoHeaderChecksum(header.ProtoICMPv6, src, dst, uint16(len(m))))
		} else {
			c = header.ICMPv4(m).CalculateChecksum()
		}
		if b.l4Csum != nil {
			c = *b.l4Csum
		}
		binary.BigEndian.PutUint16(m[2:], c)
	default:
		f = append(f, b.payload...)
	}
	return f
}

// IP returns a copy of the IP packet inside frame (Ethernet header and
// padding removed), for ICMPError. It panics if frame does not parse.
func IP(frame []byte) []byte {
	var p header.Parsed
	if v := header.Parse(frame, &p); v != header.OK || p.IPVersion == 0 {
		panic(fmt.Sprintf("dptest: IP: frame does not parse as IP: %v", v))
	}
	return append([]byte(nil), p.IP(frame)...)
}

// MAC parses "aa:bb:cc:dd:ee:ff" (panics on error: test constants only).
func MAC(s string) [6]byte {
	var m [6]byte
	if _, err := fmt.Sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]); err != nil {
		panic(fmt.Sprintf("dptest: MAC(%q): %v", s, err))
	}
	return m
}
