package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"samepath/ctl/api"
)

// Target kinds.
const (
	KindGateway = "gateway"
	KindServer  = "server" // an actual server of a gateway's T6 (extension point)
)

// Target is one thing to probe.
type Target struct {
	Kind string `json:"kind"`
	Name string `json:"name"` // unique per kind
	URL  string `json:"url"`  // probed with GET; 2xx is healthy
}

// Config configures a Monitor.
type Config struct {
	Interval time.Duration
	Timeout  time.Duration
	Fall     int // consecutive failures before down
	Rise     int // consecutive successes before up
}

// DefaultConfig returns defaults.
func DefaultConfig() Config {
	return Config{Interval: 2 * time.Second, Timeout: time.Second, Fall: 3, Rise: 2}
}

// Validate checks c.
func (c *Config) Validate() error {
	if c.Interval <= 0 || c.Timeout <= 0 || c.Fall <= 0 || c.Rise <= 0 {
		return errors.New("health: interval, timeout, fall and rise must be positive")
	}
	return nil
}

// Status is a target's probe state.
type Status struct {
	Target
	Up        *bool     `json:"up"` // nil until decided
	Successes int       `json:"successes"`
	Failures  int       `json:"failures"`
	LastError string    `json:"last_error,omitempty"`
	Changed   time.Time `json:"changed,omitzero"`
	Probes    uint64    `json:"probes"`
	// Sync is a gateway's state sync as last read (nil: the monitor has
	// no SyncProber, the gateway has no gw.sync, or it never answered);
	// SyncError is why the latest read failed ("" when it did not).
	Sync      *api.GWSync `json:"sync,omitempty"`
	SyncError string      `json:"sync_error,omitempty"`
}

// Prober checks one target.
type Prober func(ctx context.Context, t Target) error

// HTTPProber returns a Prober doing GET t.URL with client.
func HTTPProber(client *http.Client) Prober {
	return func(ctx context.Context, t Target) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	}
}

// Monitor probes targets with flap damping.
type Monitor struct {
	cfg      Config
	targets  func() []Target
	probe    Prober
	onChange func(t Target, up bool)
	now      func() time.Time
	// syncProbe and onSync: SetSync (sync.go).
	syncProbe SyncProber
	onSync    func(SyncEvent)

	mu    sync.Mutex
	state map[string]*Status // kind/name
}

// NewMonitor returns a monitor. targets is called every round; onChange
// runs (on the monitor's goroutine) when a target's verdict changes.
func NewMonitor(cfg Config, targets func() []Target, probe Prober, onChange func(Target, bool)) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Monitor{cfg: cfg, targets: targets, probe: probe, onChange: onChange, now: time.Now, state: map[string]*Status{}}, nil
}

// Round probes every target once and applies the verdicts.
func (m *Monitor) Round(ctx context.Context) {
	ts := m.targets()
	errs := make([]error, len(ts))
	syncs, syncErrs := make([]*api.GWSync, len(ts)), make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
			errs[i] = m.probe(pctx, t)
			cancel()
		}()
		if m.syncProbe != nil && t.Kind == KindGateway {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
				syncs[i], syncErrs[i] = m.syncProbe(pctx, t)
				cancel()
			}()
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	type change struct {
		t  Target
		up bool
	}
	var changes []change
	var events []SyncEvent
	seen := map[string]bool{}
	m.mu.Lock()
	for i, t := range ts {
		key := t.Kind + "/" + t.Name
		seen[key] = true
		s := m.state[key]
		if s == nil {
			s = &Status{}
			m.state[key] = s
		}
		s.Target = t
		s.Probes++
		if syncErrs[i] != nil {
			s.SyncError = syncErrs[i].Error() // Sync keeps the last state read
		} else {
			events = append(events, syncEvents(t.Name, s.Sync, syncs[i])...)
			s.Sync, s.SyncError = syncs[i], ""
		}
		if errs[i] == nil {
			s.Successes++
			s.Failures = 0
			s.LastError = ""
			if s.Successes >= m.cfg.Rise && (s.Up == nil || !*s.Up) {
				up := true
				s.Up, s.Changed = &up, m.now()
				changes = append(changes, change{t, true})
			}
		} else {
			s.Failures++
			s.Successes = 0
			s.LastError = errs[i].Error()
			if s.Failures >= m.cfg.Fall && (s.Up == nil || *s.Up) {
				up := false
				s.Up, s.Changed = &up, m.now()
				changes = append(changes, change{t, false})
			}
		}
	}
	for k := range m.state {
		if !seen[k] {
			delete(m.state, k) // target removed from T1
		}
	}
	m.mu.Unlock()
	for _, c := range changes {
		m.onChange(c.t, c.up)
	}
	if m.onSync != nil {
		for _, e := range events {
			m.onSync(e)
		}
	}
}

// Run probes every Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Statuses returns every target's state, sorted.
func (m *Monitor) Statuses() []Status {
	m.mu.Lock()
	out := make([]Status, 0, len(m.state))
	for _, s := range m.state {
		c := *s
		if s.Up != nil {
			u := *s.Up
			c.Up = &u
		}
		if s.Sync != nil {
			y := *s.Sync
			y.Peers = slices.Clone(y.Peers)
			c.Sync = &y
		}
		out = append(out, c)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		return out[i].Kind+"/"+out[i].Name < out[j].Kind+"/"+out[j].Name
	})
	return out
}

// HealthURL returns base + "/healthz" for a control API base URL.
func HealthURL(base string) string {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return strings.TrimRight(base, "/") + "/healthz"
}
