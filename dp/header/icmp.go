package header

import "encoding/binary"

// ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) share the first eight bytes:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Identifier (echo)           |   Sequence Number (echo)      |
//	|   or unused / MTU / pointer (errors)                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   echo data, or as much of the invoking packet as fits        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The ICMPv4 checksum covers the message only; the ICMPv6 checksum also
// covers the IPv6 pseudo-header (next header 58).
const ICMPMinLen = 8

// ICMPv4 types and codes.
const (
	ICMPv4EchoReply      = 0
	ICMPv4DstUnreachable = 3
	ICMPv4Redirect       = 5
	ICMPv4Echo           = 8
	ICMPv4TimeExceeded   = 11
	ICMPv4ParamProblem   = 12

	ICMPv4NetUnreachable   = 0 // codes of ICMPv4DstUnreachable
	ICMPv4HostUnreachable  = 1
	ICMPv4ProtoUnreachable = 2
	ICMPv4PortUnreachable  = 3
	ICMPv4FragNeeded       = 4  // the "packet too big" of IPv4: MTU in bytes 6..7
	ICMPv4AdminProhibited  = 13 // communication administratively prohibited (RFC 1812)

	ICMPv4TTLExceeded = 0 // code of ICMPv4TimeExceeded
)

// ICMPv6 types and codes.
const (
	ICMPv6DstUnreachable = 1
	ICMPv6PacketTooBig   = 2
	ICMPv6TimeExceeded   = 3
	ICMPv6ParamProblem   = 4
	ICMPv6EchoRequest    = 128
	ICMPv6EchoReply      = 129
	ICMPv6RouterSolicit  = 133
	ICMPv6RouterAdvert   = 134
	ICMPv6NeighborSolic  = 135
	ICMPv6NeighborAdvert = 136

	ICMPv6NoRoute          = 0 // codes of ICMPv6DstUnreachable
	ICMPv6AdminProhibited  = 1 // communication with destination administratively prohibited
	ICMPv6AddrUnreachable  = 3
	ICMPv6PortUnreachable  = 4
	ICMPv6HopLimitExceeded = 0 // code of ICMPv6TimeExceeded
)

// ICMPv4 is a view of an ICMPv4 message (at least ICMPMinLen bytes).
type ICMPv4 []byte

func (m ICMPv4) Type() uint8      { return m[0] }
func (m ICMPv4) Code() uint8      { return m[1] }
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// Ident and Seq are the echo identifier and sequence number.
func (m ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(m[4:]) }
func (m ICMPv4) Seq() uint16   { return binary.BigEndian.Uint16(m[6:]) }

// MTU is the next-hop MTU of a fragmentation-needed message (RFC 1191).
func (m ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(m[6:]) }

// Pointer is the octet pointer of a parameter problem message.
func (m ICMPv4) Pointer() uint8 { return m[4] }

// IsError reports whether the type carries an invoking packet.
func (m ICMPv4) IsError() bool {
	switch m.Type() {
	case ICMPv4DstUnreachable, ICMPv4Redirect, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return true
	}
	return false
}

// Payload is what follows the first eight bytes: echo data, or for errors
// the embedded invoking packet (IP header onward; it is not parsed, and may
// be cut short by the sender).
func (m ICMPv4) Payload() []byte { return m[ICMPMinLen:] }

// Embedded is the invoking packet of an error message, nil for other types.
func (m ICMPv4) Embedded() []byte {
	if !m.IsError() {
		return nil
	}
	return m[ICMPMinLen:]
}

func (m ICMPv4) SetType(v uint8)      { m[0] = v }
func (m ICMPv4) SetCode(v uint8)      { m[1] = v }
func (m ICMPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(m[2:], v) }
func (m ICMPv4) SetIdent(v uint16)    { binary.BigEndian.PutUint16(m[4:], v) }
func (m ICMPv4) SetSeq(v uint16)      { binary.BigEndian.PutUint16(m[6:], v) }

// SetRest sets bytes 4..7 (unused, MTU or pointer of error messages).
func (m ICMPv4) SetRest(v uint32) { binary.BigEndian.PutUint32(m[4:], v) }

// SetIdentWithChecksumUpdate sets the echo identifier and updates the checksum.
func (m ICMPv4) SetIdentWithChecksumUpdate(v uint16) {
	m.SetChecksum(ChecksumUpdate16(m.Checksum(), m.Ident(), v))
	m.SetIdent(v)
}

// CalculateChecksum computes the checksum over the message as if the field were zero.
func (m ICMPv4) CalculateChecksum() uint16 {
	return Fold(Checksum(m[4:], Checksum(m[0:2], 0)))
}

// IsChecksumValid reports whether the checksum field is right.
func (m ICMPv4) IsChecksumValid() bool { return Fold(Checksum(m, 0)) == 0 }

// ICMPv6 is a view of an ICMPv6 message (at least ICMPMinLen bytes).
type ICMPv6 []byte

func (m ICMPv6) Type() uint8      { return m[0] }
func (m ICMPv6) Code() uint8      { return m[1] }
func (m ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }
func (m ICMPv6) Ident() uint16    { return binary.BigEndian.Uint16(m[4:]) }
func (m ICMPv6) Seq() uint16      { return binary.BigEndian.Uint16(m[6:]) }

// MTU is the MTU of a packet-too-big message.
func (m ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(m[4:]) }

// Pointer is the octet pointer of a parameter problem message.
func (m ICMPv6) Pointer() uint32 { return binary.BigEndian.Uint32(m[4:]) }

// IsError reports whether the type is an error message (types below 128).
func (m ICMPv6) IsError() bool { return m.Type() < 128 }

// Payload is what follows the first eight bytes.
func (m ICMPv6) Payload() []byte { return m[ICMPMinLen:] }

// Embedded is the invoking packet of an error message, nil for other types.
func (m ICMPv6) Embedded() []byte {
	if !m.IsError() {
		return nil
	}
	return m[ICMPMinLen:]
}

func (m ICMPv6) SetType(v uint8)      { m[0] = v }
func (m ICMPv6) SetCode(v uint8)      { m[1] = v }
func (m ICMPv6) SetChecksum(v uint16) { binary.BigEndian.PutUint16(m[2:], v) }
func (m ICMPv6) SetIdent(v uint16)    { binary.BigEndian.PutUint16(m[4:], v) }
func (m ICMPv6) SetSeq(v uint16)      { binary.BigEndian.PutUint16(m[6:], v) }

// SetRest sets bytes 4..7 (unused, MTU or pointer of error messages).
func (m ICMPv6) SetRest(v uint32) { binary.BigEndian.PutUint32(m[4:], v) }

// SetIdentWithChecksumUpdate sets the echo identifier and updates the checksum.
func (m ICMPv6) SetIdentWithChecksumUpdate(v uint16) {
	m.SetChecksum(ChecksumUpdate16(m.Checksum(), m.Ident(), v))
	m.SetIdent(v)
}

// UpdateChecksumAddr updates the checksum for a pseudo-header address change.
func (m ICMPv6) UpdateChecksumAddr(from, to []byte) {
	m.SetChecksum(ChecksumUpdateAddr(m.Checksum(), from, to))
}

// CalculateChecksum computes the checksum from the pseudo-header sum as if
// the field were zero.
func (m ICMPv6) CalculateChecksum(pseudo uint32) uint16 {
	return Fold(Checksum(m[4:], Checksum(m[0:2], pseudo)))
}

// IsChecksumValid reports whether the checksum field is right.
func (m ICMPv6) IsChecksumValid(pseudo uint32) bool { return Fold(Checksum(m, pseudo)) == 0 }
