package session

import (
	"slices"
	"sort"

	"samepath/ctl/api"
	"samepath/ctl/store"
)

// ResyncResult says what ResyncGateway queued.
type ResyncResult struct {
	Reasserted int    `json:"reasserted"` // sessions the gateway lacked or held in another state
	Ended      int    `json:"ended"`      // sessions the gateway held that are not its (any more)
	Pending    int    `json:"pending"`    // sessions left to the outbox: an event for them still waits for the gateway
	Seq        uint64 `json:"-"`          // store sequence of the last event queued (store.Wait)
}

// ResyncGateway compares held, the T3 copy that gateway gw reports
// (GET /v1/sessions on its control API), with the sessions this manager
// has for gw (those in its range and those of the T4 rows it substitutes
// in, Config.Substitutes), and queues, through the outbox, what brings
// the copy back in line: an "active" or "dormant" event (with every
// field, so a gateway that lost its copy, e.g. by restarting, recreates
// the session) for each session in Act or Dormant that the copy lacks or
// holds in another state, and an "end" for each session the copy holds
// that is not one of gw's live sessions (also one of a row gw no longer
// substitutes in). Without this, a restarted gateway drops every packet
// of its subscribers (no session, R-GW-7) until each one's next
// transition.
//
// A session with an event still waiting in the outbox for gw is left to
// the outbox (counted in Pending): that event, and any after it, brings
// the copy in line, so a read-back taken while a recovered gateway is
// still receiving its backlog queues no second copy of it. Other events
// already queued for gw are delivered first (the outbox keeps order per
// gateway), and each resync event carries a higher Seq than any before
// it, so a resync racing with a transition never undoes it.
func (m *Manager) ResyncGateway(gw string, held []api.GWSession) ResyncResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	have := make(map[string]api.GWSession, len(held))
	for _, h := range held {
		have[h.SessionID] = h
	}
	var res ResyncResult
	pending := m.out.pending(gw) // lock order: Manager, then Outbox
	ids := make([]string, 0, len(m.sessions))
	for id := range m.sessions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	live := map[string]bool{}
	for _, id := range ids {
		s := m.sessions[id]
		if (s.State != Act && s.State != Dormant) || !slices.Contains(m.targets(s), gw) {
			continue
		}
		live[id] = true
		if pending[id] {
			res.Pending++
			continue
		}
		want := "active"
		if s.State == Dormant {
			want = "dormant"
		}
		// A gateway that reports no Acct-Session-Id predates it: not a difference.
		if h, ok := have[id]; ok && h.State == want && h.IP == s.IP.String() && h.IP6 == EventIP6(s.IP6) && h.DeviceID == s.Device && h.UserID == s.User &&
			(h.AcctSessionID == "" || h.AcctSessionID == s.AcctSessionID()) {
			continue
		}
		s.Seq++
		ev := event(s, want)
		if m.queueLocked(gw, ev, store.Put(store.BucketSessions, []byte(s.ID), sessionJSON(s)), &res) {
			res.Reasserted++
		}
	}
	for _, h := range held {
		if live[h.SessionID] {
			continue
		}
		if pending[h.SessionID] {
			res.Pending++
			continue
		}
		ev := api.SessionEvent{Event: api.EventEnd, SessionID: h.SessionID, UserID: h.UserID, DeviceID: h.DeviceID, IP: h.IP, Seq: h.Seq + 1, IP6: h.IP6}
		if m.queueLocked(gw, ev, store.Op{}, &res) {
			res.Ended++
		}
	}
	return res
}

// queueLocked stores ev for gw (with extra, when set, in the same
// commit) and hands it to the pusher once durable. It reports false when
// gw has no API.
func (m *Manager) queueLocked(gw string, ev api.SessionEvent, extra store.Op, res *ResyncResult) bool {
	q, op := m.out.prepare(gw, ev)
	if q == nil {
		return false
	}
	ops := []store.Op{op}
	if extra.Bucket != "" {
		ops = append(ops, extra)
	}
	res.Seq = m.st.Enqueue(ops, nil, func() { m.out.ready(q) })
	return true
}
