package health

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"samepath/ctl/api"
	"samepath/internal/lograte"
)

// LB is one load balancer's control API.
type LB struct {
	Name  string
	URL   string
	Token string
}

// LBSync keeps every LB's T4 gateway states equal to the desired states.
type LBSync struct {
	lbs        []LB
	resync     time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration

	mu      sync.Mutex
	desired map[string]string // MAC -> up/down
	workers []*lbWorker
	wg      sync.WaitGroup
	log     *lograte.Pushes
}

type lbWorker struct {
	lb     LB
	kick   chan struct{}
	pushed map[string]string // what this LB acknowledged
	ok     uint64
	fail   uint64
	err    string
}

// LBStatus is one LB's sync state.
type LBStatus struct {
	Name      string            `json:"name"`
	URL       string            `json:"url"`
	Pushed    map[string]string `json:"pushed"`
	OK        uint64            `json:"ok"`
	Failures  uint64            `json:"failures"`
	LastError string            `json:"last_error,omitempty"`
}

// NewLBSync returns a syncer; resync is how often every state is
// re-asserted (0: never). Failed pushes go to log (nil: slog.Default)
// with their HTTP status, rate-limited (lograte.Pushes).
func NewLBSync(lbs []LB, resync time.Duration, log *slog.Logger) *LBSync {
	s := &LBSync{lbs: lbs, resync: resync, minBackoff: 100 * time.Millisecond, maxBackoff: 10 * time.Second, desired: map[string]string{},
		log: lograte.NewPushes(log, "T4 gateway state")}
	for _, lb := range lbs {
		s.workers = append(s.workers, &lbWorker{lb: lb, kick: make(chan struct{}, 1), pushed: map[string]string{}})
	}
	return s
}

// Set records the desired state of the gateway with this MAC and wakes the pushers.
func (s *LBSync) Set(mac, state string) {
	if mac == "" {
		return
	}
	s.mu.Lock()
	s.desired[mac] = state
	s.mu.Unlock()
	for _, w := range s.workers {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// Desired returns the gateway states every LB is to hold, sorted by MAC:
// what a starting LB fetches (the control API's GET
// /v1/lbs/gateway-states) before it steers, so it never steers by its
// config's states while control knows better. A gateway control has not
// decided yet (never probed, no admin change) is absent.
func (s *LBSync) Desired() []api.GatewayState {
	s.mu.Lock()
	out := make([]api.GatewayState, 0, len(s.desired))
	for mac, st := range s.desired {
		out = append(out, api.GatewayState{MAC: mac, State: st})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out
}

// Start runs one pusher per LB until ctx ends; Wait waits for them.
func (s *LBSync) Start(ctx context.Context) {
	for _, w := range s.workers {
		s.wg.Add(1)
		go s.routineLB(ctx, w)
	}
}

// Wait waits for the pushers after ctx ended.
func (s *LBSync) Wait() { s.wg.Wait() }

func (s *LBSync) routineLB(ctx context.Context, w *lbWorker) {
	defer s.wg.Done()
	c := api.NewClient(w.lb.URL)
	c.Token = w.lb.Token
	backoff := s.minBackoff
	var resync <-chan time.Time
	if s.resync > 0 {
		t := time.NewTicker(s.resync)
		defer t.Stop()
		resync = t.C
	}
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-retry:
		case <-resync:
			s.mu.Lock()
			clear(w.pushed) // re-assert everything
			s.mu.Unlock()
		}
		retry = nil
		s.mu.Lock()
		var todo []string
		for mac, st := range s.desired {
			if w.pushed[mac] != st {
				todo = append(todo, mac)
			}
		}
		s.mu.Unlock()
		sort.Strings(todo)
		failed := false
		for _, mac := range todo {
			s.mu.Lock()
			st := s.desired[mac]
			s.mu.Unlock()
			err := c.SetGatewayState(ctx, mac, st)
			if ctx.Err() != nil {
				return
			}
			s.log.Record(w.lb.Name, err, "url", w.lb.URL, "gateway_mac", mac, "state", st)
			s.mu.Lock()
			if err != nil {
				w.fail++
				w.err = err.Error()
				failed = true
			} else {
				w.ok++
				w.err = ""
				w.pushed[mac] = st
			}
			s.mu.Unlock()
			if failed {
				break
			}
		}
		if failed {
			retry = time.After(backoff)
			backoff = min(2*backoff, s.maxBackoff)
		} else {
			backoff = s.minBackoff
		}
	}
}

// Statuses reports every LB's sync state.
func (s *LBSync) Statuses() []LBStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LBStatus
	for _, w := range s.workers {
		p := make(map[string]string, len(w.pushed))
		for k, v := range w.pushed {
			p[k] = v
		}
		out = append(out, LBStatus{Name: w.lb.Name, URL: w.lb.URL, Pushed: p, OK: w.ok, Failures: w.fail, LastError: w.err})
	}
	return out
}

// LBs returns the configured LBs.
func (s *LBSync) LBs() []LB { return s.lbs }
