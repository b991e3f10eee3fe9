package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"samepath/ctl/api"
	"samepath/nat"
)

// LBControl (lb.control) names the control process a starting LB asks for
// the current gateway states before it steers: samepath-control's GET
// /v1/lbs/gateway-states, the states it pushes to every LB. Without it the
// LB steers by its config's states until control's next push.
type LBControl struct {
	// URL is samepath-control's API, e.g. http://10.99.0.1:9190.
	URL string `yaml:"url"`
	// TokenFile holds control's API bearer token; empty: none.
	TokenFile string `yaml:"token_file"`
	// Wait bounds how long start-up asks, retrying; 0 means 3s.
	Wait time.Duration `yaml:"wait"`
	// Required makes start-up fail when control has not answered within
	// Wait; by default the LB then starts with its config's states and
	// logs a warning (control's pushes and resyncs correct them later).
	Required bool `yaml:"required"`
}

// defaultControlWait is LBControl.Wait when 0.
const defaultControlWait = 3 * time.Second

func (c *LBControl) wait() time.Duration {
	if c.Wait == 0 {
		return defaultControlWait
	}
	return c.Wait
}

// validate checks lb.control; nil (absent) is valid.
func (c *LBControl) validate() error {
	if c == nil {
		return nil
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: want http://HOST:PORT or https://HOST:PORT", c.URL)
	}
	if c.Wait < 0 || c.Wait > time.Minute {
		return fmt.Errorf("wait %v: want 0 (3s) .. 1m", c.Wait)
	}
	return nil
}

// token reads TokenFile ("" without one).
func (c *LBControl) token() (string, error) {
	if c.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("lb control token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("lb control token file %s is empty", c.TokenFile)
	}
	return t, nil
}

// gatewayStatesPath is control's answer of the states it pushes to the LBs.
const gatewayStatesPath = "/v1/lbs/gateway-states"

// controlStates gives rows the gateway states control holds now, asking
// it as c says. Rows are returned unchanged (with a warning) when control
// does not answer in time, unless c.Required; then that is an error.
func controlStates(ctx context.Context, log *slog.Logger, c *LBControl, rows []nat.T4Row) ([]nat.T4Row, error) {
	if c == nil {
		return rows, nil
	}
	token, err := c.token()
	if err != nil {
		return nil, err
	}
	states, err := fetchStates(ctx, log, c.URL, token, c.wait())
	if err == nil {
		var out []nat.T4Row
		var changed, unknown []string
		if out, changed, unknown, err = applyStates(rows, states); err == nil {
			log.Info("gateway states from control", "control", c.URL, "states", len(states),
				"changed_from_config", changed, "not_in_t4", unknown)
			return out, nil
		}
		err = fmt.Errorf("control's answer: %w", err)
	}
	if c.Required {
		return nil, fmt.Errorf("lb control %s: %w", c.URL, err)
	}
	log.Warn("starting with the config's gateway states: no usable answer from control", "control", c.URL, "err", err)
	return rows, nil
}

// fetchStates asks control for the gateway states, retrying with back-off
// (100 ms doubling to 1 s, each failure logged) until wait has passed.
func fetchStates(ctx context.Context, log *slog.Logger, base, token string, wait time.Duration) ([]api.GatewayState, error) {
	cl := api.NewClient(base)
	cl.Token = token
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var states []api.GatewayState
		err := cl.Do(ctx, http.MethodGet, gatewayStatesPath, nil, &states)
		if err == nil {
			return states, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no answer within %v (%d attempts): %w", wait, attempt, err)
		}
		log.Warn("ask control for the gateway states", "control", base, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer within %v (%d attempts): %w", wait, attempt, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// applyStates sets in a copy of rows the state of every gateway control
// stated. It reports the MACs whose state changed and those no row names
// (ignored: control knows gateways this LB does not steer to). A state
// that does not parse is an error and nothing is applied.
func applyStates(rows []nat.T4Row, states []api.GatewayState) (out []nat.T4Row, changed, unknown []string, err error) {
	want := make(map[nat.MAC]bool, len(states))
	for _, s := range states {
		m, err := nat.ParseMAC(s.MAC)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("gateway %q: %w", s.MAC, err)
		}
		if s.State != api.StateUp && s.State != api.StateDown {
			return nil, nil, nil, fmt.Errorf("gateway %s: state %q: want up or down", s.MAC, s.State)
		}
		want[m] = s.State == api.StateUp
	}
	seen := map[nat.MAC]bool{}
	didChange := map[nat.MAC]bool{}
	out = make([]nat.T4Row, len(rows))
	for i, r := range rows {
		r.Gateways = append([]nat.Gateway(nil), r.Gateways...)
		for j := range r.Gateways {
			g := &r.Gateways[j]
			up, ok := want[g.MAC]
			if !ok {
				continue
			}
			seen[g.MAC] = true
			if g.Up != up {
				g.Up = up
				if !didChange[g.MAC] {
					didChange[g.MAC] = true
					changed = append(changed, g.MAC.String()+"="+stateName(up))
				}
			}
		}
		out[i] = r
	}
	for _, s := range states {
		if m, _ := nat.ParseMAC(s.MAC); !seen[m] {
			unknown = append(unknown, s.MAC)
		}
	}
	return out, changed, unknown, nil
}

func stateName(up bool) string {
	if up {
		return api.StateUp
	}
	return api.StateDown
}
