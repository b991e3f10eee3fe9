package tcpproxy

import "fmt"

// Counter names one terminator counter. The connection-end reasons are
// counters too: Conn.End returns one.
type Counter int

const (
	// CtrSYN counts SYNs handed to Admit.
	CtrSYN Counter = iota
	// CtrSYNInFlight counts SYNs dropped because MaxInFlight connections
	// were already being admitted, dialled or handshaken (the mobile
	// retransmits its SYN).
	CtrSYNInFlight
	// CtrSYNClosed counts SYNs dropped because the terminator is closing.
	CtrSYNClosed
	// CtrRefusedAdmit counts SYNs Admit refused: RST to the mobile.
	CtrRefusedAdmit
	// CtrRefusedGatewayLimit counts SYNs refused at MaxConns: RST.
	CtrRefusedGatewayLimit
	// CtrRefusedSessionLimit counts SYNs refused at MaxConnsPerSession: RST.
	CtrRefusedSessionLimit
	// CtrRefusedClosed counts SYNs refused because the terminator closed
	// while they were admitted: RST.
	CtrRefusedClosed
	// CtrDialFailed counts server connects that failed, timed out or were
	// cancelled: RST to the mobile.
	CtrDialFailed
	// CtrMobileHandshakeFailed counts mobiles that did not complete the
	// handshake after the server connection was made: RST to the server.
	CtrMobileHandshakeFailed
	// CtrSpliced counts connections spliced (both handshakes done).
	CtrSpliced
	// CtrEndFIN counts spliced connections closed by FIN both ways.
	CtrEndFIN
	// CtrEndMobileReset counts spliced connections the mobile side reset
	// or timed out (retransmissions, keepalive): RST to the server.
	CtrEndMobileReset
	// CtrEndServerReset counts spliced connections the server side reset
	// or timed out: RST to the mobile.
	CtrEndServerReset
	// CtrEndIdle counts connections idle past IdleTimeout: RST both ways.
	CtrEndIdle
	// CtrEndSession counts connections ended by CloseSession: RST both ways.
	CtrEndSession
	// CtrEndClose counts connections ended by Conn.Reset or
	// Terminator.Close: RST both ways.
	CtrEndClose

	NumCounters
)

var counterNames = [NumCounters]string{
	CtrSYN:                   "syn",
	CtrSYNInFlight:           "syn_in_flight_drop",
	CtrSYNClosed:             "syn_closed_drop",
	CtrRefusedAdmit:          "refused_admit",
	CtrRefusedGatewayLimit:   "refused_gateway_limit",
	CtrRefusedSessionLimit:   "refused_session_limit",
	CtrRefusedClosed:         "refused_closed",
	CtrDialFailed:            "dial_failed",
	CtrMobileHandshakeFailed: "mobile_handshake_failed",
	CtrSpliced:               "spliced",
	CtrEndFIN:                "end_fin",
	CtrEndMobileReset:        "end_mobile_reset",
	CtrEndServerReset:        "end_server_reset",
	CtrEndIdle:               "end_idle",
	CtrEndSession:            "end_session",
	CtrEndClose:              "end_close",
}

// String is the counter's metric name.
func (c Counter) String() string {
	if c < 0 || c >= NumCounters {
		return fmt.Sprintf("counter(%d)", int(c))
	}
	return counterNames[c]
}

// StackCounters are netstack's own counts for one side, the ones that say
// packets were lost or refused inside it.
type StackCounters struct {
	IPMalformed          uint64 // IP packets netstack dropped as malformed
	IPInvalidDst         uint64 // IP packets to an address the side does not take
	L4Malformed          uint64 // segments for no connection dropped as malformed or for a bad checksum (a bad SYN lands here)
	TCPChecksumErrors    uint64 // segments of a connection dropped for a bad checksum
	TCPInvalidSegments   uint64 // TCP segments dropped as malformed
	TCPForwardInFlight   uint64 // SYNs netstack's forwarder dropped at its max in flight (stays 0: the terminator stops them first, in CtrSYNInFlight)
	TCPSegmentSendErrors uint64 // segments netstack failed to send (link refused them)
	TCPResetsSent        uint64
	TCPResetsReceived    uint64
	TCPEndpoints         uint64 // TCP endpoints registered now (including TIME-WAIT)
	// TCPRetransmits counts segments sent again (timeout, fast
	// retransmit, SACK recovery): on the mobile side, frames toward the
	// mobiles whose payload the connections' byte counts (ConnStats)
	// hold once. Zero-window probes (one old byte) are not counted.
	TCPRetransmits uint64
}

// Counters is a snapshot of a terminator's counters.
type Counters struct {
	// Conn is indexed by Counter.
	Conn [NumCounters]uint64
	// Active is the number of connections admitted and not yet ended.
	Active int
	// Bytes are the payload bytes spliced by every connection, ended
	// and live (the sum of their Conn.Stats).
	Bytes ConnStats
	// Link and Stack are indexed by Side.
	Link  [2]LinkCounters
	Stack [2]StackCounters
}

func (s *ConnStats) add(o ConnStats) {
	s.MobileRx += o.MobileRx
	s.MobileTx += o.MobileTx
	s.ServerRx += o.ServerRx
	s.ServerTx += o.ServerTx
}
