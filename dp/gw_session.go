package dp

import "samepath/nat"

// Session is the gateway's copy of a T3 row.
type Session struct {
	ID   uint64
	Name string // the control process's session id
	// AcctSessionID is the RADIUS Acct-Session-Id the session runs under
	// (api.SessionEvent.AcctSessionID); accounting records carry it.
	AcctSessionID string
	UserID        string
	DeviceID      string
	IP            nat.Addr16
	// Prefix says IP is the first address of an IPv6 /64 (a delegated
	// Framed-IPv6-Prefix): the gate is open for every source in it.
	Prefix  bool
	Dormant bool
	Seq     uint64
	// LB is the LB serving the NAS where the session last started or
	// resumed (FIG. 31), as the control process names it; zero when it
	// does not know. A change moves the mobile's T12 entry at once.
	LB nat.MAC

	lbNow nat.MAC // the worker's: the LB the session's flows use now
	// lbLeft and movedAt: the LB a session event moved the session away
	// from, and when (worker clock), for GWConfig.ResumeHold.
	lbLeft  nat.MAC
	movedAt int64
}

// SessionEvent changes the worker's T3 copy.
type SessionEvent struct {
	End     bool // remove the session and every record of it
	Session Session
}

// Apply queues a session change for the worker. It blocks while the queue
// is full, so no notification is lost.
func (g *GW) Apply(ev SessionEvent) { g.events <- ev }

// apply runs on the worker (Tick). The caller (the daemon) orders a
// session's events by their sequence number; apply takes them as they
// come.
func (g *GW) apply(ev SessionEvent) {
	s := ev.Session
	old, had := g.sessions[s.IP]
	if ev.End {
		if had {
			g.endSession(&old)
		}
		return
	}
	if had && old.ID != s.ID {
		// The address went to a new session: the old one's records go.
		g.endSession(&old)
		had = false
	}
	if had {
		s.lbNow, s.lbLeft, s.movedAt = old.lbNow, old.lbLeft, old.movedAt
		if s.Dormant && !old.Dormant {
			// The session was suspended at the NAS it resumed on (Stop
			// Idle-Timeout): the phone is leaving lbNow, so an up packet
			// through the LB it left before is a move back, not a late
			// one, and the hold ends (R-GW-4: the latest up packet).
			s.lbLeft, s.movedAt = nat.MAC{}, 0
		}
	}
	g.sessions[s.IP] = s
	if s.LB != (nat.MAC{}) && (!had || old.LB != s.LB) {
		// The session (re)started behind another LB: its down packets
		// leave through it from now on, whatever the mobile sends
		// (R-GW-4). Repeats of the same LB change nothing, so a later
		// up packet through yet another LB stays the newer word.
		g.learnLB(s.IP, s.ID, s.LB, true)
	}
}

// session finds the T3 copy gating src (R-GW-7): the session on that
// address, else, for an IPv6 source, the session holding its /64
// (Session.Prefix). It returns the copy and its key in g.sessions. The
// second lookup costs only sources without an exact entry, which are
// the first packets of flows (established flows skip T3).
func (g *GW) session(src nat.Addr16) (Session, nat.Addr16, bool) {
	if s, ok := g.sessions[src]; ok {
		return s, src, true
	}
	if src.Is4() {
		return Session{}, src, false
	}
	k := src
	clear(k[8:])
	if s, ok := g.sessions[k]; ok && s.Prefix {
		return s, k, true
	}
	return Session{}, src, false
}

// endSession removes a session's flow records (their accounting still
// names the session, so they go first), its T7 choices, its T12 entry
// and the session itself.
func (g *GW) endSession(s *Session) {
	g.cfg.Flows.DeleteSession(s.ID, g.now, g.onEnd)
	if g.term != nil {
		// Also the connections still being set up, which no record
		// knows yet.
		g.term.t.CloseSession(s.ID)
	}
	g.cfg.Dist.EndSession(s.ID)
	g.key = s.IP
	g.lbs.Del(g.key[:])
	delete(g.sessions, s.IP)
}

// T12, the LB MAC cache (R-GW-4): the LB of each mobile's latest up
// packet, or of the NAS where its session last resumed, whichever is
// newer; down packets leave toward it. It is kept at two depths:
//
//   - per flow (flowLB), which is what the down path reads: one load,
//     no lookup. When a mobile shows up behind another LB, by an up
//     packet on any of its flows or by a session event, every flow of
//     its session switches at once (PortTable.EachOfSession), so a flow
//     that only receives follows the move without sending anything.
//   - per mobile, in a bounded ristretto cache (lbs): the table the
//     operator sees, and the down path's answer for flows without a
//     session (RequireSession off), which cannot be found by session.
//
// The worker never waits on the cache: a new key goes through its
// buffers and may be refused by its admission policy, which costs a
// session-less flow at most its own latest up packet's LB (flowLB).

// learnLB records that mobile is now behind lb and, if it has a session
// (session != 0), moves every flow of the session there. A caller with a
// session-less flow sets that flow's flowLB itself. byEvent says a
// session event named lb; otherwise an up packet came through it. An up
// packet through the very LB a session event just moved the session away
// from, within GWConfig.ResumeHold of that event, is a late one sent
// before the move (it sat in the old path's rings): it moves nothing, and
// learnLB reports false.
func (g *GW) learnLB(mobile nat.Addr16, session uint64, lb nat.MAC, byEvent bool) bool {
	if session != 0 {
		if s, k, ok := g.session(mobile); ok && s.ID == session {
			if !byEvent && lb == s.lbLeft && g.now-s.movedAt < int64(g.cfg.ResumeHold) {
				g.stats.LBStale.Add(1)
				return false
			}
			if s.lbNow != (nat.MAC{}) && s.lbNow != lb {
				g.stats.LBMoves.Add(1)
			}
			if byEvent {
				s.lbLeft, s.movedAt = s.lbNow, g.now
			}
			s.lbNow = lb
			g.sessions[k] = s
		}
	}
	g.key = mobile
	g.lbs.Set(g.key[:], lbEntry{lb: lb, at: g.now, byEvent: byEvent}, 1)
	if session == 0 {
		return true
	}
	g.setLB = lb
	g.cfg.Flows.EachOfSession(session, g.onLB)
	return true
}

// setFlowLB is learnLB's per-flow step (a method value made once, so
// the walk allocates nothing).
func (g *GW) setFlowLB(id uint32) { g.flowLB[id] = g.setLB }

// lbOf is the LB a flow's down packets leave through.
func (g *GW) lbOf(id uint32, bd *nat.Binding) (nat.MAC, bool) {
	if bd.Session == 0 {
		g.key = bd.Flow.Src
		if e, ok := g.lbs.Get(g.key[:]); ok {
			return e.lb, true
		}
	}
	m := g.flowLB[id]
	return m, m != (nat.MAC{})
}
