package control

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"samepath/ctl/api"
	"samepath/ctl/session"
	"samepath/internal/lograte"
)

// SessionSyncCounters count the T3 read-backs.
type SessionSyncCounters struct {
	Rounds     uint64 `json:"rounds"`     // gateway copies read back
	Failures   uint64 `json:"failures"`   // read-backs that failed (gateway unreachable)
	Reasserted uint64 `json:"reasserted"` // sessions pushed again
	Ended      uint64 `json:"ended"`      // stale sessions ended on a gateway
	Pending    uint64 `json:"pending"`    // sessions left to the outbox, which still holds an event for them
}

// SessionSync keeps every gateway's T3 copy in line with the session
// manager (R-SM-2, R-GW-7): each gateway's copy is read back every Resync
// and when Force names it (its health recovered), and what differs is
// repaired through the outbox (session.Manager.ResyncGateway). The outbox
// pushes transitions as they happen; this catches a gateway that lost
// its copy by restarting, which would otherwise drop its subscribers'
// packets until each one's next transition.
type SessionSync struct {
	resync  time.Duration
	mgr     *session.Manager
	targets func() []AuthzTarget // gateways of T1 with a control API
	force   chan string
	log     *lograte.Pushes

	mu sync.Mutex
	c  SessionSyncCounters
	wg sync.WaitGroup
}

// NewSessionSync returns a sync; Start runs it. Failed read-backs go to
// log (nil: slog.Default) with their HTTP status, rate-limited.
func NewSessionSync(resync time.Duration, mgr *session.Manager, targets func() []AuthzTarget, log *slog.Logger) *SessionSync {
	return &SessionSync{resync: resync, mgr: mgr, targets: targets, force: make(chan string, 16), log: lograte.NewPushes(log, "T3 read-back")}
}

// Force asks for a read-back of gateway name soon. It never blocks.
func (s *SessionSync) Force(name string) {
	select {
	case s.force <- name:
	default:
	}
}

// Counters returns the counters.
func (s *SessionSync) Counters() SessionSyncCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// Start runs the sync until ctx ends; Wait waits for it.
func (s *SessionSync) Start(ctx context.Context) {
	s.wg.Add(1)
	go s.routineSync(ctx)
}

// Wait blocks until the sync stopped.
func (s *SessionSync) Wait() { s.wg.Wait() }

func (s *SessionSync) routineSync(ctx context.Context) {
	defer s.wg.Done()
	var tick <-chan time.Time
	if s.resync > 0 {
		t := time.NewTicker(s.resync)
		defer t.Stop()
		tick = t.C
	}
	for {
		only := ""
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case only = <-s.force:
		}
		for _, g := range s.targets() {
			if only != "" && g.Name != only {
				continue
			}
			s.syncOne(ctx, g)
		}
	}
}

// syncOne reads gateway g's copy back and queues the repairs.
func (s *SessionSync) syncOne(ctx context.Context, g AuthzTarget) {
	c := api.NewClient(g.URL)
	c.Token = g.Token
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	held, err := c.GWSessions(rctx)
	cancel()
	if ctx.Err() == nil {
		s.log.Record(g.Name, err, "url", g.URL)
	}
	var res session.ResyncResult
	if err == nil {
		res = s.mgr.ResyncGateway(g.Name, held.Sessions)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.Rounds++
	if err != nil {
		s.c.Failures++
	}
	s.c.Reasserted += uint64(res.Reasserted)
	s.c.Ended += uint64(res.Ended)
	s.c.Pending += uint64(res.Pending)
}
