package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"samepath/nat"
)

// neighborMAC looks ip up in the kernel's neighbor table on link ifindex.
// It returns false when there is no usable (reachable, stale, delay,
// probe or permanent) entry.
func neighborMAC(ifindex int, ip netip.Addr) (nat.MAC, bool, error) {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	neighs, err := netlink.NeighList(ifindex, fam)
	if err != nil {
		return nat.MAC{}, false, fmt.Errorf("list neighbors: %w", err)
	}
	usable := netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || a.Unmap() != ip || n.State&usable == 0 || len(n.HardwareAddr) != 6 {
			continue
		}
		return nat.MAC(n.HardwareAddr), true, nil
	}
	return nat.MAC{}, false, nil
}

// provoke makes the kernel resolve ip: a datagram to the discard port
// triggers ARP/ND on the route toward it.
func provoke(ip netip.Addr) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 9)))
	if err != nil {
		return
	}
	c.Write(nil)
	c.Close()
}

// followNextHop keeps set() up to date with the MAC of ip on ifindex,
// checking every interval, until ctx ends. The first resolution is
// awaited up to wait.
func followNextHop(ctx context.Context, log *slog.Logger, ifindex int, ip netip.Addr, interval, wait time.Duration, set func(nat.MAC)) error {
	var cur nat.MAC
	check := func() (bool, error) {
		m, ok, err := neighborMAC(ifindex, ip)
		if err != nil || !ok {
			provoke(ip)
			return false, err
		}
		if m != cur {
			log.Info("next hop resolved", "ip", ip, "mac", m)
			cur = m
			set(m)
		}
		return true, nil
	}
	deadline := time.Now().Add(wait)
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			log.Warn("next hop not resolved yet; down packets are dropped (no_next_hop) until it is", "ip", ip)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := check(); err != nil {
					log.Warn("next hop lookup", "err", err)
				}
			}
		}
	}()
	return nil
}
