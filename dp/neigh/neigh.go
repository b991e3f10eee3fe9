// Package neigh gives the dataplane the Ethernet addresses of next hops it
// sends to directly (the gateway's actual servers), from the kernel's
// neighbor table: a lock-free, allocation-free lookup for the workers and
// a resolver goroutine that keeps the snapshot fresh and asks the kernel
// to resolve addresses the workers missed.
package neigh

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
)

// Table maps next-hop addresses (16 bytes, IPv4-mapped for IPv4) to MACs.
type Table struct {
	cur    atomic.Pointer[map[[16]byte][6]byte]
	misses chan [16]byte
}

// New returns an empty table.
func New() *Table {
	t := &Table{misses: make(chan [16]byte, 256)}
	m := map[[16]byte][6]byte{}
	t.cur.Store(&m)
	return t
}

// Lookup returns the MAC of ip. On a miss it asks the resolver (without
// blocking; a full queue drops the request, a later packet asks again).
func (t *Table) Lookup(ip [16]byte) ([6]byte, bool) {
	mac, ok := (*t.cur.Load())[ip]
	if !ok {
		t.missed(ip)
	}
	return mac, ok
}

// missed asks the resolver for ip without blocking.
func (t *Table) missed(ip [16]byte) {
	select {
	case t.misses <- ip:
	default:
	}
}

// Cache is one worker's memo of its latest successful lookup in a Table:
// a gateway's up packets go to a few servers, mostly the same one many
// times in a row, and a hit costs a pointer and a 16-byte compare instead
// of a map lookup. The memo holds the snapshot it was read from and is
// valid only while that snapshot is current, so a refresh of the table is
// seen at once. Not safe for concurrent use: one per worker.
type Cache struct {
	t   *Table
	m   *map[[16]byte][6]byte // snapshot of the memo; nil: none
	ip  [16]byte
	mac [6]byte
}

// NewCache returns an empty memo of t.
func (t *Table) NewCache() *Cache { return &Cache{t: t} }

// Lookup is Table.Lookup through the memo.
func (c *Cache) Lookup(ip [16]byte) ([6]byte, bool) {
	m := c.t.cur.Load()
	if m == c.m && ip == c.ip {
		return c.mac, true
	}
	mac, ok := (*m)[ip]
	if !ok {
		c.t.missed(ip)
		return mac, false
	}
	c.m, c.ip, c.mac = m, ip, mac
	return mac, true
}

// Resolve asks the resolver to look ip up ahead of traffic (without
// blocking; a full queue drops the request).
func (t *Table) Resolve(ip [16]byte) {
	if _, ok := (*t.cur.Load())[ip]; ok {
		return
	}
	select {
	case t.misses <- ip:
	default:
	}
}

// Set replaces the whole table (tests and static configuration).
func (t *Table) Set(m map[[16]byte][6]byte) {
	c := make(map[[16]byte][6]byte, len(m))
	for k, v := range m {
		c[k] = v
	}
	t.cur.Store(&c)
}

// Len is the number of known neighbors.
func (t *Table) Len() int { return len(*t.cur.Load()) }

// Run keeps the table in step with the kernel's neighbor table on link
// ifindex until ctx ends: every interval, and soon after a miss, which it
// also resolves by sending a datagram to the discard port (the kernel
// then runs ARP or ND).
func (t *Table) Run(ctx context.Context, log *slog.Logger, ifindex int, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	refresh := func() {
		m := map[[16]byte][6]byte{}
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			ns, err := netlink.NeighList(ifindex, fam)
			if err != nil {
				log.Warn("neighbor list", "err", err)
				return
			}
			usable := netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT
			for _, n := range ns {
				a, ok := netip.AddrFromSlice(n.IP)
				if !ok || n.State&usable == 0 || len(n.HardwareAddr) != 6 {
					continue
				}
				m[a.As16()] = [6]byte(n.HardwareAddr)
			}
		}
		t.cur.Store(&m)
	}
	refresh()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			refresh()
		case ip := <-t.misses:
			a := netip.AddrFrom16(ip).Unmap()
			if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9))); err == nil {
				c.Write(nil)
				c.Close()
			}
			// Give the kernel a moment to resolve, then take the result.
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			refresh()
		}
	}
}
