package xlat

import (
	"errors"
	"fmt"
	"net/netip"
)

// Config is a stateless translator's (SIIT, RFC 7915) configuration. The
// zero value is not usable; start from DefaultConfig.
type Config struct {
	// Pool6 is the RFC 6052 translation prefix: /32, /40, /48, /56, /64
	// or /96. The zero Prefix means none (EAM only).
	Pool6 netip.Prefix
	// EAM is the explicit address mapping table (RFC 7757). The IPv6
	// prefix of an entry leaves at least as many suffix bits as its IPv4
	// prefix; the IPv4 suffix follows the IPv6 prefix, the rest is zero
	// (RFC 7757 section 3.3). It is searched before Pool6, longest prefix
	// first.
	EAM []EAM
	// IPv4Address and IPv6Address are the translator's own addresses:
	// the sources of the ICMP errors it answers with itself, and of
	// translated ICMP errors whose source has no mapping when the RFC
	// 6791 pool of that family is empty.
	IPv4Address, IPv6Address netip.Addr
	// RFC6791v4 and RFC6791v6 are the RFC 6791 pools: sources for
	// translated ICMP errors whose own source cannot be translated (a
	// router on the path). The zero Prefix means "use the translator's
	// own address".
	RFC6791v4, RFC6791v6 netip.Prefix
	// IPv4MTU and IPv6MTU are the egress MTUs of each side: a packet
	// that would leave bigger is refused with the ICMP error RFC 7915
	// asks for (or fragmented, IPv4 with DF clear to IPv6).
	IPv4MTU, IPv6MTU int
	// LowestIPv6MTU is the largest IPv6 packet built from an IPv4 packet
	// with DF clear before the translator fragments it (RFC 7915 section
	// 4 and 6: at least 1280).
	LowestIPv6MTU int
	// AmendUDPZeroChecksum computes a checksum for an unfragmented IPv4
	// UDP datagram without one (RFC 7915 section 4.5); when false, or for
	// a fragment, such a datagram is refused with ICMPv4 3/13.
	AmendUDPZeroChecksum bool
	// ResetTrafficClass sets the IPv6 Traffic Class to 0 instead of
	// copying the IPv4 TOS (RFC 7915 section 4.1).
	ResetTrafficClass bool
	// ResetTOS sets the IPv4 TOS to NewTOS instead of copying the
	// Traffic Class (RFC 7915 section 5.1).
	ResetTOS bool
	NewTOS   uint8
	// EAMHairpin turns on RFC 7757 appendix B.1 "intrinsic" hairpinning:
	// an IPv6 packet whose translated destination lies in an EAM IPv4
	// prefix is translated back to IPv6 (source through Pool6) and sent
	// out of the IPv6 side.
	EAMHairpin bool
}

// EAM is one explicit address mapping (RFC 7757 section 3).
type EAM struct {
	IPv6 netip.Prefix
	IPv4 netip.Prefix
}

// DefaultConfig is the well-known prefix 64:ff9b::/96 (RFC 6052 section
// 2.1), no EAM, MTUs of 1500, the lowest IPv6 MTU 1280, zero UDP
// checksums refused, TOS and Traffic Class copied, hairpinning on. The
// translator's own addresses must still be set.
func DefaultConfig() Config {
	return Config{
		Pool6:         netip.MustParsePrefix("64:ff9b::/96"),
		IPv4MTU:       1500,
		IPv6MTU:       1500,
		LowestIPv6MTU: 1280,
		EAMHairpin:    true,
	}
}

// ErrConfig is wrapped by every Validate error.
var ErrConfig = errors.New("invalid xlat config")

// Validate checks c and names the first bad key.
func (c *Config) Validate() error {
	bad := func(key, f string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(f, a...))
	}
	if c.Pool6.IsValid() {
		if !c.Pool6.Addr().Is6() || c.Pool6.Addr().Is4In6() {
			return bad("pool6", "%v is not an IPv6 prefix", c.Pool6)
		}
		switch c.Pool6.Bits() {
		case 32, 40, 48, 56, 64, 96:
		default:
			return bad("pool6", "length /%d: RFC 6052 allows /32, /40, /48, /56, /64, /96", c.Pool6.Bits())
		}
		if c.Pool6.Masked() != c.Pool6 {
			return bad("pool6", "%v has bits set past its length", c.Pool6)
		}
		if a := c.Pool6.Addr().As16(); c.Pool6.Bits() < 96 && a[8] != 0 {
			return bad("pool6", "%v: bits 64-71 (the u octet) must be zero", c.Pool6)
		}
	}
	if !c.Pool6.IsValid() && len(c.EAM) == 0 {
		return bad("pool6", "no pool6 and no eam entry: nothing to translate with")
	}
	for i, e := range c.EAM {
		key := fmt.Sprintf("eam[%d]", i)
		if !e.IPv6.IsValid() || !e.IPv6.Addr().Is6() || e.IPv6.Addr().Is4In6() {
			return bad(key+".ipv6", "%v is not an IPv6 prefix", e.IPv6)
		}
		if !e.IPv4.IsValid() || !e.IPv4.Addr().Is4() {
			return bad(key+".ipv4", "%v is not an IPv4 prefix", e.IPv4)
		}
		if 128-e.IPv6.Bits() < 32-e.IPv4.Bits() {
			return bad(key, "%v leaves a shorter suffix than %v (RFC 7757 3.2)", e.IPv6, e.IPv4)
		}
		if e.IPv6.Masked() != e.IPv6 || e.IPv4.Masked() != e.IPv4 {
			return bad(key, "prefix with bits set past its length")
		}
		for j := 0; j < i; j++ {
			if c.EAM[j].IPv6.Overlaps(e.IPv6) || c.EAM[j].IPv4.Overlaps(e.IPv4) {
				return bad(key, "overlaps eam[%d]", j)
			}
		}
	}
	if !c.IPv4Address.Is4() {
		return bad("ipv4_address", "%v is not an IPv4 address", c.IPv4Address)
	}
	if !c.IPv6Address.Is6() || c.IPv6Address.Is4In6() {
		return bad("ipv6_address", "%v is not an IPv6 address", c.IPv6Address)
	}
	if c.RFC6791v4.IsValid() && (!c.RFC6791v4.Addr().Is4() || c.RFC6791v4.Masked() != c.RFC6791v4) {
		return bad("rfc6791v4", "%v is not a masked IPv4 prefix", c.RFC6791v4)
	}
	if c.RFC6791v6.IsValid() && (!c.RFC6791v6.Addr().Is6() || c.RFC6791v6.Addr().Is4In6() || c.RFC6791v6.Masked() != c.RFC6791v6) {
		return bad("rfc6791v6", "%v is not a masked IPv6 prefix", c.RFC6791v6)
	}
	if c.IPv4MTU < 68 || c.IPv4MTU > 65535 {
		return bad("ipv4_mtu", "%d outside 68..65535", c.IPv4MTU)
	}
	if c.IPv6MTU < 1280 || c.IPv6MTU > 65535 {
		return bad("ipv6_mtu", "%d outside 1280..65535", c.IPv6MTU)
	}
	if c.LowestIPv6MTU < 1280 || c.LowestIPv6MTU > 65535 {
		return bad("lowest_ipv6_mtu", "%d outside 1280..65535", c.LowestIPv6MTU)
	}
	return nil
}
