package steer_test

import (
	"encoding/binary"
	"net/netip"

	"samepath/nat"
)

// Hand-built frames for the golden tests. Only what the offload reads has
// to be right, but checksums are filled in so captures look sane.

func ether(dst, src nat.MAC, vlan int, etype uint16, payload []byte) []byte {
	b := append([]byte{}, dst[:]...)
	b = append(b, src[:]...)
	if vlan >= 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, uint16(vlan))
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, payload...)
}

func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// ipv4 builds an IPv4 header with opts (a multiple of 4 bytes) and payload.
func ipv4(src, dst string, proto byte, opts, payload []byte) []byte {
	hl := 20 + len(opts)
	h := make([]byte, hl, hl+len(payload))
	h[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(h[2:], uint16(hl+len(payload)))
	h[8] = 64
	h[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	copy(h[20:], opts)
	binary.BigEndian.PutUint16(h[10:], csum(h))
	return append(h, payload...)
}

func ipv6(src, dst string, next byte, payload []byte) []byte {
	h := make([]byte, 40, 40+len(payload))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = next
	h[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, payload...)
}

// udp is a UDP header (checksum 0, which IPv4 allows) with payload.
func udp(payload string) []byte {
	h := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(h[0:], 40000)
	binary.BigEndian.PutUint16(h[2:], 9)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

// icmp6 is an ICMPv6 message of the given type with 20 bytes of body.
func icmp6(typ byte) []byte {
	b := make([]byte, 24)
	b[0] = typ
	return b
}

func arpRequest(src nat.MAC, spa, tpa string) []byte {
	b := []byte{0, 1, 0x08, 0x00, 6, 4, 0, 1}
	b = append(b, src[:]...)
	s, t := netip.MustParseAddr(spa).As4(), netip.MustParseAddr(tpa).As4()
	b = append(b, s[:]...)
	b = append(b, make([]byte, 6)...)
	return append(b, t[:]...)
}

// rewrite returns a copy of f with new destination and source MACs.
func rewrite(f []byte, dst, src nat.MAC) []byte {
	out := append([]byte{}, f...)
	copy(out[0:6], dst[:])
	copy(out[6:12], src[:])
	return out
}
