package balance

import (
	"fmt"
	"net/netip"
	"slices"
)

// MaxReplayBuffer bounds Risk.ReplayBuffer (per connection).
const MaxReplayBuffer = 16 << 20

// Risk is a terminate-mode service's risk balancing (R-TCP-4,
// tcpproxy.Risk): the gateway fails a connection over to another server
// of the group (PickExcept) when its server fails before answering, and
// resumes HTTP downloads mid-body.
type Risk struct {
	// ReplayBuffer is the request bytes kept per connection for a
	// replay; 0: no failover.
	ReplayBuffer int `json:"replay_buffer" yaml:"replay_buffer"`
	// HTTP: the service speaks HTTP/1.1 (responses are tracked).
	HTTP bool `json:"http,omitempty" yaml:"http,omitempty"`
	// Resume: downloads are resumed mid-body (needs HTTP).
	Resume bool `json:"resume,omitempty" yaml:"resume,omitempty"`
}

func (r Risk) validate() error {
	switch {
	case r.ReplayBuffer < 0 || r.ReplayBuffer > MaxReplayBuffer:
		return fmt.Errorf("risk.replay_buffer %d: want 0..%d", r.ReplayBuffer, MaxReplayBuffer)
	case r.Resume && !r.HTTP:
		return fmt.Errorf("risk.resume: needs risk.http")
	}
	return nil
}

// Risk returns a service's risk balancing.
func (t *Table) Risk(svcID uint32) (Risk, bool) {
	s := t.load(svcID)
	if s == nil {
		return Risk{}, false
	}
	return s.cfg.Risk, true
}

// PickExcept is Pick among the servers in state up that are not in
// except: the substitute for a failed server (tcpproxy's failover). It
// counts the choice as Pick does. ok is false when none is left. Safe
// from any goroutine; it allocates nothing.
func (t *Table) PickExcept(svcID uint32, except []netip.AddrPort) (server netip.AddrPort, serverIdx int, ok bool) {
	s := t.load(svcID)
	if s == nil || len(s.up) == 0 {
		return netip.AddrPort{}, -1, false
	}
	free := func(i int) bool { return !slices.Contains(except, s.servers[i].addr) }
	best := -1
	switch s.cfg.Policy {
	case WeightedRoundRobin:
		p := s.ctr.wrr.Add(1) - 1
		for j := range len(s.wrr) {
			if i := int(s.wrr[(p+uint64(j))%uint64(len(s.wrr))]); free(i) {
				best = i
				break
			}
		}
	case LeastConn, FastestResponse, CPULoad:
		n := len(s.up)
		start := int((s.ctr.rr.Add(1) - 1) % uint64(n))
		for j := range n {
			i := int(s.up[(start+j)%n])
			if free(i) && (best < 0 || s.better(i, best)) {
				best = i
			}
		}
	default: // RoundRobin
		n := len(s.up)
		start := s.ctr.rr.Add(1) - 1
		for j := range n {
			if i := int(s.up[(start+uint64(j))%uint64(n)]); free(i) {
				best = i
				break
			}
		}
	}
	if best < 0 {
		return netip.AddrPort{}, -1, false
	}
	t.choices[s.cfg.Policy].Add(1)
	s.servers[best].st.picks.Add(1)
	return s.servers[best].addr, best, true
}

// ServerUp reports whether addr is a server of the service in state up
// (administratively up and healthy); false for one no longer listed.
func (t *Table) ServerUp(svcID uint32, addr netip.AddrPort) bool {
	s := t.load(svcID)
	if s == nil {
		return false
	}
	for i := range s.servers {
		if s.servers[i].addr == addr {
			return s.servers[i].up()
		}
	}
	return false
}

// ServerServing reports whether addr, a server of the service, still
// serves the flows already on it: healthy and not in maint. Unlike
// ServerUp a draining server serves (its flows run until they end): it
// is what a terminated connection's risk balancing polls, so that a
// drain neither fails over nor resets the requests and responses in
// flight on it. false for one no longer listed.
func (t *Table) ServerServing(svcID uint32, addr netip.AddrPort) bool {
	s := t.load(svcID)
	if s == nil {
		return false
	}
	for i := range s.servers {
		if v := &s.servers[i]; v.addr == addr {
			return v.healthy && v.admin != AdminMaint
		}
	}
	return false
}

// ServerIndex returns the index of addr among the service's servers, in
// any state (Dist.FlowMove's argument); ok is false for one no longer
// listed. Safe from any goroutine; it allocates nothing.
func (t *Table) ServerIndex(svcID uint32, addr netip.AddrPort) (serverIdx int, ok bool) {
	s := t.load(svcID)
	if s == nil {
		return -1, false
	}
	for i := range s.servers {
		if s.servers[i].addr == addr {
			return i, true
		}
	}
	return -1, false
}
