package header

import "encoding/binary"

// Verdict is the result of Parse.
type Verdict uint8

// Verdicts. Short means the frame ends before a header, or before the end of
// a length that a header declares (an IP total or payload length). The Bad*
// verdicts name the layer whose fields are inconsistent.
const (
	OK           Verdict = iota
	Short                // truncated: the frame ends before a header or a declared length
	BadVersion           // IP version field disagrees with the EtherType
	BadHeaderLen         // IPv4 IHL below 5
	BadTotalLen          // IPv4 total length below the header length
	BadExtHeader         // IPv6 extension header past the payload, out of place, or too many
	BadFragment          // first fragment too short to hold its transport header
	BadTCP               // TCP header past the IP payload, or data offset below 5
	BadUDP               // UDP header past the IP payload, or length field out of range
	BadICMP              // ICMP message shorter than 8 bytes
	BadARP               // ARP shorter than 28 bytes or not Ethernet/IPv4
	NumVerdicts
)

var verdictNames = [NumVerdicts]string{
	OK:           "ok",
	Short:        "short",
	BadVersion:   "bad_version",
	BadHeaderLen: "bad_header_len",
	BadTotalLen:  "bad_total_len",
	BadExtHeader: "bad_ext_header",
	BadFragment:  "bad_fragment",
	BadTCP:       "bad_tcp",
	BadUDP:       "bad_udp",
	BadICMP:      "bad_icmp",
	BadARP:       "bad_arp",
}

// String names the verdict (snake case, usable as a metric label).
func (v Verdict) String() string {
	if v >= NumVerdicts {
		return "unknown"
	}
	return verdictNames[v]
}

// EtherTypes and IP protocol numbers Parse knows about.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100 // IEEE 802.1Q
	EtherTypeIPv6 = 0x86dd

	ProtoHopByHop = 0
	ProtoICMPv4   = 1
	ProtoTCP      = 6
	ProtoUDP      = 17
	ProtoRouting  = 43
	ProtoFragment = 44
	ProtoESP      = 50
	ProtoAH       = 51
	ProtoICMPv6   = 58
	ProtoNoNext   = 59
	ProtoDstOpts  = 60
	ProtoMobility = 135
	ProtoHIP      = 139
	ProtoShim6    = 140

	// MaxExtHeaders bounds the IPv6 extension headers Parse walks; one
	// more is BadExtHeader.
	MaxExtHeaders = 8
)

// Parsed is what Parse learns about a frame: offsets into it and the few
// fields a pipeline branches on. Offsets are relative to the frame start.
// Everything between the offsets has been bounds-checked, so the typed views
// built from them (see Parsed.IPv4 and friends) never index out of range.
type Parsed struct {
	EtherType uint16 // after an optional single 802.1Q tag (0x8100)
	HasVLAN   bool
	VLANTCI   uint16
	L3Off     int   // offset of the IP (or ARP) header
	L4Off     int   // offset of the transport header (after IPv4 options / IPv6 extension headers); 0 if none
	IPVersion uint8 // 4, 6 or 0
	Proto     uint8 // transport protocol number (after IPv6 ext headers): 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...
	Fragment  bool  // IPv4 MF/offset or IPv6 fragment header present
	// FragOffset is in 8-byte units; nonzero => no L4 header in this
	// fragment (L4Off = 0, L4Len = 0).
	FragOffset uint16
	L4Len      int // bytes of transport header + payload, as bounded by the IP length

	// Added beyond the pipeline contract:

	// IPEnd is the offset just past the IP packet (IPv4 total length, IPv6
	// 40 + payload length): Ethernet padding, if any, starts here. It is
	// L3Off+28 for ARP and 0 for other non-IP frames.
	IPEnd int
	// FragOff is the offset of the IPv6 fragment header, 0 if none.
	FragOff int
	// ExtHeaders counts the IPv6 extension headers walked.
	ExtHeaders uint8
}

// Parse decodes the Ethernet frame b into p (which it overwrites) and checks
// every length on the way once: Ethernet (14 bytes, 18 with one 802.1Q tag),
// ARP (28 bytes, Ethernet/IPv4), IPv4 (version, IHL >= 5, IHL*4 <= total
// length <= frame; trailing padding allowed), IPv6 (version, 40 + payload
// length <= frame, at most MaxExtHeaders extension headers, each inside the
// payload), and the transport header unless this is a non-first fragment:
// TCP (20 bytes, 5 <= data offset, header inside the IP payload), UDP (8
// bytes, 8 <= length <= IP payload; a first fragment only needs length >= 8),
// ICMPv4/ICMPv6 (8 bytes). Other EtherTypes parse OK with IPVersion 0, other
// IP protocols OK with L4Off at their header and no check.
//
// Parse never panics, whatever b holds, and does not allocate. p is only
// meaningful when the verdict is OK.
func Parse(b []byte, p *Parsed) Verdict {
	*p = Parsed{}
	if len(b) < EthernetLen {
		return Short
	}
	et := binary.BigEndian.Uint16(b[12:])
	off := EthernetLen
	if et == EtherTypeVLAN {
		if len(b) < EthernetLen+VLANLen {
			return Short
		}
		p.HasVLAN = true
		p.VLANTCI = binary.BigEndian.Uint16(b[14:])
		et = binary.BigEndian.Uint16(b[16:])
		off += VLANLen
	}
	p.EtherType = et
	p.L3Off = off
	switch et {
	case EtherTypeIPv4:
		return parseIPv4(b, off, p)
	case EtherTypeIPv6:
		return parseIPv6(b, off, p)
	case EtherTypeARP:
		if len(b)-off < ARPLen {
			return Short
		}
		a := ARP(b[off:])
		if a.HardwareType() != 1 || a.ProtocolType() != EtherTypeIPv4 || a.HardwareLen() != 6 || a.ProtocolLen() != 4 {
			return BadARP
		}
		p.IPEnd = off + ARPLen
		return OK
	}
	return OK
}

func parseIPv4(b []byte, off int, p *Parsed) Verdict {
	if len(b)-off < IPv4MinLen {
		return Short
	}
	h := IPv4(b[off:])
	if b[off]>>4 != 4 {
		return BadVersion
	}
	hl := h.HeaderLen()
	if hl < IPv4MinLen {
		return BadHeaderLen
	}
	tl := int(h.TotalLen())
	if len(b)-off < hl {
		return Short
	}
	if tl < hl {
		return BadTotalLen
	}
	if len(b)-off < tl {
		return Short
	}
	p.IPVersion = 4
	p.IPEnd = off + tl
	p.Proto = h.Protocol()
	ff := h.FlagsFragOffset()
	if ff&(IPv4FlagMF|IPv4FragOffsetMask) != 0 {
		p.Fragment = true
		p.FragOffset = ff & IPv4FragOffsetMask
		if p.FragOffset != 0 {
			return OK
		}
	}
	p.L4Off = off + hl
	p.L4Len = tl - hl
	return checkL4(b, p)
}

func parseIPv6(b []byte, off int, p *Parsed) Verdict {
	if len(b)-off < IPv6Len {
		return Short
	}
	if b[off]>>4 != 6 {
		return BadVersion
	}
	h := IPv6(b[off:])
	end := off + IPv6Len + int(h.PayloadLen())
	if end > len(b) {
		return Short
	}
	p.IPVersion = 6
	p.IPEnd = end
	nh := h.NextHeader()
	cur := off + IPv6Len
	for n := 0; ; n++ {
		var l int
		switch nh {
		case ProtoHopByHop, ProtoRouting, ProtoDstOpts, ProtoMobility, ProtoHIP, ProtoShim6, ProtoAH, ProtoFragment:
		default:
			// Transport (or opaque: ESP, no next header).
			p.Proto = nh
			if nh == ProtoNoNext {
				return OK
			}
			p.L4Off = cur
			p.L4Len = end - cur
			return checkL4(b, p)
		}
		if n == MaxExtHeaders {
			return BadExtHeader
		}
		if nh == ProtoHopByHop && n != 0 {
			return BadExtHeader // RFC 8200 4.1: only right after the IPv6 header
		}
		if end-cur < 8 { // every extension header is at least 8 bytes
			return BadExtHeader
		}
		switch nh {
		case ProtoFragment:
			if p.FragOff != 0 {
				return BadExtHeader // two fragment headers
			}
			l = 8
			f := IPv6Fragment(b[cur:])
			p.Fragment = true
			p.FragOff = cur
			p.FragOffset = f.FragOffset()
		case ProtoAH:
			l = (int(b[cur+1]) + 2) * 4 // RFC 4302: length in 4-byte words minus 2
		default:
			l = (int(b[cur+1]) + 1) * 8 // RFC 8200: length in 8-byte units, not counting the first
		}
		if end-cur < l {
			return BadExtHeader
		}
		p.ExtHeaders++
		nh = b[cur]
		if p.FragOff == cur && p.FragOffset != 0 {
			// Non-first fragment: what follows is not a header.
			p.Proto = nh
			return OK
		}
		cur += l
	}
}

// checkL4 validates the transport header at p.L4Off, p.L4Len bytes long.
func checkL4(b []byte, p *Parsed) Verdict {
	l4 := b[p.L4Off : p.L4Off+p.L4Len]
	firstFrag := p.Fragment // non-first fragments never get here
	switch p.Proto {
	case ProtoTCP:
		if len(l4) < TCPMinLen {
			if firstFrag {
				return BadFragment
			}
			return BadTCP
		}
		d := TCP(l4).DataOffset()
		if d < TCPMinLen || d > len(l4) {
			if d >= TCPMinLen && firstFrag {
				return BadFragment
			}
			return BadTCP
		}
	case ProtoUDP:
		if len(l4) < UDPLen {
			if firstFrag {
				return BadFragment
			}
			return BadUDP
		}
		ul := int(UDP(l4).Length())
		if ul < UDPLen || (!firstFrag && ul > len(l4)) {
			return BadUDP
		}
	case ProtoICMPv4, ProtoICMPv6:
		if (p.Proto == ProtoICMPv4) != (p.IPVersion == 4) {
			return OK // ICMPv4 over IPv6 or the reverse: not ICMP for us, opaque
		}
		if len(l4) < ICMPMinLen {
			if firstFrag {
				return BadFragment
			}
			return BadICMP
		}
	}
	return OK
}

// Ethernet returns the Ethernet view of frame b (valid after Parse said OK).
func (p *Parsed) Ethernet(b []byte) Ethernet { return Ethernet(b[:EthernetLen]) }

// IP returns the bytes of the IP packet (header through IPEnd).
func (p *Parsed) IP(b []byte) []byte { return b[p.L3Off:p.IPEnd] }

// IPv4 returns the IPv4 view; only when IPVersion is 4.
func (p *Parsed) IPv4(b []byte) IPv4 { return IPv4(b[p.L3Off:p.IPEnd]) }

// IPv6 returns the IPv6 view; only when IPVersion is 6.
func (p *Parsed) IPv6(b []byte) IPv6 { return IPv6(b[p.L3Off:p.IPEnd]) }

// ARP returns the ARP view; only when EtherType is ARP.
func (p *Parsed) ARP(b []byte) ARP { return ARP(b[p.L3Off : p.L3Off+ARPLen]) }

// L4 returns the transport header and payload, bounded by the IP length
// (padding excluded); empty when L4Off is 0.
func (p *Parsed) L4(b []byte) []byte {
	if p.L4Off == 0 {
		return nil
	}
	return b[p.L4Off : p.L4Off+p.L4Len]
}

// TCP returns the TCP view; only when Proto is TCP and L4Off is nonzero.
func (p *Parsed) TCP(b []byte) TCP { return TCP(p.L4(b)) }

// UDP returns the UDP view; only when Proto is UDP and L4Off is nonzero.
func (p *Parsed) UDP(b []byte) UDP { return UDP(p.L4(b)) }

// ICMPv4 returns the ICMPv4 view; only when Proto is 1 over IPv4.
func (p *Parsed) ICMPv4(b []byte) ICMPv4 { return ICMPv4(p.L4(b)) }

// ICMPv6 returns the ICMPv6 view; only when Proto is 58 over IPv6.
func (p *Parsed) ICMPv6(b []byte) ICMPv6 { return ICMPv6(p.L4(b)) }

// IsICMPError reports whether the packet is an ICMP error message
// (destination unreachable, time exceeded, packet too big, parameter
// problem) of its own IP family, whether or not its quote can be read.
func (p *Parsed) IsICMPError(b []byte) bool {
	if p.L4Off == 0 || !ICMPOfFamily(p.Proto, p.IPVersion) {
		return false // the other family's ICMP: Parse checked no length
	}
	return icmpIsError(p.Proto, b[p.L4Off])
}

// PseudoHeaderChecksum is the transport pseudo-header sum of the parsed IP
// packet for its Proto and L4Len (see the package function).
func (p *Parsed) PseudoHeaderChecksum(b []byte) uint32 {
	switch p.IPVersion {
	case 4:
		h := IPv4(b[p.L3Off:])
		return PseudoHeaderChecksum(p.Proto, h[12:16], h[16:20], uint16(p.L4Len))
	case 6:
		h := IPv6(b[p.L3Off:])
		return PseudoHeaderChecksum(p.Proto, h[8:24], h[24:40], uint16(p.L4Len))
	}
	return 0
}
