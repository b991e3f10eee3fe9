package osutil

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// SendGARP broadcasts a gratuitous ARP request for the IPv4 address ip
// from mac on interface ifindex (sender and target address both ip, RFC
// 5227 section 3): the neighbors that cache ip update it to mac, as
// keepalived announces a moved VIP. Linux applies a gratuitous request
// to an existing entry even within its locktime.
func SendGARP(ifindex int, mac [6]byte, ip netip.Addr) error {
	if !ip.Is4() {
		return fmt.Errorf("gratuitous arp for %s: not ipv4", ip)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("gratuitous arp: socket: %w", err)
	}
	defer unix.Close(fd)
	f := GARPFrame(mac, ip)
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex, Halen: 6}
	copy(sa.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err := unix.Sendto(fd, f, 0, sa); err != nil {
		return fmt.Errorf("gratuitous arp for %s on ifindex %d: %w", ip, ifindex, err)
	}
	return nil
}

// GARPFrame returns the Ethernet frame of a gratuitous ARP request for
// IPv4 address ip from mac.
func GARPFrame(mac [6]byte, ip netip.Addr) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_ARP)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1)      // hardware: Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // protocol: IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	copy(a[8:14], mac[:])
	ip4 := ip.As4()
	copy(a[14:18], ip4[:])
	// target hardware address zero (a[18:24])
	copy(a[24:28], ip4[:])
	return f
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
