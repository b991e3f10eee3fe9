package control

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/health"
)

// T4View is samepath-control's copy of the LBs' T4 (FIG. 14): which
// gateways, primary and substitutes, each row names, read back from
// every LB's API (GET /v1/t4) at the start and every interval. The LBs
// own T4 (their config and samepathctl t4); control pushes only the
// gateways' states. The session manager asks Substitutes which gateways
// are to hold a session's T3 copy besides its owner (R-GW-9), so the
// gateway an LB switches to when the owner dies already holds them.
//
// Each LB's last good read is kept until the next one: an LB that does
// not answer keeps its rows (a read failing is retried after a second,
// the wait doubling up to the interval). LBs that hold other rows (they
// should not, R-LB-2) are merged: a session goes to every gateway any of
// them names for its address.
type T4View struct {
	lbs      []health.LB
	interval time.Duration
	gateways func() []aaa.Gateway // T1: MAC -> gateway name
	changed  func()               // the view changed: read every gateway's T3 copy back

	mu   sync.Mutex
	rows map[string][]t4ViewRow // LB name -> its rows
	errs map[string]string      // LB name -> last read error
	c    T4ViewCounters
	wg   sync.WaitGroup
}

type t4ViewRow struct {
	prefix netip.Prefix
	macs   []string // normalized (net.HardwareAddr.String)
}

// T4ViewCounters count the read-backs of the LBs' T4.
type T4ViewCounters struct {
	Reads    uint64 `json:"reads"`
	Failures uint64 `json:"failures"`
	Changes  uint64 `json:"changes"` // reads that changed the view
}

// T4ViewRow is one row of the view as GET /v1/health shows it: an LB's
// range and the gateways (T1 names; a MAC T1 does not know stays a MAC)
// in its order, primary first.
type T4ViewRow struct {
	LB       string   `json:"lb"`
	Range    string   `json:"range"`
	Gateways []string `json:"gateways"`
}

// NewT4View returns a view of lbs' T4, read every interval (0: 30s);
// changed runs (on the view's goroutine) after a read that changed it.
func NewT4View(lbs []health.LB, interval time.Duration, gateways func() []aaa.Gateway, changed func()) *T4View {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	return &T4View{lbs: lbs, interval: interval, gateways: gateways, changed: changed, rows: map[string][]t4ViewRow{}, errs: map[string]string{}}
}

// Substitutes names the gateways of T1 that the T4 rows holding ip name,
// in row order, each once (the row's primary among them: the session
// manager skips the session's owner). MACs T1 does not know are left out.
func (v *T4View) Substitutes(ip netip.Addr) []string {
	v.mu.Lock()
	var macs []string
	for _, lb := range v.lbs {
		for _, r := range v.rows[lb.Name] {
			if r.prefix.Contains(ip) {
				macs = append(macs, r.macs...)
			}
		}
	}
	v.mu.Unlock()
	if len(macs) == 0 {
		return nil
	}
	byMAC := map[string]string{}
	for _, g := range v.gateways() {
		if g.MAC != "" {
			byMAC[g.MAC] = g.Name
		}
	}
	var out []string
	for _, m := range macs {
		if n, ok := byMAC[m]; ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Rows returns the view, by LB then range.
func (v *T4View) Rows() []T4ViewRow {
	byMAC := map[string]string{}
	for _, g := range v.gateways() {
		if g.MAC != "" {
			byMAC[g.MAC] = g.Name
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	out := []T4ViewRow{}
	for _, lb := range v.lbs {
		for _, r := range v.rows[lb.Name] {
			row := T4ViewRow{LB: lb.Name, Range: r.prefix.String(), Gateways: []string{}}
			for _, m := range r.macs {
				if n, ok := byMAC[m]; ok {
					m = n
				}
				row.Gateways = append(row.Gateways, m)
			}
			out = append(out, row)
		}
	}
	return out
}

// Counters returns the counters.
func (v *T4View) Counters() T4ViewCounters {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.c
}

// Start reads every LB's T4 now and then every interval until ctx ends;
// Wait waits for it.
func (v *T4View) Start(ctx context.Context) {
	if len(v.lbs) == 0 {
		return
	}
	v.wg.Add(1)
	go v.routineRead(ctx)
}

// Wait blocks until the reader stopped.
func (v *T4View) Wait() { v.wg.Wait() }

func (v *T4View) routineRead(ctx context.Context) {
	defer v.wg.Done()
	retry := time.Second
	for {
		next := v.interval
		if !v.ReadAll(ctx) {
			next = min(retry, v.interval)
			retry = min(2*retry, v.interval)
		} else {
			retry = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// ReadAll reads every LB's T4 once, runs changed when the view changed,
// and reports whether every LB answered.
func (v *T4View) ReadAll(ctx context.Context) bool {
	ok, changed := true, false
	for _, lb := range v.lbs {
		rows, err := readT4(ctx, lb)
		v.mu.Lock()
		v.c.Reads++
		if err != nil {
			v.c.Failures++
			v.errs[lb.Name] = err.Error()
			ok = false
		} else {
			delete(v.errs, lb.Name)
			if !sameRows(v.rows[lb.Name], rows) {
				v.rows[lb.Name] = rows
				changed = true
			}
		}
		v.mu.Unlock()
	}
	if changed {
		v.mu.Lock()
		v.c.Changes++
		v.mu.Unlock()
		v.changed()
	}
	return ok
}

// readT4 reads lb's T4 and normalizes it (rows by range, MACs as T1
// writes them). A row that does not parse is an error: the LB's last good
// rows stay.
func readT4(ctx context.Context, lb health.LB) ([]t4ViewRow, error) {
	c := api.NewClient(lb.URL)
	c.Token = lb.Token
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	t, err := c.T4(rctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("lb %s: read t4: %w", lb.Name, err)
	}
	rows := make([]t4ViewRow, 0, len(t.Rows))
	for _, r := range t.Rows {
		p, err := netip.ParsePrefix(r.Range)
		if err != nil {
			return nil, fmt.Errorf("lb %s: t4 range %q: %w", lb.Name, r.Range, err)
		}
		row := t4ViewRow{prefix: p.Masked()}
		for _, g := range r.Gateways {
			hw, err := net.ParseMAC(g.MAC)
			if err != nil || len(hw) != 6 {
				return nil, fmt.Errorf("lb %s: t4 range %s: mac %q: not an Ethernet MAC", lb.Name, r.Range, g.MAC)
			}
			row.macs = append(row.macs, hw.String())
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].prefix.String() < rows[j].prefix.String() })
	return rows, nil
}

func sameRows(a, b []t4ViewRow) bool {
	return slices.EqualFunc(a, b, func(x, y t4ViewRow) bool { return x.prefix == y.prefix && slices.Equal(x.macs, y.macs) })
}
