package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"

	"go.yaml.in/yaml/v3"

	"samepath/ctl/api"
	"samepath/nat"
)

// Config is samepathd's YAML configuration.
type Config struct {
	// Role is "lb" (the gateway role "gw" comes with the gateway issue).
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
}

// XSKConfig sizes the AF_XDP sockets.
type XSKConfig struct {
	Frames    int  `yaml:"frames"`     // UMEM frames per worker
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

// DefaultConfig returns the defaults every loaded config starts from.
func DefaultConfig() Config {
	return Config{
		API:      "127.0.0.1:9180",
		Steering: "afxdp",
		XSK:      XSKConfig{Frames: 4096, FrameSize: 2048, RingSize: 2048, Batch: 64},
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
	if c.Role != "lb" {
		return fmt.Errorf("config: role %q: want lb", c.Role)
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
	if x.Frames < 2*x.RingSize {
		return fmt.Errorf("config: xsk frames %d: want at least 2*ring_size (%d)", x.Frames, 2*x.RingSize)
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
	return nil
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

// Example is the example config printed by samepathd -h.
const Example = `role: lb
api: 127.0.0.1:9180          # control API, /metrics, /healthz (loopback by default)
steering: afxdp              # afxdp: Go pipeline over AF_XDP; xdp: in-kernel offload
xsk: {frames: 4096, frame_size: 2048, ring_size: 2048, batch: 64}
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
`
