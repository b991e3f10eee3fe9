package header

import (
	"encoding/binary"
	"net/netip"
)

// ARP for IPv4 over Ethernet (RFC 826), the only kind Parse accepts.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|       Hardware type (1)       |     Protocol type (0x0800)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  HW len (6)   | Proto len (4) |           Operation           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sender hardware address (6)                   |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |  Sender protocol address (4)  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                 Target hardware address (6)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Target protocol address (4)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const ARPLen = 28

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is a view of an Ethernet/IPv4 ARP packet: at least ARPLen bytes.
type ARP []byte

func (a ARP) HardwareType() uint16 { return binary.BigEndian.Uint16(a[0:]) }
func (a ARP) ProtocolType() uint16 { return binary.BigEndian.Uint16(a[2:]) }
func (a ARP) HardwareLen() uint8   { return a[4] }
func (a ARP) ProtocolLen() uint8   { return a[5] }

// Op is the operation: ARPRequest or ARPReply.
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[6:]) }

func (a ARP) SenderMAC() [6]byte { return [6]byte(a[8:14]) }
func (a ARP) SenderIP() [4]byte  { return [4]byte(a[14:18]) }
func (a ARP) TargetMAC() [6]byte { return [6]byte(a[18:24]) }
func (a ARP) TargetIP() [4]byte  { return [4]byte(a[24:28]) }

// SenderAddr and TargetAddr are the protocol addresses as netip.Addr.
func (a ARP) SenderAddr() netip.Addr { return netip.AddrFrom4(a.SenderIP()) }
func (a ARP) TargetAddr() netip.Addr { return netip.AddrFrom4(a.TargetIP()) }

// SetEthernetIPv4 writes the fixed fields for Ethernet/IPv4 and op.
func (a ARP) SetEthernetIPv4(op uint16) {
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], EtherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
}

func (a ARP) SetOp(op uint16)        { binary.BigEndian.PutUint16(a[6:], op) }
func (a ARP) SetSenderMAC(m [6]byte) { copy(a[8:14], m[:]) }
func (a ARP) SetSenderIP(ip [4]byte) { copy(a[14:18], ip[:]) }
func (a ARP) SetTargetMAC(m [6]byte) { copy(a[18:24], m[:]) }
func (a ARP) SetTargetIP(ip [4]byte) { copy(a[24:28], ip[:]) }
