package acct

import (
	"net/netip"
	"strconv"
	"unicode/utf8"
)

// Kind says whether a record closes a user session's flow or reports on
// one that is still open.
type Kind uint8

const (
	// Final is written once, when the flow ends (steps S77-S80).
	Final Kind = iota
	// Interim is written at a configured interval while the flow lives.
	// Its counters are cumulative since Start (like RADIUS Interim-Update),
	// End is the time of the report and Cause is CauseInterim.
	Interim
	// Checkpoint is a live flow's counters as the gateway saw them at
	// the end of a checkpoint sweep (cumulative, like Interim). The
	// writer keeps a flow's latest checkpoint in the producer's
	// checkpoint file, never in the log: it is not a usage record. After
	// a crash, Open turns the last checkpoint of each flow that has no
	// final record into its final record (CauseGatewayRestart).
	Checkpoint
	numKinds
)

var kindNames = [numKinds]string{"final", "interim", "checkpoint"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Cause is why a flow ended. The values 0..CauseShutdown are nat.Cause's
// (the gateway passes them through unchanged); CauseInterim marks interim
// (and checkpoint) records; CauseGatewayRestart marks the final record
// Open writes, from its last checkpoint, for a flow that a crash ended.
type Cause uint8

const (
	CauseIdleTimeout    Cause = iota // nat.IdleTimeout
	CauseTCPClose                    // nat.TCPClose
	CauseTCPReset                    // nat.TCPReset
	CauseSessionEnd                  // nat.SessionEnd
	CauseReleased                    // nat.Released
	CauseAdmin                       // nat.Admin
	CauseShutdown                    // nat.Shutdown
	CauseInterim                     // the flow is still open (Kind Interim)
	CauseGatewayRestart              // the gateway crashed with the flow open; written at restart
	NumCauses
)

var causeNames = [NumCauses]string{"idle-timeout", "tcp-close", "tcp-reset", "session-end", "released", "admin", "shutdown", "interim", "gateway-restart"}

func (c Cause) String() string {
	if c < NumCauses {
		return causeNames[c]
	}
	return "cause(" + strconv.Itoa(int(c)) + ")"
}

// Attribute kinds (FIG. 29's "accounting attribute information").
const (
	AttrNone uint8 = iota
	AttrHTTP       // "host/path" (or the path alone, see HTTPRequest)
	AttrSNI        // TLS server_name
)

// Field sizes. Longer values are truncated (at a UTF-8 boundary).
const (
	UserSize        = 32
	DeviceSize      = 32
	ServiceTypeSize = 16
	ServiceSize     = 32
	AttrSize        = 160
	// AcctSessionSize holds an Acct-Session-Id as NASes write them (RFC
	// 2866 allows 253 bytes; common ones are 8 to 40).
	AcctSessionSize = 64
)

// Record is one T10 accounting record: a user session's flow as the
// gateway saw it. It holds no pointers, so it is copied by value through
// the producer rings without allocation; strings are fixed arrays with a
// length.
//
// Byte counting: UpBytes/DownBytes count whole IP packets as the gateway
// forwards them (IP header, transport header and payload; no Ethernet
// header), up = mobile -> server. UpPayload/DownPayload, valid when
// HasPayload is set, count only TCP or UDP payload bytes (what an
// application such as curl sends or receives), including retransmitted
// segments.
type Record struct {
	Kind    Kind
	Cause   Cause
	Proto   uint8 // IP protocol number
	Session uint64

	User        [UserSize]byte
	Device      [DeviceSize]byte
	ServiceType [ServiceTypeSize]byte
	Service     [ServiceSize]byte
	UserLen     uint8
	DeviceLen   uint8
	ServiceLen  uint8
	// ServiceTypeLen is 0 when the representative address has no T9 row.
	ServiceTypeLen uint8

	// Rep is the address the mobile sent to (the representative address
	// of the service), Server the actual server chosen; both IPv4-mapped
	// for IPv4. All zero means unknown.
	Rep, Server         [16]byte
	RepPort, ServerPort uint16

	Attr     [AttrSize]byte
	AttrLen  uint8
	AttrKind uint8 // AttrNone, AttrHTTP, AttrSNI

	HasPayload bool
	Start, End int64 // unix nanoseconds

	UpPackets, UpBytes, DownPackets, DownBytes uint64
	UpPayload, DownPayload                     uint64

	// Boot and Seq name the flow, unique across restarts: Boot is the
	// producing gateway worker's random id, drawn when it starts, Seq
	// counts its flows from 1. All of a flow's records (interim,
	// checkpoint, final) carry the same pair; zero means unnamed (such a
	// record is never checkpointed). Slot is the flow's slot in its
	// producer's checkpoint file, the gateway's binding id: live at a
	// time, one flow per slot.
	Boot, Seq uint64
	Slot      uint32

	// AcctSession is the RADIUS Acct-Session-Id of the user session
	// (its latest Start: after a resume under a new id, that one), so
	// that billing joins the records to RADIUS accounting.
	AcctSession    [AcctSessionSize]byte
	AcctSessionLen uint8
}

// FlowID is the flow's name as the log writes it ("flow"):
// Boot in 16 hex digits, a dash, Seq in decimal; "" when unnamed.
func (r *Record) FlowID() string {
	if r.Boot == 0 {
		return ""
	}
	return string(appendFlowID(nil, r.Boot, r.Seq))
}

func appendFlowID(dst []byte, boot, seq uint64) []byte {
	for sh := 60; sh >= 0; sh -= 4 {
		dst = append(dst, hexDigits[boot>>uint(sh)&0xf])
	}
	dst = append(dst, '-')
	return strconv.AppendUint(dst, seq, 10)
}

// set copies s into dst, truncated at a UTF-8 boundary, and returns the
// length used.
func set(dst []byte, s string) uint8 {
	n := len(s)
	if n > len(dst) {
		n = len(dst)
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
	}
	return uint8(copy(dst, s[:n]))
}

func setBytes(dst, b []byte) uint8 {
	n := len(b)
	if n > len(dst) {
		n = len(dst)
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
	}
	return uint8(copy(dst, b[:n]))
}

// SetUser sets the subscriber's user id (T3).
func (r *Record) SetUser(s string) { r.UserLen = set(r.User[:], s) }

// SetDevice sets the mobile device id (T3).
func (r *Record) SetDevice(s string) { r.DeviceLen = set(r.Device[:], s) }

// SetAcctSession sets the session's RADIUS Acct-Session-Id.
func (r *Record) SetAcctSession(s string) { r.AcctSessionLen = set(r.AcctSession[:], s) }

// SetService sets the service name (T6).
func (r *Record) SetService(s string) { r.ServiceLen = set(r.Service[:], s) }

// SetServiceType sets the service type label (T9).
func (r *Record) SetServiceType(s string) { r.ServiceTypeLen = set(r.ServiceType[:], s) }

// SetAttr sets the attribute and its kind.
func (r *Record) SetAttr(kind uint8, s string) {
	r.AttrKind, r.AttrLen = kind, set(r.Attr[:], s)
}

// SetUserBytes, SetDeviceBytes, SetServiceBytes, SetServiceTypeBytes and
// SetAttrBytes are the []byte forms (no conversion, no allocation).
func (r *Record) SetUserBytes(b []byte)    { r.UserLen = setBytes(r.User[:], b) }
func (r *Record) SetDeviceBytes(b []byte)  { r.DeviceLen = setBytes(r.Device[:], b) }
func (r *Record) SetServiceBytes(b []byte) { r.ServiceLen = setBytes(r.Service[:], b) }
func (r *Record) SetServiceTypeBytes(b []byte) {
	r.ServiceTypeLen = setBytes(r.ServiceType[:], b)
}
func (r *Record) SetAttrBytes(kind uint8, b []byte) {
	r.AttrKind, r.AttrLen = kind, setBytes(r.Attr[:], b)
}

// SetRep sets the representative address and port.
func (r *Record) SetRep(a netip.AddrPort) {
	r.Rep, r.RepPort = a.Addr().As16(), a.Port()
}

// SetServer sets the actual server's address and port.
func (r *Record) SetServer(a netip.AddrPort) {
	r.Server, r.ServerPort = a.Addr().As16(), a.Port()
}

// The getters below allocate (control path and tests).

func (r *Record) UserID() string   { return string(r.User[:min(int(r.UserLen), UserSize)]) }
func (r *Record) DeviceID() string { return string(r.Device[:min(int(r.DeviceLen), DeviceSize)]) }
func (r *Record) AcctSessionID() string {
	return string(r.AcctSession[:min(int(r.AcctSessionLen), AcctSessionSize)])
}
func (r *Record) ServiceName() string     { return string(r.Service[:min(int(r.ServiceLen), ServiceSize)]) }
func (r *Record) ServiceTypeName() string { return string(r.ServiceType[:r.stLen()]) }
func (r *Record) Attribute() string       { return string(r.Attr[:r.attrLen()]) }

func (r *Record) stLen() int   { return min(int(r.ServiceTypeLen), ServiceTypeSize) }
func (r *Record) attrLen() int { return min(int(r.AttrLen), AttrSize) }

// RepAddr and ServerAddr return the addresses (IPv4 unmapped); the zero
// AddrPort when unknown.
func (r *Record) RepAddr() netip.AddrPort    { return addrPort(&r.Rep, r.RepPort) }
func (r *Record) ServerAddr() netip.AddrPort { return addrPort(&r.Server, r.ServerPort) }

func addrPort(a *[16]byte, port uint16) netip.AddrPort {
	if *a == ([16]byte{}) {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom16(*a).Unmap(), port)
}

// ProtoName names an IP protocol number as the log writes it.
func ProtoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	}
	return strconv.Itoa(int(p))
}
