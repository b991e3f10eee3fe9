package header

import (
	"errors"
	"fmt"
)

// ErrChecksum is wrapped by VerifyChecksums errors about a wrong checksum.
var ErrChecksum = errors.New("bad checksum")

// VerifyChecksums parses frame and recomputes in full every checksum it can
// see: the IPv4 header checksum, the TCP, UDP, ICMPv4 or ICMPv6 checksum
// (not for fragments, whose transport checksum covers bytes not present),
// and the IPv4 header checksum of the packet embedded in an ICMPv4 error.
// A UDP checksum of 0 is accepted over IPv4 (none) and rejected over IPv6.
func VerifyChecksums(frame []byte) error {
	var p Parsed
	if v := Parse(frame, &p); v != OK {
		return fmt.Errorf("frame does not parse: %v", v)
	}
	if p.IPVersion == 4 {
		h := p.IPv4(frame)
		if !h.IsChecksumValid() {
			return fmt.Errorf("ipv4 header checksum %#04x, want %#04x: %w", h.Checksum(), h.CalculateChecksum(), ErrChecksum)
		}
	}
	if p.IPVersion == 0 || p.Fragment || p.L4Off == 0 {
		return nil
	}
	ph := p.PseudoHeaderChecksum(frame)
	switch {
	case p.Proto == ProtoTCP:
		t := p.TCP(frame)
		if !t.IsChecksumValid(ph) {
			return fmt.Errorf("tcp checksum %#04x, want %#04x: %w", t.Checksum(), t.CalculateChecksum(ph), ErrChecksum)
		}
	case p.Proto == ProtoUDP:
		u := p.UDP(frame)
		if !u.IsChecksumValid(ph, p.IPVersion == 6) {
			return fmt.Errorf("udp checksum %#04x, want %#04x: %w", u.Checksum(), u.CalculateChecksum(ph), ErrChecksum)
		}
	case p.Proto == ProtoICMPv4 && p.IPVersion == 4:
		m := p.ICMPv4(frame)
		if !m.IsChecksumValid() {
			return fmt.Errorf("icmpv4 checksum %#04x, want %#04x: %w", m.Checksum(), m.CalculateChecksum(), ErrChecksum)
		}
		if e := m.Embedded(); len(e) >= IPv4MinLen && e[0]>>4 == 4 {
			eh := IPv4(e)
			if eh.HeaderLen() >= IPv4MinLen && eh.HeaderLen() <= len(e) && !eh.IsChecksumValid() {
				return fmt.Errorf("icmpv4 embedded ipv4 header checksum %#04x, want %#04x: %w", eh.Checksum(), eh.CalculateChecksum(), ErrChecksum)
			}
		}
	case p.Proto == ProtoICMPv6 && p.IPVersion == 6:
		m := p.ICMPv6(frame)
		if !m.IsChecksumValid(ph) {
			return fmt.Errorf("icmpv6 checksum %#04x, want %#04x: %w", m.Checksum(), m.CalculateChecksum(ph), ErrChecksum)
		}
	}
	return nil
}
