package steer

import (
	"fmt"
	"net/netip"

	"samepath/nat"
)

// T4 key families; FAMILY_V4 and FAMILY_V6 in bpf/steer.c.
const (
	familyV4 = 4
	familyV6 = 6
)

// Devmap slots; the port numbers steer.c redirects to.
const (
	slotIngress = 0
	slotGateway = 1
)

// t4Key encodes a T4 range as an LPM trie key: one family byte, then the
// address; the prefix length counts the family byte.
func t4Key(p netip.Prefix) steerT4Key {
	k := steerT4Key{Prefixlen: uint32(8 + p.Bits())}
	a := p.Addr()
	if a.Is4() {
		k.Family = familyV4
		b := a.As4()
		copy(k.Addr[:], b[:])
	} else {
		k.Family = familyV6
		k.Addr = a.As16()
	}
	return k
}

// t4Val encodes a row's gateways: primary first, bit i of Up for
// gateway i.
func t4Val(r nat.T4Row) (steerT4Val, error) {
	var v steerT4Val
	if len(r.Gateways) > len(v.Mac) {
		return v, fmt.Errorf("t4 row %s: %d gateways, at most %d", r.Range, len(r.Gateways), len(v.Mac))
	}
	v.N = uint8(len(r.Gateways))
	for i, g := range r.Gateways {
		v.Mac[i] = g.MAC
		if g.Up {
			v.Up |= 1 << i
		}
	}
	return v, nil
}

// decodeRow is the inverse of t4Key and t4Val.
func decodeRow(k steerT4Key, v steerT4Val) (nat.T4Row, error) {
	var r nat.T4Row
	bits := int(k.Prefixlen) - 8
	switch k.Family {
	case familyV4:
		r.Range = netip.PrefixFrom(netip.AddrFrom4([4]byte(k.Addr[:4])), bits)
	case familyV6:
		r.Range = netip.PrefixFrom(netip.AddrFrom16(k.Addr), bits)
	default:
		return r, fmt.Errorf("t4 key: family %d", k.Family)
	}
	if int(v.N) > len(v.Mac) {
		return r, fmt.Errorf("t4 row %s: %d gateways", r.Range, v.N)
	}
	for i := range int(v.N) {
		r.Gateways = append(r.Gateways, nat.Gateway{MAC: v.Mac[i], Up: v.Up&(1<<i) != 0})
	}
	return r, nil
}
