package topo

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Legacy ethtool commands (linux/ethtool.h); they map onto netdev features.
const (
	ethtoolGTXCSUM = 0x16
	ethtoolSTXCSUM = 0x17
	ethtoolGGRO    = 0x2b
	ethtoolSGRO    = 0x2c
)

// SetGRO turns generic receive offload on or off on link NAME in namespace
// ns. On a veth, GRO on gives the device NAPI, which frames redirected into
// its peer by XDP need (BENCH.md: without it they are dropped).
func SetGRO(ns, link string, on bool) error {
	return Do(ns, func() error { return ethtoolSet(link, ethtoolSGRO, on) })
}

// GRO reports whether GRO is on for link NAME in namespace ns.
func GRO(ns, link string) (bool, error) {
	var on bool
	err := Do(ns, func() error {
		var err error
		on, err = ethtoolGet(link, ethtoolGGRO)
		return err
	})
	return on, err
}

// SetTxChecksum turns transmit checksum offload on or off on link NAME in
// namespace ns. Off also turns off TSO (which depends on it), so every frame
// the link sends is a complete, checksummed packet no bigger than the MTU: what
// a user-space relay (linkem) reading raw frames needs.
func SetTxChecksum(ns, link string, on bool) error {
	return Do(ns, func() error { return ethtoolSet(link, ethtoolSTXCSUM, on) })
}

func ethtoolSet(link string, cmd uint32, on bool) error {
	var v uint32
	if on {
		v = 1
	}
	if err := ethtoolIoctl(link, cmd, &v); err != nil {
		return fmt.Errorf("ethtool cmd %#x on %s: %w", cmd, link, err)
	}
	return nil
}

func ethtoolGet(link string, cmd uint32) (bool, error) {
	var v uint32
	if err := ethtoolIoctl(link, cmd, &v); err != nil {
		return false, fmt.Errorf("ethtool cmd %#x on %s: %w", cmd, link, err)
	}
	return v != 0, nil
}

// ethtoolIoctl runs one ETHTOOL_[GS]* value command on link in the calling
// thread's namespace; *v is the value in and out.
func ethtoolIoctl(link string, cmd uint32, v *uint32) error {
	if len(link) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", link)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	return ethtoolValueIoctl(fd, link, cmd, v)
}
