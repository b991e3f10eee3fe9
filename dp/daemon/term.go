package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"samepath/ctl/api"
	"samepath/dp/header"
	"samepath/tcpproxy"
)

// The terminator's run-time control: its named TCP profiles (R-TCP-2),
// which one each side uses, and its counters, over the control API:
//
//	GET /v1/tcp/profiles   every profile, and each side's
//	PUT /v1/tcp/profiles   add or replace one profile (api.TCPProfile); a side
//	                       that uses it applies it to its new connections
//	PUT /v1/tcp/sides      make a side (mobile, server) use a profile
//	GET /v1/tcp/counters   tcpproxy.Counters (api.TCPCounters)
//
// A change applies to the connections a side accepts or makes afterwards;
// what it does to established ones is tcpproxy.Profile's doc.

// TermControl holds a gateway terminator's profiles. Its methods are safe
// from any goroutine.
type TermControl struct {
	t         *tcpproxy.Terminator
	frameSize int
	log       *slog.Logger

	mu       sync.Mutex
	profiles map[string]tcpproxy.Profile
	sides    [2]string // by tcpproxy.Side
}

// NewTermControl controls t, whose sides use the profiles t was built
// with; profiles are the others it may switch to (the built-in wireless
// and wired, and the config's). frameSize is the dataplane's frame size:
// a profile's MSS must leave room for the IP, TCP and Ethernet headers in
// one frame (0: no bound), which every profile is checked against.
func NewTermControl(t *tcpproxy.Terminator, profiles []tcpproxy.Profile, frameSize int, log *slog.Logger) (*TermControl, error) {
	if log == nil {
		log = slog.Default()
	}
	c := &TermControl{t: t, frameSize: frameSize, log: log, profiles: map[string]tcpproxy.Profile{}}
	for _, p := range profiles {
		c.profiles[p.Name] = p
	}
	for _, s := range []tcpproxy.Side{tcpproxy.Mobile, tcpproxy.Server} {
		p := t.Profile(s)
		c.profiles[p.Name] = p
		c.sides[s] = p.Name
	}
	for _, p := range c.profiles {
		if _, err := c.check(APITCPProfile(p)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// errNoTerm answers the /v1/tcp endpoints of a gateway without a terminator.
var errNoTerm = errors.New("tcp termination is off on this gateway (no gw.terminate section)")

// errNotFound marks an unknown profile name.
var errNotFound = errors.New("not found")

// Profiles lists every profile by name and the one each side uses.
func (c *TermControl) Profiles() api.TCPProfiles {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := api.TCPProfiles{Mobile: c.sides[tcpproxy.Mobile], Server: c.sides[tcpproxy.Server], Profiles: []api.TCPProfile{}}
	for _, p := range c.profiles {
		ap := APITCPProfile(p)
		for s, name := range c.sides {
			if name == p.Name {
				ap.Sides = append(ap.Sides, tcpproxy.Side(s).String())
			}
		}
		out.Profiles = append(out.Profiles, ap)
	}
	sort.Slice(out.Profiles, func(i, j int) bool { return out.Profiles[i].Name < out.Profiles[j].Name })
	return out
}

// check is TCPProfileOf with the frame-size bound.
func (c *TermControl) check(ap api.TCPProfile) (tcpproxy.Profile, error) {
	p, err := TCPProfileOf(ap)
	if err != nil {
		return p, err
	}
	if max := c.frameSize - header.EthernetLen - int(p.MTU()-uint32(p.MSS)); c.frameSize > 0 && int(p.MSS) > max {
		return p, fmt.Errorf("tcp profile %q: mss %d: want at most %d (a segment and its headers fit one %d-byte frame, xsk.frame_size)",
			p.Name, p.MSS, max, c.frameSize)
	}
	return p, nil
}

// Put adds or replaces a profile; the sides that use it apply it now.
func (c *TermControl) Put(ap api.TCPProfile) error {
	p, err := c.check(ap)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var used []string
	for s, name := range c.sides {
		if name == p.Name {
			if err := c.t.SetProfile(tcpproxy.Side(s), p); err != nil {
				return fmt.Errorf("%s side: %w", tcpproxy.Side(s), err)
			}
			used = append(used, tcpproxy.Side(s).String())
		}
	}
	c.profiles[p.Name] = p
	c.log.Info("tcp profile changed", "profile", p.Name, "sides", used)
	return nil
}

// Use makes side use the profile called name for its new connections.
func (c *TermControl) Use(side, name string) error {
	var s tcpproxy.Side
	switch side {
	case api.SideMobile:
		s = tcpproxy.Mobile
	case api.SideServer:
		s = tcpproxy.Server
	default:
		return fmt.Errorf("side %q: want mobile or server", side)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.profiles[name]
	if !ok {
		return fmt.Errorf("profile %q: %w", name, errNotFound)
	}
	if err := c.t.SetProfile(s, p); err != nil {
		return err
	}
	if c.sides[s] != name {
		c.log.Info("tcp profile of a side changed", "side", side, "profile", name, "was", c.sides[s])
	}
	c.sides[s] = name
	return nil
}

// Counters are the terminator's counters in the API's form.
func (c *TermControl) Counters() api.TCPCounters { return APITCPCounters(c.t.Counters()) }

// TermRoutes adds the /v1/tcp endpoints for c (nil: a gateway without a
// terminator, whose endpoints say so).
func TermRoutes(v1 *http.ServeMux, c *TermControl) {
	off := func(w http.ResponseWriter, _ *http.Request) { fail(w, http.StatusNotFound, errNoTerm) }
	if c == nil {
		for _, r := range []string{"GET /v1/tcp/profiles", "PUT /v1/tcp/profiles", "PUT /v1/tcp/sides", "GET /v1/tcp/counters"} {
			v1.HandleFunc(r, off)
		}
		return
	}
	v1.HandleFunc("GET /v1/tcp/profiles", func(w http.ResponseWriter, _ *http.Request) { reply(w, c.Profiles()) })
	v1.HandleFunc("PUT /v1/tcp/profiles", func(w http.ResponseWriter, r *http.Request) {
		var p api.TCPProfile
		if !decode(w, r, &p, "name") {
			return
		}
		if err := c.Put(p); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		reply(w, api.Ack{OK: true})
	})
	v1.HandleFunc("PUT /v1/tcp/sides", func(w http.ResponseWriter, r *http.Request) {
		var s api.TCPSide
		if !decode(w, r, &s, "side", "profile") {
			return
		}
		if err := c.Use(s.Side, s.Profile); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, errNotFound) {
				code = http.StatusNotFound
			}
			fail(w, code, err)
			return
		}
		reply(w, api.Ack{OK: true})
	})
	v1.HandleFunc("GET /v1/tcp/counters", func(w http.ResponseWriter, _ *http.Request) { reply(w, c.Counters()) })
}

// APITCPProfile is p in the API's form.
func APITCPProfile(p tcpproxy.Profile) api.TCPProfile {
	return api.TCPProfile{
		Name: p.Name, MSS: p.MSS,
		RecvBufMin: p.RecvBuf.Min, RecvBufDefault: p.RecvBuf.Default, RecvBufMax: p.RecvBuf.Max,
		SendBufMin: p.SendBuf.Min, SendBufDefault: p.SendBuf.Default, SendBufMax: p.SendBuf.Max,
		ModerateRecvBuf: p.ModerateRecvBuf, Congestion: p.Congestion, SACK: p.SACK, RACK: p.RACK, Nagle: p.Nagle,
		Keepalive: p.Keepalive.Enabled, KeepaliveIdle: p.Keepalive.Idle.String(), KeepaliveInterval: p.Keepalive.Interval.String(),
		KeepaliveCount: p.Keepalive.Count,
		MinRTO:         p.MinRTO.String(), MaxRTO: p.MaxRTO.String(), MaxRetries: p.MaxRetries, SynRetries: p.SynRetries,
		TimeWait: p.TimeWait.String(), FinWait2: p.FinWait2.String(), TimeWaitReuse: p.TimeWaitReuse,
	}
}

// TCPProfileOf is ap as a tcpproxy.Profile, validated; errors name the key.
func TCPProfileOf(ap api.TCPProfile) (tcpproxy.Profile, error) {
	p := tcpproxy.Profile{
		Name: ap.Name, MSS: ap.MSS,
		RecvBuf:         tcpproxy.BufRange{Min: ap.RecvBufMin, Default: ap.RecvBufDefault, Max: ap.RecvBufMax},
		SendBuf:         tcpproxy.BufRange{Min: ap.SendBufMin, Default: ap.SendBufDefault, Max: ap.SendBufMax},
		ModerateRecvBuf: ap.ModerateRecvBuf, Congestion: ap.Congestion, SACK: ap.SACK, RACK: ap.RACK, Nagle: ap.Nagle,
		Keepalive:  tcpproxy.Keepalive{Enabled: ap.Keepalive, Count: ap.KeepaliveCount},
		MaxRetries: ap.MaxRetries, SynRetries: ap.SynRetries, TimeWaitReuse: ap.TimeWaitReuse,
	}
	for _, d := range []struct {
		key string
		v   string
		dst *time.Duration
	}{
		{"keepalive_idle", ap.KeepaliveIdle, &p.Keepalive.Idle}, {"keepalive_interval", ap.KeepaliveInterval, &p.Keepalive.Interval},
		{"min_rto", ap.MinRTO, &p.MinRTO}, {"max_rto", ap.MaxRTO, &p.MaxRTO},
		{"time_wait", ap.TimeWait, &p.TimeWait}, {"fin_wait2", ap.FinWait2, &p.FinWait2},
	} {
		if d.v == "" && (d.key == "keepalive_idle" || d.key == "keepalive_interval") && !ap.Keepalive {
			continue // not used without keepalive
		}
		v, err := time.ParseDuration(d.v)
		if err != nil {
			return p, fmt.Errorf("tcp profile %q: %s %q: want a duration such as 200ms: %w", ap.Name, d.key, d.v, err)
		}
		*d.dst = v
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("tcp %w", err)
	}
	return p, nil
}

// TermProfiles resolves gw.terminate's profiles: the built-in ones, then
// the config's (which may replace a built-in one of the same name), and
// the names each side uses (default wireless and wired).
func (t *Terminate) TermProfiles() (all []tcpproxy.Profile, mobile, server tcpproxy.Profile, err error) {
	byName := map[string]tcpproxy.Profile{}
	var order []string
	for _, p := range tcpproxy.Builtin() {
		byName[p.Name] = p
		order = append(order, p.Name)
	}
	seen := map[string]bool{}
	for i, ap := range t.Profiles {
		p, err := TCPProfileOf(ap)
		if err != nil {
			return nil, mobile, server, fmt.Errorf("config: gw.terminate.profiles[%d]: %w", i, err)
		}
		if seen[p.Name] {
			return nil, mobile, server, fmt.Errorf("config: gw.terminate.profiles[%d]: name %q: given twice", i, p.Name)
		}
		seen[p.Name] = true
		if _, ok := byName[p.Name]; !ok {
			order = append(order, p.Name)
		}
		byName[p.Name] = p
	}
	for _, n := range order {
		all = append(all, byName[n])
	}
	pick := func(key, name, def string) (tcpproxy.Profile, error) {
		if name == "" {
			name = def
		}
		p, ok := byName[name]
		if !ok {
			return p, fmt.Errorf("config: gw.terminate.%s %q: no such profile (want one of %v)", key, name, order)
		}
		return p, nil
	}
	if mobile, err = pick("mobile_profile", t.MobileProfile, "wireless"); err != nil {
		return nil, mobile, server, err
	}
	if server, err = pick("server_profile", t.ServerProfile, "wired"); err != nil {
		return nil, mobile, server, err
	}
	return all, mobile, server, nil
}

// APITCPCounters is c in the API's form, every name present.
func APITCPCounters(c tcpproxy.Counters) api.TCPCounters {
	out := api.TCPCounters{Conns: map[string]uint64{}, Active: c.Active,
		Bytes: api.TCPBytes{MobileRx: c.Bytes.MobileRx, MobileTx: c.Bytes.MobileTx, ServerRx: c.Bytes.ServerRx, ServerTx: c.Bytes.ServerTx},
		Link:  map[string]map[string]uint64{}, Stack: map[string]map[string]uint64{}}
	for i := tcpproxy.Counter(0); i < tcpproxy.NumCounters; i++ {
		out.Conns[i.String()] = c.Conn[i]
	}
	for _, s := range []tcpproxy.Side{tcpproxy.Mobile, tcpproxy.Server} {
		out.Link[s.String()] = linkCounters(c.Link[s])
		out.Stack[s.String()] = stackCounters(c.Stack[s])
	}
	return out
}

func linkCounters(l tcpproxy.LinkCounters) map[string]uint64 {
	return map[string]uint64{
		"in_packets": l.InPackets, "in_bytes": l.InBytes, "in_full": l.InFull, "in_malformed": l.InMalformed, "in_closed": l.InClosed,
		"delivered": l.Delivered, "out_packets": l.OutPackets, "out_full": l.OutFull, "out_closed": l.OutClosed,
		"out_too_big": l.OutTooBig, "out_malformed": l.OutMalformed, "read_packets": l.ReadPackets, "read_bytes": l.ReadBytes,
		"gro_merged": l.GROMerged, "gso_packets": l.GSOPackets, "gso_frames": l.GSOFrames,
	}
}

func stackCounters(s tcpproxy.StackCounters) map[string]uint64 {
	return map[string]uint64{
		"ip_malformed": s.IPMalformed, "ip_invalid_dst": s.IPInvalidDst, "l4_malformed": s.L4Malformed,
		"tcp_checksum_errors": s.TCPChecksumErrors, "tcp_invalid_segments": s.TCPInvalidSegments,
		"tcp_forward_in_flight_drop": s.TCPForwardInFlight, "tcp_segment_send_errors": s.TCPSegmentSendErrors,
		"tcp_resets_sent": s.TCPResetsSent, "tcp_resets_received": s.TCPResetsReceived,
		"tcp_retransmits": s.TCPRetransmits,
	}
}

// linkDrops are the link counters that count packets lost at the link
// endpoint (in_full is not one: Inject leaves them with the gateway,
// which drops them as term_full).
var linkDrops = []string{"in_malformed", "in_closed", "out_full", "out_closed", "out_too_big", "out_malformed"}

// termCollector exports the terminator's counters at scrape time, every
// series from the start.
type termCollector struct {
	c                                         *TermControl
	conns, active, bytes, drops, inFull, pkts *prometheus.Desc
	stack, endpoints                          *prometheus.Desc
	offload                                   *prometheus.Desc
}

func newTermCollector(c *TermControl) *termCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("samepath_tcp_"+name, help, labels, nil)
	}
	return &termCollector{c: c,
		conns: d("connections_total", "Terminated connections' events by name: syn (SYNs admitted), syn_in_flight_drop (SYNs dropped at max in flight), "+
			"refused_admit, refused_gateway_limit and refused_session_limit (connection limits per gateway and per subscriber session: RST), "+
			"dial_failed, spliced, and the ends by cause (end_fin, end_mobile_reset, end_server_reset, end_idle, end_session, end_close).", "event"),
		active: d("active_connections", "Terminated connections admitted and not yet ended."),
		bytes:  d("spliced_bytes_total", "Payload bytes the terminator read from (rx) and wrote to (tx) each side.", "side", "direction"),
		drops:  d("link_drops_total", "Packets the terminator's link endpoint dropped, per side and reason.", "side", "reason"),
		inFull: d("link_in_full_total", "Packets the link endpoint refused for a full inbound queue, per side (backpressure: left with the gateway, which drops them as term_full).", "side"),
		pkts:   d("link_packets_total", "Packets through the link endpoint, per side: in (from the gateway), delivered (to netstack), out (from netstack), read (to the gateway).", "side", "dir"),
		stack:  d("stack_events_total", "Netstack's own counts per side: malformed and refused packets, checksum errors, forward_in_flight drops, send errors, resets.", "side", "counter"),
		offload: d("link_offload_total", "The link endpoint's own segmentation offload per side: gso_packets (netstack's large segments cut into several frames), "+
			"gso_frames (the frames they became) and gro_merged (inbound segments merged into the one before them before netstack saw them).", "side", "counter"),
		endpoints: d("stack_endpoints", "TCP endpoints registered in each side's netstack now (including TIME-WAIT).", "side"),
	}
}

func (tc *termCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tc.conns, tc.active, tc.bytes, tc.drops, tc.inFull, tc.pkts, tc.stack, tc.endpoints, tc.offload} {
		ch <- d
	}
}

func (tc *termCollector) Collect(ch chan<- prometheus.Metric) {
	c := tc.c.t.Counters()
	cv := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	for i := tcpproxy.Counter(0); i < tcpproxy.NumCounters; i++ {
		cv(tc.conns, c.Conn[i], i.String())
	}
	ch <- prometheus.MustNewConstMetric(tc.active, prometheus.GaugeValue, float64(c.Active))
	cv(tc.bytes, c.Bytes.MobileRx, "mobile", "rx")
	cv(tc.bytes, c.Bytes.MobileTx, "mobile", "tx")
	cv(tc.bytes, c.Bytes.ServerRx, "server", "rx")
	cv(tc.bytes, c.Bytes.ServerTx, "server", "tx")
	for _, s := range []tcpproxy.Side{tcpproxy.Mobile, tcpproxy.Server} {
		side := s.String()
		l := linkCounters(c.Link[s])
		for _, r := range linkDrops {
			cv(tc.drops, l[r], side, r)
		}
		cv(tc.inFull, l["in_full"], side)
		for dir, k := range map[string]string{"in": "in_packets", "delivered": "delivered", "out": "out_packets", "read": "read_packets"} {
			cv(tc.pkts, l[k], side, dir)
		}
		for _, k := range []string{"gso_packets", "gso_frames", "gro_merged"} {
			cv(tc.offload, l[k], side, k)
		}
		for k, v := range stackCounters(c.Stack[s]) {
			cv(tc.stack, v, side, k)
		}
		ch <- prometheus.MustNewConstMetric(tc.endpoints, prometheus.GaugeValue, float64(c.Stack[s].TCPEndpoints), side)
	}
}
