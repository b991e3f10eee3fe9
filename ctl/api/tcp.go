package api

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TCPProfile is one named TCP profile of the gateway's terminator
// (tcpproxy.Profile, R-TCP-2), as the gateway config
// (gw.terminate.profiles) and the API (/v1/tcp/profiles) write it.
// Durations are Go duration strings ("200ms", "2h"). The keys are the
// ones TCPProfile.Set takes and the errors name.
type TCPProfile struct {
	Name              string `json:"name" yaml:"name"`
	MSS               uint16 `json:"mss" yaml:"mss"`
	RecvBufMin        int    `json:"recv_buf_min" yaml:"recv_buf_min"`
	RecvBufDefault    int    `json:"recv_buf_default" yaml:"recv_buf_default"`
	RecvBufMax        int    `json:"recv_buf_max" yaml:"recv_buf_max"`
	SendBufMin        int    `json:"send_buf_min" yaml:"send_buf_min"`
	SendBufDefault    int    `json:"send_buf_default" yaml:"send_buf_default"`
	SendBufMax        int    `json:"send_buf_max" yaml:"send_buf_max"`
	ModerateRecvBuf   bool   `json:"moderate_recv_buf" yaml:"moderate_recv_buf"`
	Congestion        string `json:"congestion" yaml:"congestion"` // reno or cubic
	SACK              bool   `json:"sack" yaml:"sack"`
	RACK              bool   `json:"rack" yaml:"rack"`
	Nagle             bool   `json:"nagle" yaml:"nagle"`
	Keepalive         bool   `json:"keepalive" yaml:"keepalive"`
	KeepaliveIdle     string `json:"keepalive_idle" yaml:"keepalive_idle"`
	KeepaliveInterval string `json:"keepalive_interval" yaml:"keepalive_interval"`
	KeepaliveCount    int    `json:"keepalive_count" yaml:"keepalive_count"`
	MinRTO            string `json:"min_rto" yaml:"min_rto"`
	MaxRTO            string `json:"max_rto" yaml:"max_rto"`
	MaxRetries        uint32 `json:"max_retries" yaml:"max_retries"`
	SynRetries        uint8  `json:"syn_retries" yaml:"syn_retries"`
	TimeWait          string `json:"time_wait" yaml:"time_wait"`
	FinWait2          string `json:"fin_wait2" yaml:"fin_wait2"`
	TimeWaitReuse     bool   `json:"time_wait_reuse" yaml:"time_wait_reuse"`
	// Sides lists the sides (mobile, server) that use the profile now;
	// output only.
	Sides []string `json:"sides,omitempty" yaml:"-"`
}

// Terminator sides.
const (
	SideMobile = "mobile"
	SideServer = "server"
)

// TCPProfiles are the terminator's profiles and the one each side uses.
type TCPProfiles struct {
	Mobile   string       `json:"mobile"`
	Server   string       `json:"server"`
	Profiles []TCPProfile `json:"profiles"`
}

// TCPSide selects the profile a side applies to its new connections.
type TCPSide struct {
	Side    string `json:"side"` // mobile or server
	Profile string `json:"profile"`
}

// TCPProfileKeys are the keys of TCPProfile.Set, in the JSON order.
var TCPProfileKeys = []string{
	"mss", "recv_buf_min", "recv_buf_default", "recv_buf_max", "send_buf_min", "send_buf_default", "send_buf_max",
	"moderate_recv_buf", "congestion", "sack", "rack", "nagle", "keepalive", "keepalive_idle", "keepalive_interval",
	"keepalive_count", "min_rto", "max_rto", "max_retries", "syn_retries", "time_wait", "fin_wait2", "time_wait_reuse",
}

// Set changes one field of p by its key (TCPProfileKeys), parsing value
// for the field's type; an unknown key or a value of the wrong type is
// an error naming the key. The ranges are checked by the gateway.
func (p *TCPProfile) Set(key, value string) error {
	bad := func(want string, err error) error {
		return fmt.Errorf("tcp profile %q: %s %q: want %s: %w", p.Name, key, value, want, err)
	}
	uint := func(bits int) (uint64, error) {
		n, err := strconv.ParseUint(value, 10, bits)
		if err != nil {
			return 0, bad(fmt.Sprintf("a number of %d bits", bits), err)
		}
		return n, nil
	}
	integer := func(dst *int) error {
		n, err := strconv.Atoi(value)
		if err != nil {
			return bad("a number", err)
		}
		*dst = n
		return nil
	}
	boolean := func(dst *bool) error {
		b, err := strconv.ParseBool(value)
		if err != nil {
			return bad("true or false", err)
		}
		*dst = b
		return nil
	}
	duration := func(dst *string) error {
		if _, err := time.ParseDuration(value); err != nil {
			return bad("a duration such as 200ms", err)
		}
		*dst = value
		return nil
	}
	switch key {
	case "mss":
		n, err := uint(16)
		p.MSS = uint16(n)
		return err
	case "recv_buf_min":
		return integer(&p.RecvBufMin)
	case "recv_buf_default":
		return integer(&p.RecvBufDefault)
	case "recv_buf_max":
		return integer(&p.RecvBufMax)
	case "send_buf_min":
		return integer(&p.SendBufMin)
	case "send_buf_default":
		return integer(&p.SendBufDefault)
	case "send_buf_max":
		return integer(&p.SendBufMax)
	case "moderate_recv_buf":
		return boolean(&p.ModerateRecvBuf)
	case "congestion":
		if value != "reno" && value != "cubic" {
			return bad("reno or cubic", fmt.Errorf("unknown algorithm"))
		}
		p.Congestion = value
		return nil
	case "sack":
		return boolean(&p.SACK)
	case "rack":
		return boolean(&p.RACK)
	case "nagle":
		return boolean(&p.Nagle)
	case "keepalive":
		return boolean(&p.Keepalive)
	case "keepalive_idle":
		return duration(&p.KeepaliveIdle)
	case "keepalive_interval":
		return duration(&p.KeepaliveInterval)
	case "keepalive_count":
		return integer(&p.KeepaliveCount)
	case "min_rto":
		return duration(&p.MinRTO)
	case "max_rto":
		return duration(&p.MaxRTO)
	case "max_retries":
		n, err := uint(32)
		p.MaxRetries = uint32(n)
		return err
	case "syn_retries":
		n, err := uint(8)
		p.SynRetries = uint8(n)
		return err
	case "time_wait":
		return duration(&p.TimeWait)
	case "fin_wait2":
		return duration(&p.FinWait2)
	case "time_wait_reuse":
		return boolean(&p.TimeWaitReuse)
	}
	keys := append([]string(nil), TCPProfileKeys...)
	sort.Strings(keys)
	return fmt.Errorf("tcp profile %q: unknown key %q: want one of %s", p.Name, key, strings.Join(keys, ", "))
}

// TCPProfiles lists the terminator's profiles (GET /v1/tcp/profiles).
func (c *Client) TCPProfiles(ctx context.Context) (TCPProfiles, error) {
	var p TCPProfiles
	return p, c.Do(ctx, http.MethodGet, "/v1/tcp/profiles", nil, &p)
}

// PutTCPProfile adds or replaces a profile (PUT /v1/tcp/profiles); a
// side that uses it applies it to its new connections.
func (c *Client) PutTCPProfile(ctx context.Context, p TCPProfile) error {
	p.Sides = nil
	return c.Do(ctx, http.MethodPut, "/v1/tcp/profiles", p, nil)
}

// SetTCPSide makes a side use a profile (PUT /v1/tcp/sides).
func (c *Client) SetTCPSide(ctx context.Context, side, profile string) error {
	return c.Do(ctx, http.MethodPut, "/v1/tcp/sides", TCPSide{Side: side, Profile: profile}, nil)
}

// TCPCounters reads the terminator's counters (GET /v1/tcp/counters).
func (c *Client) TCPCounters(ctx context.Context) (TCPCounters, error) {
	var t TCPCounters
	return t, c.Do(ctx, http.MethodGet, "/v1/tcp/counters", nil, &t)
}

// TCPCounters are the terminator's counters (tcpproxy.Counters).
type TCPCounters struct {
	// Conns counts connection events by name (tcpproxy.Counter: syn,
	// syn_in_flight_drop, refused_gateway_limit, refused_session_limit,
	// spliced, end_fin, ...), every name present.
	Conns map[string]uint64 `json:"conns"`
	// Active is the connections admitted and not yet ended.
	Active int `json:"active"`
	// Bytes are the payload bytes spliced, per side and direction: what
	// the terminator read from (rx) and wrote to (tx) each side, over
	// ended and live connections.
	Bytes TCPBytes `json:"bytes"`
	// Link and Stack are per side (mobile, server): the link endpoint's
	// packet counts and drops (tcpproxy.LinkCounters), and netstack's own
	// loss counters (tcpproxy.StackCounters), by snake_case name.
	Link  map[string]map[string]uint64 `json:"link"`
	Stack map[string]map[string]uint64 `json:"stack"`
}

// TCPBytes are payload byte counts of the terminator's two sides.
type TCPBytes struct {
	MobileRx uint64 `json:"mobile_rx"`
	MobileTx uint64 `json:"mobile_tx"`
	ServerRx uint64 `json:"server_rx"`
	ServerTx uint64 `json:"server_tx"`
}
