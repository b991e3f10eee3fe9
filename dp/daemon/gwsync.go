package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/dp/gwsync"
	"samepath/dp/internal/osutil"
	"samepath/internal/cfgfile"
	"samepath/nat"
)

// Sync is gw.sync: T5 state sync with the gateway's peers and takeover
// of a dead peer's key addresses (R-GW-9, dp/gwsync). Off without it.
//
//	sync:
//	  name: gw1                  # this gateway, as its peers name it
//	  listen: 10.0.0.11:7800     # management side; authenticated by api_token_file's token
//	  peers:
//	    - {name: gw2, addr: 10.0.0.12:7800, nat: [10.20.0.102]}
//	  batch: 50ms                # send interval: the loss window of a crash
//	  refresh: 10s
//	  peer_timeout: 1s
//	  wait: 5s                   # at start: /healthz is 503 until the peers' state arrived, at most this long
type Sync struct {
	Name        string        `yaml:"name"`
	Listen      string        `yaml:"listen"`
	Peers       []SyncPeer    `yaml:"peers"`
	Batch       time.Duration `yaml:"batch"`
	Refresh     time.Duration `yaml:"refresh"`
	PeerTimeout time.Duration `yaml:"peer_timeout"`
	Wait        time.Duration `yaml:"wait"`
	Journal     int           `yaml:"journal"` // changes the worker may queue (a power of two; default 65536)
}

// SyncPeer is one peer gateway.
type SyncPeer struct {
	Name string   `yaml:"name"`
	Addr string   `yaml:"addr"`
	NAT  []string `yaml:"nat"`
}

// peerAddrs parses the peers' key-port addresses (nil-safe).
func (s *Sync) peerAddrs() ([]netip.Addr, error) {
	if s == nil {
		return nil, nil
	}
	var out []netip.Addr
	for i, p := range s.Peers {
		for _, a := range p.NAT {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return nil, fmt.Errorf("gw.sync.peers[%d].nat: %w", i, err)
			}
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// syncConfig is gwsync's config without the run-time hooks.
func (s *Sync) syncConfig() (gwsync.Config, int, error) {
	c := gwsync.DefaultConfig()
	c.Name, c.Listen = s.Name, s.Listen
	if s.Batch != 0 {
		c.Batch = s.Batch
	}
	if s.Refresh != 0 {
		c.Refresh = s.Refresh
	}
	if s.PeerTimeout != 0 {
		c.PeerTimeout = s.PeerTimeout
	}
	if s.Wait != 0 {
		c.Wait = s.Wait
	}
	j := s.Journal
	if j == 0 {
		j = 1 << 16
	}
	if j < 0 || j&(j-1) != 0 || j > 1<<22 {
		return c, 0, fmt.Errorf("gw.sync.journal %d: want a power of two up to %d", s.Journal, 1<<22)
	}
	if s.Listen != "" {
		if _, _, err := net.SplitHostPort(s.Listen); err != nil {
			return c, 0, fmt.Errorf("gw.sync.listen: %w", err)
		}
	}
	for _, p := range s.Peers {
		var nats []netip.Addr
		for _, a := range p.NAT {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return c, 0, fmt.Errorf("gw.sync.peers %s nat: %w", p.Name, err)
			}
			nats = append(nats, ip.Unmap())
		}
		c.Peers = append(c.Peers, gwsync.Peer{Name: p.Name, Addr: p.Addr, NAT: nats})
	}
	return c, j, nil
}

// validate checks gw.sync as far as it can without the run time; g is
// the gateway's config (a peer's key address must not be its own).
func (s *Sync) validate(g *GWConfig) error {
	if s == nil {
		return nil
	}
	if _, err := g.PortTableConfig(); err != nil && len(g.NAT.Addrs) > 0 {
		return fmt.Errorf("config: gw.sync.peers nat with gw.nat: %w", err)
	}
	c, j, err := s.syncConfig()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	c.Token = "x"
	jr, _ := nat.NewJournal(j)
	c.Journal, c.Table, c.Apply = jr, &nat.PortTable{}, func([]nat.Change) {}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// gwSync is the running sync of a gateway, for the API and metrics.
type gwSync struct {
	s     *gwsync.Syncer
	gw    *dp.GW
	flows *nat.PortTable
}

// startSync journals the table and starts the syncer: received changes
// go to the worker; a takeover puts the peer's addresses on the
// server-side interface and announces them; they are removed on
// failback and when samepathd stops.
func (d *Daemon) startSync(ctx context.Context, pipe *dp.GW, flows *nat.PortTable, srv *net.Interface, own []netip.Addr) (*gwSync, error) {
	g := d.cfg.GW.Sync
	c, j, err := g.syncConfig()
	if err != nil {
		return nil, err
	}
	if c.Token, err = cfgfile.ReadToken(d.cfg.APITokenFile); err != nil {
		return nil, fmt.Errorf("gw.sync: token: %w", err)
	}
	jr, err := nat.NewJournal(j)
	if err != nil {
		return nil, err
	}
	flows.SetJournal(jr)
	link, err := netlink.LinkByIndex(srv.Index)
	if err != nil {
		return nil, fmt.Errorf("gw.sync: %w", err)
	}
	mac := [6]byte(srv.HardwareAddr)
	a := &addrMover{log: d.log, link: link, ifindex: srv.Index, mac: mac, held: map[netip.Addr]*netlink.Addr{}}
	c.Journal, c.Table, c.Log = jr, flows, d.log
	c.Apply = pipe.InstallSync
	c.Takeover, c.Giveback = a.take, a.give
	c.Announce = func([]netip.Addr) error { a.announce(ctx, own); return nil }
	s, err := gwsync.New(c)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(sctx); close(done) }()
	go a.routineRefresh(sctx, 2*time.Second)
	d.closers = append(d.closers, func() error {
		cancel()
		<-done
		return a.giveAll()
	})
	d.log.Info("state sync on", "name", c.Name, "listen", c.Listen, "peers", len(c.Peers), "batch", c.Batch)
	return &gwSync{s: s, gw: pipe, flows: flows}, nil
}

// addrMover adds and removes a peer's key addresses on the server-side
// interface and announces addresses with gratuitous ARP.
type addrMover struct {
	log     *slog.Logger
	link    netlink.Link
	ifindex int
	mac     [6]byte
	mu      sync.Mutex
	held    map[netip.Addr]*netlink.Addr
}

func (a *addrMover) take(addrs []netip.Addr) error {
	var errs []error
	a.mu.Lock()
	for _, ip := range addrs {
		if _, ok := a.held[ip]; ok {
			continue
		}
		na := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())}}
		if ip.Is6() {
			na.Flags = 0x02 // IFA_F_NODAD
			// Deprecated, as the gateway's own IPv6 key addresses
			// (gw.go): never the kernel's source for its probes.
			na.ValidLft, na.PreferedLft = math.MaxUint32, 0
		}
		if err := netlink.AddrAdd(a.link, na); err != nil && !errors.Is(err, syscall.EEXIST) {
			errs = append(errs, fmt.Errorf("add %s: %w", ip, err))
			continue
		}
		a.held[ip] = na
		a.log.Info("takeover: key address added", "addr", ip)
	}
	a.mu.Unlock()
	a.announce(context.Background(), addrs)
	return errors.Join(errs...)
}

func (a *addrMover) give(addrs []netip.Addr) error {
	var errs []error
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ip := range addrs {
		na, ok := a.held[ip]
		if !ok {
			continue
		}
		if err := netlink.AddrDel(a.link, na); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", ip, err))
		}
		delete(a.held, ip)
		a.log.Info("failback: key address removed", "addr", ip)
	}
	return errors.Join(errs...)
}

func (a *addrMover) giveAll() error {
	a.mu.Lock()
	var all []netip.Addr
	for ip := range a.held {
		all = append(all, ip)
	}
	a.mu.Unlock()
	return a.give(all)
}

// routineRefresh announces the addresses held for peers again every
// period (keepalived's garp_master_refresh): the dead peer's kernel may
// still answer a neighbor's ARP request for them.
func (a *addrMover) routineRefresh(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.Lock()
		var held []netip.Addr
		for ip := range a.held {
			held = append(held, ip)
		}
		a.mu.Unlock()
		for _, ip := range held {
			a.announceOne(ip) // a failed refresh is retried next period
		}
	}
}

// announceOne sends one gratuitous ARP (IPv4) or unsolicited Neighbor
// Advertisement (IPv6) for ip.
func (a *addrMover) announceOne(ip netip.Addr) error {
	if ip.Is4() {
		return osutil.SendGARP(a.ifindex, a.mac, ip)
	}
	return osutil.SendUnsolicitedNA(a.ifindex, a.mac, ip)
}

// announce sends gratuitous ARP for the IPv4 addresses and unsolicited
// NA for the IPv6 ones (our own frames, not the kernel's ndisc_notify,
// which is off by default) now and twice more (a neighbor may miss one;
// keepalived repeats too).
func (a *addrMover) announce(ctx context.Context, addrs []netip.Addr) {
	go func() {
		for i, wait := range []time.Duration{0, 300 * time.Millisecond, time.Second} {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			for _, ip := range addrs {
				if err := a.announceOne(ip); err != nil && i == 0 {
					a.log.Warn("takeover: announcing a key address", "addr", ip, "err", err)
				}
			}
		}
	}()
}

// healthy says whether the gateway may be marked up: its sync is ready.
func (s *gwSync) ready() bool { return s == nil || s.s.Ready() }

// syncRoutes serves GET /v1/sync.
func syncRoutes(v1 *http.ServeMux, s *gwSync) {
	if s == nil {
		return
	}
	v1.HandleFunc("GET /v1/sync", func(w http.ResponseWriter, _ *http.Request) { reply(w, s.status()) })
}

func (s *gwSync) status() api.GWSync {
	st, gs := s.s.Stats(), s.gw.SyncStats()
	out := api.GWSync{Sent: st.Sent, Received: st.Received, Dropped: st.Dropped,
		Takeovers: st.Takeovers, Failbacks: st.Failbacks, Ready: st.Ready,
		Held: s.flows.PeerLen(), Installed: gs.Installed.Load(), Conflicts: gs.Conflicts.Load(), PeerFlowsSeen: s.gw.PeerHit(false)}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, api.GWSyncPeer{Name: p.Name, Connected: p.Connected, Ready: p.Ready, Dumped: p.Dumped,
			TakenOver: p.TakenOver, LagNS: p.LagNS, Sent: p.Sent, Received: p.Received})
	}
	return out
}

// syncCollector exports the sync's state.
type syncCollector struct {
	s                                                                  *gwSync
	held, sent, recv, dropped, takeovers, failbacks, ready, lag, conns *prometheus.Desc
}

func newSyncCollector(s *gwSync) *syncCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("samepath_gw_sync_"+name, help, labels, nil)
	}
	return &syncCollector{s: s,
		held:      d("held_bindings", "NAT records held for peer gateways (on their key addresses)."),
		sent:      d("sent_total", "T5 changes sent to peers."),
		recv:      d("received_total", "T5 changes received from peers."),
		dropped:   d("dropped_total", "T5 changes lost (journal or a peer's queue full; the refresh repairs them)."),
		takeovers: d("takeovers_total", "Takeovers of a dead peer's key addresses."),
		failbacks: d("failbacks_total", "Key addresses given back to a returned peer."),
		ready:     d("ready", "1 once the peers' state arrived (or the wait passed)."),
		lag:       d("lag_seconds", "Age of the peer's latest sync frame on arrival.", "peer"),
		conns:     d("peer_connected", "1 while the peer's stream to this gateway is up.", "peer"),
	}
}

func (c *syncCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.held, c.sent, c.recv, c.dropped, c.takeovers, c.failbacks, c.ready, c.lag, c.conns} {
		ch <- d
	}
}

func (c *syncCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.status()
	g := func(d *prometheus.Desc, t prometheus.ValueType, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, l...)
	}
	g(c.held, prometheus.GaugeValue, float64(st.Held))
	g(c.sent, prometheus.CounterValue, float64(st.Sent))
	g(c.recv, prometheus.CounterValue, float64(st.Received))
	g(c.dropped, prometheus.CounterValue, float64(st.Dropped))
	g(c.takeovers, prometheus.CounterValue, float64(st.Takeovers))
	g(c.failbacks, prometheus.CounterValue, float64(st.Failbacks))
	r := 0.0
	if st.Ready {
		r = 1
	}
	g(c.ready, prometheus.GaugeValue, r)
	for _, p := range st.Peers {
		g(c.lag, prometheus.GaugeValue, float64(p.LagNS)/1e9, p.Name)
		v := 0.0
		if p.Connected {
			v = 1
		}
		g(c.conns, prometheus.GaugeValue, v, p.Name)
	}
}
