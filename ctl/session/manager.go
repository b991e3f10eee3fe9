package session

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/store"
)

// Session is a T3 row (FIG. 10) with its timers and counters.
type Session struct {
	ID string `json:"id"` // Acct-Session-Id of the Start that created it
	// AcctIDs are later Acct-Session-Ids that resumed it from Dormant.
	AcctIDs []string `json:"acct_ids,omitempty"`
	Device  string   `json:"device"`
	User    string   `json:"user,omitempty"`
	// IP is the session's address: its IPv4 address, or for an
	// IPv6-only session the first address of IP6.
	IP netip.Addr `json:"ip"`
	// IP6 is the session's IPv6 prefix (a /64, Framed-IPv6-Prefix) or
	// address (a /128, Framed-IPv6-Address); zero when it has none.
	// Records written before IPv6 have none.
	IP6     netip.Prefix `json:"ip6,omitzero"`
	Gateway string       `json:"gateway"`
	NAS     string       `json:"nas,omitempty"`
	// NASAddr is where the NAS of the session's latest Start sent it
	// from (Disconnect-Request goes there).
	NASAddr netip.Addr `json:"nas_addr,omitzero"`
	// LBMAC is the lb_mac of the RADIUS client of the session's latest
	// Start: the LB serving the NAS it last (re)started at. Every event
	// to the gateway carries it (R-GW-4: T12 follows a resume at once).
	LBMAC      string    `json:"lb_mac,omitempty"`
	State      State     `json:"state"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	StateSince time.Time `json:"state_since"`
	// Deadline is the interim timer (Act) or the session timer (Dormant).
	Deadline    time.Time `json:"deadline,omitzero"`
	Gen         uint64    `json:"gen"`            // address assignment generation (aaa.Pool.Release)
	Gen6        uint64    `json:"gen6,omitempty"` // IP6's, when IP is the IPv4 address
	Seq         uint64    `json:"seq"`            // last SessionEvent sequence sent to the gateway
	InOctets    uint64    `json:"in_octets"`
	OutOctets   uint64    `json:"out_octets"`
	InPackets   uint64    `json:"in_packets"`
	OutPackets  uint64    `json:"out_packets"`
	SessionTime uint32    `json:"session_time"`
	Cause       string    `json:"cause,omitempty"` // why it closed
}

// AcctSessionID is the Acct-Session-Id the session runs under now: the
// latest of AcctIDs (a resume under a new id), else ID.
func (s *Session) AcctSessionID() string {
	if n := len(s.AcctIDs); n > 0 {
		return s.AcctIDs[n-1]
	}
	return s.ID
}

// LogRecord is one line of the session log, written on Close (FIG. 11 edge 4).
type LogRecord struct {
	Session
	Closed time.Time `json:"closed"`
}

// Config configures the manager.
type Config struct {
	// InterimTimeout: Act -> Close when no Start/Interim arrives for this
	// long (0 disables the interim timer). Typically 2-3 Acct-Interim-Intervals.
	InterimTimeout time.Duration
	// DormantTimeout: Dormant -> Close after this long (the session timer).
	DormantTimeout time.Duration
	// Now is the clock (nil: time.Now). Tests inject a fake one.
	Now func() time.Time
	// TickInterval is how often Run fires expired timers.
	TickInterval time.Duration
	// RestartGrace: Load re-bases every restored session's timer by the
	// time the manager was down (measured from its last alive stamp), and
	// then no timer closes a restored session before Load's time plus
	// RestartGrace, so a NAS whose next Interim-Update is still due after
	// the outage keeps its sessions. 0: InterimTimeout (a restored session
	// gets at least what an Interim-Update gives it).
	RestartGrace time.Duration
	// AliveInterval is how often Tick records in the store that the
	// manager is alive (the downtime Load re-bases by is measured from the
	// last record, so it is overestimated by at most this much).
	AliveInterval time.Duration
	// Substitutes names the gateways that hold a T3 copy of the session
	// on ip besides the gateway owning its range: the substitutes of the
	// T4 row holding ip (FIG. 14), which the LBs steer its packets to
	// when the owner is down (R-GW-9). Every event of the session goes
	// to the owner and to each of them, each through its own outbox
	// queue. nil, or no names: the owner only. It is called with the
	// manager's lock held and must not call back into the manager.
	Substitutes func(ip netip.Addr) []string
}

// DefaultConfig returns defaults.
func DefaultConfig() Config {
	return Config{InterimTimeout: 15 * time.Minute, DormantTimeout: 2 * time.Hour, TickInterval: time.Second, AliveInterval: 10 * time.Second}
}

// Validate checks c.
func (c *Config) Validate() error {
	if c.InterimTimeout < 0 || c.DormantTimeout <= 0 {
		return errors.New("session: interim timeout must be >= 0 and dormant timeout > 0")
	}
	if c.RestartGrace < 0 {
		return errors.New("session: restart grace must not be negative")
	}
	if c.RestartGrace == 0 {
		c.RestartGrace = c.InterimTimeout
	}
	if c.TickInterval <= 0 {
		c.TickInterval = time.Second
	}
	if c.AliveInterval <= 0 {
		c.AliveInterval = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Counters count what the manager saw.
type Counters struct {
	Transitions map[string]uint64 `json:"transitions"` // "Act->Dormant" etc.
	Invalid     map[string]uint64 `json:"invalid"`     // "Dormant+interim" etc.: events FIG. 11 has no edge for
	Unknown     map[string]uint64 `json:"unknown"`     // events for no session, by kind
	Other       map[string]uint64 `json:"other"`       // duplicate start, superseded, address conflicts, ...
}

type timerEntry struct {
	at time.Time
	id string
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Manager is the session management device (FIG. 9-11). Safe for concurrent use.
type Manager struct {
	cfg  Config
	st   *store.Store
	pool *aaa.Pool
	out  *Outbox

	mu       sync.Mutex
	sessions map[string]*Session
	byAcct   map[string]string // Acct-Session-Id -> session id
	byDev    map[string]string // device -> session id
	timers   timerHeap
	alive    time.Time // last alive stamp enqueued (Tick, Load)
	c        Counters
}

// aliveKey is the store.BucketMeta key of the manager's alive stamp: the
// last time it is known to have run, from which Load measures downtime.
const aliveKey = "session_manager_alive"

// New returns a manager; call Load before serving.
func New(cfg Config, st *store.Store, pool *aaa.Pool, out *Outbox) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, st: st, pool: pool, out: out,
		sessions: map[string]*Session{}, byAcct: map[string]string{}, byDev: map[string]string{},
		c: Counters{Transitions: map[string]uint64{}, Invalid: map[string]uint64{}, Unknown: map[string]uint64{}, Other: map[string]uint64{}}}, nil
}

// Load restores T3 from the store. Sessions found in Close already have
// their log record on disk (it is written before the state), so they go to
// None at once.
//
// The time the manager was down does not count against a session: each
// restored timer moves later by the time since the last alive stamp, and
// none is left due before now + RestartGrace (the NAS may send its next
// Interim-Update only an interim interval after the restart). The moved
// timers are written back, with a fresh alive stamp, in one batch.
func (m *Manager) Load() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	var down time.Duration
	b, err := m.st.Get(store.BucketMeta, []byte(aliveKey))
	if err != nil {
		return fmt.Errorf("load sessions: %w", err)
	}
	if b != nil {
		var alive time.Time
		if err := alive.UnmarshalText(b); err != nil {
			return fmt.Errorf("load sessions: %s %q: %w", aliveKey, b, err)
		}
		down = max(now.Sub(alive), 0)
	}
	graceEnd := now.Add(m.cfg.RestartGrace)
	var ops []store.Op
	var closing []*Session
	err = m.st.ForEach(store.BucketSessions, func(k, v []byte) error {
		s := new(Session)
		if err := json.Unmarshal(v, s); err != nil {
			return fmt.Errorf("session %s: %w", k, err)
		}
		if s.State == Close {
			closing = append(closing, s)
			return nil
		}
		if d := rebase(s.Deadline, down, graceEnd); !d.Equal(s.Deadline) {
			s.Deadline = d
			m.c.Other["restart_rebased"]++
			ops = append(ops, store.Put(store.BucketSessions, []byte(s.ID), sessionJSON(s)))
		}
		m.index(s)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load sessions: %w", err)
	}
	m.alive = now
	m.st.Enqueue(append(ops, aliveOp(now)), nil, nil)
	for _, s := range closing {
		m.sessions[s.ID] = s
		m.noneLocked(s)
	}
	return nil
}

// rebase is a restored timer: deadline moved later by the downtime, and
// not before graceEnd. No timer stays none.
func rebase(deadline time.Time, down time.Duration, graceEnd time.Time) time.Time {
	if deadline.IsZero() {
		return deadline
	}
	d := deadline.Add(down)
	if d.Before(graceEnd) {
		d = graceEnd
	}
	return d
}

func aliveOp(now time.Time) store.Op {
	b, _ := now.MarshalText() // a time from a clock: always in range
	return store.Put(store.BucketMeta, []byte(aliveKey), b)
}

func (m *Manager) index(s *Session) {
	m.sessions[s.ID] = s
	m.byAcct[s.ID] = s.ID
	for _, a := range s.AcctIDs {
		m.byAcct[a] = s.ID
	}
	m.byDev[s.Device] = s.ID
	if !s.Deadline.IsZero() {
		heap.Push(&m.timers, timerEntry{at: s.Deadline, id: s.ID})
	}
}

func (m *Manager) unindex(s *Session) {
	delete(m.sessions, s.ID)
	delete(m.byAcct, s.ID)
	for _, a := range s.AcctIDs {
		if m.byAcct[a] == s.ID {
			delete(m.byAcct, a)
		}
	}
	if m.byDev[s.Device] == s.ID {
		delete(m.byDev, s.Device)
	}
}

func sessionJSON(s *Session) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("session: marshal: %v", err)) // plain struct: cannot fail
	}
	return b
}

// transition applies ev to s, persists it, queues the gateway event, and
// returns the store sequence. Called with m.mu held.
func (m *Manager) transition(s *Session, ev Event, now time.Time, extra []store.Op) (uint64, bool) {
	next, ok := Next(s.State, ev)
	if !ok {
		m.c.Invalid[string(s.State)+"+"+ev.String()]++
		return m.st.Last(), false
	}
	from := s.State
	m.c.Transitions[string(from)+"->"+string(next)]++
	s.State = next
	s.Updated = now
	if from != next {
		s.StateSince = now
	}
	s.Deadline = time.Time{}
	switch next {
	case Act:
		if m.cfg.InterimTimeout > 0 {
			s.Deadline = now.Add(m.cfg.InterimTimeout)
		}
	case Dormant:
		s.Deadline = now.Add(m.cfg.DormantTimeout)
	}
	if !s.Deadline.IsZero() {
		heap.Push(&m.timers, timerEntry{at: s.Deadline, id: s.ID})
	}
	var kind string
	switch {
	case from == None:
		kind = api.EventStart
	case next == Act:
		kind = api.EventActive
	case next == Dormant:
		kind = api.EventDormant
	case next == Close:
		kind = api.EventEnd
	}
	ops := extra
	var pending []*queued
	if kind != "" {
		s.Seq++
		ev := event(s, kind)
		for _, gw := range m.targets(s) {
			if q, op := m.out.prepare(gw, ev); q != nil {
				pending = append(pending, q)
				ops = append(ops, op)
			}
		}
	}
	ops = append(ops, store.Put(store.BucketSessions, []byte(s.ID), sessionJSON(s)))
	var log [][]byte
	if next == Close {
		// The log record goes to disk in the same batch, before the state.
		b, _ := json.Marshal(LogRecord{Session: *s, Closed: now})
		log = [][]byte{b}
	}
	id := s.ID
	seq := m.st.Enqueue(ops, log, func() {
		for _, q := range pending {
			m.out.ready(q)
		}
		if next == Close {
			m.finishClose(id)
		}
	})
	return seq, true
}

// targets are the gateways that hold s's T3 copy: the gateway owning its
// address, then the substitutes of its T4 row (Config.Substitutes), each
// once. Called with m.mu held.
func (m *Manager) targets(s *Session) []string {
	gws := []string{s.Gateway}
	if m.cfg.Substitutes == nil {
		return gws
	}
	for _, ip := range s.Addrs() {
		for _, g := range m.cfg.Substitutes(ip.Addr()) {
			if g != "" && !slices.Contains(gws, g) {
				gws = append(gws, g)
			}
		}
	}
	return gws
}

// Addrs is every address of the session: IP (as a /32 or IPv6 prefix)
// and, for a dual-stack one, IP6.
func (s *Session) Addrs() []netip.Prefix {
	var out []netip.Prefix
	switch {
	case s.IP.Is4():
		out = append(out, netip.PrefixFrom(s.IP, 32))
		if s.IP6.IsValid() {
			out = append(out, s.IP6)
		}
	case s.IP6.IsValid():
		out = append(out, s.IP6)
	case s.IP.IsValid():
		out = append(out, netip.PrefixFrom(s.IP, s.IP.BitLen()))
	}
	return out
}

// EventIP6 is how a session event names an IPv6 part: a plain address
// for a /128, "ADDR/64" for a prefix, "" for none.
func EventIP6(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return ""
	case p.IsSingleIP():
		return p.Addr().String()
	}
	return p.String()
}

// event is the gateway event of kind for s at its current Seq.
func event(s *Session, kind string) api.SessionEvent {
	return api.SessionEvent{Event: kind, SessionID: s.ID, UserID: s.User, DeviceID: s.Device, IP: s.IP.String(), LBMAC: s.LBMAC, Seq: s.Seq,
		AcctSessionID: s.AcctSessionID(), IP6: EventIP6(s.IP6)}
}

// finishClose is FIG. 11 edge 4: the log record is durable, the record goes.
func (m *Manager) finishClose(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s == nil || s.State != Close {
		return
	}
	m.noneLocked(s)
}

func (m *Manager) noneLocked(s *Session) {
	if _, ok := Next(s.State, EvLogWritten); !ok {
		return
	}
	m.c.Transitions[string(Close)+"->"+string(None)]++
	s.State = None
	m.unindex(s)
	ops := m.pool.Release(s.IP, s.Device, s.ID, s.Gen)
	if s.IP.Is4() && s.IP6.IsValid() {
		ops = append(ops, m.pool.Release(s.IP6.Addr(), s.Device, s.ID, s.Gen6)...)
	}
	ops = append(ops, store.Del(store.BucketSessions, []byte(s.ID)))
	m.st.Enqueue(ops, nil, nil)
}

// Account implements aaa.Accounter: it maps an Accounting-Request to a
// FIG. 11 event (R-SM-1).
func (m *Manager) Account(r *aaa.AcctRequest) (uint64, error) {
	switch r.Status {
	case rfc2866.AcctStatusType_Value_AccountingOn, rfc2866.AcctStatusType_Value_AccountingOff:
		return m.nasRestart(r.NAS), nil
	case rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_InterimUpdate, rfc2866.AcctStatusType_Value_Stop:
	default:
		m.mu.Lock()
		m.c.Other["status_ignored_"+strconv.Itoa(int(r.Status))]++
		m.mu.Unlock()
		return m.st.Last(), nil // answered, nothing to record
	}
	if r.SessionID == "" {
		m.mu.Lock()
		m.c.Other["no_session_id"]++
		m.mu.Unlock()
		return 0, errors.New("accounting request without Acct-Session-Id")
	}
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[m.byAcct[r.SessionID]]
	switch r.Status {
	case rfc2866.AcctStatusType_Value_Start:
		return m.start(s, r, now)
	case rfc2866.AcctStatusType_Value_InterimUpdate:
		if s == nil {
			m.c.Unknown["interim"]++
			return m.st.Last(), nil
		}
		update(s, r)
		seq, _ := m.transition(s, EvInterim, now, nil)
		return seq, nil
	default: // Stop
		if s == nil {
			m.c.Unknown["stop"]++
			return m.st.Last(), nil
		}
		update(s, r)
		ev := EvLogout
		if r.Cause == rfc2866.AcctTerminateCause_Value_IdleTimeout {
			ev = EvStopIdle
		} else {
			s.Cause = causeName(r.Cause)
		}
		seq, _ := m.transition(s, ev, now, nil)
		return seq, nil
	}
}

func causeName(c rfc2866.AcctTerminateCause) string {
	if c == 0 {
		return "Stop"
	}
	return c.String()
}

func update(s *Session, r *aaa.AcctRequest) {
	// Counters only grow within a session; a resumed Start may restart them at the NAS.
	s.InOctets = max(s.InOctets, r.InOctets)
	s.OutOctets = max(s.OutOctets, r.OutOctets)
	s.InPackets = max(s.InPackets, r.InPackets)
	s.OutPackets = max(s.OutPackets, r.OutPackets)
	s.SessionTime = max(s.SessionTime, r.SessionTime)
}

func (m *Manager) start(s *Session, r *aaa.AcctRequest, now time.Time) (uint64, error) {
	if s != nil {
		if s.State == Act {
			m.c.Other["duplicate_start"]++
			update(s, r)
			return m.st.Last(), nil
		}
		atNAS(s, r)
		seq, _ := m.transition(s, EvStart, now, nil) // Dormant -> Act, or counted
		return seq, nil
	}
	if r.Device == "" {
		m.c.Other["start_no_device"]++
		return m.st.Last(), nil
	}
	if old := m.sessions[m.byDev[r.Device]]; old != nil {
		switch old.State {
		case Dormant: // FIG. 31: the NAS starts again under a new Acct-Session-Id
			old.AcctIDs = append(old.AcctIDs, r.SessionID)
			m.byAcct[r.SessionID] = old.ID
			m.c.Other["resumed_new_acct_id"]++
			atNAS(old, r)
			seq, _ := m.transition(old, EvStart, now, nil)
			return seq, nil
		case Act: // the NAS lost the old session: close it first
			old.Cause = "Superseded"
			m.c.Other["superseded"]++
			m.transition(old, EvLogout, now, nil)
		}
	}
	ip, ip6 := r.IP, r.IP6
	if ip.IsValid() && !ip.Is4() { // a Framed-IP-Address is IPv4
		ip = netip.Addr{}
	}
	if !ip.IsValid() && !ip6.IsValid() {
		g := m.pool.DeviceGrant(r.Device)
		ip, ip6 = g.V4.IP, g.V6.Prefix()
		if !ip.IsValid() && !ip6.IsValid() {
			m.c.Other["start_no_address"]++
			return m.st.Last(), nil
		}
	}
	primary := ip
	if !primary.IsValid() {
		primary = ip6.Addr()
	}
	a, ops, err := m.pool.Bind(primary, r.Device, r.User, r.SessionID)
	if err != nil {
		m.c.Other["start_bind_"+bindReason(err)]++
		return m.st.Last(), nil
	}
	s = &Session{ID: r.SessionID, Device: r.Device, User: r.User, IP: a.IP, Gateway: a.Gateway, NAS: r.NAS, NASAddr: r.NASAddr, LBMAC: r.LBMAC, State: None, Started: now, StateSince: now, Gen: a.Gen}
	if !a.IP.Is4() {
		s.IP6 = a.Prefix() // the /64 holding the address a Start named
	} else if ip6.IsValid() {
		// Dual-stack: the IPv6 part binds on its own; a refusal leaves
		// the session IPv4-only, counted.
		if a6, ops6, err := m.pool.Bind(ip6.Addr(), r.Device, r.User, r.SessionID); err != nil {
			m.c.Other["start_bind6_"+bindReason(err)]++
		} else if a6.Gateway != a.Gateway {
			m.c.Other["start_bind6_other_gateway"]++
			ops = append(ops, ops6...)
			ops = append(ops, m.pool.Release(a6.IP, r.Device, r.SessionID, a6.Gen)...)
		} else {
			s.IP6, s.Gen6 = a6.Prefix(), a6.Gen
			ops = append(ops, ops6...)
		}
	}
	if s.User == "" {
		s.User = a.User
	}
	update(s, r)
	m.index(s)
	seq, _ := m.transition(s, EvStart, now, ops)
	return seq, nil
}

// atNAS records the NAS a session (re)started at and the LB serving it:
// a NAS whose client has no lb_mac clears it, since the LB of the NAS
// before is no longer the mobile's.
func atNAS(s *Session, r *aaa.AcctRequest) {
	if r.NAS != "" {
		s.NAS = r.NAS
	}
	if r.NASAddr.IsValid() {
		s.NASAddr = r.NASAddr
	}
	s.LBMAC = r.LBMAC
}

func bindReason(err error) string {
	switch {
	case errors.Is(err, aaa.ErrAddressConflict):
		return "conflict"
	case errors.Is(err, aaa.ErrNotInRange):
		return "not_in_range"
	}
	return "error"
}

// nasRestart closes every session of a NAS that says it (re)started
// (Accounting-On/Off): its sessions are gone.
func (m *Manager) nasRestart(nas string) uint64 {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.c.Other["nas_restart"]++
	for _, s := range m.sessions {
		if s.NAS == nas && (s.State == Act || s.State == Dormant) {
			s.Cause = "NAS-Reboot"
			m.transition(s, EvLogout, now, nil)
		}
	}
	return m.st.Last()
}

// Tick fires every timer due at the clock's now: Act -> Close (interim
// timer, edge 8), Dormant -> Close (session timer, edge 7). It returns the
// store sequence to wait for.
func (m *Manager) Tick() uint64 {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.alive) >= m.cfg.AliveInterval {
		m.alive = now
		m.st.Enqueue([]store.Op{aliveOp(now)}, nil, nil)
	}
	for len(m.timers) > 0 && !m.timers[0].at.After(now) {
		te := heap.Pop(&m.timers).(timerEntry)
		s := m.sessions[te.id]
		if s == nil || !s.Deadline.Equal(te.at) {
			continue // stale: the session moved on or is gone
		}
		switch s.State {
		case Act:
			s.Cause = "Interim-Timeout"
			m.transition(s, EvInterimTimeout, now, nil)
		case Dormant:
			s.Cause = "Session-Timeout"
			m.transition(s, EvSessionTimeout, now, nil)
		}
	}
	return m.st.Last()
}

// ErrNotFound is returned for an unknown session.
var ErrNotFound = errors.New("no such session")

// Terminate closes a session administratively (logout edge).
func (m *Manager) Terminate(id, cause string) (uint64, error) {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[m.byAcct[id]]
	if s == nil {
		return 0, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	if cause == "" {
		cause = "Admin-Reset"
	}
	prev := s.Cause
	s.Cause = cause
	seq, ok := m.transition(s, EvLogout, now, nil)
	if !ok {
		s.Cause = prev
		return 0, fmt.Errorf("session %s is %s: cannot close", id, s.State)
	}
	return seq, nil
}

// Get returns a copy of a session by any of its Acct-Session-Ids.
func (m *Manager) Get(id string) (Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[m.byAcct[id]]
	if s == nil {
		return Session{}, false
	}
	c := *s
	c.AcctIDs = append([]string(nil), s.AcctIDs...)
	return c, true
}

// ByDevice returns the session of a device (FIG. 5 S2-S3 lookup).
func (m *Manager) ByDevice(dev string) (Session, bool) {
	m.mu.Lock()
	id, ok := m.byDev[dev]
	m.mu.Unlock()
	if !ok {
		return Session{}, false
	}
	return m.Get(id)
}

// List returns T3 ordered by start time then id.
func (m *Manager) List() []Session {
	m.mu.Lock()
	out := make([]Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		c := *s
		c.AcctIDs = append([]string(nil), s.AcctIDs...)
		out = append(out, c)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Len is the number of sessions.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Counters returns a copy of the counters.
func (m *Manager) Counters() Counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := func(x map[string]uint64) map[string]uint64 {
		y := make(map[string]uint64, len(x))
		for k, v := range x {
			y[k] = v
		}
		return y
	}
	return Counters{Transitions: cp(m.c.Transitions), Invalid: cp(m.c.Invalid), Unknown: cp(m.c.Unknown), Other: cp(m.c.Other)}
}

// Run fires timers and reclaims pending address assignments every
// TickInterval until ctx ends; it records a last alive stamp as it stops.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			now := m.cfg.Now()
			m.mu.Lock()
			m.alive = now
			m.st.Enqueue([]store.Op{aliveOp(now)}, nil, nil)
			m.mu.Unlock()
			return
		case <-t.C:
			m.Tick()
			m.pool.Expire()
		}
	}
}
