package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"samepath/dp"
	"samepath/nat"
	"samepath/ring/xsk"
	"samepath/ring/xsk/xdpfilter"
)

// startAFXDP opens, for every queue q, an AF_XDP socket on queue q of both
// interfaces sharing one UMEM (so forwarding moves descriptors), makes a
// worker polling both, and attaches the XDP filter that hands the
// dataplane only frames to the LB's MACs that are not for the host itself
// (R-LB-5).
func (d *Daemon) startAFXDP(_ context.Context, ingress, gwside *net.Interface, exclude []netip.Addr) (func(nat.MAC), error) {
	f, err := xdpfilter.Load(xdpfilter.Match{
		DstMACs:    [][6]byte{[6]byte(ingress.HardwareAddr), [6]byte(gwside.HardwareAddr)},
		ExcludeDst: exclude,
	})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, f.Close)
	xc := d.cfg.XSK
	for q := 0; q < d.cfg.Workers.Queues; q++ {
		u, err := xsk.NewUmem(xsk.UmemConfig{Frames: xc.Frames, FrameSize: uint32(xc.FrameSize), Logger: d.log})
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, u.Close)
		socks, err := xsk.NewShared(u, []string{ingress.Name, gwside.Name}, q, xc.RingSize, xc.BusyPoll)
		if err != nil {
			return nil, err
		}
		var ports []dp.Port
		for _, s := range socks {
			d.closers = append(d.closers, s.Close)
			if err := f.Register(s); err != nil {
				return nil, err
			}
			ports = append(ports, s)
		}
		cpu := -1
		if len(d.cfg.Workers.CPUs) > 0 {
			cpu = d.cfg.Workers.CPUs[q%len(d.cfg.Workers.CPUs)]
		}
		wc := dp.DefaultWorkerConfig()
		wc.Batch, wc.CPU = xc.Batch, cpu
		wc.OnPanic = d.panics.report
		w, err := dp.NewWorker(wc, ports, d.lb)
		if err != nil {
			return nil, fmt.Errorf("worker %d: %w", q, err)
		}
		d.workers = append(d.workers, w)
		d.cpus = append(d.cpus, cpu)
		d.log.Info("queue ready", "queue", q, "mode", u.Mode(), "cpu", cpu)
	}
	for _, ifi := range []*net.Interface{ingress, gwside} {
		if err := f.Attach(ifi.Index, xdpfilter.Native); err != nil {
			return nil, err
		}
	}
	// Closers run last-in first-out: detach before the sockets close.
	d.closers = append(d.closers, f.Close)
	return d.lb.SetNextHop, nil
}
