package balance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// DefaultAgentPort is samepath-agent's port when Check.AgentPort is 0.
const DefaultAgentPort = 9990

// AgentPath is the agent's URL path.
const AgentPath = "/load"

// ErrBadLoad is returned for an agent reply that is not a load.
var ErrBadLoad = errors.New("bad agent load reply")

// ParseLoad reads an agent reply: JSON {"cpu": 37.5} (samepath-agent), or
// text "37.5%" / "37.5" (one number, optional percent sign, surrounding
// space ignored). The value is the CPU load in percent, 0..100. Note that
// HAProxy's agent-check text "75%" means a weight (spare capacity), not a
// load: point the Prober at a samepath-agent, not at an HAProxy agent.
func ParseLoad(b []byte) (float64, error) {
	b = bytes.TrimSpace(b)
	var v float64
	if len(b) > 0 && b[0] == '{' {
		var r struct {
			CPU *float64 `json:"cpu"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrBadLoad, err)
		}
		if r.CPU == nil {
			return 0, fmt.Errorf("%w: no \"cpu\" field", ErrBadLoad)
		}
		v = *r.CPU
	} else {
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(bytes.TrimSuffix(b, []byte("%")))), 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q", ErrBadLoad, b)
		}
		v = f
	}
	if math.IsNaN(v) || v < 0 || v > 100 {
		return 0, fmt.Errorf("%w: %v out of 0..100", ErrBadLoad, v)
	}
	return v, nil
}

// CPUTimes are the aggregate counters of the "cpu" line of /proc/stat,
// in clock ticks.
type CPUTimes struct {
	Busy, Total uint64
}

// ParseProcStat reads the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal [guest guest_nice]. Idle time is
// idle+iowait; guest time is already part of user and nice, so it is not
// added again.
func ParseProcStat(b []byte) (CPUTimes, error) {
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) == 0 || string(f[0]) != "cpu" {
			continue
		}
		if len(f) < 5 {
			return CPUTimes{}, fmt.Errorf("parse /proc/stat: cpu line has %d fields", len(f)-1)
		}
		var v [8]uint64
		for i := 0; i < 8 && i+1 < len(f); i++ {
			x, err := strconv.ParseUint(string(f[i+1]), 10, 64)
			if err != nil {
				return CPUTimes{}, fmt.Errorf("parse /proc/stat: field %d: %w", i+1, err)
			}
			v[i] = x
		}
		var t CPUTimes
		for _, x := range v {
			t.Total += x
		}
		t.Busy = t.Total - v[3] - v[4]
		return t, nil
	}
	return CPUTimes{}, errors.New("parse /proc/stat: no cpu line")
}

// LoadBetween is the CPU load in percent between two samples; ok is false
// when no tick passed (or the counters went back).
func LoadBetween(a, b CPUTimes) (float64, bool) {
	if b.Total <= a.Total || b.Busy < a.Busy {
		return 0, false
	}
	return 100 * float64(b.Busy-a.Busy) / float64(b.Total-a.Total), true
}

// CPUSampler computes this host's CPU load from /proc/stat deltas.
type CPUSampler struct {
	path string
	mu   sync.Mutex
	prev CPUTimes
	have bool // prev valid
	load float64
	ok   bool // load valid
}

// NewCPUSampler reads path ("" means /proc/stat) on each Sample.
func NewCPUSampler(path string) *CPUSampler {
	if path == "" {
		path = "/proc/stat"
	}
	return &CPUSampler{path: path}
}

// Sample reads the counters and updates the load over the time since the
// previous sample. A failed read makes the load unknown until two good
// samples follow.
func (s *CPUSampler) Sample() error {
	b, err := os.ReadFile(s.path)
	if err == nil {
		var t CPUTimes
		if t, err = ParseProcStat(b); err == nil {
			s.mu.Lock()
			if s.have {
				if l, ok := LoadBetween(s.prev, t); ok {
					s.load, s.ok = l, true
				}
			}
			s.prev, s.have = t, true
			s.mu.Unlock()
			return nil
		}
	}
	s.mu.Lock()
	s.have, s.ok = false, false
	s.mu.Unlock()
	return fmt.Errorf("cpu sample: %w", err)
}

// Load returns the last computed load; ok is false before two samples.
func (s *CPUSampler) Load() (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.load, s.ok
}

// Run samples every interval until ctx is done. Errors do not stop it:
// each is passed to onErr (if not nil) and the load is unknown meanwhile.
func (s *CPUSampler) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		if err := s.Sample(); err != nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// AgentHandler serves GET /load with the value of load: JSON {"cpu":37.5}
// by default, text "37.5%" with ?format=text. 503 while load is unknown.
func AgentHandler(load func() (float64, bool)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AgentPath, func(w http.ResponseWriter, r *http.Request) {
		v, ok := load()
		if !ok {
			http.Error(w, "load not known yet", http.StatusServiceUnavailable)
			return
		}
		v = math.Round(v*10) / 10
		if r.URL.Query().Get("format") == "text" {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%s%%\n", strconv.FormatFloat(v, 'f', -1, 64))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"cpu\":%s}\n", strconv.FormatFloat(v, 'f', -1, 64))
	})
	return mux
}
