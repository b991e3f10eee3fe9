package balance

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Policy is a server balancing policy of T6 (R-GW-2).
type Policy uint8

// Policies. The zero value is RoundRobin.
const (
	RoundRobin         Policy = iota // each new choice takes the next server in state up
	WeightedRoundRobin               // smooth weighted round robin (nginx style) over a precomputed cycle
	LeastConn                        // fewest active flows relative to weight (LVS wlc); equal weights give plain least-conn
	FastestResponse                  // lowest EWMA of health-probe RTT
	CPULoad                          // lowest CPU load reported by the server's agent
	NumPolicies                      // number of policies, for per-policy arrays
)

var policyNames = [NumPolicies]string{"rr", "wrr", "lc", "fastest", "cpu"}

// ErrBadPolicy is returned for an unknown policy name or value.
var ErrBadPolicy = errors.New("unknown balancing policy")

func (p Policy) String() string {
	if p < NumPolicies {
		return policyNames[p]
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// ParsePolicy accepts "rr", "wrr", "lc", "fastest", "cpu" (case-insensitive)
// and the long forms "round-robin", "weighted-round-robin", "least-conn",
// "fastest-response", "cpu-load".
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "rr", "round-robin", "roundrobin":
		return RoundRobin, nil
	case "wrr", "weighted-round-robin", "weightedroundrobin":
		return WeightedRoundRobin, nil
	case "lc", "least-conn", "leastconn":
		return LeastConn, nil
	case "fastest", "fastest-response":
		return FastestResponse, nil
	case "cpu", "cpu-load":
		return CPULoad, nil
	}
	return 0, fmt.Errorf("%w %q (want rr, wrr, lc, fastest or cpu)", ErrBadPolicy, s)
}

// MarshalText and UnmarshalText let YAML and JSON carry policy names.
func (p Policy) MarshalText() ([]byte, error) {
	if p >= NumPolicies {
		return nil, fmt.Errorf("%w: %d", ErrBadPolicy, uint8(p))
	}
	return []byte(p.String()), nil
}

func (p *Policy) UnmarshalText(b []byte) error {
	v, err := ParsePolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// UnitType is the user session type of T11 (FIG. 33, FIG. 35, R-GW-6).
type UnitType uint8

// User session types. The zero value is ConnectionUnit, the first
// embodiment's behaviour. The names carry a Unit suffix because Packet
// would clash with the UpPacket/DownPacket events.
const (
	ConnectionUnit UnitType = iota // chosen at the flow's first packet (TCP SYN), released at its end (FIN/RST)
	LoginUnit                      // chosen at the first use of the service after login, kept until logout
	ServiceUnit                    // kept while the session keeps using this service; released when it uses another service-unit service
	PacketUnit                     // chosen anew for every up packet, released by the down packet
	NumUnitTypes
)

var unitNames = [NumUnitTypes]string{"connection", "login", "service", "packet"}

// ErrBadUnitType is returned for an unknown user session type.
var ErrBadUnitType = errors.New("unknown user session type")

func (u UnitType) String() string {
	if u < NumUnitTypes {
		return unitNames[u]
	}
	return fmt.Sprintf("unit(%d)", uint8(u))
}

// ParseUnitType accepts "login", "service", "packet", "connection"
// (case-insensitive, an optional "-unit" suffix is allowed).
func ParseUnitType(s string) (UnitType, error) {
	t := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "-unit")
	for i, n := range unitNames {
		if t == n {
			return UnitType(i), nil
		}
	}
	return 0, fmt.Errorf("%w %q (want login, service, packet or connection)", ErrBadUnitType, s)
}

func (u UnitType) MarshalText() ([]byte, error) {
	if u >= NumUnitTypes {
		return nil, fmt.Errorf("%w: %d", ErrBadUnitType, uint8(u))
	}
	return []byte(u.String()), nil
}

func (u *UnitType) UnmarshalText(b []byte) error {
	v, err := ParseUnitType(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// Protocol numbers of ServiceConfig.Proto.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// Limits checked by Validate. MaxWeight keeps the smooth WRR cycle
// (sum of weights) within 65535 entries for MaxServers servers.
const (
	MaxServers = 255
	MaxWeight  = 256
)

// Server is one actual server of a group (T6).
type Server struct {
	Addr netip.AddrPort `json:"addr" yaml:"addr"`
	// Weight for WRR and LC, 1..MaxWeight; 0 means 1.
	Weight int `json:"weight" yaml:"weight"`
	// Up is the administrative state: an operator's "down" (maint) keeps
	// the server out of every choice whatever the health checks say. The
	// effective state is Up && healthy (see Prober).
	Up bool `json:"up" yaml:"up"`
	// Drain, with Up, is the drain state (AdminState): no new flows,
	// those on the server run until they end.
	Drain bool `json:"drain,omitempty" yaml:"drain,omitempty"`
}

// Check configures the Prober's health check of a service's servers.
type Check struct {
	// Kind: "tcp" (connect), "http" (GET), "udp" (request/response) or
	// "none" (never checked, always healthy). "" means "tcp" for TCP
	// services and "none" for UDP services (a UDP server need not listen
	// on TCP; set "udp", or "tcp" with Port, to check it).
	Kind string `json:"kind,omitempty" yaml:"kind,omitempty"`
	// Port overrides the server's port for the check (0: the server's port).
	Port uint16 `json:"port,omitempty" yaml:"port,omitempty"`
	// Path is the HTTP check's path ("/" when empty); 2xx and 3xx are healthy.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Send is the UDP check's request; a reply starting with Expect
	// (any reply when Expect is empty) is healthy.
	Send   string `json:"send,omitempty" yaml:"send,omitempty"`
	Expect string `json:"expect,omitempty" yaml:"expect,omitempty"`
	// AgentPort is the port of samepath-agent on each server (CPULoad
	// policy); 0 means DefaultAgentPort.
	AgentPort uint16 `json:"agent_port,omitempty" yaml:"agent_port,omitempty"`
}

// Mode is how the gateway carries a TCP service's flows (T11).
type Mode uint8

// Modes. The zero value is NATMode, so services without a mode keep the
// port-key NAT.
const (
	NATMode       Mode = iota // port-key NAT: packets rewritten and forwarded (R-GW-1)
	TerminateMode             // TCP terminated at the gateway and spliced to the server (R-TCP-1, tcpproxy)
	NumModes
)

var modeNames = [NumModes]string{"nat", "terminate"}

// ErrBadMode is returned for an unknown mode.
var ErrBadMode = errors.New("unknown service mode")

func (m Mode) String() string {
	if m < NumModes {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode accepts "nat" and "terminate" (case-insensitive); "" is nat.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "nat":
		return NATMode, nil
	case "terminate":
		return TerminateMode, nil
	}
	return 0, fmt.Errorf("%w %q (want nat or terminate)", ErrBadMode, s)
}

func (m Mode) MarshalText() ([]byte, error) {
	if m >= NumModes {
		return nil, fmt.Errorf("%w: %d", ErrBadMode, uint8(m))
	}
	return []byte(m.String()), nil
}

func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// ServiceConfig is one row of T6 joined with T11: a representative
// address (IP, port, protocol), its user session type and its server group.
type ServiceConfig struct {
	Name   string         `json:"name" yaml:"name"`
	Rep    netip.AddrPort `json:"rep" yaml:"rep"`
	Proto  uint8          `json:"proto" yaml:"proto"` // 6 tcp, 17 udp
	Type   UnitType       `json:"type" yaml:"type"`
	Policy Policy         `json:"policy" yaml:"policy"`
	// Servers in configuration order; a server's index is its position.
	Servers []Server `json:"servers" yaml:"servers"`
	// ServiceType is the T9 label used later for authorization and accounting.
	ServiceType string `json:"service_type,omitempty" yaml:"service_type,omitempty"`
	Check       Check  `json:"check,omitzero" yaml:"check,omitempty"`
	// Mode is T11's NAT or terminate (TCP services only).
	Mode Mode `json:"mode,omitzero" yaml:"mode,omitempty"`
	// Risk is a terminate-mode service's risk balancing (risk.go).
	Risk Risk `json:"risk,omitzero" yaml:"risk,omitempty"`
}

// ErrBadConfig wraps every validation error.
var ErrBadConfig = errors.New("bad service config")

// Validate checks one service row.
func (c *ServiceConfig) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: service %q: %s", ErrBadConfig, c.Name, fmt.Sprintf(format, a...))
	}
	if c.Name == "" {
		return bad("empty name")
	}
	if !c.Rep.IsValid() || c.Rep.Port() == 0 {
		return bad("representative address %v: want IP:port", c.Rep)
	}
	if c.Proto != ProtoTCP && c.Proto != ProtoUDP {
		return bad("protocol %d: want 6 (tcp) or 17 (udp)", c.Proto)
	}
	if c.Type >= NumUnitTypes {
		return bad("%v", c.Type)
	}
	if c.Policy >= NumPolicies {
		return bad("%v", c.Policy)
	}
	if c.Mode >= NumModes {
		return bad("%v", c.Mode)
	}
	if c.Mode == TerminateMode && c.Proto != ProtoTCP {
		return bad("mode terminate: want proto tcp")
	}
	if err := c.Risk.validate(); err != nil {
		return bad("%v", err)
	}
	if c.Mode == TerminateMode && c.Type == PacketUnit {
		return bad("mode terminate: type packet balances each packet anew, which a terminated connection cannot follow")
	}
	if len(c.Servers) == 0 || len(c.Servers) > MaxServers {
		return bad("%d servers: want 1..%d", len(c.Servers), MaxServers)
	}
	seen := make(map[netip.AddrPort]bool, len(c.Servers))
	for _, s := range c.Servers {
		if !s.Addr.IsValid() || s.Addr.Port() == 0 {
			return bad("server address %v: want IP:port", s.Addr)
		}
		if s.Addr.Addr().Zone() != "" {
			return bad("server address %v: zones are not supported", s.Addr)
		}
		if seen[s.Addr] {
			return bad("server %v listed twice", s.Addr)
		}
		seen[s.Addr] = true
		if s.Weight < 0 || s.Weight > MaxWeight {
			return bad("server %v weight %d: want 0..%d", s.Addr, s.Weight, MaxWeight)
		}
	}
	switch c.Check.Kind {
	case "", "tcp", "http", "udp", "none":
	default:
		return bad("check kind %q: want tcp, http, udp or none", c.Check.Kind)
	}
	if c.Check.Kind == "udp" && c.Check.Send == "" {
		return bad("udp check needs a request (send)")
	}
	return nil
}
