package header

import "encoding/binary"

// TCP header (RFC 9293 section 3.1).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The checksum covers the pseudo-header, the TCP header and the payload.
const TCPMinLen = 20

// TCP flags, as returned by TCP.Flags.
const (
	FlagFIN = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// TCP is a view of a TCP segment: header and payload (Parsed.TCP bounds it
// by the IP length).
type TCP []byte

func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[0:]) }
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[2:]) }
func (t TCP) Seq() uint32     { return binary.BigEndian.Uint32(t[4:]) }
func (t TCP) Ack() uint32     { return binary.BigEndian.Uint32(t[8:]) }

// DataOffset is the header length in bytes (the field times 4).
func (t TCP) DataOffset() int { return int(t[12]>>4) * 4 }

// Flags are the eight flag bits (FlagFIN ... FlagCWR).
func (t TCP) Flags() uint8 { return t[13] }

func (t TCP) Window() uint16    { return binary.BigEndian.Uint16(t[14:]) }
func (t TCP) Checksum() uint16  { return binary.BigEndian.Uint16(t[16:]) }
func (t TCP) UrgentPtr() uint16 { return binary.BigEndian.Uint16(t[18:]) }

// Options are the bytes between the fixed header and the data offset.
func (t TCP) Options() []byte { return t[TCPMinLen:t.DataOffset()] }

// Payload is the data after the header.
func (t TCP) Payload() []byte { return t[t.DataOffset():] }

func (t TCP) SetSrcPort(v uint16)   { binary.BigEndian.PutUint16(t[0:], v) }
func (t TCP) SetDstPort(v uint16)   { binary.BigEndian.PutUint16(t[2:], v) }
func (t TCP) SetSeq(v uint32)       { binary.BigEndian.PutUint32(t[4:], v) }
func (t TCP) SetAck(v uint32)       { binary.BigEndian.PutUint32(t[8:], v) }
func (t TCP) SetFlags(v uint8)      { t[13] = v }
func (t TCP) SetWindow(v uint16)    { binary.BigEndian.PutUint16(t[14:], v) }
func (t TCP) SetChecksum(v uint16)  { binary.BigEndian.PutUint16(t[16:], v) }
func (t TCP) SetUrgentPtr(v uint16) { binary.BigEndian.PutUint16(t[18:], v) }

// SetDataOffset sets the header length in bytes (a multiple of 4, 20..60).
func (t TCP) SetDataOffset(n int) { t[12] = uint8(n/4)<<4 | t[12]&0x0f }

// SetSrcPortWithChecksumUpdate sets the source port and updates the checksum.
func (t TCP) SetSrcPortWithChecksumUpdate(v uint16) {
	t.SetChecksum(ChecksumUpdate16(t.Checksum(), t.SrcPort(), v))
	t.SetSrcPort(v)
}

// SetDstPortWithChecksumUpdate sets the destination port and updates the checksum.
func (t TCP) SetDstPortWithChecksumUpdate(v uint16) {
	t.SetChecksum(ChecksumUpdate16(t.Checksum(), t.DstPort(), v))
	t.SetDstPort(v)
}

// UpdateChecksumAddr updates the checksum for an IP address in the
// pseudo-header changing from from to to (4 or 16 bytes each). Call it
// alongside IPv4/IPv6.SetSrc/SetDst.
func (t TCP) UpdateChecksumAddr(from, to []byte) {
	t.SetChecksum(ChecksumUpdateAddr(t.Checksum(), from, to))
}

// CalculateChecksum computes the checksum over the segment, as if the field
// were zero, starting from the pseudo-header sum (PseudoHeaderChecksum).
func (t TCP) CalculateChecksum(pseudo uint32) uint16 {
	s := Checksum(t[0:16], pseudo)
	return Fold(Checksum(t[18:], s))
}

// IsChecksumValid reports whether the checksum field is right.
func (t TCP) IsChecksumValid(pseudo uint32) bool { return Fold(Checksum(t, pseudo)) == 0 }
