package nettest

import (
	"encoding/binary"
	"net/netip"
)

// Frame builders for tests: whole Ethernet frames with valid checksums.

// Ether returns an Ethernet frame; vlan > 0 inserts one 802.1Q tag.
func Ether(dst, src [6]byte, vlan int, etherType uint16, payload []byte) []byte {
	b := append(append([]byte{}, dst[:]...), src[:]...)
	if vlan > 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, uint16(vlan))
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

// UDP returns an IPv4 or IPv6 packet (by the family of src) carrying UDP.
func UDP(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	u := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	u = append(u, payload...)
	return IP(src, dst, 17, u)
}

// IP returns an IPv4 or IPv6 packet with protocol proto around l4, and
// fills in the UDP (17) or ICMPv6 (58) checksum.
func IP(src, dst netip.Addr, proto uint8, l4 []byte) []byte {
	var ph []byte // pseudo-header
	var h []byte
	if src.Is4() {
		h = make([]byte, 20)
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
		h[8] = 64
		h[9] = proto
		s, d := src.As4(), dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		binary.BigEndian.PutUint16(h[10:], ^fold(add(0, h)))
		ph = append(append(append([]byte{}, s[:]...), d[:]...), 0, proto, byte(len(l4)>>8), byte(len(l4)))
	} else {
		h = make([]byte, 40)
		h[0] = 0x60
		binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
		h[6] = proto
		h[7] = 64
		s, d := src.As16(), dst.As16()
		copy(h[8:], s[:])
		copy(h[24:], d[:])
		ph = append(append(append([]byte{}, s[:]...), d[:]...), 0, 0, byte(len(l4)>>8), byte(len(l4)), 0, 0, 0, proto)
	}
	l4 = append([]byte{}, l4...)
	off := -1
	switch proto {
	case 17:
		off = 6
	case 58:
		off = 2
	}
	if off >= 0 && len(l4) >= off+2 {
		l4[off], l4[off+1] = 0, 0
		c := ^fold(add(add(0, ph), l4))
		if c == 0 && proto == 17 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(l4[off:], c)
	}
	return append(h, l4...)
}

// ICMPv6 returns an ICMPv6 message of type typ with an 8-byte body.
func ICMPv6(src, dst netip.Addr, typ uint8) []byte {
	return IP(src, dst, 58, []byte{typ, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
}

// ARPRequest returns an ARP who-has payload (EtherType 0x0806).
func ARPRequest(srcMAC [6]byte, srcIP, target netip.Addr) []byte {
	b := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	s, t := srcIP.As4(), target.As4()
	b = append(b, srcMAC[:]...)
	b = append(b, s[:]...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	return append(b, t[:]...)
}

// add adds b (even length, or last) as 16-bit words to acc.
func add(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}
