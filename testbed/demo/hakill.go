package demo

import (
	"fmt"
	"net/netip"

	"samepath/testbed/fig2"
)

// SyncPort is the gateways' state-sync port on the management network.
const SyncPort = 7800

// syncYAML is gateway g's gw.sync section when on: it syncs with the
// other gateway (each is the other's substitute in the demo's T4) over
// the management network.
func syncYAML(p *fig2.Plan, g int, on bool) string {
	if !on {
		return ""
	}
	me := p.Gateways[g-1]
	other := p.Gateways[len(p.Gateways)-g]
	return fmt.Sprintf(`  sync:
    name: gw%d
    listen: %s
    peers: [{name: gw%d, addr: %s, nat: [%s]}]
    batch: 50ms
    wait: 5s
`, g, netip.AddrPortFrom(me.ControlAPI.Addr(), SyncPort), other.Index,
		netip.AddrPortFrom(other.ControlAPI.Addr(), SyncPort), NATAddr(other.Index))
}
