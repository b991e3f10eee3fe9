package xlat

import (
	"encoding/binary"
	"net/netip"
)

// RFC 6052 section 2.2: where the IPv4 address sits in an IPv4-embedded
// IPv6 address, by prefix length. Bits 64-71 (the "u" octet) are zero and
// skipped; the suffix after the IPv4 address is zero.
//
//	+--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//	|PL| 0-------------32--40--48--56--64--72--80--88--96--104---------|
//	+--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//	|32|     prefix    |v4(32)         | u | suffix                    |
//	|40|     prefix        |v4(24)     | u |(8)| suffix                |
//	|48|     prefix            |v4(16) | u | (16)  | suffix            |
//	|56|     prefix                |(8)| u |  v4(24)   | suffix        |
//	|64|     prefix                    | u |   v4(32)      | suffix    |
//	|96|     prefix                                    |    v4(32)     |
//	+--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+

// v4pos is the byte index in the IPv6 address of each IPv4 byte.
func v4pos(bits int) [4]uint8 {
	switch bits {
	case 32:
		return [4]uint8{4, 5, 6, 7}
	case 40:
		return [4]uint8{5, 6, 7, 9}
	case 48:
		return [4]uint8{6, 7, 9, 10}
	case 56:
		return [4]uint8{7, 9, 10, 11}
	case 64:
		return [4]uint8{9, 10, 11, 12}
	}
	return [4]uint8{12, 13, 14, 15}
}

// Embed returns the IPv4-embedded IPv6 address of v4 under RFC 6052
// prefix p (of a length Validate accepts).
func Embed(p netip.Prefix, v4 [4]byte) [16]byte {
	a := p.Addr().As16()
	pos := v4pos(p.Bits())
	for i := range 4 {
		a[pos[i]] = v4[i]
	}
	return a
}

// Extract returns the IPv4 address embedded in a under RFC 6052 prefix
// p, and whether a lies in p.
func Extract(p netip.Prefix, a [16]byte) ([4]byte, bool) {
	var v4 [4]byte
	if !inPrefix6(p, &a) {
		return v4, false
	}
	pos := v4pos(p.Bits())
	for i := range 4 {
		v4[i] = a[pos[i]]
	}
	return v4, true
}

// mapper holds the address tables in the form the hot path reads: plain
// arrays, no netip (whose zone is a pointer).
type mapper struct {
	pool6     netip.Prefix
	hasPool6  bool
	eam       []eam
	own4      [4]byte
	own6      [16]byte
	p6791v4   netip.Prefix
	p6791v6   netip.Prefix
	has6791v4 bool
	has6791v6 bool
}

type eam struct {
	v6     [16]byte
	v6bits int
	v4     uint32
	v4bits int
}

func newMapper(c *Config) mapper {
	m := mapper{
		pool6: c.Pool6, hasPool6: c.Pool6.IsValid(),
		own4: c.IPv4Address.As4(), own6: c.IPv6Address.As16(),
		p6791v4: c.RFC6791v4, has6791v4: c.RFC6791v4.IsValid(),
		p6791v6: c.RFC6791v6, has6791v6: c.RFC6791v6.IsValid(),
	}
	for _, e := range c.EAM {
		v4 := e.IPv4.Addr().As4()
		m.eam = append(m.eam, eam{v6: e.IPv6.Addr().As16(), v6bits: e.IPv6.Bits(), v4: binary.BigEndian.Uint32(v4[:]), v4bits: e.IPv4.Bits()})
	}
	// Longest IPv6 prefix first, so the first IPv6 match is the longest.
	// (Validate forbids overlapping entries, so no IPv4 address matches
	// twice.)
	for i := 1; i < len(m.eam); i++ {
		for j := i; j > 0 && m.eam[j].v6bits > m.eam[j-1].v6bits; j-- {
			m.eam[j], m.eam[j-1] = m.eam[j-1], m.eam[j]
		}
	}
	return m
}

func inPrefix6(p netip.Prefix, a *[16]byte) bool {
	pa := p.Addr().As16()
	return match6(&pa, p.Bits(), a)
}

func match6(p *[16]byte, bits int, a *[16]byte) bool {
	n := bits / 8
	for i := 0; i < n; i++ {
		if p[i] != a[i] {
			return false
		}
	}
	if r := bits % 8; r != 0 {
		mask := byte(0xff << (8 - r))
		return p[n]&mask == a[n]&mask
	}
	return true
}

func mask32(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

// getBits reads n bits (n <= 32) of a from bit off on, as the low bits
// of the result.
func getBits(a *[16]byte, off, n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		bit := off + i
		v = v<<1 | uint32(a[bit/8]>>(7-bit%8)&1)
	}
	return v
}

// putBits writes the low n bits of v into a from bit off on.
func putBits(a *[16]byte, off, n int, v uint32) {
	for i := 0; i < n; i++ {
		bit := off + i
		if v>>(n-1-i)&1 != 0 {
			a[bit/8] |= 0x80 >> (bit % 8)
		} else {
			a[bit/8] &^= 0x80 >> (bit % 8)
		}
	}
}

// eam6to4 maps a through the EAM table (RFC 7757 section 3.3): the IPv4
// suffix is read right after the IPv6 prefix.
func (m *mapper) eam6to4(a *[16]byte) ([4]byte, bool) {
	for i := range m.eam {
		e := &m.eam[i]
		if match6(&e.v6, e.v6bits, a) {
			suf := getBits(a, e.v6bits, 32-e.v4bits)
			var v4 [4]byte
			binary.BigEndian.PutUint32(v4[:], e.v4|suf)
			return v4, true
		}
	}
	return [4]byte{}, false
}

// eam4to6 maps v4 through the EAM table.
func (m *mapper) eam4to6(v4 [4]byte) ([16]byte, bool) {
	x := binary.BigEndian.Uint32(v4[:])
	for i := range m.eam {
		e := &m.eam[i]
		mk := mask32(e.v4bits)
		if x&mk == e.v4 {
			a := e.v6
			putBits(&a, e.v6bits, 32-e.v4bits, x&^mk)
			return a, true
		}
	}
	return [16]byte{}, false
}

// to4 translates an IPv6 address: EAM first, then Pool6.
func (m *mapper) to4(a *[16]byte) ([4]byte, bool) {
	if v4, ok := m.eam6to4(a); ok {
		return v4, true
	}
	if m.hasPool6 {
		return Extract(m.pool6, *a)
	}
	return [4]byte{}, false
}

// to6 translates an IPv4 address: EAM first, then Pool6.
func (m *mapper) to6(v4 [4]byte) ([16]byte, bool) {
	if a, ok := m.eam4to6(v4); ok {
		return a, true
	}
	if m.hasPool6 {
		return Embed(m.pool6, v4), true
	}
	return [16]byte{}, false
}

// inEAM4 reports whether v4 lies in an EAM IPv4 prefix (hairpin test).
func (m *mapper) inEAM4(v4 [4]byte) bool {
	x := binary.BigEndian.Uint32(v4[:])
	for i := range m.eam {
		if x&mask32(m.eam[i].v4bits) == m.eam[i].v4 {
			return true
		}
	}
	return false
}

// pool4Src is the source of a translated ICMPv6 error whose source has no
// IPv4 mapping (RFC 6791 section 3): an address of the pool, picked by a
// hash of the untranslatable source so one router keeps one address, or
// the translator's own address when the pool is empty.
func (m *mapper) pool4Src(a *[16]byte) [4]byte {
	if !m.has6791v4 {
		return m.own4
	}
	base := m.p6791v4.Addr().As4()
	n := 32 - m.p6791v4.Bits()
	if n == 0 {
		return base
	}
	h := binary.BigEndian.Uint32(a[12:]) ^ binary.BigEndian.Uint32(a[8:]) ^ binary.BigEndian.Uint32(a[0:])
	x := binary.BigEndian.Uint32(base[:]) | (h &^ mask32(32-n))
	var v4 [4]byte
	binary.BigEndian.PutUint32(v4[:], x)
	return v4
}

// pool6Src is pool4Src for ICMPv4 errors translated to IPv6.
func (m *mapper) pool6Src(v4 [4]byte) [16]byte {
	if !m.has6791v6 {
		return m.own6
	}
	a := m.p6791v6.Addr().As16()
	n := 128 - m.p6791v6.Bits()
	if n > 32 {
		n = 32
	}
	if n > 0 {
		h := binary.BigEndian.Uint32(v4[:])
		x := binary.BigEndian.Uint32(a[12:]) | (h &^ mask32(32-n))
		binary.BigEndian.PutUint32(a[12:], x)
	}
	return a
}
