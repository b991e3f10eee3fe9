package api

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
}

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
	// Seq orders events of one session; a gateway ignores an event older
	// than the last it applied, so retries are idempotent.
	Seq uint64 `json:"seq"`
}

// Ack answers a change.
type Ack struct {
	OK bool `json:"ok"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}
