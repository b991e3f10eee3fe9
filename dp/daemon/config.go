package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"

	"go.yaml.in/yaml/v3"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/dp/acct"
	"samepath/dp/balance"
	"samepath/nat"
)

// Config is samepathd's YAML configuration.
type Config struct {
	// Role is "lb" (load balancer) or "gw" (packet gateway).
	Role string `yaml:"role"`
	// API is the address of the control API, /metrics and /healthz.
	API string `yaml:"api"`
	// APITokenFile holds the bearer token the API requires; mandatory
	// when API is not a loopback address.
	APITokenFile string `yaml:"api_token_file"`
	// Steering is "afxdp" (the default: packets go through the Go
	// pipeline over AF_XDP) or "xdp" (the LB steering runs in the XDP
	// program itself).
	Steering string    `yaml:"steering"`
	XSK      XSKConfig `yaml:"xsk"`
	Workers  Workers   `yaml:"workers"`
	LB       *LBConfig `yaml:"lb"`
	GW       *GWConfig `yaml:"gw"`
}

// XSKConfig sizes the AF_XDP sockets.
type XSKConfig struct {
	// Frames is the UMEM's frames per worker, shared by the worker's two
	// sockets: each keeps a fill ring's worth lent to the kernel and may
	// have a TX ring's worth in flight (in copy mode until the receiving
	// side frees the skb), so at least 4*RingSize, else the fill ring runs
	// dry under load and the kernel drops (fill_ring_empty).
	Frames    int  `yaml:"frames"`
	FrameSize int  `yaml:"frame_size"` // bytes, power of two
	RingSize  int  `yaml:"ring_size"`  // RX/TX/fill/completion ring slots
	Batch     int  `yaml:"batch"`      // packets per poll round
	BusyPoll  bool `yaml:"busy_poll"`  // SO_PREFER_BUSY_POLL on the sockets
}

// Workers says how many queues each interface has in use and where the
// workers run: worker q polls queue q of every interface, pinned to
// CPUs[q % len(CPUs)].
type Workers struct {
	Queues int   `yaml:"queues"`
	CPUs   []int `yaml:"cpus"`
}

// LBConfig is the load-balancer role's part.
type LBConfig struct {
	Ingress     Side        `yaml:"ingress"`
	GatewaySide Side        `yaml:"gateway_side"`
	Exclude     []string    `yaml:"exclude"`
	T4          []api.T4Row `yaml:"t4"`
	// Control, when set, is asked for the current gateway states at
	// start, before the LB steers (lbcontrol.go).
	Control *LBControl `yaml:"control"`
}

// Side is one interface of the LB.
type Side struct {
	Iface string `yaml:"iface"`
	// NextHopMAC (ingress only) is the NAS/router's MAC for down packets.
	NextHopMAC string `yaml:"next_hop_mac"`
	// NextHopIP (ingress only): learn the next hop MAC from the kernel's
	// neighbor table instead.
	NextHopIP string `yaml:"next_hop_ip"`
}

// GWConfig is the packet-gateway role's part.
type GWConfig struct {
	// Lan faces the load balancers; Servers faces the actual servers.
	Lan     Side `yaml:"lan"`
	Servers Side `yaml:"servers"`
	NAT     NAT  `yaml:"nat"`
	// RequireSession drops packets from addresses without a session
	// (R-GW-7, step S124). Default true; false only without an AAA.
	RequireSession *bool `yaml:"require_session"`
	// LBCache bounds T12 (mobile -> LB MAC).
	LBCache int64 `yaml:"lb_cache"`
	// Services are T6 + T11 + T9.
	Services []api.Service `yaml:"services"`
	Probe    Probe         `yaml:"probe"`
	// Authz are T9 and T8 (R-AUTH-1); with no T9 row nothing is refused.
	Authz api.Authz `yaml:"authz"`
	// Accounting writes T10 records (R-ACCT-1, R-ACCT-2); off when Log
	// is empty.
	Accounting Accounting `yaml:"accounting"`
	// Exclude: extra local addresses left to the kernel.
	Exclude []string `yaml:"exclude"`
}

// NAT configures the port-key NAT (T5).
type NAT struct {
	// Addrs are the gateway addresses key ports are allocated on. They
	// are added to the server-side interface (so the kernel answers ARP
	// and ND for them) if missing, and removed again at exit.
	Addrs    []string `yaml:"addrs"`
	PortMin  uint16   `yaml:"port_min"`
	PortMax  uint16   `yaml:"port_max"`
	Capacity int      `yaml:"capacity"`
	// Idle timeouts; zero keeps the RFC default (see nat.DefaultTimeouts).
	UDPTimeout            time.Duration `yaml:"udp_timeout"`
	ICMPTimeout           time.Duration `yaml:"icmp_timeout"`
	TCPEstablishedTimeout time.Duration `yaml:"tcp_established_timeout"`
	TCPTransitoryTimeout  time.Duration `yaml:"tcp_transitory_timeout"`
	TCPTimeWaitTimeout    time.Duration `yaml:"tcp_time_wait_timeout"`
	TCPClosedTimeout      time.Duration `yaml:"tcp_closed_timeout"`
	PortReuseDelay        time.Duration `yaml:"port_reuse_delay"`
}

// Accounting configures the durable accounting log.
type Accounting struct {
	Log          string        `yaml:"log"`           // file (rotated as FILE.1 .. FILE.keep)
	Interim      time.Duration `yaml:"interim"`       // interim records for long flows; 0: none
	SyncInterval time.Duration `yaml:"sync_interval"` // fsync batches at least this often
	MaxSize      int64         `yaml:"max_size"`      // rotate before this many bytes
	Keep         int           `yaml:"keep"`          // rotated files kept
}

// LogConfig is the accounting log's config.
func (a Accounting) LogConfig() (acct.Config, error) {
	c := acct.DefaultConfig(a.Log)
	if a.SyncInterval != 0 {
		c.SyncInterval = a.SyncInterval
	}
	if a.MaxSize != 0 {
		c.MaxSize = a.MaxSize
	}
	if a.Keep != 0 {
		c.Keep = a.Keep
	}
	if a.Interim < 0 {
		return c, fmt.Errorf("interim %v < 0", a.Interim)
	}
	return c, c.Validate()
}

// Probe configures the server health checks.
type Probe struct {
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
	Fall     int           `yaml:"fall"`
	Rise     int           `yaml:"rise"`
}

// DefaultConfig returns the defaults every loaded config starts from.
func DefaultConfig() Config {
	return Config{
		API:      "127.0.0.1:9180",
		Steering: "afxdp",
		XSK:      XSKConfig{Frames: 16384, FrameSize: 2048, RingSize: 2048, Batch: 64},
		Workers:  Workers{Queues: 1},
	}
}

// Load reads and validates a config file.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(data)
}

// Parse decodes and validates YAML; unknown fields are errors.
func Parse(data []byte) (Config, error) {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("parse config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.Role != "lb" && c.Role != "gw" {
		return fmt.Errorf("config: role %q: want lb or gw", c.Role)
	}
	ap, err := netip.ParseAddrPort(c.API)
	if err != nil {
		return fmt.Errorf("config: api %q: want IP:port: %w", c.API, err)
	}
	if !ap.Addr().IsLoopback() && c.APITokenFile == "" {
		return fmt.Errorf("config: api %s is not loopback: api_token_file is required", c.API)
	}
	if c.Steering != "afxdp" && c.Steering != "xdp" {
		return fmt.Errorf("config: steering %q: want afxdp or xdp", c.Steering)
	}
	x := c.XSK
	if x.FrameSize < 2048 || x.FrameSize&(x.FrameSize-1) != 0 {
		return fmt.Errorf("config: xsk frame_size %d: want a power of two >= 2048", x.FrameSize)
	}
	if x.RingSize <= 0 || x.RingSize&(x.RingSize-1) != 0 {
		return fmt.Errorf("config: xsk ring_size %d: want a power of two", x.RingSize)
	}
	if x.Frames < 4*x.RingSize {
		return fmt.Errorf("config: xsk frames %d: want at least 4*ring_size (%d): two sockets' fill rings and TX rings share them", x.Frames, 4*x.RingSize)
	}
	if x.Batch <= 0 || x.Batch > x.RingSize {
		return fmt.Errorf("config: xsk batch %d: want 1..ring_size", x.Batch)
	}
	if c.Workers.Queues <= 0 {
		return fmt.Errorf("config: workers queues %d: want >= 1", c.Workers.Queues)
	}
	for _, cpu := range c.Workers.CPUs {
		if cpu < 0 || cpu >= runtime.NumCPU() {
			return fmt.Errorf("config: workers cpu %d: this machine has cpus 0..%d", cpu, runtime.NumCPU()-1)
		}
	}
	if c.Role == "gw" {
		return c.validateGW()
	}
	if c.LB == nil {
		return errors.New("config: role lb needs an lb section")
	}
	lb := c.LB
	if lb.Ingress.Iface == "" || lb.GatewaySide.Iface == "" {
		return errors.New("config: lb ingress.iface and gateway_side.iface are required")
	}
	if lb.Ingress.Iface == lb.GatewaySide.Iface {
		return errors.New("config: lb ingress and gateway_side must be different interfaces")
	}
	if lb.Ingress.NextHopMAC == "" && lb.Ingress.NextHopIP == "" {
		return errors.New("config: lb ingress needs next_hop_mac or next_hop_ip")
	}
	if lb.Ingress.NextHopMAC != "" {
		if _, err := nat.ParseMAC(lb.Ingress.NextHopMAC); err != nil {
			return fmt.Errorf("config: lb ingress next_hop_mac: %w", err)
		}
	}
	if lb.Ingress.NextHopIP != "" {
		if _, err := netip.ParseAddr(lb.Ingress.NextHopIP); err != nil {
			return fmt.Errorf("config: lb ingress next_hop_ip: %w", err)
		}
	}
	for _, e := range lb.Exclude {
		if _, err := netip.ParseAddr(e); err != nil {
			return fmt.Errorf("config: lb exclude: %w", err)
		}
	}
	if _, err := T4Rows(lb.T4); err != nil {
		return fmt.Errorf("config: lb t4: %w", err)
	}
	if err := lb.Control.validate(); err != nil {
		return fmt.Errorf("config: lb control: %w", err)
	}
	return nil
}

func (c Config) validateGW() error {
	g := c.GW
	if g == nil {
		return errors.New("config: role gw needs a gw section")
	}
	if c.Steering != "afxdp" {
		return errors.New("config: role gw runs on afxdp steering only")
	}
	if c.Workers.Queues != 1 {
		return errors.New("config: role gw: workers.queues must be 1 (one worker owns the NAT table)")
	}
	if g.Lan.Iface == "" || g.Servers.Iface == "" || g.Lan.Iface == g.Servers.Iface {
		return errors.New("config: gw lan.iface and servers.iface are required and must differ")
	}
	if _, err := g.PortTableConfig(); err != nil {
		return fmt.Errorf("config: gw nat: %w", err)
	}
	if _, err := ServiceConfigs(g.Services); err != nil {
		return fmt.Errorf("config: gw services: %w", err)
	}
	if _, err := g.ProberConfig(); err != nil {
		return fmt.Errorf("config: gw probe: %w", err)
	}
	if _, _, err := AuthzRows(g.Authz); err != nil {
		return fmt.Errorf("config: gw authz: %w", err)
	}
	if g.Accounting.Log != "" {
		if _, err := g.Accounting.LogConfig(); err != nil {
			return fmt.Errorf("config: gw accounting: %w", err)
		}
	}
	for _, e := range g.Exclude {
		if _, err := netip.ParseAddr(e); err != nil {
			return fmt.Errorf("config: gw exclude: %w", err)
		}
	}
	return nil
}

// PortTableConfig is the NAT table's config.
func (g *GWConfig) PortTableConfig() (nat.PortTableConfig, error) {
	pc := nat.DefaultPortTableConfig()
	if len(g.NAT.Addrs) == 0 {
		return pc, errors.New("addrs: at least one gateway address is required")
	}
	for _, s := range g.NAT.Addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return pc, fmt.Errorf("addrs: %w", err)
		}
		pc.GwAddrs = append(pc.GwAddrs, a)
	}
	if g.NAT.PortMin != 0 {
		pc.PortMin = g.NAT.PortMin
	}
	if g.NAT.PortMax != 0 {
		pc.PortMax = g.NAT.PortMax
	}
	if g.NAT.Capacity != 0 {
		pc.Capacity = g.NAT.Capacity
	}
	set := func(d *time.Duration, v time.Duration) {
		if v != 0 {
			*d = v
		}
	}
	set(&pc.Timeouts.UDP, g.NAT.UDPTimeout)
	set(&pc.Timeouts.ICMP, g.NAT.ICMPTimeout)
	set(&pc.Timeouts.TCPEstablished, g.NAT.TCPEstablishedTimeout)
	set(&pc.Timeouts.TCPTransitory, g.NAT.TCPTransitoryTimeout)
	set(&pc.Timeouts.TCPTimeWait, g.NAT.TCPTimeWaitTimeout)
	set(&pc.Timeouts.TCPClosed, g.NAT.TCPClosedTimeout)
	set(&pc.PortReuseDelay, g.NAT.PortReuseDelay)
	return pc, pc.Validate()
}

// ProberConfig is the server health checks' config.
func (g *GWConfig) ProberConfig() (balance.ProberConfig, error) {
	pc := balance.DefaultProberConfig()
	if g.Probe.Interval != 0 {
		pc.Interval = g.Probe.Interval
	}
	if g.Probe.Timeout != 0 {
		pc.Timeout = g.Probe.Timeout
	}
	if g.Probe.Fall != 0 {
		pc.Fall = g.Probe.Fall
	}
	if g.Probe.Rise != 0 {
		pc.Rise = g.Probe.Rise
	}
	return pc, pc.Validate()
}

// AuthzRows converts API authorization tables.
func AuthzRows(a api.Authz) ([]dp.T9Row, []dp.T8Row, error) {
	var t9 []dp.T9Row
	for _, r := range a.T9 {
		ip, err := netip.ParseAddr(r.Rep)
		if err != nil {
			return nil, nil, fmt.Errorf("t9 rep %q: %w", r.Rep, err)
		}
		t9 = append(t9, dp.T9Row{Rep: ip, ServiceType: r.ServiceType})
	}
	var t8 []dp.T8Row
	for _, r := range a.T8 {
		t8 = append(t8, dp.T8Row{Device: r.Device, ServiceType: r.ServiceType, Allowed: r.Allowed})
	}
	if _, err := dp.NewAuthz(t9, t8); err != nil {
		return nil, nil, err
	}
	return t9, t8, nil
}

// ServiceConfigs converts API services to balance configs, checking each.
func ServiceConfigs(in []api.Service) ([]balance.ServiceConfig, error) {
	out := make([]balance.ServiceConfig, 0, len(in))
	for _, s := range in {
		c, err := ServiceConfig(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if _, err := balance.NewTable(out); err != nil {
		return nil, err
	}
	return out, nil
}

// ServiceConfig converts one API service.
func ServiceConfig(s api.Service) (balance.ServiceConfig, error) {
	c := balance.ServiceConfig{Name: s.Name, ServiceType: s.ServiceType}
	rep, err := netip.ParseAddrPort(s.Rep)
	if err != nil {
		return c, fmt.Errorf("service %q: rep %q: want IP:port", s.Name, s.Rep)
	}
	c.Rep = rep
	switch s.Proto {
	case "tcp":
		c.Proto = 6
	case "udp":
		c.Proto = 17
	default:
		return c, fmt.Errorf("service %q: proto %q: want tcp or udp", s.Name, s.Proto)
	}
	if s.Type == "" {
		s.Type = "connection"
	}
	if c.Type, err = balance.ParseUnitType(s.Type); err != nil {
		return c, fmt.Errorf("service %q: %w", s.Name, err)
	}
	if s.Policy == "" {
		s.Policy = "rr"
	}
	if c.Policy, err = balance.ParsePolicy(s.Policy); err != nil {
		return c, fmt.Errorf("service %q: %w", s.Name, err)
	}
	for _, sv := range s.Servers {
		ap, err := netip.ParseAddrPort(sv.Addr)
		if err != nil {
			return c, fmt.Errorf("service %q: server %q: want IP:port", s.Name, sv.Addr)
		}
		up, err := ParseState(sv.State)
		if err != nil {
			return c, fmt.Errorf("service %q: server %s: %w", s.Name, sv.Addr, err)
		}
		c.Servers = append(c.Servers, balance.Server{Addr: ap, Weight: sv.Weight, Up: up})
	}
	return c, c.Validate()
}

// T4Rows converts API rows to table rows, checking each.
func T4Rows(in []api.T4Row) ([]nat.T4Row, error) {
	out := make([]nat.T4Row, 0, len(in))
	for _, r := range in {
		row, err := T4Row(r)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	// Building a table checks overlaps.
	if _, err := nat.NewT4(out); err != nil {
		return nil, err
	}
	return out, nil
}

// T4Row converts one API row.
func T4Row(r api.T4Row) (nat.T4Row, error) {
	p, err := netip.ParsePrefix(r.Range)
	if err != nil {
		return nat.T4Row{}, fmt.Errorf("range %q: %w", r.Range, err)
	}
	row := nat.T4Row{Range: p}
	for _, g := range r.Gateways {
		m, err := nat.ParseMAC(g.MAC)
		if err != nil {
			return nat.T4Row{}, fmt.Errorf("range %s: %w", r.Range, err)
		}
		up, err := ParseState(g.State)
		if err != nil {
			return nat.T4Row{}, fmt.Errorf("range %s gateway %s: %w", r.Range, g.MAC, err)
		}
		row.Gateways = append(row.Gateways, nat.Gateway{MAC: m, Up: up})
	}
	if err := row.Validate(); err != nil {
		return nat.T4Row{}, err
	}
	return row, nil
}

// ParseState reads "up" or "down" ("" means up).
func ParseState(s string) (bool, error) {
	switch s {
	case api.StateUp, "":
		return true, nil
	case api.StateDown:
		return false, nil
	}
	return false, fmt.Errorf("state %q: want up or down", s)
}

// APIRows converts table rows to API rows.
func APIRows(rows []nat.T4Row) []api.T4Row {
	out := make([]api.T4Row, 0, len(rows))
	for _, r := range rows {
		ar := api.T4Row{Range: r.Range.String(), Gateways: []api.T4Gateway{}}
		for _, g := range r.Gateways {
			st := api.StateDown
			if g.Up {
				st = api.StateUp
			}
			ar.Gateways = append(ar.Gateways, api.T4Gateway{MAC: g.MAC.String(), State: st})
		}
		out = append(out, ar)
	}
	return out
}

// ExampleGW is the gateway example config printed by samepathd -h.
const ExampleGW = `role: gw
api: 10.99.0.31:7700
api_token_file: /etc/samepath/api.token   # required off loopback
workers: {queues: 1, cpus: [1]}
gw:
  lan: {iface: lan1}            # toward the load balancers
  servers: {iface: lan2}        # toward the actual servers
  nat:
    addrs: [10.20.0.101]        # key-port addresses, added to the servers side
    port_min: 1024
    port_max: 65535
    capacity: 262144
  require_session: true         # drop packets of addresses without a session (S124)
  services:                     # T6 + T11 (type) + T9 (service_type)
    - name: web-a
      rep: 10.30.0.1:80
      proto: tcp
      type: connection          # login, service, packet or connection
      policy: rr                # rr, wrr, lc, fastest, cpu
      service_type: web
      servers: [{addr: "10.20.0.11:80"}, {addr: "10.20.0.12:80", weight: 2}]
  probe: {interval: 1s, timeout: 500ms, fall: 3, rise: 2}
  accounting: {log: /var/log/samepath/accounting.log, interim: 5m, sync_interval: 200ms}
  authz:                        # T9 service types, T8 service orders
    t9: [{rep: 10.30.0.1, service_type: web}]
    t8: [{device: IMEI-490154203237518, service_type: web, allowed: true}]
`

// Example is the example config printed by samepathd -h.
const Example = `role: lb
api: 127.0.0.1:9180          # control API, /metrics, /healthz (loopback by default)
steering: afxdp              # afxdp: Go pipeline over AF_XDP; xdp: in-kernel offload
xsk: {frames: 16384, frame_size: 2048, ring_size: 2048, batch: 64}
workers: {queues: 1, cpus: [0]}   # worker q polls queue q of both interfaces
lb:
  ingress: {iface: eth0, next_hop_ip: 10.1.0.1}   # or next_hop_mac: "02:00:00:00:01:01"
  gateway_side: {iface: eth1}
  exclude: []                # extra local addresses left to the kernel
  t4:
    - range: 10.101.0.0/24
      gateways: [{mac: "02:00:00:00:10:01", state: up}, {mac: "02:00:00:00:10:02", state: up}]
    - range: fd00:101::/64
      gateways: [{mac: "02:00:00:00:10:01", state: up}, {mac: "02:00:00:00:10:02", state: up}]
  control:                   # optional: take control's current gateway states before steering
    url: http://10.99.0.1:9190
    token_file: /etc/samepath/control.token
    wait: 3s                 # then start with the states above (logged), or fail with required: true
`
