package steer

import (
	"errors"
	"fmt"
	"net/netip"

	"samepath/nat"
)

// Config configures the offload. Interfaces are named by ifindex in the
// network namespace of the thread that calls Load and Attach.
type Config struct {
	// IngressIfindex is the ingress-side interface (toward the NAS or
	// router); GatewayIfindex the gateway-side one (the LAN to the packet
	// gateways). Equal values make a one-armed LB: every frame is an up
	// frame and leaves with XDP_TX, as in dp.LB.
	IngressIfindex, GatewayIfindex int
	// IngressMAC and GatewayMAC are the LB's own MACs on each side: frames
	// to other MACs go to the kernel, and rewritten frames carry them as
	// source.
	IngressMAC, GatewayMAC nat.MAC
	// NextHopMAC is the ingress-side next hop for down frames; zero means
	// unknown (down frames are dropped as no_next_hop until SetNextHop).
	NextHopMAC nat.MAC
	// Exclude holds the host's own addresses: frames to them go to the
	// kernel (R-LB-5). Zones are ignored; an IPv4-mapped IPv6 address
	// excludes only IPv6 frames to it.
	Exclude []netip.Addr
}

// DefaultConfig returns a Config with nothing set; the caller fills in the
// interfaces and MACs.
func DefaultConfig() Config { return Config{} }

func unicast(m nat.MAC) bool { return m != (nat.MAC{}) && m[0]&1 == 0 }

// Validate checks the config.
func (c Config) Validate() error {
	if c.IngressIfindex <= 0 || c.GatewayIfindex <= 0 {
		return fmt.Errorf("steer: ifindexes %d/%d must be positive", c.IngressIfindex, c.GatewayIfindex)
	}
	if !unicast(c.IngressMAC) || !unicast(c.GatewayMAC) {
		return fmt.Errorf("steer: own MACs %s/%s must be unicast", c.IngressMAC, c.GatewayMAC)
	}
	if c.IngressIfindex == c.GatewayIfindex && c.IngressMAC != c.GatewayMAC {
		return errors.New("steer: one-armed LB (one ifindex) needs one MAC")
	}
	if c.NextHopMAC != (nat.MAC{}) && !unicast(c.NextHopMAC) {
		return fmt.Errorf("steer: next hop %s is not unicast", c.NextHopMAC)
	}
	for _, a := range c.Exclude {
		if !a.IsValid() {
			return errors.New("steer: invalid exclude address")
		}
	}
	return nil
}
