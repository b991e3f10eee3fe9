package api

import (
	"net/netip"
	"net/url"
)

// State of a gateway or server.
const (
	StateUp   = "up"
	StateDown = "down"
)

// Status describes a running samepathd.
type Status struct {
	Role      string `json:"role"`
	Version   string `json:"version"`
	UptimeSec int64  `json:"uptime_sec"`
	Steering  string `json:"steering,omitempty"` // lb: "afxdp" or "xdp"
}

// QueueCounters are one (interface, queue) worker's counters.
type QueueCounters struct {
	Port      string            `json:"port"`
	CPU       int               `json:"cpu"`
	RxPackets uint64            `json:"rx_packets"`
	RxBytes   uint64            `json:"rx_bytes"`
	TxPackets uint64            `json:"tx_packets"`
	TxBytes   uint64            `json:"tx_bytes"`
	Drops     map[string]uint64 `json:"drops"`
	IdleRatio float64           `json:"idle_ratio"`
	// Polls counts the poller's rounds over the queue: at least one per
	// idle wait (1 ms by default), so one that stops rising is a stalled
	// poller (alert SamepathPollerStalled).
	Polls uint64 `json:"polls"`
	// Consumed counts received packets the pipeline took in instead of
	// forwarding (a terminated flow's segments handed to the TCP
	// terminator); Originated counts frames the pipeline made itself for
	// this port (the terminator's segments).
	Consumed   uint64 `json:"consumed"`
	Originated uint64 `json:"originated"`
	// Socket is the kernel's statistics of the queue's AF_XDP socket
	// (XDP_STATISTICS: frames it dropped before the dataplane saw them,
	// e.g. rx_ring_full, fill_ring_empty); absent for other ports.
	Socket map[string]uint64 `json:"socket,omitempty"`
	// Panics counts batches whose pipeline panicked: each was dropped
	// whole (drop reason "panic") and logged with its frames.
	Panics uint64 `json:"panics,omitempty"`
}

// SocketDrops are the QueueCounters.Socket keys that count frames the
// kernel dropped before the dataplane saw them.
var SocketDrops = []string{"rx_dropped", "rx_ring_full", "fill_ring_empty"}

// Counters are every queue's counters.
type Counters struct {
	Queues []QueueCounters `json:"queues"`
}

// T4Gateway is one gateway in a T4 row: its MAC and state.
type T4Gateway struct {
	MAC   string `json:"mac"`
	State string `json:"state"` // "up" or "down"
}

// T4Row maps a source address range (CIDR) to the primary gateway (first)
// and its substitutes in order (FIG. 14).
type T4Row struct {
	Range    string      `json:"range"`
	Gateways []T4Gateway `json:"gateways"`
}

// T4 is the LB balancing policy table.
type T4 struct {
	Rows []T4Row `json:"rows"`
}

// GatewayState sets a gateway's state in every T4 row naming its MAC.
type GatewayState struct {
	MAC   string `json:"mac"`
	State string `json:"state"`
}

// Session event kinds pushed from the session manager to a gateway.
const (
	EventStart   = "start"
	EventActive  = "active"
	EventDormant = "dormant"
	EventEnd     = "end"
)

// SessionEvent is a T3 notification (R-GW-7, R-SM-2).
type SessionEvent struct {
	Event     string `json:"event"`
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id,omitempty"`
	DeviceID  string `json:"device_id"`
	IP        string `json:"ip"`
	// Seq orders events of one session and must be 1 or more; a gateway
	// acknowledges and ignores an event not newer than the last it
	// applied, or than the tombstone an end leaves (kept an hour, and at
	// most 65536 of them), so retries are idempotent.
	Seq uint64 `json:"seq"`
	// LBMAC is the MAC, on the gateways' LAN, of the LB that serves the
	// NAS where the session last started or resumed (FIG. 31), when the
	// control process knows it (the RADIUS client's lb_mac). A gateway
	// whose copy names another LB moves the mobile's T12 entry there at
	// once (R-GW-4), so its down packets follow a move that the mobile
	// sends nothing after.
	LBMAC string `json:"lb_mac,omitempty"`
	// AcctSessionID is the RADIUS Acct-Session-Id the session runs under
	// now: SessionID's (the Start that created it) or, after a resume
	// under a new one (FIG. 31), the latest. The gateway writes it in
	// its accounting records (T10), for joins with RADIUS accounting.
	AcctSessionID string `json:"acct_session_id,omitempty"`
	// IP6 is the session's IPv6 part, when it has one: an address
	// ("2001:db8::5", Framed-IPv6-Address) or a /64 ("2001:db8:1:2::/64",
	// Framed-IPv6-Prefix) whose every address the mobile may send from.
	// A dual-stack session has IP (IPv4) and IP6; an IPv6-only one has
	// IP6, and IP is its first address. Empty: IP alone.
	IP6 string `json:"ip6,omitempty"`
}

// Ack answers a change.
type Ack struct {
	OK bool `json:"ok"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

// Gateway role (R-GW-*).

// Server is one actual server of a service.
type Server struct {
	Addr   string `json:"addr" yaml:"addr"` // IP:port
	Weight int    `json:"weight,omitempty" yaml:"weight,omitempty"`
	State  string `json:"state" yaml:"state"` // administrative: "up", "drain" or "maint" ("down" is read as maint)
	// Read-only, from the gateway's probes:
	Healthy   *bool   `json:"healthy,omitempty" yaml:"healthy,omitempty"`
	RTTMicros int64   `json:"rtt_us,omitempty" yaml:"rtt_us,omitempty"`
	CPU       float64 `json:"cpu,omitempty" yaml:"cpu,omitempty"`
	Active    int64   `json:"active,omitempty" yaml:"active,omitempty"` // flows on it (least connections)
}

// Service is a T6 row joined with its T11 user session type and T9
// service type: a representative address and its server group.
type Service struct {
	Name        string   `json:"name" yaml:"name"`
	Rep         string   `json:"rep" yaml:"rep"`       // representative IP:port
	Proto       string   `json:"proto" yaml:"proto"`   // "tcp" or "udp"
	Type        string   `json:"type" yaml:"type"`     // login, service, packet or connection
	Policy      string   `json:"policy" yaml:"policy"` // rr, wrr, lc, fastest, cpu
	ServiceType string   `json:"service_type,omitempty" yaml:"service_type,omitempty"`
	Mode        string   `json:"mode,omitempty" yaml:"mode,omitempty"` // T11: nat (the default, also when empty) or terminate (TCP terminated at the gateway)
	Servers     []Server `json:"servers" yaml:"servers"`
	// Risk is a terminate-mode service's risk balancing (R-TCP-4).
	Risk *Risk `json:"risk,omitempty" yaml:"risk,omitempty"`
	// RiskStats are read-only counts of the gateway (GET only).
	RiskStats *RiskStats `json:"risk_stats,omitempty" yaml:"risk_stats,omitempty"`
}

// Risk configures a terminate-mode service's risk balancing (R-TCP-4,
// tcpproxy/risk.go): failover with a replay of the request before the
// first response byte, and for HTTP services the resume of a download
// whose server dies mid-body.
type Risk struct {
	// ReplayBuffer is how many request bytes each connection keeps for a
	// replay (absent: 65536; 0: no failover, the mobile gets a RST).
	ReplayBuffer *int `json:"replay_buffer,omitempty" yaml:"replay_buffer,omitempty"`
	// HTTP declares the service HTTP/1.1: a body cut short ends in a RST,
	// never a FIN.
	HTTP bool `json:"http,omitempty" yaml:"http,omitempty"`
	// Resume resumes downloads mid-body by a conditional Range request
	// (absent: as HTTP; needs HTTP).
	Resume *bool `json:"resume,omitempty" yaml:"resume,omitempty"`
}

// RiskStats count a service's risk balancing on one gateway.
type RiskStats struct {
	Failovers uint64 `json:"failovers"` // before the response
	Resumes   uint64 `json:"resumes"`   // mid-response
	// Aborts are the RSTs to the mobile by cause: replay_overflow,
	// no_server, mid_response, resume_mismatch.
	Aborts map[string]uint64 `json:"aborts"`
}

// Services is the gateway's service table.
type Services struct {
	Services []Service `json:"services"`
}

// PolicyChange sets a service's balancing policy.
type PolicyChange struct {
	Service string `json:"service"`
	Policy  string `json:"policy"`
}

// ServerState sets a server's administrative state in a service.
type ServerState struct {
	Service string `json:"service"`
	Addr    string `json:"addr"`
	State   string `json:"state"`
}

// GWSession is a row of the gateway's T3 copy.
type GWSession struct {
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id,omitempty"`
	DeviceID  string `json:"device_id"`
	IP        string `json:"ip"`
	State     string `json:"state"` // "active" or "dormant"
	Seq       uint64 `json:"seq"`
	// AcctSessionID is SessionEvent.AcctSessionID of the latest event.
	AcctSessionID string `json:"acct_session_id,omitempty"`
	// IP6 is SessionEvent.IP6: the gate is open for IP and for it.
	IP6 string `json:"ip6,omitempty"`
}

// GWSessions lists the gateway's sessions.
type GWSessions struct {
	Sessions []GWSession `json:"sessions"`
}

// Flow is one port-key NAT record (T5).
type Flow struct {
	Proto       string `json:"proto"`
	Mobile      string `json:"mobile"`  // IP:port as the mobile sends
	Dest        string `json:"dest"`    // representative (or real destination) IP:port
	Gateway     string `json:"gateway"` // gateway address:key port
	Server      string `json:"server"`  // actual server IP:port
	Session     string `json:"session,omitempty"`
	Service     string `json:"service,omitempty"`
	State       string `json:"state,omitempty"` // TCP state
	AgeSec      int64  `json:"age_sec"`
	IdleSec     int64  `json:"idle_sec"`
	UpPackets   uint64 `json:"up_packets"`
	UpBytes     uint64 `json:"up_bytes"`
	DownPackets uint64 `json:"down_packets"`
	DownBytes   uint64 `json:"down_bytes"`
}

// Flows lists flow records; Total is how many exist (the list may be cut).
type Flows struct {
	Total int    `json:"total"`
	Flows []Flow `json:"flows"`
}

// T9Row maps a representative address to its service type (FIG. 27).
type T9Row struct {
	Rep         string `json:"rep" yaml:"rep"`
	ServiceType string `json:"service_type" yaml:"service_type"`
}

// T8Row is one entry of the service order (FIG. 26).
type T8Row struct {
	Device      string `json:"device" yaml:"device"`
	ServiceType string `json:"service_type" yaml:"service_type"`
	Allowed     bool   `json:"allowed" yaml:"allowed"`
}

// Authz holds a gateway's authorization tables (R-AUTH-1) and, when
// read, the refusals per service type.
type Authz struct {
	T9     []T9Row           `json:"t9" yaml:"t9"`
	T8     []T8Row           `json:"t8" yaml:"t8"`
	Denied map[string]uint64 `json:"denied,omitempty" yaml:"-"`
}

// FlowFilter selects flow records (GET /v1/flows?mobile=&session=&
// service=&server=); an empty field matches every record. Mobile and
// Server are an address (any port) or an address:port.
type FlowFilter struct {
	Mobile, Session, Service, Server string
}

// Empty reports whether f matches every record.
func (f FlowFilter) Empty() bool { return f == FlowFilter{} }

// Match reports whether record r passes f.
func (f FlowFilter) Match(r Flow) bool {
	return endpointMatch(f.Mobile, r.Mobile) && endpointMatch(f.Server, r.Server) &&
		(f.Session == "" || f.Session == r.Session) && (f.Service == "" || f.Service == r.Service)
}

// endpointMatch: want is "" (any), an address (any port) or address:port;
// got is a record's address:port.
func endpointMatch(want, got string) bool {
	if want == "" || want == got {
		return true
	}
	ap, err := netip.ParseAddrPort(got)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(want)
	return err == nil && a.Unmap() == ap.Addr().Unmap()
}

// Query is f as URL query parameters (without the leading '&').
func (f FlowFilter) Query() string {
	v := url.Values{}
	for k, s := range map[string]string{"mobile": f.Mobile, "session": f.Session, "service": f.Service, "server": f.Server} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}
