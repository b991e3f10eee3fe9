package nat

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"samepath/dp/header"
)

// Addr16 is an IP address as 16 bytes (IPv4 as ::ffff:a.b.c.d): the
// packet layer's type, so a decoded packet's addresses key the tables as
// they are.
type Addr16 = header.Addr16

// Addr16From returns a as 16 bytes, mapping IPv4 to ::ffff:a.b.c.d.
func Addr16From(a netip.Addr) Addr16 { return header.Addr16From(a) }

// Addr16V4 returns the IPv4-mapped form of the IPv4 address b.
func Addr16V4(b [4]byte) Addr16 { return header.Addr16V4(b) }

// words returns a as two little-endian words (for hashing and compact
// storage).
func words(a *Addr16) (uint64, uint64) {
	return binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:])
}

func addrFromWords(w0, w1 uint64) Addr16 {
	var a Addr16
	binary.LittleEndian.PutUint64(a[:8], w0)
	binary.LittleEndian.PutUint64(a[8:], w1)
	return a
}

// IP protocol numbers the port table handles.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// FlowKey identifies a flow as the mobile sends it (the up direction):
// Src is the mobile, Dst the representative (or real destination)
// address. For ICMP echo, SPort is the echo identifier and DPort is 0.
//
// It is packed (40 bytes), comparable and holds no pointer, as in
// Tailscale's net/flowtrack: hashing reads five words, and comparing is
// a memory compare. The padding is a blank field so that == ignores it;
// the hash never reads it either.
type FlowKey = header.Tuple

// MakeFlowKey builds a key from netip values (control paths and tests;
// the hot path fills a FlowKey in place from the parsed header).
func MakeFlowKey(proto uint8, src, dst netip.AddrPort) FlowKey {
	return FlowKey{
		Src: Addr16From(src.Addr()), Dst: Addr16From(dst.Addr()),
		SPort: src.Port(), DPort: dst.Port(), Proto: proto,
	}
}

// mum is the 64x64->128 multiply folded to 64 bits (the wyhash mixer).
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// Odd constants for the mixer (digits of pi and e; any odd, dense bit
// patterns do).
const (
	k0 = 0x243f6a8885a308d3
	k1 = 0x13198a2e03707345
	k2 = 0xa4093822299f31d1
	k3 = 0x082efa98ec4e6c89
	k4 = 0xb7e151628aed2a6b
)

// hash returns a seeded 64-bit hash of k. The seed is random per table,
// so a mobile choosing its ports cannot aim collisions at one chain.
func hashKey(k *FlowKey, seed uint64) uint64 {
	s0, s1 := words(&k.Src)
	d0, d1 := words(&k.Dst)
	w := uint64(k.SPort) | uint64(k.DPort)<<16 | uint64(k.Proto)<<32
	h := mum(s0^seed^k0, s1^k1) ^ mum(d0^seed^k2, d1^k3)
	return mum(h^k4, w^seed^k0)
}

// mix64 hashes one word (session ids, source addresses).
func mix64(x, seed uint64) uint64 {
	return mum(x^seed^k1, x^k2^k4)
}

// protoClass maps a protocol to its port space: TCP, UDP and ICMP echo
// identifiers are independent spaces on each gateway address, so one
// address carries up to three times PortMax-PortMin+1 flows. ICMP and
// ICMPv6 share a class (they never share an address family).
func protoClass(proto uint8) (int, bool) {
	switch proto {
	case ProtoTCP:
		return 0, true
	case ProtoUDP:
		return 1, true
	case ProtoICMP, ProtoICMPv6:
		return 2, true
	}
	return 0, false
}

const numClasses = 3
