package nat

import (
	"fmt"
	"time"
)

// TCPState is the gateway's view of a TCP connection, enough to choose
// an idle timeout (RFC 5382 REQ-5 and RFC 7857 section 2) and to tell
// a close from an idle expiry. It is not a full TCP state machine: the
// gateway checks no sequence numbers.
type TCPState uint8

const (
	TCPNone        TCPState = iota // not TCP, or TCP before any SYN was seen
	TCPSynSent                     // SYN seen up (from the mobile) only
	TCPSynRecv                     // SYN seen both ways (SYN-ACK from the server)
	TCPEstablished                 // handshake completed (ACK after the SYN-ACK)
	TCPFinUp                       // FIN seen up only (the mobile closed its side)
	TCPFinDown                     // FIN seen down only (the server closed its side)
	TCPTimeWait                    // FIN seen both ways: lingers for the last ACK
	TCPClosed                      // RST seen
)

var tcpStateNames = [...]string{"none", "syn-sent", "syn-recv", "established", "fin-up", "fin-down", "time-wait", "closed"}

func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) {
		return tcpStateNames[s]
	}
	return fmt.Sprintf("tcpstate(%d)", uint8(s))
}

// TCP header flag bits, as in byte 13 of the TCP header.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagACK uint8 = 0x10
)

// Next returns the state after a segment with flags in direction up
// (true: mobile -> server). The rules:
//
//   - RST, any state: Closed. RFC 7857 section 2.2: the binding stays
//     for TCPClosed so that a packet proving the connection alive
//     revives it (next rule), then goes.
//   - Closed, any segment but RST or SYN: Established (the RST did not
//     end the connection; RFC 6146's TRANS state does the same).
//   - SYN up in None, Closed or TimeWait: SynSent (a new connection on
//     the same 5-tuple). SYN down in SynSent: SynRecv (SYN-ACK or a
//     simultaneous open). Other SYNs change nothing.
//   - ACK without SYN in SynRecv: Established.
//   - FIN: FinUp or FinDown by direction; a FIN from the other side of
//     a half-closed connection: TimeWait. A retransmitted FIN from the
//     same side changes nothing.
func (s TCPState) Next(up bool, flags uint8) TCPState {
	switch {
	case flags&FlagRST != 0:
		return TCPClosed
	case flags&FlagSYN != 0:
		switch {
		case up && (s == TCPNone || s == TCPClosed || s == TCPTimeWait):
			return TCPSynSent
		case !up && s == TCPSynSent:
			return TCPSynRecv
		}
		return s
	case flags&FlagFIN != 0:
		switch s {
		case TCPFinUp:
			if !up {
				return TCPTimeWait
			}
			return s
		case TCPFinDown:
			if up {
				return TCPTimeWait
			}
			return s
		case TCPTimeWait:
			return s
		}
		if up {
			return TCPFinUp
		}
		return TCPFinDown
	case s == TCPClosed:
		return TCPEstablished
	case s == TCPSynRecv && flags&FlagACK != 0:
		return TCPEstablished
	}
	return s
}

// Timeouts are the idle timeouts per protocol and TCP state: a binding
// with no packet in either direction for this long is removed by
// Expire. Both directions refresh (RFC 4787 REQ-6 requires outbound
// refresh and allows inbound; inbound is safe here because down packets
// are filtered by the server's address and port).
type Timeouts struct {
	// UDP: RFC 4787 REQ-5: MUST NOT be less than 2 minutes.
	UDP time.Duration
	// ICMP echo (query) bindings: RFC 5508 REQ-1: MUST NOT be less than
	// 60 s (and 60 s is the recommended default).
	ICMP time.Duration
	// TCPEstablished: RFC 5382 REQ-5: MUST NOT be less than 2 h 4 min.
	TCPEstablished time.Duration
	// TCPTransitory covers partially open and half-closed connections
	// (None, SynSent, SynRecv, FinUp, FinDown): RFC 5382 REQ-5: MUST NOT
	// be less than 4 minutes.
	TCPTransitory time.Duration
	// TCPTimeWait is how long a binding lingers after FINs were seen
	// both ways, so that the last ACK and retransmitted FINs still pass.
	// RFC 6146 section 3.5.2.2 uses 4 minutes (2 MSL); the key port
	// then rests a further PortReuseDelay before reuse.
	TCPTimeWait time.Duration
	// TCPClosed is how long a binding lingers after an RST: RFC 7857
	// section 2.2: SHOULD wait 4 minutes.
	TCPClosed time.Duration
}

// DefaultTimeouts returns the RFC values above.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		UDP:            2 * time.Minute,
		ICMP:           60 * time.Second,
		TCPEstablished: 2*time.Hour + 4*time.Minute,
		TCPTransitory:  4 * time.Minute,
		TCPTimeWait:    4 * time.Minute,
		TCPClosed:      4 * time.Minute,
	}
}

// Validate checks that every timeout is positive. Values below the RFC
// floors are allowed (tests, labs, port-starved sites) but are the
// operator's choice.
func (t Timeouts) Validate() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"udp", t.UDP}, {"icmp", t.ICMP}, {"tcp established", t.TCPEstablished},
		{"tcp transitory", t.TCPTransitory}, {"tcp time-wait", t.TCPTimeWait}, {"tcp closed", t.TCPClosed},
	} {
		if f.d <= 0 {
			return fmt.Errorf("timeouts: %s: %v is not positive", f.name, f.d)
		}
	}
	return nil
}

// timeoutNS is Timeouts in nanoseconds, indexed for the sweep.
type timeoutNS struct {
	udp, icmp int64
	tcp       [8]int64 // by TCPState
}

func (t Timeouts) ns() timeoutNS {
	x := timeoutNS{udp: int64(t.UDP), icmp: int64(t.ICMP)}
	for s := range x.tcp {
		x.tcp[s] = int64(t.TCPTransitory)
	}
	x.tcp[TCPEstablished] = int64(t.TCPEstablished)
	x.tcp[TCPTimeWait] = int64(t.TCPTimeWait)
	x.tcp[TCPClosed] = int64(t.TCPClosed)
	return x
}

// of returns the idle timeout of b.
func (x *timeoutNS) of(b *Binding) int64 {
	switch b.Flow.Proto {
	case ProtoTCP:
		return x.tcp[b.State&7]
	case ProtoUDP:
		return x.udp
	}
	return x.icmp
}

// Cause says why a binding ended (accounting, metrics).
type Cause uint8

const (
	IdleTimeout Cause = iota // no packet for the protocol's/state's timeout
	TCPClose                 // FIN seen both ways, then the time-wait linger passed
	TCPReset                 // RST seen, then the closed linger passed
	SessionEnd               // the user session ended (R-GW-7)
	Released                 // released by the user session type (R-GW-6: packet or connection unit)
	Admin                    // removed by an operator through the control API
	Shutdown                 // the gateway stopped with the flow open (DeleteAll)
	NumCauses
)

var causeNames = [...]string{"idle-timeout", "tcp-close", "tcp-reset", "session-end", "released", "admin", "shutdown"}

func (c Cause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// expiryCause is the cause of an idle expiry of b.
func expiryCause(b *Binding) Cause {
	if b.Flow.Proto == ProtoTCP {
		switch b.State {
		case TCPTimeWait:
			return TCPClose
		case TCPClosed:
			return TCPReset
		}
	}
	return IdleTimeout
}

// Expire is the incremental idle sweep, called by the owner once per
// poll round with the round's clock. It checks at most budget bindings,
// continuing the pass over the live list where the last call stopped,
// and stops early at the end of a pass (the next call starts the next
// pass), so the owner's work per round is bounded however large the
// table is and a small table is not swept twice in one call. A pass
// takes ceil(Len/budget)+1 calls at most, and every record is
// eventually reclaimed (a binding moved by a removal may wait one extra
// pass, never more than its position in the list).
//
// For each visited binding that has been idle for its timeout, onEnd (if
// not nil) sees it with its final counters (the accounting hook), then
// it is removed and its port starts the reuse delay; onEnd must not
// modify the table. Visited bindings that are kept and saw packets since
// they were last published are republished to Snapshot readers, at most
// once a second each. Expire returns how many it removed.
//
// Zero allocations. This is the approach of Linux conntrack's GC worker
// (a budgeted scan) rather than a timer wheel, which would cost work on
// every packet to re-file the binding.
func (t *PortTable) Expire(now int64, budget int, onEnd func(b *Binding, cause Cause)) int {
	now = t.tick(now)
	tick := pubTickOf(now)
	removed := 0
	for range budget {
		if t.cursor >= len(t.live) {
			t.cursor = 0 // the pass is over: the next call starts the next one
			break
		}
		id := t.live[t.cursor]
		s := &t.slots[id]
		b := &s.b
		if now-b.LastSeen >= t.to.of(b) {
			c := expiryCause(b)
			if onEnd != nil {
				onEnd(b, c)
			}
			// The last binding in the list moves into the cursor's
			// position: do not advance, so it is visited next.
			t.remove(id, c)
			removed++
			continue
		}
		if s.pubTick != tick && (uint32(b.UpPackets+b.DownPackets) != s.pubMark || b.State != s.pubState) {
			t.publishMutable(id)
		}
		t.cursor++
	}
	return removed
}
