package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/dp/acct"
	"samepath/dp/balance"
	"samepath/dp/xlat"
	"samepath/internal/cfgfile"
	"samepath/nat"
	"samepath/ring/xsk"
	"samepath/tcpproxy"
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
	// LBCache bounds T12 (mobile -> LB MAC); 1..maxLBCache.
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
	// Xlat configures IPv4/IPv6 translation of flows whose server is of
	// the other family (NAT64/NAT46, R-TCP-3, dp/gw_xlat.go).
	Xlat Xlat `yaml:"xlat"`
	// Terminate configures the TCP terminator of terminate-mode
	// services (T11, tcpproxy, dp/gw_term.go); without it their flows
	// are refused (drop reason unsupported).
	Terminate *Terminate `yaml:"terminate"`
	// Sync configures T5 state sync with peer gateways and the takeover
	// of a dead peer's key addresses (R-GW-9, gwsync.go); off without it.
	Sync *Sync `yaml:"sync"`
}

// Terminate is the TCP terminator's config. Its connections to the
// servers leave from the first gw.nat.addrs of each family (the XDP
// filter and the kernel's ARP/ND already serve them) with local ports
// port_min..port_max, which must lie outside gw.nat.port_min..port_max,
// T5's key ports: the down path tells the terminator's segments from the
// NAT's by port. Zero values keep tcpproxy.DefaultConfig's.
type Terminate struct {
	PortMin            uint16        `yaml:"port_min"`
	PortMax            uint16        `yaml:"port_max"`
	MaxConns           int           `yaml:"max_conns"`
	MaxConnsPerSession int           `yaml:"max_conns_per_session"`
	DialTimeout        time.Duration `yaml:"dial_timeout"`
	IdleTimeout        time.Duration `yaml:"idle_timeout"`
	// Profiles are named TCP profiles besides the built-in wireless and
	// wired (one of those names replaces the built-in one); every key is
	// required (api.TCPProfileKeys). MobileProfile and ServerProfile
	// name each side's (default wireless and wired). samepathctl gw
	// tcp-profile changes them at run time (dp/daemon/term.go).
	Profiles      []api.TCPProfile `yaml:"profiles"`
	MobileProfile string           `yaml:"mobile_profile"`
	ServerProfile string           `yaml:"server_profile"`
}

// TermConfig is the terminator's config (without Admit and the other
// hooks, which dp.TermHooks.Install sets); ok is false without a
// gw.terminate section.
func (g *GWConfig) TermConfig() (c tcpproxy.Config, ok bool, err error) {
	t := g.Terminate
	if t == nil {
		return c, false, nil
	}
	c = tcpproxy.DefaultConfig()
	if t.PortMin == 0 || t.PortMax < t.PortMin {
		return c, false, fmt.Errorf("config: gw.terminate.port_min %d, port_max %d: want 1 <= port_min <= port_max", t.PortMin, t.PortMax)
	}
	if t.PortMin <= g.NAT.PortMax && g.NAT.PortMin <= t.PortMax {
		return c, false, fmt.Errorf("config: gw.terminate.port_min..port_max %d-%d: overlaps gw.nat.port_min..port_max %d-%d (T5's key ports)",
			t.PortMin, t.PortMax, g.NAT.PortMin, g.NAT.PortMax)
	}
	c.ServerPorts = [2]uint16{t.PortMin, t.PortMax}
	if _, c.MobileProfile, c.ServerProfile, err = t.TermProfiles(); err != nil {
		return c, false, err
	}
	var have4, have6 bool
	for i, s := range g.NAT.Addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return c, false, fmt.Errorf("config: gw.nat.addrs[%d]: %w", i, err)
		}
		if a.Is4() && !have4 || a.Is6() && !have6 {
			c.ServerAddrs = append(c.ServerAddrs, a)
			have4, have6 = have4 || a.Is4(), have6 || a.Is6()
		}
	}
	for _, f := range []struct {
		key string
		v   int
		dst *int
	}{{"max_conns", t.MaxConns, &c.MaxConns}, {"max_conns_per_session", t.MaxConnsPerSession, &c.MaxConnsPerSession}} {
		if f.v < 0 {
			return c, false, fmt.Errorf("config: gw.terminate.%s %d: want > 0 (0: default %d)", f.key, f.v, *f.dst)
		}
		if f.v > 0 {
			*f.dst = f.v
		}
	}
	for _, f := range []struct {
		key string
		v   time.Duration
		dst *time.Duration
	}{{"dial_timeout", t.DialTimeout, &c.DialTimeout}, {"idle_timeout", t.IdleTimeout, &c.IdleTimeout}} {
		if f.v < 0 {
			return c, false, fmt.Errorf("config: gw.terminate.%s %v: want > 0 (0: default %v)", f.key, f.v, *f.dst)
		}
		if f.v > 0 {
			*f.dst = f.v
		}
	}
	// The hooks are the gateway's; check the rest with a stand-in.
	v := c
	v.Admit = func(tcpproxy.Request) tcpproxy.Decision { return tcpproxy.Decision{Refuse: true} }
	if err := v.Validate(); err != nil {
		return c, false, fmt.Errorf("config: gw.terminate: %w", err)
	}
	return c, true, nil
}

// Xlat is the translator's config (dp/xlat.Config).
type Xlat struct {
	// Disabled turns translation off: flows to servers of the other
	// family are refused.
	Disabled bool `yaml:"disabled"`
	// Pool6 is the RFC 6052 prefix (default 64:ff9b::/96); "none" for
	// EAM only.
	Pool6 string `yaml:"pool6"`
	// EAM is the explicit address mapping table (RFC 7757).
	EAM []struct {
		IPv4 string `yaml:"ipv4"`
		IPv6 string `yaml:"ipv6"`
	} `yaml:"eam"`
	// IPv4Address and IPv6Address source the ICMP errors the translator
	// answers with; default: the first gw.nat.addrs of each family.
	IPv4Address string `yaml:"ipv4_address"`
	IPv6Address string `yaml:"ipv6_address"`
	// RFC6791v4 and RFC6791v6 are the RFC 6791 pools: sources of
	// translated ICMP errors whose own source has no mapping (default:
	// the own address of that family).
	RFC6791v4 string `yaml:"rfc6791v4"`
	RFC6791v6 string `yaml:"rfc6791v6"`
	// MTUs of each side and the lowest IPv6 MTU (RFC 7915 sections 4, 6).
	IPv4MTU       int `yaml:"ipv4_mtu"`
	IPv6MTU       int `yaml:"ipv6_mtu"`
	LowestIPv6MTU int `yaml:"lowest_ipv6_mtu"`
}

// XlatConfig is the translator config of gw.xlat, with the gateway's NAT
// addresses as the default own addresses. It returns ok false when
// translation is off, or when a family has neither an own address nor a
// NAT address (it could not answer for that side).
func (g *GWConfig) XlatConfig() (c xlat.Config, ok bool, err error) {
	x := g.Xlat
	if x.Disabled {
		return c, false, nil
	}
	c = xlat.DefaultConfig()
	switch x.Pool6 {
	case "":
	case "none":
		c.Pool6 = netip.Prefix{}
	default:
		if c.Pool6, err = netip.ParsePrefix(x.Pool6); err != nil {
			return c, false, fmt.Errorf("config: gw.xlat.pool6: %w", err)
		}
	}
	for i, e := range x.EAM {
		var m xlat.EAM
		if m.IPv4, err = netip.ParsePrefix(e.IPv4); err != nil {
			return c, false, fmt.Errorf("config: gw.xlat.eam[%d].ipv4: %w", i, err)
		}
		if m.IPv6, err = netip.ParsePrefix(e.IPv6); err != nil {
			return c, false, fmt.Errorf("config: gw.xlat.eam[%d].ipv6: %w", i, err)
		}
		c.EAM = append(c.EAM, m)
	}
	for _, a := range g.NAT.Addrs {
		if p, err := netip.ParseAddr(a); err == nil {
			if p.Is4() && !c.IPv4Address.IsValid() {
				c.IPv4Address = p
			} else if p.Is6() && !c.IPv6Address.IsValid() {
				c.IPv6Address = p
			}
		}
	}
	for key, a := range map[string]*netip.Addr{"ipv4_address": &c.IPv4Address, "ipv6_address": &c.IPv6Address} {
		v := x.IPv4Address
		if key == "ipv6_address" {
			v = x.IPv6Address
		}
		if v == "" {
			continue
		}
		if *a, err = netip.ParseAddr(v); err != nil {
			return c, false, fmt.Errorf("config: gw.xlat.%s: %w", key, err)
		}
	}
	for key, p := range map[string]*netip.Prefix{"rfc6791v4": &c.RFC6791v4, "rfc6791v6": &c.RFC6791v6} {
		v := x.RFC6791v4
		if key == "rfc6791v6" {
			v = x.RFC6791v6
		}
		if v == "" {
			continue
		}
		if *p, err = netip.ParsePrefix(v); err != nil {
			return c, false, fmt.Errorf("config: gw.xlat.%s: %w", key, err)
		}
	}
	if x.IPv4MTU != 0 {
		c.IPv4MTU = x.IPv4MTU
	}
	if x.IPv6MTU != 0 {
		c.IPv6MTU = x.IPv6MTU
	}
	if x.LowestIPv6MTU != 0 {
		c.LowestIPv6MTU = x.LowestIPv6MTU
	}
	if !c.IPv4Address.IsValid() || !c.IPv6Address.IsValid() {
		return c, false, nil
	}
	if err := c.Validate(); err != nil {
		return c, false, fmt.Errorf("config: gw.xlat: %w", err)
	}
	return c, true, nil
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
	// Idle timeouts; absent keeps the RFC default (see nat.DefaultTimeouts).
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
	SyncInterval time.Duration `yaml:"sync_interval"` // fsync batches (and live flows' checkpoints) at least this often
	MaxSize      int64         `yaml:"max_size"`      // rotate before this many bytes
	Keep         int           `yaml:"keep"`          // rotated files kept
}

// LogConfig is the accounting log's config.
func (a Accounting) LogConfig() (acct.Config, error) {
	c := acct.DefaultConfig(a.Log)
	c.SyncInterval, c.MaxSize, c.Keep = a.SyncInterval, a.MaxSize, a.Keep
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

// DefaultGWConfig returns the gw section's defaults: what a key absent
// from it gets. A key given with an invalid value is an error (Validate),
// never replaced by its default.
func DefaultGWConfig() GWConfig {
	pc := nat.DefaultPortTableConfig()
	pr := balance.DefaultProberConfig()
	ac := acct.DefaultConfig("")
	t := pc.Timeouts
	return GWConfig{
		LBCache: 1 << 16,
		NAT: NAT{
			PortMin: pc.PortMin, PortMax: pc.PortMax, Capacity: pc.Capacity,
			UDPTimeout: t.UDP, ICMPTimeout: t.ICMP, TCPEstablishedTimeout: t.TCPEstablished,
			TCPTransitoryTimeout: t.TCPTransitory, TCPTimeWaitTimeout: t.TCPTimeWait, TCPClosedTimeout: t.TCPClosed,
			PortReuseDelay: pc.PortReuseDelay,
		},
		Probe:      Probe{Interval: pr.Interval, Timeout: pr.Timeout, Fall: pr.Fall, Rise: pr.Rise},
		Accounting: Accounting{SyncInterval: ac.SyncInterval, MaxSize: ac.MaxSize, Keep: ac.Keep},
	}
}

// maxLBCache bounds gw.lb_cache (T12 entries; a gateway's address range
// is at most a /12, 1 Mi mobiles).
const maxLBCache = 1 << 24

// maxRing is the largest AF_XDP ring the sockets take (xsk.Config.Validate).
const maxRing = 1 << 16

// maxBatch is the largest batch a worker takes (dp.WorkerConfig.Validate).
const maxBatch = 4096

// ifNameMax is the longest interface name Linux takes (IFNAMSIZ-1).
const ifNameMax = 15

// Load reads a config file and checks its values (Parse). samepathd -check
// and Run then run Check, which adds the files and interfaces it names.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data)
	if err != nil && c.Role == "" {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, err
}

// Parse decodes YAML over the defaults (unknown keys are errors) and
// checks the values (Validate). With a validation error it returns the
// decoded config too; with a decoding error, a zero Config.
func Parse(data []byte) (Config, error) {
	c := DefaultConfig()
	gw := DefaultGWConfig()
	c.GW = &gw
	root, err := cfgfile.Decode(data, &c)
	if err != nil {
		return Config{}, err
	}
	if !cfgfile.Has(root, "gw") {
		c.GW = nil
	}
	return c, c.Validate()
}

// Check is the validation samepathd -check and Run both run: Validate,
// then what the start opens: the API token file, the accounting log's
// directory and the interfaces, which must exist and be Ethernet.
func (c Config) Check() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if _, err := cfgfile.ReadToken(c.APITokenFile); err != nil {
		return fmt.Errorf("config: api_token_file: %w", err)
	}
	if c.Role == "gw" && c.GW.Accounting.Log != "" {
		if err := logWritable(c.GW.Accounting.Log); err != nil {
			return fmt.Errorf("config: gw.accounting.log: %w", err)
		}
	}
	for _, s := range c.ifaces() {
		ifi, err := net.InterfaceByName(s.name)
		if err != nil {
			return fmt.Errorf("config: %s %q: %w", s.key, s.name, err)
		}
		if len(ifi.HardwareAddr) != 6 {
			return fmt.Errorf("config: %s %q: not an Ethernet interface", s.key, s.name)
		}
		// The queues the kernel allocated bound those a socket can bind
		// (the channels in use, ethtool -l, may be fewer).
		if l, err := netlink.LinkByIndex(ifi.Index); err == nil {
			if n := l.Attrs().NumRxQueues; n > 0 && c.Workers.Queues > n {
				return fmt.Errorf("config: workers.queues %d: %s %s has %d rx queues", c.Workers.Queues, s.key, s.name, n)
			}
		}
	}
	return nil
}

// logWritable checks that acct.Open can open path: a file in a writable
// directory, or a writable directory (the log then lives inside it).
func logWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return cfgfile.WritableDir(path, false)
	}
	return cfgfile.WritableFile(path)
}

type ifaceKey struct{ key, name string }

// ifaces are the interfaces the role opens, by key.
func (c Config) ifaces() []ifaceKey {
	if c.Role == "gw" {
		return []ifaceKey{{"gw.lan.iface", c.GW.Lan.Iface}, {"gw.servers.iface", c.GW.Servers.Iface}}
	}
	return []ifaceKey{{"lb.ingress.iface", c.LB.Ingress.Iface}, {"lb.gateway_side.iface", c.LB.GatewaySide.Iface}}
}

// Validate checks every value; errors name the YAML key. It opens
// nothing (Check does).
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
	if err := c.XSK.validate(); err != nil {
		return err
	}
	if c.Workers.Queues <= 0 {
		return fmt.Errorf("config: workers.queues %d: want >= 1", c.Workers.Queues)
	}
	for i, cpu := range c.Workers.CPUs {
		if cpu < 0 || cpu >= runtime.NumCPU() {
			return fmt.Errorf("config: workers.cpus[%d] %d: this machine has cpus 0..%d", i, cpu, runtime.NumCPU()-1)
		}
	}
	if c.Role == "gw" {
		if err := c.validateGW(); err != nil {
			return err
		}
	} else if err := c.validateLB(); err != nil {
		return err
	}
	// What the sockets check themselves, so that nothing the start
	// refuses passes here.
	for _, s := range c.ifaces() {
		sc := xsk.DefaultConfig(s.name, c.Workers.Queues-1)
		sc.RxSize, sc.TxSize, sc.FillSize, sc.CompSize = c.XSK.RingSize, c.XSK.RingSize, c.XSK.RingSize, c.XSK.RingSize
		sc.BusyPoll = c.XSK.BusyPoll
		if err := sc.Validate(); err != nil {
			return fmt.Errorf("config: %s: %w", s.key, err)
		}
	}
	return nil
}

func (x XSKConfig) validate() error {
	if x.FrameSize != 2048 && x.FrameSize != 4096 {
		return fmt.Errorf("config: xsk.frame_size %d: want 2048 or 4096 (what an AF_XDP UMEM takes)", x.FrameSize)
	}
	if x.RingSize <= 0 || x.RingSize > maxRing || x.RingSize&(x.RingSize-1) != 0 {
		return fmt.Errorf("config: xsk.ring_size %d: want a power of two in 1..%d", x.RingSize, maxRing)
	}
	if x.Frames < 4*x.RingSize {
		return fmt.Errorf("config: xsk.frames %d: want at least 4*ring_size (%d): two sockets' fill rings and TX rings share them", x.Frames, 4*x.RingSize)
	}
	if x.Batch <= 0 || x.Batch > x.RingSize || x.Batch > maxBatch {
		return fmt.Errorf("config: xsk.batch %d: want 1..ring_size (%d), at most %d", x.Batch, x.RingSize, maxBatch)
	}
	wc := dp.DefaultWorkerConfig()
	wc.Batch = x.Batch
	if err := wc.Validate(); err != nil {
		return fmt.Errorf("config: xsk.batch: %w", err)
	}
	if err := (xsk.UmemConfig{Frames: x.Frames, FrameSize: uint32(x.FrameSize)}).Validate(); err != nil {
		return fmt.Errorf("config: xsk.frames: %w", err)
	}
	return nil
}

// validIface checks an interface name given under key.
func validIface(key, name string) error {
	if name == "" {
		return fmt.Errorf("config: %s is required", key)
	}
	if len(name) > ifNameMax || strings.ContainsAny(name, "/ \t\n") {
		return fmt.Errorf("config: %s %q: not an interface name (at most %d bytes, no '/' or blanks)", key, name, ifNameMax)
	}
	return nil
}

func (c Config) validateLB() error {
	lb := c.LB
	if lb == nil {
		return errors.New("config: role lb needs an lb section")
	}
	if err := validIface("lb.ingress.iface", lb.Ingress.Iface); err != nil {
		return err
	}
	if err := validIface("lb.gateway_side.iface", lb.GatewaySide.Iface); err != nil {
		return err
	}
	if lb.Ingress.Iface == lb.GatewaySide.Iface {
		return fmt.Errorf("config: lb.gateway_side.iface %s: the same interface as lb.ingress.iface", lb.GatewaySide.Iface)
	}
	if lb.Ingress.NextHopMAC == "" && lb.Ingress.NextHopIP == "" {
		return errors.New("config: lb.ingress.next_hop_mac or lb.ingress.next_hop_ip is required")
	}
	if lb.Ingress.NextHopMAC != "" {
		if _, err := nat.ParseMAC(lb.Ingress.NextHopMAC); err != nil {
			return fmt.Errorf("config: lb.ingress.next_hop_mac: %w", err)
		}
	}
	if lb.Ingress.NextHopIP != "" {
		if _, err := netip.ParseAddr(lb.Ingress.NextHopIP); err != nil {
			return fmt.Errorf("config: lb.ingress.next_hop_ip: %w", err)
		}
	}
	for i, e := range lb.Exclude {
		if _, err := netip.ParseAddr(e); err != nil {
			return fmt.Errorf("config: lb.exclude[%d]: %w", i, err)
		}
	}
	for i, r := range lb.T4 {
		if _, err := T4Row(r); err != nil {
			return fmt.Errorf("config: lb.t4[%d]: %w", i, err)
		}
	}
	if _, err := T4Rows(lb.T4); err != nil {
		return fmt.Errorf("config: lb.t4: %w", err)
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
		return fmt.Errorf("config: steering %s: role gw runs on afxdp steering only", c.Steering)
	}
	if c.Workers.Queues != 1 {
		return fmt.Errorf("config: workers.queues %d: role gw wants 1 (one worker owns the NAT table)", c.Workers.Queues)
	}
	if err := g.Sync.validate(g); err != nil {
		return err
	}
	if err := validIface("gw.lan.iface", g.Lan.Iface); err != nil {
		return err
	}
	if err := validIface("gw.servers.iface", g.Servers.Iface); err != nil {
		return err
	}
	if g.Lan.Iface == g.Servers.Iface {
		return fmt.Errorf("config: gw.servers.iface %s: the same interface as gw.lan.iface", g.Servers.Iface)
	}
	if err := g.NAT.validate(); err != nil {
		return err
	}
	if g.LBCache < 1 || g.LBCache > maxLBCache {
		return fmt.Errorf("config: gw.lb_cache %d: want 1..%d", g.LBCache, maxLBCache)
	}
	for i, s := range g.Services {
		c, err := ServiceConfig(s)
		if err != nil {
			return fmt.Errorf("config: gw.services[%d]: %w", i, err)
		}
		if c.Mode == balance.TerminateMode && g.Terminate == nil {
			return fmt.Errorf("config: gw.services[%d]: service %q: mode terminate needs a gw.terminate section", i, c.Name)
		}
	}
	if _, _, err := g.TermConfig(); err != nil {
		return err
	}
	if _, err := ServiceConfigs(g.Services); err != nil {
		return fmt.Errorf("config: gw.services: %w", err)
	}
	p := g.Probe
	switch {
	case p.Interval <= 0:
		return fmt.Errorf("config: gw.probe.interval %v: want > 0", p.Interval)
	case p.Timeout <= 0 || p.Timeout > p.Interval:
		return fmt.Errorf("config: gw.probe.timeout %v: want 0 < timeout <= interval (%v)", p.Timeout, p.Interval)
	case p.Fall < 1:
		return fmt.Errorf("config: gw.probe.fall %d: want >= 1", p.Fall)
	case p.Rise < 1:
		return fmt.Errorf("config: gw.probe.rise %d: want >= 1", p.Rise)
	}
	if _, err := g.ProberConfig(); err != nil {
		return fmt.Errorf("config: gw.probe: %w", err)
	}
	if _, _, err := AuthzRows(g.Authz); err != nil {
		return fmt.Errorf("config: gw.authz: %w", err)
	}
	if a := g.Accounting; a.Log != "" {
		switch {
		case a.Interim < 0:
			return fmt.Errorf("config: gw.accounting.interim %v: want >= 0 (0: none)", a.Interim)
		case a.SyncInterval <= 0:
			return fmt.Errorf("config: gw.accounting.sync_interval %v: want > 0", a.SyncInterval)
		case a.MaxSize < acct.MaxLine:
			return fmt.Errorf("config: gw.accounting.max_size %d: want at least one record (%d bytes)", a.MaxSize, acct.MaxLine)
		case a.Keep < 1 || a.Keep > 100000:
			return fmt.Errorf("config: gw.accounting.keep %d: want 1..100000", a.Keep)
		}
		if _, err := a.LogConfig(); err != nil {
			return fmt.Errorf("config: gw.accounting: %w", err)
		}
	}
	if _, _, err := g.XlatConfig(); err != nil {
		return err
	}
	for i, e := range g.Exclude {
		if _, err := netip.ParseAddr(e); err != nil {
			return fmt.Errorf("config: gw.exclude[%d]: %w", i, err)
		}
	}
	return nil
}

func (n NAT) validate() error {
	if len(n.Addrs) == 0 {
		return errors.New("config: gw.nat.addrs: at least one gateway address is required")
	}
	for i, s := range n.Addrs {
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("config: gw.nat.addrs[%d]: %w", i, err)
		}
	}
	if n.PortMin == 0 {
		return errors.New("config: gw.nat.port_min 0: want 1..port_max")
	}
	if n.PortMin > n.PortMax {
		return fmt.Errorf("config: gw.nat.port_min %d: beyond port_max %d", n.PortMin, n.PortMax)
	}
	if n.Capacity < 1 || n.Capacity > nat.MaxCapacity {
		return fmt.Errorf("config: gw.nat.capacity %d: want 1..%d", n.Capacity, nat.MaxCapacity)
	}
	for _, t := range []struct {
		key string
		v   time.Duration
	}{
		{"udp_timeout", n.UDPTimeout}, {"icmp_timeout", n.ICMPTimeout}, {"tcp_established_timeout", n.TCPEstablishedTimeout},
		{"tcp_transitory_timeout", n.TCPTransitoryTimeout}, {"tcp_time_wait_timeout", n.TCPTimeWaitTimeout}, {"tcp_closed_timeout", n.TCPClosedTimeout},
	} {
		if t.v <= 0 {
			return fmt.Errorf("config: gw.nat.%s %v: want > 0", t.key, t.v)
		}
	}
	if n.PortReuseDelay < 0 {
		return fmt.Errorf("config: gw.nat.port_reuse_delay %v: want >= 0", n.PortReuseDelay)
	}
	g := GWConfig{NAT: n}
	if _, err := g.PortTableConfig(); err != nil {
		return fmt.Errorf("config: gw.nat: %w", err)
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
	var err error
	if pc.PeerAddrs, err = g.Sync.peerAddrs(); err != nil {
		return pc, err
	}
	n := g.NAT
	pc.PortMin, pc.PortMax, pc.Capacity, pc.PortReuseDelay = n.PortMin, n.PortMax, n.Capacity, n.PortReuseDelay
	pc.Timeouts = nat.Timeouts{
		UDP: n.UDPTimeout, ICMP: n.ICMPTimeout, TCPEstablished: n.TCPEstablishedTimeout,
		TCPTransitory: n.TCPTransitoryTimeout, TCPTimeWait: n.TCPTimeWaitTimeout, TCPClosed: n.TCPClosedTimeout,
	}
	return pc, pc.Validate()
}

// ProberConfig is the server health checks' config.
func (g *GWConfig) ProberConfig() (balance.ProberConfig, error) {
	pc := balance.DefaultProberConfig()
	pc.Interval, pc.Timeout, pc.Fall, pc.Rise = g.Probe.Interval, g.Probe.Timeout, g.Probe.Fall, g.Probe.Rise
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
	if c.Mode, err = balance.ParseMode(s.Mode); err != nil {
		return c, fmt.Errorf("service %q: mode: %w", s.Name, err)
	}
	for _, sv := range s.Servers {
		ap, err := netip.ParseAddrPort(sv.Addr)
		if err != nil {
			return c, fmt.Errorf("service %q: server %q: want IP:port", s.Name, sv.Addr)
		}
		st, err := balance.ParseAdminState(sv.State)
		if err != nil {
			return c, fmt.Errorf("service %q: server %s: %w", s.Name, sv.Addr, err)
		}
		c.Servers = append(c.Servers, balance.Server{Addr: ap, Weight: sv.Weight, Up: st != balance.AdminMaint, Drain: st == balance.AdminDrain})
	}
	if c.Risk, err = riskConfig(s, c.Mode); err != nil {
		return c, err
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
    port_max: 59999             # key ports; 60000-65535 are the terminator's (gw.terminate)
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
    - name: web-t
      rep: 10.30.0.1:8080
      proto: tcp
      mode: terminate           # nat (default) or terminate: TCP ends at the gateway (tcpproxy)
      # risk balancing (R-TCP-4): a server failing before its answer is replaced and the
      # request (up to replay_buffer bytes, default 65536, 0: off) replayed; http: true
      # also resumes downloads mid-body by a conditional Range request (resume: false: RST)
      risk: {replay_buffer: 65536, http: true}
      servers: [{addr: "10.20.0.11:8080"}, {addr: "10.20.0.12:8080"}]
  # the terminator's local ports on nat.addrs, outside nat's; a TCP profile
  # per side: the built-in wireless and wired, or one of gw.terminate.profiles
  # ([{name: ..., mss: ..., every key of samepathctl gw tcp-profile set}])
  terminate: {port_min: 60000, port_max: 65535, mobile_profile: wireless, server_profile: wired}
  probe: {interval: 1s, timeout: 500ms, fall: 3, rise: 2}
  # accounting: T10 records, fsync'd every sync_interval; live flows are
  # checkpointed as often (LOG.ckpt.N), so a crash loses at most ~one interval
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
