package dp

import "samepath/ring"

// Reason says why a packet was dropped. It indexes the per-queue drop
// counters; names come from reasonNames, the one table of drop reasons.
type Reason uint8

const (
	ReasonNone          Reason = iota // not dropped
	ReasonMalformed                   // headers failed to parse
	ReasonNotIP                       // EtherType the pipeline does not handle
	ReasonNoRoute                     // no T4 row holds the source address
	ReasonAllDown                     // T4 row found but every gateway is down
	ReasonTxFull                      // egress ring full
	ReasonTxError                     // egress port failed to send
	ReasonNoFrame                     // no free frame to copy into
	ReasonTooBig                      // frame larger than the egress frame size
	ReasonNoNextHop                   // down direction: next hop MAC unknown
	ReasonNoSession                   // gateway: source has no session (S124)
	ReasonPortExhausted               // gateway: no free NAT port key
	ReasonNoFlow                      // gateway: down packet matches no flow
	ReasonDenied                      // gateway: service not authorized
	ReasonUnsupported                 // protocol the pipeline does not handle
	ReasonNoServer                    // gateway: every actual server of the service is down
	ReasonFiltered                    // gateway: down packet not from its flow's server (RFC 4787 filtering)
	ReasonPanic                       // the pipeline panicked on the packet's batch (a bug; logged with the frames)
	ReasonXlat                        // gateway: IPv4/IPv6 translation refused the packet (its outcome is counted by dp/xlat)
	ReasonTermFull                    // gateway: the TCP terminator's link queue is full (backpressure; the sender retransmits)
	ReasonXlatFragFull                // gateway: no room to queue the further fragments of a packet translation split (dp/gw_xlat.go)
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonNone:          "none",
	ReasonMalformed:     "malformed",
	ReasonNotIP:         "not_ip",
	ReasonNoRoute:       "no_route",
	ReasonAllDown:       "all_gateways_down",
	ReasonTxFull:        "tx_full",
	ReasonTxError:       "tx_error",
	ReasonNoFrame:       "no_frame",
	ReasonTooBig:        "too_big",
	ReasonNoNextHop:     "no_next_hop",
	ReasonNoSession:     "no_session",
	ReasonPortExhausted: "port_exhausted",
	ReasonNoFlow:        "no_flow",
	ReasonDenied:        "denied",
	ReasonUnsupported:   "unsupported",
	ReasonNoServer:      "no_server",
	ReasonFiltered:      "filtered",
	ReasonPanic:         "panic",
	ReasonXlat:          "xlat",
	ReasonTermFull:      "term_full",
	ReasonXlatFragFull:  "xlat_frag_full",
}

// String is the reason's metric label.
func (r Reason) String() string {
	if r >= NumReasons {
		return "unknown"
	}
	return reasonNames[r]
}

// Reasons lists every drop reason except ReasonNone, in order.
func Reasons() []Reason {
	rs := make([]Reason, 0, NumReasons-1)
	for r := ReasonNone + 1; r < NumReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Packet is one frame in a batch with the pipeline's verdict on it. The
// pipeline may rewrite Data in place; to change the frame's length it
// writes into Room (the frame's buffer from Data's start to the end of the
// UMEM frame) and sets Desc.Len.
type Packet struct {
	Desc ring.Desc
	Data []byte
	Room []byte
	// Out is the index of the egress port in the worker's port list, or
	// -1 when the packet is dropped (Drop says why). A packet with both
	// was refused and its frame rewritten into the pipeline's answer
	// (a RST, an ICMP error): the refusal is counted and the answer sent.
	Out  int
	Drop Reason
}

// Consumed is the Out of a packet the pipeline took in: it copied what it
// needed (the gateway hands terminated TCP segments to its netstack), so
// the frame is released and counted as Counters.Consumed, not as a drop.
const Consumed = -2
