package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/internal/cfgfile"
	"samepath/nat"
	"samepath/ring/xsk"
)

// Version is reported by the status endpoint.
var Version = "dev"

// Daemon is a running samepathd.
type Daemon struct {
	cfg   Config
	log   *slog.Logger
	start time.Time
	t4    *nat.T4
	lb    *dp.LB
	gw    *gwState

	workers []*dp.Worker
	cpus    []int
	panics  *panicLog
	capture *captureTarget // POST /v1/capture (capture.go)
	// offload, when steering is xdp, reads the in-kernel counters.
	offloadCounters func() (api.Counters, error)
	closers         []func() error
}

// Run checks cfg (Check: what samepathd -check runs), starts samepathd
// with it and serves until ctx is done, then tears everything down (XDP
// programs detached, sockets closed).
func Run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	if err := cfg.Check(); err != nil {
		return err
	}
	d := &Daemon{cfg: cfg, log: log, start: time.Now(), panics: &panicLog{log: log}}
	defer func() {
		if cerr := d.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	token, err := cfgfile.ReadToken(cfg.APITokenFile)
	if err != nil {
		return fmt.Errorf("api_token_file: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	switch cfg.Role {
	case "gw":
		err = d.startGW(ctx)
	default:
		err = d.startLB(ctx)
	}
	if err != nil {
		return err
	}

	d.capture = &captureTarget{workers: d.workers, frameSize: cfg.XSK.FrameSize}
	reg := NewRegistry(d.Counters)
	reg.MustRegister(NewRuntimeCollector(d.Runtime))
	if d.gw != nil {
		reg.MustRegister(newGWCollector(d.gw))
		registerXlat(reg, d.gw)
		if d.gw.term != nil {
			reg.MustRegister(newTermCollector(d.gw.term))
		}
		if d.gw.sync != nil {
			reg.MustRegister(newSyncCollector(d.gw.sync))
		}
	}
	if d.t4 != nil {
		reg.MustRegister(newLBCollector(d.t4))
	}
	srv := NewServer(cfg.API, NewHandler(d, reg, token, d.log))
	// Requests end with the daemon: a capture streaming for its duration
	// stops when samepathd does.
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	ln, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return fmt.Errorf("control api: %w", err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(d.workers)+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("control api: %w", err)
		}
	}()
	for i, w := range d.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx); err != nil {
				errc <- fmt.Errorf("worker %d: %w", i, err)
			}
		}()
	}
	log.Info("samepathd running", "role", cfg.Role, "steering", cfg.Steering, "api", cfg.API,
		"workers", len(d.workers), "cpus", d.cpus)

	select {
	case <-ctx.Done():
	case err = <-errc:
		log.Error("stopping", "err", err)
	}
	cancel()
	shut, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	srv.Shutdown(shut)
	scancel()
	wg.Wait()
	log.Info("samepathd stopped")
	return err
}

// startLB opens the load-balancer role.
func (d *Daemon) startLB(ctx context.Context) error {
	cfg := d.cfg
	rows, err := T4Rows(cfg.LB.T4)
	if err != nil {
		return err
	}
	// Before anything steers (the XDP program, the workers) and before
	// the API answers: the gateway states control holds now, not the
	// config's, which may be stale (issue 11, defect 6).
	if rows, err = controlStates(ctx, d.log, cfg.LB.Control, rows); err != nil {
		return err
	}
	if d.t4, err = nat.NewT4(rows); err != nil {
		return err
	}
	ingress, err := net.InterfaceByName(cfg.LB.Ingress.Iface)
	if err != nil {
		return fmt.Errorf("lb.ingress.iface %q: %w", cfg.LB.Ingress.Iface, err)
	}
	gwside, err := net.InterfaceByName(cfg.LB.GatewaySide.Iface)
	if err != nil {
		return fmt.Errorf("lb.gateway_side.iface %q: %w", cfg.LB.GatewaySide.Iface, err)
	}
	if len(ingress.HardwareAddr) != 6 || len(gwside.HardwareAddr) != 6 {
		return errors.New("lb interfaces must be Ethernet")
	}
	exclude, err := localAddrs(ingress, gwside, cfg.LB.Exclude)
	if err != nil {
		return err
	}
	var nextHop nat.MAC
	if cfg.LB.Ingress.NextHopMAC != "" {
		nextHop, _ = nat.ParseMAC(cfg.LB.Ingress.NextHopMAC)
	}
	lbcfg := dp.LBConfig{
		Ingress: 0, Gateway: 1,
		IngressMAC: nat.MAC(ingress.HardwareAddr), GatewayMAC: nat.MAC(gwside.HardwareAddr),
		NextHop: nextHop, T4: d.t4,
	}
	if d.lb, err = dp.NewLB(lbcfg); err != nil {
		return err
	}
	var setNextHop func(nat.MAC)
	switch cfg.Steering {
	case "xdp":
		setNextHop, err = d.startOffload(lbcfg, ingress, gwside, exclude)
	default:
		setNextHop, err = d.startAFXDP(ctx, ingress, gwside, exclude)
	}
	if err != nil {
		return err
	}
	if cfg.LB.Ingress.NextHopIP != "" && cfg.LB.Ingress.NextHopMAC == "" {
		ip := netip.MustParseAddr(cfg.LB.Ingress.NextHopIP)
		if err := followNextHop(ctx, d.log, ingress.Index, ip, time.Second, 2*time.Second, setNextHop); err != nil {
			return err
		}
	}
	return nil
}

// localAddrs lists the addresses the kernel must keep: those of both
// interfaces plus the configured extras.
func localAddrs(ifs ...any) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, x := range ifs {
		switch v := x.(type) {
		case *net.Interface:
			addrs, err := v.Addrs()
			if err != nil {
				return nil, fmt.Errorf("addresses of %s: %w", v.Name, err)
			}
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					out = append(out, p.Addr())
				}
			}
		case []string:
			for _, s := range v {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return nil, err
				}
				out = append(out, a)
			}
		}
	}
	return out, nil
}

func (d *Daemon) close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	d.closers = nil
	return errors.Join(errs...)
}

// Status implements Backend.
func (d *Daemon) Status() api.Status {
	return api.Status{Role: d.cfg.Role, Version: Version, UptimeSec: int64(time.Since(d.start).Seconds()), Steering: d.cfg.Steering}
}

// T4 implements Backend (nil for the gateway role).
func (d *Daemon) T4() *nat.T4 { return d.t4 }

func (d *Daemon) gwState() *gwState { return d.gw }

// Counters implements Backend: one entry per (interface, queue).
func (d *Daemon) Counters() api.Counters {
	if d.offloadCounters != nil {
		c, err := d.offloadCounters()
		if err != nil {
			d.log.Warn("read offload counters", "err", err)
		}
		return c
	}
	var out api.Counters
	for wi, w := range d.workers {
		for pi, p := range w.Ports() {
			s := w.Counters(pi).Snapshot()
			q := api.QueueCounters{
				Port: p.Name(), CPU: d.cpus[wi],
				RxPackets: s.RxPackets, RxBytes: s.RxBytes, TxPackets: s.TxPackets, TxBytes: s.TxBytes,
				Drops: map[string]uint64{}, Panics: s.Panics, Polls: s.Polls,
				Consumed: s.Consumed, Originated: s.Originated,
			}
			for r, n := range s.Drops {
				if n > 0 {
					q.Drops[dp.Reason(r).String()] = n
				}
			}
			if s.Polls > 0 {
				q.IdleRatio = float64(s.IdlePolls) / float64(s.Polls)
			}
			if xs, ok := p.(interface{ Stats() (xsk.Stats, error) }); ok {
				if st, err := xs.Stats(); err == nil {
					q.Socket = SocketStats(st)
				}
			}
			out.Queues = append(out.Queues, q)
		}
	}
	return out
}

// SocketStats names an AF_XDP socket's kernel statistics as the control
// API and the metrics show them.
func SocketStats(st xsk.Stats) map[string]uint64 {
	return map[string]uint64{
		"rx_dropped": st.RxDropped, "rx_ring_full": st.RxRingFull, "fill_ring_empty": st.FillRingEmpty,
		"rx_invalid": st.RxInvalid, "tx_invalid": st.TxInvalid, "tx_ring_empty": st.TxRingEmpty,
		"send_invalid": st.SendInvalid,
	}
}
