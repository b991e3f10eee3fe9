package dp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"samepath/nat"
)

// LBConfig configures the load-balancer pipeline (FIG. 12-15).
type LBConfig struct {
	// Ingress and Gateway are the worker port indexes of the ingress side
	// (toward the NAS/router) and the gateway side (the LAN to the
	// packet gateways). The port a frame arrives on gives its direction.
	Ingress, Gateway int
	// IngressMAC and GatewayMAC are the LB's own MACs on each side.
	IngressMAC, GatewayMAC nat.MAC
	// NextHop is the ingress-side next hop (the NAS/router) for down
	// packets; it may be zero at start and set later with SetNextHop.
	NextHop nat.MAC
	// T4 is the shared table; the LB only reads it.
	T4 *nat.T4
}

// Validate checks the config.
func (c LBConfig) Validate() error {
	if c.T4 == nil {
		return errors.New("lb: no T4 table")
	}
	if c.Ingress < 0 || c.Gateway < 0 || c.Ingress == c.Gateway {
		return fmt.Errorf("lb: port indexes %d/%d: want two distinct ports", c.Ingress, c.Gateway)
	}
	if c.IngressMAC == (nat.MAC{}) || c.GatewayMAC == (nat.MAC{}) {
		return errors.New("lb: own MACs must be set")
	}
	return nil
}

// LB is the load-balancer pipeline. Up packets (from the ingress side) go
// to the first gateway in state up of the T4 row holding their source
// address (R-LB-1); down packets (from the gateway side) go to the
// ingress-side next hop (R-LB-3). Only the Ethernet addresses change: the
// LB is invisible at the IP layer, so no TTL or checksum changes.
//
// The LB checks headers only as far as it reads them (Ethernet, one
// 802.1Q tag, the fixed IPv4/IPv6 header), exactly as the in-kernel
// steering offload (dp/steer) does, so both paths give identical verdicts.
//
// Process allocates nothing; the next hop may be changed from any
// goroutine.
type LB struct {
	cfg     LBConfig
	nextHop atomic.Uint64 // MAC in the low 48 bits; 0 = unknown
}

// NewLB makes the pipeline.
func NewLB(cfg LBConfig) (*LB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lb := &LB{cfg: cfg}
	lb.SetNextHop(cfg.NextHop)
	return lb, nil
}

func macU64(m nat.MAC) uint64 {
	var b [8]byte
	copy(b[2:], m[:])
	return binary.BigEndian.Uint64(b[:])
}

// SetNextHop sets the ingress-side next hop MAC (learned from the
// neighbor table, or configured).
func (lb *LB) SetNextHop(m nat.MAC) { lb.nextHop.Store(macU64(m)) }

// NextHop returns the current ingress-side next hop MAC.
func (lb *LB) NextHop() nat.MAC {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], lb.nextHop.Load())
	return nat.MAC(b[2:])
}

const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
)

// l3 finds the IP header of an Ethernet frame and checks the fixed part:
//
//	IPv4: 20 bytes, version 4, IHL >= 5 and IHL*4 bytes present
//	IPv6: 40 bytes, version 6
//
// It returns the IP header's offset and version, or a drop reason.
func l3(b []byte) (off int, version uint8, r Reason) {
	if len(b) < 14 {
		return 0, 0, ReasonMalformed
	}
	et := binary.BigEndian.Uint16(b[12:14])
	off = 14
	if et == etherTypeVLAN {
		if len(b) < 18 {
			return 0, 0, ReasonMalformed
		}
		et = binary.BigEndian.Uint16(b[16:18])
		off = 18
	}
	switch et {
	case etherTypeIPv4:
		if len(b) < off+20 || b[off]>>4 != 4 {
			return 0, 0, ReasonMalformed
		}
		ihl := int(b[off]&0x0f) * 4
		if ihl < 20 || len(b) < off+ihl {
			return 0, 0, ReasonMalformed
		}
		return off, 4, ReasonNone
	case etherTypeIPv6:
		if len(b) < off+40 || b[off]>>4 != 6 {
			return 0, 0, ReasonMalformed
		}
		return off, 6, ReasonNone
	}
	return 0, 0, ReasonNotIP
}

// steerAcc sums a batch's up packets per steering counter (T4 row and
// chosen gateway), so that the shared counters get one atomic add per
// row and batch, not one per packet. A batch steered by more rows than
// it has slots adds the rest directly.
type steerAcc struct {
	c [4]*nat.SteerCounter
	n [4]uint64
	k int
}

func (a *steerAcc) add(c *nat.SteerCounter) {
	for i := 0; i < a.k; i++ {
		if a.c[i] == c {
			a.n[i]++
			return
		}
	}
	if a.k < len(a.c) {
		a.c[a.k], a.n[a.k] = c, 1
		a.k++
		return
	}
	c.Add(1)
}

func (a *steerAcc) flush() {
	for i := 0; i < a.k; i++ {
		a.c[i].Add(a.n[i])
	}
}

// Process implements Pipeline. Up packets are counted per T4 row and
// chosen gateway (nat.T4.SteerCounts), summed per batch (BENCHMARKS.md
// "lb pipeline, memory ports").
func (lb *LB) Process(in int, pkts []Packet) {
	up := in == lb.cfg.Ingress
	var acc steerAcc
	for i := range pkts {
		p := &pkts[i]
		b := p.Data
		off, ver, r := l3(b)
		if r != ReasonNone {
			p.Drop = r
			continue
		}
		if !up {
			nh := lb.nextHop.Load()
			if nh == 0 {
				p.Drop = ReasonNoNextHop
				continue
			}
			var m [8]byte
			binary.BigEndian.PutUint64(m[:], nh)
			copy(b[0:6], m[2:])
			copy(b[6:12], lb.cfg.IngressMAC[:])
			p.Out = lb.cfg.Ingress
			continue
		}
		var gw nat.MAC
		var res nat.Result
		var ctr *nat.SteerCounter
		if ver == 4 {
			gw, res, ctr = lb.cfg.T4.SteerV4([4]byte(b[off+12 : off+16]))
		} else {
			gw, res, ctr = lb.cfg.T4.SteerV6([16]byte(b[off+8 : off+24]))
		}
		switch res {
		case nat.NoRow:
			p.Drop = ReasonNoRoute
			continue
		case nat.AllDown:
			acc.add(ctr)
			p.Drop = ReasonAllDown
			continue
		}
		acc.add(ctr)
		copy(b[0:6], gw[:])
		copy(b[6:12], lb.cfg.GatewayMAC[:])
		p.Out = lb.cfg.Gateway
	}
	acc.flush() // not deferred: a batch that panics is dropped whole, and not counted here
}
