package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 header (RFC 791 section 3.1).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// IHL counts 32-bit words (5..15). Flags: bit 0 reserved, DF, MF. Fragment
// offset counts 8-byte units. The header checksum covers the header only.
const (
	IPv4MinLen = 20
	IPv4MaxLen = 60

	IPv4FlagDF         = 0x4000 // in FlagsFragOffset
	IPv4FlagMF         = 0x2000
	IPv4FragOffsetMask = 0x1fff
)

// IPv4 is a view of an IPv4 packet: the header (HeaderLen bytes, checked by
// Parse) and, when built by Parsed.IPv4, the payload up to the total length.
type IPv4 []byte

// Version is the version field (4 after Parse).
func (h IPv4) Version() uint8 { return h[0] >> 4 }

// HeaderLen is the header length in bytes (IHL * 4).
func (h IPv4) HeaderLen() int { return int(h[0]&0x0f) * 4 }

// TOS is the type of service (DSCP and ECN) byte.
func (h IPv4) TOS() uint8 { return h[1] }

// TotalLen is the total length field: header plus payload in bytes.
func (h IPv4) TotalLen() uint16 { return binary.BigEndian.Uint16(h[2:]) }

// ID is the identification field.
func (h IPv4) ID() uint16 { return binary.BigEndian.Uint16(h[4:]) }

// Flags are the three flag bits (reserved, DF, MF) as 0..7.
func (h IPv4) Flags() uint8 { return h[6] >> 5 }

// FragOffset is the fragment offset in 8-byte units.
func (h IPv4) FragOffset() uint16 { return binary.BigEndian.Uint16(h[6:]) & IPv4FragOffsetMask }

// FlagsFragOffset is the raw 16-bit flags and fragment offset word.
func (h IPv4) FlagsFragOffset() uint16 { return binary.BigEndian.Uint16(h[6:]) }

// TTL is the time to live.
func (h IPv4) TTL() uint8 { return h[8] }

// Protocol is the transport protocol number.
func (h IPv4) Protocol() uint8 { return h[9] }

// Checksum is the header checksum field.
func (h IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(h[10:]) }

// Src and Dst are the addresses.
func (h IPv4) Src() [4]byte { return [4]byte(h[12:16]) }
func (h IPv4) Dst() [4]byte { return [4]byte(h[16:20]) }

// SrcAddr and DstAddr are the addresses as netip.Addr (no allocation).
func (h IPv4) SrcAddr() netip.Addr { return netip.AddrFrom4(h.Src()) }
func (h IPv4) DstAddr() netip.Addr { return netip.AddrFrom4(h.Dst()) }

// Options are the header options (empty without).
func (h IPv4) Options() []byte { return h[IPv4MinLen:h.HeaderLen()] }

// Payload is what follows the header up to the end of the view.
func (h IPv4) Payload() []byte { return h[h.HeaderLen():] }

// CalculateChecksum computes the header checksum as if the field were zero.
func (h IPv4) CalculateChecksum() uint16 {
	hl := h.HeaderLen()
	s := Checksum(h[0:10], 0)
	s = Checksum(h[12:hl], s)
	return Fold(s)
}

// IsChecksumValid reports whether the header checksum field is right.
func (h IPv4) IsChecksumValid() bool { return Fold(Checksum(h[:h.HeaderLen()], 0)) == 0 }

// SetVersionIHL sets version 4 and the header length in bytes (a multiple
// of 4 between 20 and 60).
func (h IPv4) SetVersionIHL(headerLen int) { h[0] = 4<<4 | uint8(headerLen/4)&0x0f }

func (h IPv4) SetTOS(v uint8)              { h[1] = v }
func (h IPv4) SetTotalLen(v uint16)        { binary.BigEndian.PutUint16(h[2:], v) }
func (h IPv4) SetID(v uint16)              { binary.BigEndian.PutUint16(h[4:], v) }
func (h IPv4) SetFlagsFragOffset(v uint16) { binary.BigEndian.PutUint16(h[6:], v) }
func (h IPv4) SetProtocol(v uint8)         { h[9] = v }
func (h IPv4) SetChecksum(v uint16)        { binary.BigEndian.PutUint16(h[10:], v) }
func (h IPv4) SetSrc(a [4]byte)            { copy(h[12:16], a[:]) }
func (h IPv4) SetDst(a [4]byte)            { copy(h[16:20], a[:]) }

// SetTTL sets the TTL without touching the checksum.
func (h IPv4) SetTTL(v uint8) { h[8] = v }

// SetTTLWithChecksumUpdate sets the TTL and updates the header checksum.
func (h IPv4) SetTTLWithChecksumUpdate(v uint8) {
	old := binary.BigEndian.Uint16(h[8:])
	h[8] = v
	h.SetChecksum(ChecksumUpdate16(h.Checksum(), old, binary.BigEndian.Uint16(h[8:])))
}

// DecTTL decrements a nonzero TTL by one, updates the header checksum and
// returns the new TTL. A TTL of 0 stays 0 (and returns 0).
func (h IPv4) DecTTL() uint8 {
	if h[8] == 0 {
		return 0
	}
	h.SetTTLWithChecksumUpdate(h[8] - 1)
	return h[8]
}

// SetSrcWithChecksumUpdate sets the source address and updates the header
// checksum incrementally. The transport checksum, which covers the address
// through the pseudo-header, is the caller's (TCP/UDP.UpdateChecksumAddr).
func (h IPv4) SetSrcWithChecksumUpdate(a [4]byte) {
	c := ChecksumUpdateAddr(h.Checksum(), h[12:16], a[:])
	copy(h[12:16], a[:])
	h.SetChecksum(c)
}

// SetDstWithChecksumUpdate is SetSrcWithChecksumUpdate for the destination.
func (h IPv4) SetDstWithChecksumUpdate(a [4]byte) {
	c := ChecksumUpdateAddr(h.Checksum(), h[16:20], a[:])
	copy(h[16:20], a[:])
	h.SetChecksum(c)
}
