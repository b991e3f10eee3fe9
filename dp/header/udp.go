package header

import "encoding/binary"

// UDP header (RFC 768).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Length             |           Checksum            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Length covers header and data. The checksum covers the pseudo-header,
// header and data; see checksum.go for the zero rule (0 = none over IPv4).
const UDPLen = 8

// UDP is a view of a UDP datagram: header and data (Parsed.UDP bounds it by
// the IP length; the Length field may be shorter).
type UDP []byte

func (u UDP) SrcPort() uint16  { return binary.BigEndian.Uint16(u[0:]) }
func (u UDP) DstPort() uint16  { return binary.BigEndian.Uint16(u[2:]) }
func (u UDP) Length() uint16   { return binary.BigEndian.Uint16(u[4:]) }
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[6:]) }

// Payload is the data: bytes 8 up to the Length field, cut to the view
// (a first fragment carries only part of the datagram).
func (u UDP) Payload() []byte {
	n := int(u.Length())
	if n > len(u) {
		n = len(u)
	}
	if n < UDPLen {
		n = UDPLen
	}
	return u[UDPLen:n]
}

func (u UDP) SetSrcPort(v uint16)  { binary.BigEndian.PutUint16(u[0:], v) }
func (u UDP) SetDstPort(v uint16)  { binary.BigEndian.PutUint16(u[2:], v) }
func (u UDP) SetLength(v uint16)   { binary.BigEndian.PutUint16(u[4:], v) }
func (u UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(u[6:], v) }

// update applies an incremental change honouring the UDP zero rule.
func (u UDP) update(c uint16) {
	if u.Checksum() == 0 {
		return // no checksum (IPv4): keep none
	}
	u.SetChecksum(udpFix(c))
}

// SetSrcPortWithChecksumUpdate sets the source port and updates a present checksum.
func (u UDP) SetSrcPortWithChecksumUpdate(v uint16) {
	u.update(ChecksumUpdate16(u.Checksum(), u.SrcPort(), v))
	u.SetSrcPort(v)
}

// SetDstPortWithChecksumUpdate sets the destination port and updates a present checksum.
func (u UDP) SetDstPortWithChecksumUpdate(v uint16) {
	u.update(ChecksumUpdate16(u.Checksum(), u.DstPort(), v))
	u.SetDstPort(v)
}

// UpdateChecksumAddr updates a present checksum for a pseudo-header address
// changing from from to to (4 or 16 bytes each).
func (u UDP) UpdateChecksumAddr(from, to []byte) {
	u.update(ChecksumUpdateAddr(u.Checksum(), from, to))
}

// CalculateChecksum computes the checksum over the view, as if the field
// were zero, from the pseudo-header sum; a result of 0 is returned as 0xFFFF.
func (u UDP) CalculateChecksum(pseudo uint32) uint16 {
	s := Checksum(u[0:6], pseudo)
	return udpFix(Fold(Checksum(u[8:], s)))
}

// IsChecksumValid reports whether the checksum field is right. A zero field
// means "no checksum": valid over IPv4, invalid over IPv6 (RFC 8200 8.1).
func (u UDP) IsChecksumValid(pseudo uint32, ipv6 bool) bool {
	if u.Checksum() == 0 {
		return !ipv6
	}
	return Fold(Checksum(u, pseudo)) == 0
}
