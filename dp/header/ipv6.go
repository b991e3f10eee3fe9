package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 header (RFC 8200 section 3).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                         Source Address (16)                   +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                      Destination Address (16)                 +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Extension headers (RFC 8200 section 4) share one prefix:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |    header-specific data ...   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// with the length in 8-byte units not counting the first 8 (hop-by-hop,
// routing, destination options), except AH (RFC 4302: 4-byte units minus 2)
// and the fragment header (always 8 bytes):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Identification                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	IPv6Len         = 40
	IPv6FragmentLen = 8
)

// IPv6 is a view of an IPv6 packet: the fixed header (IPv6Len bytes) and,
// when built by Parsed.IPv6, the payload up to the payload length.
type IPv6 []byte

func (h IPv6) Version() uint8 { return h[0] >> 4 }

// TrafficClass is the 8-bit traffic class.
func (h IPv6) TrafficClass() uint8 { return uint8(binary.BigEndian.Uint16(h[0:]) >> 4) }

// FlowLabel is the 20-bit flow label.
func (h IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(h[0:]) & 0xfffff }

// PayloadLen is the payload length: bytes after the fixed header.
func (h IPv6) PayloadLen() uint16 { return binary.BigEndian.Uint16(h[4:]) }

// NextHeader is the type of the first header after the fixed header
// (Parsed.Proto is the transport protocol after extension headers).
func (h IPv6) NextHeader() uint8 { return h[6] }

func (h IPv6) HopLimit() uint8 { return h[7] }

func (h IPv6) Src() [16]byte { return [16]byte(h[8:24]) }
func (h IPv6) Dst() [16]byte { return [16]byte(h[24:40]) }

// SrcAddr and DstAddr are the addresses as netip.Addr (no allocation).
func (h IPv6) SrcAddr() netip.Addr { return netip.AddrFrom16(h.Src()) }
func (h IPv6) DstAddr() netip.Addr { return netip.AddrFrom16(h.Dst()) }

// Payload is what follows the fixed header up to the end of the view.
func (h IPv6) Payload() []byte { return h[IPv6Len:] }

// SetVersionClassFlow writes version 6, the traffic class and flow label.
func (h IPv6) SetVersionClassFlow(tc uint8, flow uint32) {
	binary.BigEndian.PutUint32(h[0:], 6<<28|uint32(tc)<<20|flow&0xfffff)
}

func (h IPv6) SetPayloadLen(v uint16) { binary.BigEndian.PutUint16(h[4:], v) }
func (h IPv6) SetNextHeader(v uint8)  { h[6] = v }
func (h IPv6) SetHopLimit(v uint8)    { h[7] = v }

// SetSrc and SetDst set the addresses. IPv6 has no header checksum; the
// transport checksum is the caller's (TCP/UDP/ICMPv6.UpdateChecksumAddr).
func (h IPv6) SetSrc(a [16]byte) { copy(h[8:24], a[:]) }
func (h IPv6) SetDst(a [16]byte) { copy(h[24:40], a[:]) }

// IPv6Fragment is a view of an IPv6 fragment header (IPv6FragmentLen bytes).
type IPv6Fragment []byte

func (f IPv6Fragment) NextHeader() uint8 { return f[0] }

// FragOffset is the offset in 8-byte units.
func (f IPv6Fragment) FragOffset() uint16 { return binary.BigEndian.Uint16(f[2:]) >> 3 }

// More is the M (more fragments) flag.
func (f IPv6Fragment) More() bool { return f[3]&1 != 0 }

func (f IPv6Fragment) ID() uint32 { return binary.BigEndian.Uint32(f[4:]) }

// Set writes all fields of the fragment header.
func (f IPv6Fragment) Set(next uint8, offset uint16, more bool, id uint32) {
	f[0], f[1] = next, 0
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(f[2:], v)
	binary.BigEndian.PutUint32(f[4:], id)
}
