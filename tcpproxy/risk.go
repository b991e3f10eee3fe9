package tcpproxy

// Risk balancing (R-TCP-4): a terminated connection survives the loss of
// its server.
//
//   - Before the first response byte, a failed server (connect refused or
//     timed out, RST, FIN without data, health down) is replaced by
//     another of the group (Risk.Next, the service's policy without the
//     servers tried), and the request bytes the mobile sent so far,
//     kept in a replay buffer of Risk.ReplayBuffer bytes, are written to
//     it. The mobile's connection is untouched. A request that overflowed
//     the buffer, or no server left: RST to the mobile.
//   - With Risk.HTTP, the first request and response heads are parsed
//     (httpresume). A response framed by Content-Length whose server
//     fails (RST, or a FIN) before the body's end is resumed, with
//     Risk.Resume and if httpresume.Resumable, from another server by a
//     conditional Range request; its 206 head is checked
//     (httpresume.Continues) and dropped, its body spliced on, so the
//     mobile sees one response. Otherwise the mobile gets a RST, never a
//     FIN after a short body. After the response's end the next request
//     starts the same again; pipelined requests turn tracking off.
//   - Anything else (a non-HTTP service after its first response byte, a
//     response not framed by length) keeps the splice's own rules: a
//     server's RST resets the mobile.
//
// The state lives in the connection's goroutine (riskState); only the
// current server (Conn.Server) and the counters are read elsewhere. Each
// successful switch runs Config.OnServer with the new server.

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"samepath/tcpproxy/httpresume"
)

// Risk is one service's risk balancing, shared by its connections
// (Decision.Risk). Its functions run on connection goroutines.
type Risk struct {
	// ReplayBuffer is how many request bytes are kept, before the first
	// response byte, for a replay to another server; 0: no failover.
	// With HTTP it also holds the request head a resume repeats.
	ReplayBuffer int
	// HTTP declares the service HTTP/1.1: responses are tracked so that a
	// body cut short never ends in a FIN.
	HTTP bool
	// Resume resumes a download mid-body (needs HTTP).
	Resume bool
	// Next chooses another server of the group, none of tried (required).
	Next func(tried []netip.AddrPort) (netip.AddrPort, bool)
	// Healthy, if set, is asked every HealthPoll while a request waits
	// for its first response byte (false fails the server over) and, with
	// HTTP, while a response is in flight (false is a server dead
	// mid-response: resumed, or the mobile reset). It is not asked
	// between responses of a kept-alive connection.
	Healthy    func(netip.AddrPort) bool
	HealthPoll time.Duration
	// Counters, if set, count what happened (RiskCounter).
	Counters *RiskCounters
	// Log, if set, gets each failover, resume and abort, with its reason.
	Log func(c *Conn, ev RiskCounter, from, to netip.AddrPort, why error)
}

// DefaultHealthPoll is Risk.HealthPoll when 0.
const DefaultHealthPoll = 200 * time.Millisecond

// Validate reports the first unusable field by name.
func (r *Risk) Validate() error {
	switch {
	case r.ReplayBuffer < 0:
		return fmt.Errorf("tcpproxy risk replay_buffer %d: %w", r.ReplayBuffer, ErrConfig)
	case r.Resume && !r.HTTP:
		return fmt.Errorf("tcpproxy risk resume: needs http: %w", ErrConfig)
	case r.Next == nil:
		return fmt.Errorf("tcpproxy risk next nil: %w", ErrConfig)
	case r.HealthPoll < 0:
		return fmt.Errorf("tcpproxy risk health_poll %v: %w", r.HealthPoll, ErrConfig)
	}
	return nil
}

// RiskCounter names one risk-balancing counter.
type RiskCounter int

const (
	// RiskFailover counts switches to another server before the first
	// response byte (connect failed, RST, FIN without data, health down).
	RiskFailover RiskCounter = iota
	// RiskResume counts downloads resumed mid-body from another server
	// (counted when the continuation's head checks out).
	RiskResume
	// RiskAbortOverflow counts requests reset because their server failed
	// after they outgrew the replay buffer.
	RiskAbortOverflow
	// RiskAbortNoServer counts connections reset because no server of the
	// group was left to fail over or resume to.
	RiskAbortNoServer
	// RiskAbortMidResponse counts responses reset because their server
	// failed mid-response and they could not be resumed (not resumable,
	// resume off, the head cut short, pipelined requests).
	RiskAbortMidResponse
	// RiskAbortMismatch counts resumes reset because the continuation was
	// not the rest of the body (no 206, another validator or range).
	RiskAbortMismatch

	NumRiskCounters
)

var riskNames = [NumRiskCounters]string{
	RiskFailover:         "failover",
	RiskResume:           "resume",
	RiskAbortOverflow:    "abort_replay_overflow",
	RiskAbortNoServer:    "abort_no_server",
	RiskAbortMidResponse: "abort_mid_response",
	RiskAbortMismatch:    "abort_resume_mismatch",
}

func (c RiskCounter) String() string {
	if c < 0 || c >= NumRiskCounters {
		return fmt.Sprintf("risk(%d)", int(c))
	}
	return riskNames[c]
}

// RiskCounters are one service's counts; safe from any goroutine.
type RiskCounters struct {
	c [NumRiskCounters]atomic.Uint64
}

// Snapshot returns the counts, indexed by RiskCounter.
func (r *RiskCounters) Snapshot() [NumRiskCounters]uint64 {
	var s [NumRiskCounters]uint64
	for i := range s {
		s[i] = r.c[i].Load()
	}
	return s
}

type riskPhase uint8

const (
	riskRequest riskPhase = iota // no response byte yet: a failure replays the request elsewhere
	riskHead                     // HTTP: the response head arrives (forwarded)
	riskBody                     // HTTP: the body arrives, length known
	riskCont                     // HTTP: a continuation's head arrives (checked, not forwarded)
	riskIdle                     // HTTP: the response ended; the next request re-arms
	riskOff                      // nothing more to do
)

// riskState is one connection's; owned by its goroutine except server.
type riskState struct {
	cfg    *Risk
	server atomic.Pointer[netip.AddrPort]
	tried  []netip.AddrPort
	phase  riskPhase

	replay   []byte
	overflow bool
	notHTTP  bool // the request does not parse
	reqOK    bool
	req      httpresume.Request
	// pipelined: the mobile sent bytes beyond its request before the
	// response ended; tracking ends with this response.
	pipelined bool

	head      []byte
	resp      httpresume.Response
	resumeErr error // why the response cannot be resumed; nil: it can
	body      int64 // body bytes of resp read from the servers

	aborted   bool
	unhealthy bool
	tick      *time.Ticker
}

var (
	errResumeOff = errors.New("resume off for the service")
	errPipelined = errors.New("pipelined requests")
	errHeadCut   = errors.New("server failed in the response head")
	errNoServer  = errors.New("no server left")
	errOverflow  = errors.New("request larger than the replay buffer")
)

func newRisk(r *Risk, server netip.AddrPort) *riskState {
	if r == nil || r.Next == nil {
		return nil
	}
	rs := &riskState{cfg: r}
	rs.server.Store(&server)
	return rs
}

func (rs *riskState) count(c *Conn, ev RiskCounter, from, to netip.AddrPort, why error) {
	if rs.cfg.Counters != nil {
		rs.cfg.Counters.c[ev].Add(1)
	}
	if rs.cfg.Log != nil {
		rs.cfg.Log(c, ev, from, to, why)
	}
}

func (rs *riskState) abort(c *Conn, ev RiskCounter, why error) bool {
	rs.aborted = true
	rs.stopTick()
	rs.count(c, ev, c.Server(), netip.AddrPort{}, why)
	return false
}

// noServer ends a failed switch: counted unless a kill stopped it.
func (rs *riskState) noServer(c *Conn) bool {
	if c.killed() {
		rs.aborted = true
		return false
	}
	return rs.abort(c, RiskAbortNoServer, errNoServer)
}

// tickC is the health poll's channel while a request waits for its
// answer or its response is in flight (head, body, continuation), nil
// otherwise: an idle connection, whose mobile sent nothing yet or whose
// last response ended, costs no timer (its next request polls, or its
// send fails over).
func (rs *riskState) tickC() <-chan time.Time {
	if !rs.polled() {
		if rs != nil {
			rs.stopTick()
		}
		return nil
	}
	if rs.tick == nil {
		p := rs.cfg.HealthPoll
		if p == 0 {
			p = DefaultHealthPoll
		}
		rs.tick = time.NewTicker(p)
	}
	return rs.tick.C
}

func (rs *riskState) stopTick() {
	if rs.tick != nil {
		rs.tick.Stop()
		rs.tick = nil
	}
}

// polled reports whether the server's health matters now: a request
// waits for its answer (failed over), or a response is in flight (resumed
// or reset, as if the server died mid-body: a server that goes silent
// without a FIN or RST must not hang the mobile).
func (rs *riskState) polled() bool {
	if rs == nil || rs.cfg.Healthy == nil || rs.aborted {
		return false
	}
	switch rs.phase {
	case riskRequest:
		return len(rs.replay) > 0 || rs.overflow
	case riskHead, riskBody, riskCont:
		return true
	}
	return false
}

// pollHealth runs on a tick: a server gone down before its answer or
// mid-response is failed over by the splice loop (due).
func (rs *riskState) pollHealth(c *Conn) {
	if rs.polled() && !rs.cfg.Healthy(c.Server()) {
		rs.unhealthy = true
	}
}

// due reports a failure the splice loop must handle though no endpoint
// reported one (health down), unless the response ended meanwhile.
func (rs *riskState) due() bool { return rs != nil && rs.unhealthy && rs.polled() }

// fromMobile sees the bytes read from the mobile, before they go on.
func (rs *riskState) fromMobile(b []byte) {
	switch rs.phase {
	case riskOff:
		return
	case riskIdle:
		rs.rearm()
	case riskHead, riskBody, riskCont:
		rs.pipelined = true
		return
	}
	if !rs.overflow {
		if len(rs.replay)+len(b) > rs.cfg.ReplayBuffer {
			rs.overflow, rs.replay = true, nil
		} else {
			rs.replay = append(rs.replay, b...)
		}
	}
	if !rs.cfg.HTTP || rs.notHTTP {
		return
	}
	if rs.reqOK {
		rs.pipelined = true // or a request body: either way, no resume
		return
	}
	if rs.overflow {
		rs.notHTTP = true // a head we cannot keep
		return
	}
	q, err := httpresume.ParseRequest(rs.replay)
	switch {
	case err == nil:
		rs.req, rs.reqOK = q, true
		if len(rs.replay) > q.HeadLen {
			rs.pipelined = true
		}
	case !errors.Is(err, httpresume.ErrIncomplete):
		rs.notHTTP = true
	}
}

// rearm starts tracking the next request of a kept-alive connection.
func (rs *riskState) rearm() {
	rs.phase, rs.unhealthy = riskRequest, false
	rs.replay, rs.overflow, rs.notHTTP, rs.reqOK = rs.replay[:0], false, false, false
	rs.req, rs.resp, rs.resumeErr, rs.body, rs.head = httpresume.Request{}, httpresume.Response{}, nil, 0, nil
	rs.tried = rs.tried[:0]
}

// fromServer sees the bytes read from the server and returns the part of
// b to pass to the mobile; abort: reset the mobile.
func (rs *riskState) fromServer(c *Conn, b []byte) (start, end int, abort bool) {
	switch rs.phase {
	case riskRequest:
		rs.unhealthy = false // it answered; the tick goes on mid-response
		if !rs.cfg.HTTP || !rs.reqOK {
			rs.phase, rs.replay = riskOff, nil
			return 0, len(b), false
		}
		rs.phase, rs.head, rs.body = riskHead, rs.head[:0], 0
		fallthrough
	case riskHead:
		rs.head = append(rs.head, b...)
		r, err := httpresume.ParseResponse(rs.head)
		if errors.Is(err, httpresume.ErrIncomplete) {
			return 0, len(b), false
		}
		inBody := len(rs.head) - r.HeadLen
		rs.head = nil
		if err != nil || r.Status < 200 || r.ContentLength < 0 || r.TransferEncoding ||
			rs.req.Method == "HEAD" || r.Status == 204 || r.Status == 304 {
			// Not framed by length (or no body): nothing to tell a cut
			// from an end by.
			rs.phase, rs.replay = riskOff, nil
			return 0, len(b), false
		}
		rs.resp, rs.phase, rs.replay = r, riskBody, nil
		rs.resumeErr = httpresume.Resumable(&rs.req, &r)
		if rs.resumeErr == nil && !rs.cfg.Resume {
			rs.resumeErr = errResumeOff
		}
		rs.addBody(int64(inBody))
		return 0, len(b), false
	case riskBody:
		rs.addBody(int64(len(b)))
	case riskCont:
		rs.head = append(rs.head, b...)
		r, err := httpresume.ParseResponse(rs.head)
		if errors.Is(err, httpresume.ErrIncomplete) {
			return 0, 0, false
		}
		if err == nil {
			err = httpresume.Continues(&rs.resp, &r, rs.body)
		}
		if err != nil {
			rs.abort(c, RiskAbortMismatch, err)
			return 0, 0, true
		}
		start = r.HeadLen - (len(rs.head) - len(b))
		rs.head, rs.phase = nil, riskBody
		rs.count(c, RiskResume, netip.AddrPort{}, c.Server(), nil)
		rs.addBody(int64(len(b) - start))
		return start, len(b), false
	case riskIdle:
		rs.phase = riskOff // bytes with no request: not HTTP as we know it
	}
	return 0, len(b), false
}

func (rs *riskState) addBody(n int64) {
	rs.body += n
	if rs.body >= rs.resp.ContentLength {
		rs.phase = riskIdle
		if rs.pipelined || rs.body > rs.resp.ContentLength {
			rs.phase = riskOff
		}
	}
}

// holdFIN reports whether a server's FIN must not reach the mobile yet:
// before the answer (a failover) or mid-body (a resume or a reset).
func (rs *riskState) holdFIN() bool {
	if rs == nil || rs.aborted {
		return false
	}
	switch rs.phase {
	case riskRequest, riskHead, riskBody, riskCont:
		return true
	}
	return false
}

// recover handles a failure of the server side (an error, a held FIN,
// health down). true: the splice goes on with another server; false: it
// ends with a RST to the mobile.
func (c *Conn) recover(up, down *pump) bool {
	rs := c.risk
	if rs == nil || rs.aborted || c.killed() {
		return false
	}
	rs.unhealthy = false
	switch rs.phase {
	case riskRequest:
		if rs.overflow || rs.cfg.ReplayBuffer == 0 {
			return rs.abort(c, RiskAbortOverflow, errOverflow)
		}
		from := c.Server()
		if !c.switchServer(up, down) {
			return rs.noServer(c)
		}
		if up.buf != nil { // already in the replay
			c.t.buf.Put(up.buf)
			up.buf = nil
		}
		up.pre = rs.replay
		rs.count(c, RiskFailover, from, c.Server(), nil)
		return true
	case riskBody, riskCont:
		switch {
		case rs.resumeErr != nil:
			return rs.abort(c, RiskAbortMidResponse, rs.resumeErr)
		case rs.pipelined || up.buf != nil:
			return rs.abort(c, RiskAbortMidResponse, errPipelined)
		}
		if !c.switchServer(up, down) {
			return rs.noServer(c)
		}
		up.pre = httpresume.RangeRequest(&rs.req, &rs.resp, rs.body)
		rs.phase, rs.head = riskCont, rs.head[:0]
		return true
	case riskHead:
		return rs.abort(c, RiskAbortMidResponse, errHeadCut)
	}
	return false
}

// switchServer replaces the server connection by one to another server
// of the group, keeping the pumps' buffers for the mobile.
func (c *Conn) switchServer(up, down *pump) bool {
	rs := c.risk
	// The old endpoint goes first: it shares c.sq with the new one, whose
	// connect must not wake on the old one's events.
	c.sep.Abort()
	c.sep.Close()
	for {
		rs.tried = append(rs.tried, c.Server())
		if c.killed() {
			rs.aborted = true // the kill's reason ends the splice, uncounted here
			return false
		}
		next, ok := rs.cfg.Next(rs.tried)
		if !ok {
			// The splice closes c.sep again: Close is idempotent.
			return false
		}
		rs.server.Store(&next)
		ep, err := c.t.dial(c, Decision{Server: next})
		if err != nil {
			continue // tried too
		}
		c.sep = ep
		up.dst, down.src = ep, ep
		up.shut = false // a FIN the mobile sent goes again, after the replay
		down.eof, down.shut, down.held = false, false, false
		c.t.moved(c, next)
		return true
	}
}

// dialRisk is the first connect: a server that refuses or does not
// answer is replaced before the mobile's handshake completes.
func (t *Terminator) dialRisk(c *Conn, d Decision) (tcpip.Endpoint, error) {
	ep, err := t.dial(c, d)
	rs := c.risk
	if err == nil || rs == nil || c.killed() {
		return ep, err
	}
	for {
		from := c.Server()
		rs.tried = append(rs.tried, from)
		next, ok := rs.cfg.Next(rs.tried)
		if !ok {
			rs.count(c, RiskAbortNoServer, from, netip.AddrPort{}, err)
			return nil, err
		}
		rs.server.Store(&next)
		d.Server = next
		if ep, err = t.dial(c, d); err == nil {
			rs.count(c, RiskFailover, from, next, nil)
			t.moved(c, next)
			return ep, nil
		}
		if c.killed() {
			return nil, err
		}
	}
}

// moved tells cfg.OnServer that c is connected to server now.
func (t *Terminator) moved(c *Conn, server netip.AddrPort) {
	if f := t.cfg.OnServer; f != nil {
		f(c, server)
	}
}

// connecting reports whether ep's connect is still under way (a wake-up
// was for something else).
func connecting(ep tcpip.Endpoint) bool {
	switch tcp.EndpointState(ep.State()) {
	case tcp.StateConnecting, tcp.StateSynSent:
		return true
	}
	return false
}
