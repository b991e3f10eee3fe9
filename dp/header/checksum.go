package header

import (
	"encoding/binary"
	"math/bits"
)

// Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// The checksum is the ones' complement of the ones' complement sum of the
// data taken as big-endian 16-bit words (an odd trailing byte is padded with
// a zero low byte). Ones' complement addition is addition with end-around
// carry; it is commutative and associative and the same in any word width,
// so Checksum adds 64-bit words and folds at the end.
//
// Representation of zero. Ones' complement has two zeros, 0x0000 and 0xFFFF.
// A sum over data that is not all zero is never 0x0000, so a computed
// checksum (the complement of the folded sum) is never 0xFFFF and is 0x0000
// exactly when the sum is 0xFFFF. ChecksumUpdate* follow RFC 1624 eqn. 3,
// HC' = ~(~HC + ~m + m'), which lands on the same representation as a full
// recomputation whenever HC itself came from a full computation; the tests
// check this bit for bit, including sums that fold to 0xFFFF.
//
// UDP rule (RFC 768, RFC 8200 section 8.1): a computed UDP checksum of
// 0x0000 is transmitted as 0xFFFF, because 0x0000 in the field means "no
// checksum" over IPv4 (and is invalid over IPv6). Accordingly:
//   - UDP.CalculateChecksum returns 0xFFFF where the arithmetic gives 0;
//   - UDP setters "WithChecksumUpdate" leave a zero field at zero (the sender
//     chose no checksum; updating it would invent an invalid one) and turn an
//     updated result of 0x0000 into 0xFFFF (the two are the same number).
// TCP and ICMP have no such rule: 0x0000 is a valid checksum for them.

// Checksum adds b to initial in ones' complement arithmetic and returns the
// running sum, not yet folded or complemented: pass it as initial to the next
// call, and to Fold at the end. initial is typically 0 or a pseudo-header sum.
// When the data comes in several pieces, every piece but the last must have
// an even length. It does not allocate.
func Checksum(b []byte, initial uint32) uint32 {
	var s, c uint64
	s = uint64(initial)
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b), 0)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[24:]), c)
		s += c // cannot carry out: s < 2^64-1 after a carry
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b), 0)
		s += c
		b = b[8:]
	}
	if len(b) >= 4 {
		s, c = bits.Add64(s, uint64(binary.BigEndian.Uint32(b)), 0)
		s += c
		b = b[4:]
	}
	if len(b) >= 2 {
		s, c = bits.Add64(s, uint64(binary.BigEndian.Uint16(b)), 0)
		s += c
		b = b[2:]
	}
	if len(b) == 1 {
		s, c = bits.Add64(s, uint64(b[0])<<8, 0)
		s += c
	}
	return fold64(s)
}

// fold64 folds a 64-bit ones' complement sum to 32 bits (never 0 unless s is 0).
func fold64(s uint64) uint32 {
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	return uint32(s)
}

// fold16 folds a 32-bit ones' complement sum to 16 bits, without complement.
func fold16(s uint32) uint16 {
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}

// Fold folds a running sum from Checksum to 16 bits and complements it: the
// result is the value for a checksum field computed with that field zeroed,
// or 0 when the sum covered a valid checksum field (verification).
func Fold(sum uint32) uint16 { return ^fold16(sum) }

// PseudoHeaderChecksum is the running sum of the TCP/UDP/ICMPv6 pseudo-header:
// src and dst addresses (4 bytes each for IPv4, RFC 793/768; 16 bytes each for
// IPv6, RFC 8200 section 8.1), the protocol number and the upper-layer length
// (transport header plus payload). Feed it to Checksum as initial.
//
//	IPv4:  | src (4) | dst (4) | zero | proto | length (2) |
//	IPv6:  | src (16) | dst (16) | length (4) | zero (3) | next header |
//
// Both layouts give the same sum for lengths below 65536.
func PseudoHeaderChecksum(proto uint8, src, dst []byte, length uint16) uint32 {
	s := Checksum(src, 0)
	s = Checksum(dst, s)
	return fold64(uint64(s) + uint64(proto) + uint64(length))
}

// ChecksumUpdate16 returns checksum old updated for one 16-bit word of the
// covered data changing from from to to (RFC 1624 eqn. 3).
func ChecksumUpdate16(old, from, to uint16) uint16 {
	s := uint32(^old) + uint32(^from) + uint32(to)
	return ^fold16(s)
}

// ChecksumUpdate32 is ChecksumUpdate16 for an aligned 32-bit field (an IPv4
// address, a TCP sequence number).
func ChecksumUpdate32(old uint16, from, to uint32) uint16 {
	s := uint64(^old) + uint64(^from) + uint64(to)
	return ^fold16(fold64(s))
}

// ChecksumUpdateAddr is ChecksumUpdate16 for a field of even length starting
// at an even offset of the covered data, typically a 4- or 16-byte address.
// from and to must have the same even length (it panics otherwise: a caller
// bug, not wire input).
func ChecksumUpdateAddr(old uint16, from, to []byte) uint16 {
	if len(from) != len(to) || len(from)%2 != 0 {
		panic("header: ChecksumUpdateAddr needs two fields of the same even length")
	}
	s := uint64(^old)
	for len(from) >= 4 {
		s += uint64(^binary.BigEndian.Uint32(from)) + uint64(binary.BigEndian.Uint32(to))
		from, to = from[4:], to[4:]
	}
	if len(from) == 2 {
		s += uint64(^binary.BigEndian.Uint16(from)) + uint64(binary.BigEndian.Uint16(to))
	}
	return ^fold16(fold64(s))
}

// udpFix maps a computed UDP checksum of 0 to 0xFFFF (see the UDP rule above).
func udpFix(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}
