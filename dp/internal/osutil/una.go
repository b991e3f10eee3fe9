package osutil

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// SendUnsolicitedNA sends an unsolicited Neighbor Advertisement for the
// IPv6 address ip from mac on interface ifindex to all nodes (RFC 4861
// section 7.2.6, Override set, Solicited clear), the IPv6 counterpart of
// a gratuitous ARP: neighbors that cache ip update it to mac, as
// keepalived announces a moved IPv6 VIP. The frame is built whole and
// sent on a packet socket, so it does not depend on the interface's
// ndisc_notify setting or on the address having passed DAD.
func SendUnsolicitedNA(ifindex int, mac [6]byte, ip netip.Addr) error {
	if !ip.Is6() || ip.Is4In6() {
		return fmt.Errorf("unsolicited na for %s: not ipv6", ip)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IPV6)))
	if err != nil {
		return fmt.Errorf("unsolicited na: socket: %w", err)
	}
	defer unix.Close(fd)
	f := UnsolicitedNAFrame(mac, ip)
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: ifindex, Halen: 6}
	copy(sa.Addr[:], f[0:6])
	if err := unix.Sendto(fd, f, 0, sa); err != nil {
		return fmt.Errorf("unsolicited na for %s on ifindex %d: %w", ip, ifindex, err)
	}
	return nil
}

// UnsolicitedNAFrame returns the Ethernet frame of an unsolicited
// Neighbor Advertisement for ip from mac: source ip, destination
// ff02::1 (Ethernet 33:33:00:00:00:01), hop limit 255 (receivers drop
// ND with any other), the target link-layer address option, and the
// ICMPv6 checksum over the pseudo-header.
func UnsolicitedNAFrame(mac [6]byte, ip netip.Addr) []byte {
	const icmpLen = 32 // type..checksum, flags, target, option (8 bytes)
	f := make([]byte, 14+40+icmpLen)
	copy(f[0:6], []byte{0x33, 0x33, 0, 0, 0, 1})
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IPV6)
	h := f[14:54]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], icmpLen)
	h[6] = unix.IPPROTO_ICMPV6
	h[7] = 255
	src, dst := ip.As16(), netip.IPv6LinkLocalAllNodes().As16()
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])
	m := f[54:]
	m[0] = 136                               // Neighbor Advertisement
	binary.BigEndian.PutUint32(m[4:], 1<<29) // Override
	copy(m[8:24], src[:])                    // target
	m[24], m[25] = 2, 1                      // target link-layer address, 8 bytes
	copy(m[26:32], mac[:])
	binary.BigEndian.PutUint16(m[2:], icmp6Checksum(src, dst, m))
	return f
}

// icmp6Checksum is the ICMPv6 checksum of msg (its checksum field zero)
// with the IPv6 pseudo-header of src and dst (RFC 8200 section 8.1).
func icmp6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var ph [8]byte
	binary.BigEndian.PutUint32(ph[0:], uint32(len(msg)))
	ph[7] = unix.IPPROTO_ICMPV6
	add(ph[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
