package header

import "encoding/binary"

// Ethernet II header (IEEE 802.3), optionally followed by one 802.1Q tag.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination MAC address                    |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                      Source MAC address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |   (802.1Q: TPID 0x8100, then  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+   PCP(3) DEI(1) VID(12), then |
//	                                    the inner EtherType)
const (
	EthernetLen = 14
	VLANLen     = 4
)

// Ethernet is a view of an Ethernet header: at least EthernetLen bytes.
type Ethernet []byte

// Dst is the destination MAC address.
func (e Ethernet) Dst() [6]byte { return [6]byte(e[0:6]) }

// Src is the source MAC address.
func (e Ethernet) Src() [6]byte { return [6]byte(e[6:12]) }

// Type is the outer EtherType (0x8100 for a tagged frame; Parsed.EtherType
// has the inner one).
func (e Ethernet) Type() uint16 { return binary.BigEndian.Uint16(e[12:]) }

// SetDst sets the destination MAC address.
func (e Ethernet) SetDst(m [6]byte) { copy(e[0:6], m[:]) }

// SetSrc sets the source MAC address.
func (e Ethernet) SetSrc(m [6]byte) { copy(e[6:12], m[:]) }

// SetType sets the outer EtherType.
func (e Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(e[12:], t) }

// VLANVID is the 12-bit VLAN identifier of a tag control information field.
func VLANVID(tci uint16) uint16 { return tci & 0x0fff }

// VLANPCP is the 3-bit priority code point of a tag control information field.
func VLANPCP(tci uint16) uint8 { return uint8(tci >> 13) }
