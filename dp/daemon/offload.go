package daemon

import (
	"fmt"
	"net"
	"net/netip"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/dp/steer"
	"samepath/nat"
)

// startOffload runs the LB steering in the XDP program itself (steering:
// xdp): T4 is mirrored into the program's maps on every update, so the
// table and the maps never disagree (a failed map update rejects the T4
// update too).
func (d *Daemon) startOffload(lb dp.LBConfig, ingress, gwside *net.Interface, exclude []netip.Addr) (func(nat.MAC), error) {
	o, err := steer.Load(steer.Config{
		IngressIfindex: ingress.Index, GatewayIfindex: gwside.Index,
		IngressMAC: lb.IngressMAC, GatewayMAC: lb.GatewayMAC,
		NextHopMAC: lb.NextHop, Exclude: exclude,
	})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, o.Close)
	if err := d.t4.OnChange(o.Sync); err != nil {
		return nil, fmt.Errorf("mirror t4 into xdp maps: %w", err)
	}
	if err := o.Attach(); err != nil {
		return nil, err
	}
	d.cpus = nil
	d.offloadCounters = func() (api.Counters, error) {
		c, err := o.Counters()
		q := api.QueueCounters{
			Port: ingress.Name + "+" + gwside.Name + "/xdp", CPU: -1,
			RxPackets: c.RxPackets, RxBytes: c.RxBytes, TxPackets: c.TxPackets, TxBytes: c.TxBytes,
			Drops: map[string]uint64{},
		}
		for r, n := range c.Drops {
			if n > 0 {
				q.Drops[dp.Reason(r).String()] = n
			}
		}
		return api.Counters{Queues: []api.QueueCounters{q}}, err
	}
	return func(m nat.MAC) {
		if err := o.SetNextHop(m); err != nil {
			d.log.Error("set next hop in xdp map", "err", err)
		}
	}, nil
}
