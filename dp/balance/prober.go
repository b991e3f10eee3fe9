package balance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// ProberConfig configures health and agent checks.
type ProberConfig struct {
	// Interval between rounds; every server is checked once per round.
	Interval time.Duration
	// Timeout of one check; must be below Interval.
	Timeout time.Duration
	// Fall consecutive failures mark a healthy server down; Rise
	// consecutive successes bring it back (flap damping).
	Fall, Rise int
	// Concurrency bounds the checks in flight.
	Concurrency int
	// OnChange, if set, is called (from the Prober's goroutine) on every
	// health transition with the last check's error (nil when up).
	OnChange func(service string, server netip.AddrPort, healthy bool, err error)
}

// DefaultProberConfig: every 2 s, 1 s timeout, down after 3 failures, up
// after 2 successes (HAProxy's defaults), 64 checks in flight.
func DefaultProberConfig() ProberConfig {
	return ProberConfig{Interval: 2 * time.Second, Timeout: time.Second, Fall: 3, Rise: 2, Concurrency: 64}
}

// Validate checks the config.
func (c ProberConfig) Validate() error {
	if c.Interval <= 0 || c.Timeout <= 0 || c.Timeout > c.Interval {
		return fmt.Errorf("prober: interval %v, timeout %v: want 0 < timeout <= interval", c.Interval, c.Timeout)
	}
	if c.Fall < 1 || c.Rise < 1 {
		return fmt.Errorf("prober: fall %d, rise %d: want >= 1", c.Fall, c.Rise)
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("prober: concurrency %d: want >= 1", c.Concurrency)
	}
	return nil
}

// target is one server of one service to check in a round.
type target struct {
	name    string
	proto   uint8
	addr    netip.AddrPort
	check   Check
	agent   bool // CPULoad policy: poll the agent
	healthy bool // the table's state at the start of the round
	st      *srvState
}

type tkey struct {
	name string
	addr netip.AddrPort
}

// tstate is the damping state of one target.
type tstate struct{ ok, fail int }

// result of one target's checks.
type result struct {
	skip    bool // no health check configured
	err     error
	rtt     time.Duration
	load    float64
	loadErr error
}

// Prober checks the servers of every service of a Table: health (by the
// service's Check) with Fall/Rise damping into SetServerHealth, RTT into
// the fastest-response EWMA, and for CPULoad services the agent's load
// (GET http://SERVER:AGENTPORT/load) into ObserveLoad; an agent that does
// not answer makes the load unknown. Run owns all state; Round may be
// called instead of Run to drive rounds by hand.
type Prober struct {
	t     *Table
	cfg   ProberConfig
	http  *http.Client
	state map[tkey]*tstate
}

// NewProber makes a prober for t.
func NewProber(t *Table, cfg ProberConfig) (*Prober, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil, ResponseHeaderTimeout: cfg.Timeout}
	return &Prober{
		t:   t,
		cfg: cfg,
		http: &http.Client{Transport: tr, Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		state: map[tkey]*tstate{},
	}, nil
}

// Run checks every Interval until ctx is done; it returns nil then.
func (p *Prober) Run(ctx context.Context) error {
	tk := time.NewTicker(p.cfg.Interval)
	defer tk.Stop()
	for {
		p.Round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
	}
}

// Round checks every server once and applies the results.
func (p *Prober) Round(ctx context.Context) {
	ix := p.t.cur.Load()
	var ts []target
	for _, s := range ix.svcs {
		if s == nil {
			continue
		}
		for i := range s.servers {
			v := &s.servers[i]
			ts = append(ts, target{name: s.cfg.Name, proto: s.cfg.Proto, addr: v.addr, check: s.cfg.Check,
				agent: s.cfg.Policy == CPULoad, healthy: v.healthy, st: v.st})
		}
	}
	res := make([]result, len(ts))
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range ts {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			res[i] = p.checkOne(ctx, &ts[i])
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // a cancelled round says nothing about the servers
	}
	seen := make(map[tkey]bool, len(ts))
	for i := range ts {
		p.apply(&ts[i], &res[i], seen)
	}
	for k := range p.state {
		if !seen[k] {
			delete(p.state, k)
		}
	}
}

func (p *Prober) apply(t *target, r *result, seen map[tkey]bool) {
	k := tkey{t.name, t.addr}
	seen[k] = true
	if t.agent {
		if r.loadErr != nil {
			t.st.observeLoad(-1)
		} else {
			t.st.observeLoad(r.load)
		}
	}
	if r.skip {
		return
	}
	s := p.state[k]
	if s == nil {
		s = &tstate{}
		p.state[k] = s
	}
	if r.err == nil {
		t.st.observeRTT(r.rtt)
		s.ok, s.fail = s.ok+1, 0
		if !t.healthy && s.ok >= p.cfg.Rise {
			p.set(t, true, nil)
		}
		return
	}
	t.st.fails.Add(1)
	s.ok, s.fail = 0, s.fail+1
	if t.healthy && s.fail >= p.cfg.Fall {
		p.set(t, false, r.err)
	}
}

func (p *Prober) set(t *target, healthy bool, err error) {
	if p.t.SetServerHealth(t.name, t.addr, healthy) != nil {
		return // the service or server went away during the round
	}
	if p.cfg.OnChange != nil {
		p.cfg.OnChange(t.name, t.addr, healthy, err)
	}
}

// checkOne runs the health check and, for CPULoad services, the agent check.
func (p *Prober) checkOne(ctx context.Context, t *target) result {
	var r result
	if t.agent {
		port := t.check.AgentPort
		if port == 0 {
			port = DefaultAgentPort
		}
		actx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		r.load, r.loadErr = p.agent(actx, netip.AddrPortFrom(t.addr.Addr(), port))
		cancel()
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	addr := t.addr
	if t.check.Port != 0 {
		addr = netip.AddrPortFrom(addr.Addr(), t.check.Port)
	}
	kind := t.check.Kind
	if kind == "" {
		kind = "tcp"
		if t.proto == ProtoUDP {
			kind = "none" // a UDP server need not listen on TCP: only explicit checks
		}
	}
	start := time.Now()
	switch kind {
	case "tcp":
		r.err = checkTCP(ctx, addr)
	case "http":
		r.err = p.checkHTTP(ctx, addr, t.check.Path)
	case "udp":
		r.err = checkUDP(ctx, addr, t.check.Send, t.check.Expect)
	default:
		r.skip = true
	}
	r.rtt = time.Since(start)
	return r
}

func checkTCP(ctx context.Context, addr netip.AddrPort) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return fmt.Errorf("tcp check %v: %w", addr, err)
	}
	return c.Close()
}

func (p *Prober) get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", "samepath-prober")
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, b, err
}

func (p *Prober) checkHTTP(ctx context.Context, addr netip.AddrPort, path string) error {
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	code, _, err := p.get(ctx, "http://"+addr.String()+path)
	if err != nil {
		return fmt.Errorf("http check %v: %w", addr, err)
	}
	if code < 200 || code > 399 {
		return fmt.Errorf("http check %v%s: status %d", addr, path, code)
	}
	return nil
}

// errUDPReply is a UDP reply that does not start with Check.Expect.
var errUDPReply = errors.New("unexpected reply")

func checkUDP(ctx context.Context, addr netip.AddrPort, send, expect string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr.String())
	if err != nil {
		return fmt.Errorf("udp check %v: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte(send)); err != nil {
		return fmt.Errorf("udp check %v: %w", addr, err)
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return fmt.Errorf("udp check %v: %w", addr, err)
	}
	if !bytes.HasPrefix(buf[:n], []byte(expect)) {
		return fmt.Errorf("udp check %v: %w %q", addr, errUDPReply, buf[:min(n, 64)])
	}
	return nil
}

func (p *Prober) agent(ctx context.Context, addr netip.AddrPort) (float64, error) {
	code, b, err := p.get(ctx, "http://"+addr.String()+AgentPath)
	if err != nil {
		return 0, fmt.Errorf("agent %v: %w", addr, err)
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("agent %v: status %s", addr, strconv.Itoa(code))
	}
	v, err := ParseLoad(b)
	if err != nil {
		return 0, fmt.Errorf("agent %v: %w", addr, err)
	}
	return v, nil
}
