package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"samepath/ctl/api"
	"samepath/nat"
)

// viewRoutes adds the gateway's read-only views of T7 and T12.
func viewRoutes(v1 *http.ServeMux, s *gwState) {
	v1.HandleFunc("GET /v1/dist", func(w http.ResponseWriter, r *http.Request) {
		limit, err := queryLimit(r, 1000)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		q := r.URL.Query()
		reply(w, s.distView(limit, q.Get("session"), q.Get("service"), time.Now()))
	})
	v1.HandleFunc("GET /v1/lbcache", func(w http.ResponseWriter, r *http.Request) {
		limit, err := queryLimit(r, 1000)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		var mobile netip.Addr
		if m := r.URL.Query().Get("mobile"); m != "" {
			if mobile, err = netip.ParseAddr(m); err != nil {
				fail(w, http.StatusBadRequest, fmt.Errorf("mobile %q: want an address", m))
				return
			}
		}
		reply(w, s.lbCacheView(limit, mobile))
	})
}

// queryLimit is the request's limit parameter, dflt when absent.
func queryLimit(r *http.Request, dflt int) (int, error) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return dflt, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 0 {
		return 0, errors.New("limit: want a number >= 0")
	}
	return n, nil
}

// sessionNames maps the worker's session ids to the control process's.
func (s *gwState) sessionNames() map[uint64]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[uint64]string, len(s.sessions))
	for _, c := range s.sessions {
		m[c.id] = c.SessionID
	}
	return m
}

// distView renders T7 (balance.Dist.Snapshot: each record read
// consistently under the owner's lock, the set not one instant),
// ordered by session and service.
func (s *gwState) distView(limit int, session, service string, now time.Time) api.Dist {
	st := s.dist.Stats()
	out := api.Dist{Records: []api.DistRecord{}, Stats: api.DistStats{Records: st.Records, Recorded: st.Recorded,
		Released: st.Released, Repicks: st.Repicks, Full: st.Full, NoServer: st.NoServer}}
	names := s.sessionNames()
	var all []api.DistRecord
	for _, r := range s.dist.Snapshot() {
		d := api.DistRecord{Session: names[r.Session], Service: r.Name, Type: r.Type.String(), ServerIdx: r.ServerIdx,
			Flows: r.Flows, AgeSec: -1}
		if r.Server.IsValid() {
			d.Server = r.Server.String()
		}
		if !r.Since.IsZero() {
			d.AgeSec = max(int64(now.Sub(r.Since)/time.Second), 0)
		}
		if (session != "" && d.Session != session) || (service != "" && d.Service != service) {
			continue
		}
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Session != all[j].Session {
			return all[i].Session < all[j].Session
		}
		return all[i].Service < all[j].Service
	})
	out.Total = len(all)
	out.Records = append(out.Records, all[:min(limit, len(all))]...)
	return out
}

// lbCacheView renders T12's per-mobile cache for the mobiles the gateway
// knows: its sessions' addresses and the sources of its flow records
// (the cache itself cannot be listed). Only mobile's, if valid.
func (s *gwState) lbCacheView(limit int, mobile netip.Addr) api.LBCache {
	type known struct {
		session string
		flows   int
	}
	mobiles := map[netip.Addr]*known{}
	s.mu.Lock()
	for ip, id := range s.byIP {
		mobiles[ip.Unmap()] = &known{session: id}
	}
	s.mu.Unlock()
	s.flows.Snapshot(func(b nat.Binding) bool {
		a := b.Flow.Src.Addr()
		k := mobiles[a]
		if k == nil {
			k = &known{}
			mobiles[a] = k
		}
		k.flows++
		return true
	})
	s.gw.WaitLB() // the worker's latest writes first
	out := api.LBCache{Entries: []api.LBCacheEntry{}}
	addrs := make([]netip.Addr, 0, len(mobiles))
	for a := range mobiles {
		if !mobile.IsValid() || a == mobile.Unmap() {
			addrs = append(addrs, a)
		}
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	var all []api.LBCacheEntry
	for _, a := range addrs {
		e, ok := s.gw.LBEntry(a)
		if !ok {
			out.Uncached++
			continue
		}
		learned := api.LearnedPacket
		if e.ByEvent {
			learned = api.LearnedEvent
		}
		k := mobiles[a]
		all = append(all, api.LBCacheEntry{Mobile: a.String(), LBMAC: e.LB.String(), Learned: learned,
			AgeMs: e.Age.Milliseconds(), Session: k.session, Flows: k.flows})
	}
	out.Total = len(all)
	out.Entries = append(out.Entries, all[:min(limit, len(all))]...)
	return out
}
