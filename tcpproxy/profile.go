package tcpproxy

import (
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Congestion control algorithms netstack has (no BBR).
const (
	Reno  = "reno"
	Cubic = "cubic"
)

// BufRange is a socket buffer's minimum, initial and maximum size in bytes.
type BufRange struct {
	Min, Default, Max int
}

// Keepalive configures TCP keepalive probes.
type Keepalive struct {
	Enabled  bool
	Idle     time.Duration // idle time before the first probe
	Interval time.Duration // between probes
	Count    int           // unanswered probes before the connection is reset
}

// Profile is one side's TCP behaviour. Netstack takes most of it per stack,
// not per connection (see doc.go), so each side has its own stack and a
// profile applies to the connections that side makes or accepts after it is
// set.
//
// What a change (Terminator.SetProfile, samepathctl gw tcp-profile) does,
// read from this netstack's tcp package:
//   - New connections (those whose SYN arrives, or which the server side
//     starts, afterwards) take every field. A mobile SYN already being
//     admitted or dialled completes on the old forwarder: its receive
//     window is the old RecvBuf.Default.
//   - Established connections keep what their handshake fixed: MSS,
//     window scale, SACK, RACK, congestion control, min and max RTO,
//     retries, Nagle and keepalive (per endpoint, set at accept or dial).
//   - They do see, at once, RecvBuf.Max and SendBuf.Max (the ceilings of
//     buffer auto-tuning, read on each adjustment), TimeWait (read when a
//     connection enters TIME-WAIT) and FinWait2 (read when it closes).
//   - MSS is the NIC's MTU, and netstack sizes packets by the route's
//     current MTU: an established connection keeps its send MSS, so after
//     a lower MSS its full-sized segments leave as IP fragments
//     (netstack fragments to the new MTU; the gateway carries them and
//     the peer reassembles: dp's TestGWTerminateMSSLowered). Lower a
//     side's MSS when it is idle, or expect fragments until its
//     connections end (lost on a path that drops fragments); a higher
//     MSS only applies to new connections.
//
// Not in a profile, because netstack has no switch for them:
//   - timestamps: netstack offers them in every SYN it sends and echoes them
//     whenever the peer's SYN offers them;
//   - delayed ACK: netstack has no delayed-ACK timer; it acknowledges once per
//     batch of segments it processes (TCP_QUICKACK is stored but unused).
type Profile struct {
	Name string
	// MSS is the IPv4 MSS advertised in SYN and SYN-ACK. Netstack derives
	// it from the NIC MTU (route MTU - 20), so the side's NIC MTU is
	// MSS+40; an IPv6 connection therefore gets MSS-20. At least 1240, so
	// that the MTU stays at IPv6's minimum of 1280.
	MSS uint16
	// RecvBuf is the receive buffer. The window advertised is about half
	// of the free buffer; the window scale in SYN and SYN-ACK comes from
	// RecvBuf.Max (with ModerateRecvBuf) or RecvBuf.Default (without).
	RecvBuf BufRange
	// SendBuf is the send buffer: unacknowledged and unsent bytes.
	SendBuf BufRange
	// ModerateRecvBuf lets netstack grow the receive buffer from Default
	// towards Max as the connection's rate needs (like Linux's
	// tcp_moderate_rcvbuf).
	ModerateRecvBuf bool
	// Congestion is Reno or Cubic.
	Congestion string
	SACK       bool
	// RACK selects RACK-TLP loss detection (RFC 8985) instead of
	// duplicate-ACK counting alone.
	RACK bool
	// Nagle delays small writes while data is unacknowledged.
	Nagle     bool
	Keepalive Keepalive
	MinRTO    time.Duration
	MaxRTO    time.Duration
	// MaxRetries is how many retransmissions of a segment before the
	// connection is given up.
	MaxRetries uint32
	// SynRetries is how many SYN retransmissions before a connect fails.
	SynRetries uint8
	// TimeWait is how long a closed connection's tuple stays in TIME-WAIT.
	TimeWait time.Duration
	// FinWait2 is how long an orphaned connection waits in FIN-WAIT-2 for
	// the peer's FIN.
	FinWait2 time.Duration
	// TimeWaitReuse lets a new outgoing connection take a tuple still in
	// TIME-WAIT when that is safe (like Linux's tcp_tw_reuse).
	TimeWaitReuse bool
}

// BDP of the wireless default: 50 Mbit/s for 100 ms.
const wirelessBDP = 50_000_000 / 8 / 10

// Wireless is the default mobile-side profile: a high-latency, lossy radio
// link of up to 50 Mbit/s and 100 ms.
func Wireless() Profile {
	return Profile{
		Name: "wireless",
		// RAN tunnels (GTP-U, IPsec) leave about 1400 bytes of a 1500-byte
		// path for IP, so a 1460 MSS would fragment on the radio side.
		MSS: 1400,
		// 2x the BDP from the start: the window (about half the buffer)
		// then covers the whole BDP without waiting for auto-tuning,
		// which on a 100 ms path takes many round trips. Scale 5.
		RecvBuf: BufRange{Min: 4096, Default: 2 * wirelessBDP, Max: 2 * wirelessBDP},
		// Holds 2x the BDP of unacknowledged data, so a loss does not stall
		// the sender while it retransmits.
		SendBuf: BufRange{Min: 4096, Default: 2 * wirelessBDP, Max: 2 * wirelessBDP},
		// Buffers start at their maximum; auto-tuning keeps the window
		// scale computed from Max.
		ModerateRecvBuf: true,
		// Reno: netstack's cubic does worse on a radio link. Measured
		// with perf/tcpsplit (2026-12-01, 8 MiB, 3 runs each): at 40 ms
		// and 1% random loss cubic made 1.7-2.1 Mbit/s against Reno's
		// 3.1-3.5 (about Reno's Mathis bound; cubic stays below it), and
		// at 100 ms, 50 Mbit/s without loss its slow start overshot the
		// radio queue and recovery stalled in 2 of 3 runs (3-5 Mbit/s
		// against 25); Reno made 23-24 in every run.
		Congestion: Reno,
		// Radio loss comes in bursts: SACK repairs several holes per RTT.
		SACK: true,
		// RACK tells reordering (common with radio retransmission) from
		// loss by time, not by three duplicate ACKs.
		RACK: true,
		// The terminator forwards what it reads at once; Nagle would add an
		// RTT to small responses.
		Nagle: false,
		// Probes wake the radio and cost the phone battery; the
		// terminator's idle timeout reclaims dead connections instead.
		Keepalive: Keepalive{Enabled: false, Idle: 2 * time.Hour, Interval: 75 * time.Second, Count: 9},
		// Linux's floor: peers delay ACKs up to 200 ms, a lower floor
		// fires spurious retransmissions.
		MinRTO: 200 * time.Millisecond,
		// Linux's ceiling.
		MaxRTO: 120 * time.Second,
		// Linux's tcp_retries2: about 15 minutes of a dead radio before
		// giving up.
		MaxRetries: 15,
		// The mobile side only accepts; Linux's tcp_synack_retries.
		SynRetries: 5,
		// RFC 9293's 2 MSL, as on Linux.
		TimeWait: 60 * time.Second,
		// Linux's tcp_fin_timeout.
		FinWait2: 60 * time.Second,
		// The mobile side makes no outgoing connections.
		TimeWaitReuse: false,
	}
}

// Wired is the default server-side profile: a LAN or data-centre path,
// short RTT, little loss.
func Wired() Profile {
	return Profile{
		Name: "wired",
		// Ethernet's 1500-byte MTU.
		MSS: 1460,
		// Linux's tcp_rmem: a small start, auto-tuned up to 4 MiB (scale 7),
		// enough for 10 Gbit/s at 3 ms.
		RecvBuf: BufRange{Min: 4096, Default: 128 << 10, Max: 4 << 20},
		// A quarter MiB to start, auto-tuned up to 4 MiB.
		SendBuf: BufRange{Min: 4096, Default: 256 << 10, Max: 4 << 20},
		// Grow the receive buffer only for connections that need it: most
		// server responses are small.
		ModerateRecvBuf: true,
		// Linux's default.
		Congestion: Cubic,
		SACK:       true,
		RACK:       true,
		// Forward what arrives at once (see Wireless).
		Nagle: false,
		// Finds a dead server while the mobile waits for its response.
		Keepalive: Keepalive{Enabled: true, Idle: 60 * time.Second, Interval: 10 * time.Second, Count: 5},
		// See Wireless: servers delay ACKs too.
		MinRTO:     200 * time.Millisecond,
		MaxRTO:     120 * time.Second,
		MaxRetries: 15,
		// Linux's tcp_syn_retries; the terminator's dial timeout usually
		// ends a connect first.
		SynRetries: 6,
		TimeWait:   60 * time.Second,
		FinWait2:   60 * time.Second,
		// Many short connections to the same few servers from one gateway
		// address: reuse TIME-WAIT tuples when safe rather than run out of
		// ports.
		TimeWaitReuse: true,
	}
}

// Builtin returns the built-in profiles.
func Builtin() []Profile { return []Profile{Wireless(), Wired()} }

// Validate reports the first unusable field by name.
func (p Profile) Validate() error {
	bad := func(field string, v any) error {
		return fmt.Errorf("profile %q %s %v: %w", p.Name, field, v, ErrConfig)
	}
	switch {
	case p.Name == "":
		return bad("name", `""`)
	case p.MSS < 1240 || int(p.MSS) > 65535-40:
		return bad("mss", p.MSS)
	case p.RecvBuf.Min < tcp.MinBufferSize || p.RecvBuf.Default < p.RecvBuf.Min || p.RecvBuf.Max < p.RecvBuf.Default:
		return bad("recv_buf", p.RecvBuf)
	case p.SendBuf.Min < tcp.MinBufferSize || p.SendBuf.Default < p.SendBuf.Min || p.SendBuf.Max < p.SendBuf.Default:
		return bad("send_buf", p.SendBuf)
	case p.Congestion != Reno && p.Congestion != Cubic:
		return bad("congestion", p.Congestion)
	case p.Keepalive.Enabled && (p.Keepalive.Idle < time.Second || p.Keepalive.Interval < time.Second || p.Keepalive.Count < 1):
		return bad("keepalive", p.Keepalive)
	case p.MinRTO <= 0 || p.MaxRTO < p.MinRTO:
		return bad("min_rto/max_rto", [2]time.Duration{p.MinRTO, p.MaxRTO})
	case p.MaxRetries < 1:
		return bad("max_retries", p.MaxRetries)
	case p.SynRetries < 1:
		return bad("syn_retries", p.SynRetries)
	case p.TimeWait <= 0:
		return bad("time_wait", p.TimeWait)
	case p.FinWait2 <= 0:
		return bad("fin_wait2", p.FinWait2)
	}
	return nil
}

// MTU is the NIC MTU that makes netstack advertise p.MSS over IPv4.
func (p Profile) MTU() uint32 {
	return uint32(p.MSS) + header.IPv4MinimumSize + header.TCPMinimumSize
}

// WindowScale is the window scale netstack advertises under p.
func (p Profile) WindowScale() int {
	if p.ModerateRecvBuf {
		return tcp.FindWndScale(seqnum.Size(p.RecvBuf.Max))
	}
	return tcp.FindWndScale(seqnum.Size(p.RecvBuf.Default))
}

// applyStack sets every stack-wide TCP option of p on s. Each one is set,
// including those equal to netstack's default, so that no default is
// trusted.
func (p Profile) applyStack(s *stack.Stack) error {
	recovery := tcpip.TCPRecovery(0)
	if p.RACK {
		recovery = tcpip.TCPRACKLossDetection
	}
	timeWaitReuse := tcpip.TCPTimeWaitReuseDisabled
	if p.TimeWaitReuse {
		timeWaitReuse = tcpip.TCPTimeWaitReuseGlobal
	}
	sack := tcpip.TCPSACKEnabled(p.SACK)
	delay := tcpip.TCPDelayEnabled(p.Nagle)
	moderate := tcpip.TCPModerateReceiveBufferOption(p.ModerateRecvBuf)
	cc := tcpip.CongestionControlOption(p.Congestion)
	// Never: the forwarder must see every SYN, and cookies drop the
	// window scale and SACK of a SYN.
	cookies := tcpip.TCPAlwaysUseSynCookies(false)
	minRTO := tcpip.TCPMinRTOOption(p.MinRTO)
	maxRTO := tcpip.TCPMaxRTOOption(p.MaxRTO)
	retries := tcpip.TCPMaxRetriesOption(p.MaxRetries)
	synRetries := tcpip.TCPSynRetriesOption(p.SynRetries)
	timeWait := tcpip.TCPTimeWaitTimeoutOption(p.TimeWait)
	finWait2 := tcpip.TCPLingerTimeoutOption(p.FinWait2)
	opts := []struct {
		name string
		opt  tcpip.SettableTransportProtocolOption
	}{
		{"recv_buf", &tcpip.TCPReceiveBufferSizeRangeOption{Min: p.RecvBuf.Min, Default: p.RecvBuf.Default, Max: p.RecvBuf.Max}},
		{"send_buf", &tcpip.TCPSendBufferSizeRangeOption{Min: p.SendBuf.Min, Default: p.SendBuf.Default, Max: p.SendBuf.Max}},
		{"moderate_recv_buf", &moderate},
		{"congestion", &cc},
		{"sack", &sack},
		{"rack", &recovery},
		{"nagle", &delay},
		{"syn_cookies", &cookies},
		{"min_rto", &minRTO},
		{"max_rto", &maxRTO},
		{"max_retries", &retries},
		{"syn_retries", &synRetries},
		{"time_wait", &timeWait},
		{"fin_wait2", &finWait2},
		{"time_wait_reuse", &timeWaitReuse},
	}
	for _, o := range opts {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o.opt); err != nil {
			return fmt.Errorf("profile %q %s: %s: %w", p.Name, o.name, err, ErrConfig)
		}
	}
	return nil
}

// applyEndpoint sets p's per-connection options on ep: what netstack does
// not take from the stack for a new endpoint, or takes from its own
// package defaults instead.
func (p Profile) applyEndpoint(ep tcpip.Endpoint) error {
	ops := ep.SocketOptions()
	// Buffer sizes are not set here: a new endpoint takes both Defaults
	// from the stack (a forwarder's its receive buffer from the
	// forwarder, which the terminator creates with RecvBuf.Default), and
	// setting them per endpoint would switch their auto-tuning off, as
	// SO_RCVBUF and SO_SNDBUF do on Linux.
	//
	// Nagle per endpoint (the stack option is only the default).
	ops.SetDelayOption(p.Nagle)
	// Inert in this netstack (no delayed ACK), set so it says what we mean.
	ops.SetQuickAck(true)
	// Inert too (netstack stores TCP_WINDOW_CLAMP but sizes the window
	// from the buffer alone); its default, 1 MB, would read as a clamp
	// below RecvBuf.Max.
	if err := ep.SetSockOptInt(tcpip.TCPWindowClampOption, p.RecvBuf.Max); err != nil {
		return fmt.Errorf("profile %q window clamp: %s", p.Name, err)
	}
	ops.SetKeepAlive(p.Keepalive.Enabled)
	if p.Keepalive.Enabled {
		idle := tcpip.KeepaliveIdleOption(p.Keepalive.Idle)
		if err := ep.SetSockOpt(&idle); err != nil {
			return fmt.Errorf("profile %q keepalive idle: %s", p.Name, err)
		}
		intvl := tcpip.KeepaliveIntervalOption(p.Keepalive.Interval)
		if err := ep.SetSockOpt(&intvl); err != nil {
			return fmt.Errorf("profile %q keepalive interval: %s", p.Name, err)
		}
		if err := ep.SetSockOptInt(tcpip.KeepaliveCountOption, p.Keepalive.Count); err != nil {
			return fmt.Errorf("profile %q keepalive count: %s", p.Name, err)
		}
	}
	return nil
}
