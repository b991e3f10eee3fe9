package control

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"samepath/ctl/api"
	"samepath/internal/lograte"
)

// AuthzTarget is a gateway that receives T8/T9: its T1 name, control API
// and bearer token.
type AuthzTarget struct {
	Name, URL, Token string
}

// AuthzSyncConfig configures the pushers.
type AuthzSyncConfig struct {
	// Resync: how often each pusher reads the gateway's tables back and
	// pushes again when they differ (a gateway restarted between two
	// health probes comes back with its own tables). 0: never.
	Resync                 time.Duration
	MinBackoff, MaxBackoff time.Duration
	Timeout                time.Duration // per request
	// Log receives failed pushes with their HTTP status, rate-limited
	// (lograte.Pushes); nil: slog.Default.
	Log *slog.Logger
}

// AuthzSync keeps every gateway's T8/T9 equal to the control process's
// (R-AUTH-1): one pusher per gateway of T1 with a control API. A pusher
// sends PUT /v1/authz when the tables change, when its gateway is
// (re)added or recovers its health (Force), and when a resync finds the
// gateway's tables different; a failed push is retried with exponential
// back-off until the gateway acknowledges, always with the tables current
// at that moment (a gateway that was down gets the latest tables).
type AuthzSync struct {
	cfg     AuthzSyncConfig
	tables  *AuthzTables
	targets func() []AuthzTarget

	mu      sync.Mutex
	ctx     context.Context
	workers map[string]*authzWorker
	wg      sync.WaitGroup
	pushes  uint64
	fails   uint64
	log     *lograte.Pushes
}

type authzWorker struct {
	t      AuthzTarget
	kick   chan struct{}
	cancel context.CancelFunc
	acked  uint64 // version the gateway acknowledged (or was found to hold)
	dirty  bool   // push even if acked is current
	ok     uint64
	fail   uint64
	err    string
	last   time.Time // last acknowledgement
}

// AuthzGatewayStatus is one gateway's push state.
type AuthzGatewayStatus struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Acked     uint64    `json:"acked_version"`
	InSync    bool      `json:"in_sync"`
	Pushes    uint64    `json:"pushes"`
	Failures  uint64    `json:"failures"`
	LastError string    `json:"last_error,omitempty"`
	LastAck   time.Time `json:"last_ack,omitzero"`
}

// AuthzStatus answers GET /v1/authz/status.
type AuthzStatus struct {
	// Managed: the control process owns the gateways' T8/T9 (otherwise
	// it pushes nothing).
	Managed  bool                 `json:"managed"`
	Version  uint64               `json:"version"`
	Gateways []AuthzGatewayStatus `json:"gateways"`
}

// NewAuthzSync returns the pushers for tables; targets lists the gateways
// (read again by Reconcile). Start begins pushing.
func NewAuthzSync(cfg AuthzSyncConfig, tables *AuthzTables, targets func() []AuthzTarget) *AuthzSync {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	s := &AuthzSync{cfg: cfg, tables: tables, targets: targets, workers: map[string]*authzWorker{},
		log: lograte.NewPushes(cfg.Log, "T8/T9")}
	tables.OnChange(s.KickAll)
	return s
}

// Start runs a pusher per gateway until ctx ends; Wait waits for them.
func (s *AuthzSync) Start(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	s.Reconcile()
}

// Wait waits for the pushers after Start's context ended.
func (s *AuthzSync) Wait() { s.wg.Wait() }

// Reconcile matches the pushers to the gateways: a new gateway (or one
// whose URL or token changed) gets the tables, a removed one's pusher
// stops.
func (s *AuthzSync) Reconcile() {
	ts := s.targets()
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, t := range ts {
		seen[t.Name] = true
		w := s.workers[t.Name]
		if w != nil && w.t != t {
			w.t, w.dirty = t, true
			poke(w.kick)
			continue
		}
		if w == nil {
			w = &authzWorker{t: t, kick: make(chan struct{}, 1), dirty: true}
			s.workers[t.Name] = w
		}
		if w.cancel == nil && s.ctx != nil && s.ctx.Err() == nil {
			ctx, cancel := context.WithCancel(s.ctx)
			w.cancel = cancel
			s.wg.Add(1)
			go s.routinePush(ctx, w)
		}
	}
	for name, w := range s.workers {
		if !seen[name] {
			if w.cancel != nil {
				w.cancel()
			}
			delete(s.workers, name)
		}
	}
}

// KickAll wakes every pusher (the tables changed). It never blocks.
func (s *AuthzSync) KickAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		poke(w.kick)
	}
}

// Force makes gateway name get the tables again (it came back up: it may
// have restarted with other tables). It never blocks.
func (s *AuthzSync) Force(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.workers[name]; w != nil {
		w.dirty = true
		poke(w.kick)
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// routinePush keeps one gateway's tables current.
func (s *AuthzSync) routinePush(ctx context.Context, w *authzWorker) {
	defer s.wg.Done()
	backoff := s.cfg.MinBackoff
	var resync <-chan time.Time
	if s.cfg.Resync > 0 {
		t := time.NewTicker(s.cfg.Resync)
		defer t.Stop()
		resync = t.C
	}
	var retry <-chan time.Time
	verify := false
	for {
		tables, version, managed := s.tables.Get()
		s.mu.Lock()
		need := managed && (w.dirty || w.acked != version || verify)
		t, dirty := w.t, w.dirty
		s.mu.Unlock()
		if need {
			c := api.NewClient(t.URL)
			c.Token = t.Token
			c.HTTP = &http.Client{Timeout: s.cfg.Timeout}
			push := true
			var err error
			if verify && !dirty && w.acked == version {
				// Read back: push only when the gateway holds other tables.
				var have api.Authz
				if have, err = c.Authz(ctx); err == nil {
					push = !sameAuthz(have, tables)
				}
			}
			if err == nil && push {
				err = c.SetAuthz(ctx, api.Authz{T9: tables.T9, T8: tables.T8})
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Record(t.Name, err, "url", t.URL, "version", version)
			s.mu.Lock()
			if err != nil {
				w.fail++
				s.fails++
				w.err = err.Error()
				w.dirty = true
				retry = time.After(backoff)
				backoff = min(2*backoff, s.cfg.MaxBackoff)
			} else {
				if push {
					w.ok++
					s.pushes++
				}
				w.acked, w.dirty, w.err, w.last = version, false, "", time.Now()
				retry, backoff = nil, s.cfg.MinBackoff
			}
			s.mu.Unlock()
		}
		verify = false
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-retry:
		case <-resync:
			verify = true
		}
	}
}

// sameAuthz compares a gateway's tables with the canonical ones.
func sameAuthz(have, want api.Authz) bool {
	t9, t8, err := NormalizeAuthz(have.T9, have.T8)
	return err == nil && slices.Equal(t9, want.T9) && slices.Equal(t8, want.T8)
}

// Status reports every gateway's push state, by name.
func (s *AuthzSync) Status() AuthzStatus {
	_, version, managed := s.tables.Get()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := AuthzStatus{Managed: managed, Version: version, Gateways: []AuthzGatewayStatus{}}
	for _, w := range s.workers {
		out.Gateways = append(out.Gateways, AuthzGatewayStatus{Name: w.t.Name, URL: w.t.URL, Acked: w.acked,
			InSync: managed && !w.dirty && w.acked == version, Pushes: w.ok, Failures: w.fail, LastError: w.err, LastAck: w.last})
	}
	sort.Slice(out.Gateways, func(i, j int) bool { return out.Gateways[i].Name < out.Gateways[j].Name })
	return out
}

// Counters returns the pushes acknowledged and failed, over all gateways.
func (s *AuthzSync) Counters() (pushes, failures uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushes, s.fails
}
