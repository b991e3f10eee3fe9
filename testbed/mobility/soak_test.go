package mobility_test

// The soak: one system per LB steering mode, every variant on it in turn.
//
//	mob1 [GET /bytes/N?rate=R, sha256, Trace, RSTCounter]
//	  ~~ nas1 -- lb1 --+
//	  ~~ nas2 -- lb2 --+-- LAN1 -- gw1, gw2 -- LAN2 -- a1 a2 (web-a, rep 10.30.0.1:80)
//	  ~~ nas3 -- lb3 --+
//	mob2 [the same, in the variant "two"]
//	moves: demo.System.Move (Stop Idle-Timeout, link, Start at the new NAS)

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/mobility"
	"samepath/testbed/privtest"
	"samepath/testbed/servers"
	"samepath/testbed/systest"
	"samepath/testbed/topo"
)

// TestMain lets the test binary run as the testbed's servers.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(servers.Main(os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

// form is how much the soak does: the download size, the moves during
// each download and the runs of each variant.
type form struct {
	name  string
	size  int64
	moves int
	runs  int
}

// soakForm is the short form, or the long one with SAMEPATH_SOAK=long.
func soakForm() form {
	if os.Getenv("SAMEPATH_SOAK") == "long" {
		return form{"long", 100 << 20, 10, 10}
	}
	return form{"short", 20 << 20, 4, 1}
}

const (
	// rate is the server's send rate per download (bytes/s): the moves
	// happen with data flowing, whatever the machine's speed.
	rate = 6 << 20
	// maxGap bounds the longest gap between received bytes around a move.
	maxGap = time.Second
	// settle: a gap starting up to this long after a move's end is still
	// around the move.
	settle = time.Second
	// stallLimit: a download that receives nothing for this long is given
	// up (and fails).
	stallLimit = 20 * time.Second
	// probeAfter: a download that received nothing for this long has its
	// drop counters sampled (result.stallProbe).
	probeAfter = 3 * time.Second
	// killHold is how long the mobile's LB is dead before the move away;
	// killGrace what may still arrive after the kill (already past it).
	// While it is dead the server's retransmission timer backs off, and
	// after the move only that timer brings the next segment (the mobile
	// has nothing to send), so the hold stays short of the 1 s limit's
	// backoff steps (RTO 200 ms+, doubling).
	killHold  = 300 * time.Millisecond
	killGrace = 100 * time.Millisecond
)

// variant is one way of moving.
type variant struct {
	name    string
	mobiles []string // downloading and moving at once
	kill    bool     // the mobile's LB is killed under it, then a move
}

var variants = []variant{
	{"one", []string{"mob1"}, false},
	{"two", []string{"mob1", "mob2"}, false},
	{"lbkill", []string{"mob1"}, true},
}

// TestMobilitySoak is issue 11's check: under both LB steering modes,
// for each variant, every download completes with the right SHA-256, no
// TCP reset in the mobile's namespace and a longest gap between received
// bytes around each move under maxGap.
func TestMobilitySoak(t *testing.T) {
	privtest.Require(t)
	f := soakForm()
	bin, err := demo.BuildBinaries(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("form %s: %d MiB downloads at %d MiB/s, %d moves each, %d runs per variant; seed %d",
		f.name, f.size>>20, rate>>20, f.moves, f.runs, seed)
	want := servers.BytesSHA256(f.size)
	for si, steering := range []string{"afxdp", "xdp"} {
		t.Run(steering, func(t *testing.T) {
			per := time.Duration(f.size/rate)*time.Second*3 + time.Duration(f.moves)*5*time.Second + time.Minute
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(f.runs*len(variants))*per)
			defer cancel()
			s := startSoak(ctx, t, bin, steering)
			for vi, v := range variants {
				t.Run(v.name, func(t *testing.T) {
					var longest []string
					worst := time.Duration(0)
					for run := 1; run <= f.runs; run++ {
						rs := make([]result, len(v.mobiles))
						before := s.drops(ctx)
						var wg sync.WaitGroup
						for i, name := range v.mobiles {
							rng := rand.New(rand.NewPCG(seed, uint64(si<<16|vi<<8|run<<4|i)))
							m, err := s.sys.TB.Plan.Mobile(name)
							if err != nil {
								t.Fatal(err)
							}
							at := m.Ingress // read while nothing moves
							wg.Add(1)
							go func() {
								defer wg.Done()
								rs[i] = s.download(ctx, name, at, f, v.kill, rng, want)
							}()
						}
						wg.Wait()
						failed := false
						for _, r := range rs {
							t.Logf("run %d/%d %s", run, f.runs, r)
							if msg := r.check(f); msg != "" {
								t.Errorf("run %d %s: %s", run, r.mobile, msg)
								failed = true
							}
							longest = append(longest, r.longest().Round(time.Millisecond).String())
							worst = max(worst, r.longest())
						}
						if failed {
							t.Logf("run %d: drops during it: %s", run, dropDelta(before, s.drops(ctx)))
						}
						if s.fatal != nil {
							t.Fatalf("the system is broken: %v", s.fatal)
						}
					}
					t.Logf("%s/%s: %d downloads, longest gap per download %s; worst %v (limit %v)",
						steering, v.name, len(longest), strings.Join(longest, " "), worst.Round(time.Millisecond), maxGap)
				})
			}
		})
	}
}

// soak is one running system with its mobiles logged in.
type soak struct {
	sys   *demo.System
	rst   map[string]*mobility.RSTCounter
	fatal error // set when an LB could not be restarted
}

// startSoak starts the FIG. 2 system with samepath-control under
// steering, logs both mobiles in at ingress 1 and installs their reset
// counters. The test's end tears it down; the system's own log is shown
// when the test failed.
func startSoak(ctx context.Context, t *testing.T, bin, steering string) *soak {
	t.Helper()
	exe, _ := os.Executable()
	out := &systest.Output{}
	sys, err := demo.Start(ctx, demo.Options{Samepathd: bin, Steering: steering, StartControl: true, ServeArgv: []string{exe, "serve"}, Out: out})
	if err != nil {
		t.Log("\n" + out.String())
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sys.Close()
		if t.Failed() {
			t.Log("\n" + out.String())
		}
	})
	s := &soak{sys: sys, rst: map[string]*mobility.RSTCounter{}}
	for _, m := range sys.TB.Plan.Mobiles {
		if _, err := sys.Login(ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		if s.rst[m.Name], err = mobility.NewRSTCounter(m.NS); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// move is one move during a download.
type move struct {
	from, to   int
	offset     int64 // bytes received when it started
	start, end time.Time
	gap        time.Duration // longest gap between received bytes around it
}

// result is one download.
type result struct {
	mobile        string
	bytes         int64
	sumOK         bool
	dur           time.Duration
	moves         []move
	rstIn, rstOut uint64
	killed        int   // the LB killed under the mobile (0: none)
	killedBytes   int64 // bytes that arrived while it was dead
	// anyGap is the longest gap between received bytes over the whole
	// download, moves or not (not checked: it tells a move's stall from
	// a machine too busy to forward).
	anyGap time.Duration
	// stallProbe says, for a download that received nothing for
	// probeAfter, which drop counters grew over the next second.
	stallProbe string
	err        error
}

func (r result) longest() time.Duration {
	var l time.Duration
	for _, m := range r.moves {
		l = max(l, m.gap)
	}
	return l
}

func (r result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d bytes in %v, sha256 ok %v, RST in/out %d/%d, longest gap %v around a move, %v anywhere; moves:",
		r.mobile, r.bytes, r.dur.Round(time.Millisecond), r.sumOK, r.rstIn, r.rstOut, r.longest().Round(time.Millisecond), r.anyGap.Round(time.Millisecond))
	for _, m := range r.moves {
		fmt.Fprintf(&b, " %d->%d@%.1fMiB(%v, gap %v)", m.from, m.to, float64(m.offset)/(1<<20), m.end.Sub(m.start).Round(time.Millisecond), m.gap.Round(time.Millisecond))
	}
	if r.stallProbe != "" {
		fmt.Fprintf(&b, "; stalled: %s", r.stallProbe)
	}
	if r.killed != 0 {
		fmt.Fprintf(&b, "; lb%d killed before a move, %d bytes arrived while it was dead", r.killed, r.killedBytes)
	}
	if r.err != nil {
		fmt.Fprintf(&b, "; error: %v", r.err)
	}
	return b.String()
}

// check returns what is wrong with r ("" when nothing).
func (r result) check(f form) string {
	var bad []string
	if r.err != nil {
		bad = append(bad, r.err.Error())
	}
	if !r.sumOK {
		bad = append(bad, fmt.Sprintf("%d bytes, SHA-256 mismatch or short (want %d)", r.bytes, f.size))
	}
	if r.rstIn != 0 || r.rstOut != 0 {
		bad = append(bad, fmt.Sprintf("TCP resets in the mobile's namespace: %d in, %d out", r.rstIn, r.rstOut))
	}
	if len(r.moves) != f.moves {
		bad = append(bad, fmt.Sprintf("%d moves, want %d", len(r.moves), f.moves))
	}
	for k, m := range r.moves {
		if m.gap >= maxGap {
			bad = append(bad, fmt.Sprintf("move %d (ingress %d -> %d at %d bytes): %v without a byte (limit %v)", k+1, m.from, m.to, m.offset, m.gap.Round(time.Millisecond), maxGap))
		}
	}
	if r.killed != 0 && r.killedBytes != 0 {
		bad = append(bad, fmt.Sprintf("lb%d carried %d bytes after it was killed", r.killed, r.killedBytes))
	}
	return strings.Join(bad, "; ")
}

// download fetches f.size bytes through web-a to mobile (at ingress
// point at), reading as fast
// as it can (default receive buffer), while moving it f.moves times to
// random other ingress points at random byte offsets, one in each equal
// slot of 5-85% of the body; with kill, the LB the mobile uses is
// SIGKILLed before one of the moves (and restarted after the download).
func (s *soak) download(ctx context.Context, mobile string, at int, f form, kill bool, rng *rand.Rand, want [32]byte) result {
	r := result{mobile: mobile}
	p := s.sys.TB.Plan
	m, err := p.Mobile(mobile)
	if err != nil {
		r.err = err
		return r
	}
	in0, out0, err := s.rst[mobile].Read()
	if err != nil {
		r.err = err
		return r
	}
	ns := m.NS
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return topo.Dial(ctx, ns, network, addr)
		}}}
	url := fmt.Sprintf("http://%s/bytes/%d?rate=%d", netip.AddrPortFrom(p.Groups[0].VIPv4, fig2.HTTPPort), f.size, rate)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tr := &mobility.Trace{}
	done := make(chan struct{})
	var sum [32]byte
	var rerr error
	var stalled atomic.Bool
	start := time.Now()
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(dctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			rerr = err
			return
		}
		defer resp.Body.Close()
		if resp.ContentLength != f.size {
			rerr = fmt.Errorf("Content-Length %d, want %d", resp.ContentLength, f.size)
			return
		}
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				h.Write(buf[:n])
				tr.Add(n)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				rerr = err
				return
			}
		}
		h.Sum(sum[:0])
	}()
	var probeMu sync.Mutex
	var probe string
	go func() { // the stall watchdog
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		probed := false
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			last := tr.Last()
			if last.IsZero() {
				last = start
			}
			if !probed && time.Since(last) > probeAfter {
				// Where do the mobile's down packets go now? The LB
				// whose no_route count grows is where the gateway
				// sends them (T12).
				probed = true
				a := s.drops(ctx)
				time.Sleep(time.Second)
				d := dropDelta(a, s.drops(ctx))
				probeMu.Lock()
				probe = fmt.Sprintf("%v after the last byte, drops over 1 s: %s", time.Since(last).Round(time.Millisecond), d)
				probeMu.Unlock()
			}
			if time.Since(last) > stallLimit {
				stalled.Store(true)
				cancel()
				return
			}
		}
	}()
	killAt, dead, cur := -1, 0, at
	if kill {
		killAt = rng.IntN(f.moves)
	}
	lo, hi := f.size/20, f.size*17/20
	for k := 0; k < f.moves; k++ {
		slot := (hi - lo) / int64(f.moves)
		off := lo + int64(k)*slot + rng.Int64N(slot)
		if !waitBytes(tr, off, done) {
			if rerr == nil { // written before done closed
				r.err = fmt.Errorf("the download ended (%d bytes) before move %d at %d", tr.Bytes(), k+1, off)
			}
			break
		}
		if k == killAt {
			if err := s.sys.KillLB(cur); err != nil {
				r.err = err
				break
			}
			killed := time.Now()
			r.killed, dead = cur, cur
			select {
			case <-done:
			case <-time.After(killHold):
			}
			r.killedBytes = tr.Between(killed.Add(killGrace), time.Now())
		}
		var to []int
		for n := 1; n <= fig2.NumIngress; n++ {
			if n != cur && n != dead {
				to = append(to, n)
			}
		}
		mv := move{from: cur, to: to[rng.IntN(len(to))], offset: tr.Bytes(), start: time.Now()}
		if err := s.sys.Move(ctx, mobile, mv.to); err != nil {
			r.err = fmt.Errorf("move %d to ingress %d: %w", k+1, mv.to, err)
			break
		}
		mv.end = time.Now()
		r.moves = append(r.moves, mv)
		cur = mv.to
	}
	<-done
	end := time.Now()
	probeMu.Lock()
	r.stallProbe = probe
	probeMu.Unlock()
	r.dur = end.Sub(start)
	for k := range r.moves {
		r.moves[k].gap = tr.Gap(r.moves[k].start, r.moves[k].end.Add(settle), end)
	}
	r.anyGap = tr.Gap(start, end, end)
	r.bytes = tr.Bytes()
	r.sumOK = rerr == nil && r.bytes == f.size && sum == want
	if rerr != nil && r.err == nil {
		r.err = fmt.Errorf("download after %d bytes: %w", r.bytes, rerr)
		if stalled.Load() {
			r.err = fmt.Errorf("download stalled: nothing for %v after %d bytes (%v since its start)", stallLimit, r.bytes, tr.Last().Sub(start).Round(time.Millisecond))
		}
	}
	c.CloseIdleConnections()
	in1, out1, err := s.rst[mobile].Read()
	if err != nil && r.err == nil {
		r.err = err
	}
	r.rstIn, r.rstOut = in1-in0, out1-out0
	if dead != 0 {
		if err := s.sys.RestartLB(ctx, dead); err != nil {
			s.fatal = fmt.Errorf("restart lb%d: %w", dead, err)
		}
	}
	return r
}

// drops sums every LB's and gateway's drop counters by daemon and reason
// ("lb2 no_route"); unreachable daemons are left out.
func (s *soak) drops(ctx context.Context) map[string]uint64 {
	out := map[string]uint64{}
	add := func(name string, c *api.Client) {
		cs, err := c.Counters(ctx)
		if err != nil {
			return
		}
		for _, q := range cs.Queues {
			for reason, n := range q.Drops {
				out[name+" "+reason] += n
			}
			for _, k := range api.SocketDrops {
				out[name+" xsk_"+k] += q.Socket[k]
			}
		}
	}
	for i, c := range s.sys.LBs {
		add(fmt.Sprintf("lb%d", i+1), c)
	}
	for i, c := range s.sys.GWs {
		add(fmt.Sprintf("gw%d", i+1), c)
	}
	return out
}

// dropDelta lists the counters that grew from a to b (a restarted
// daemon's count from zero).
func dropDelta(a, b map[string]uint64) string {
	var out []string
	for k, n := range b {
		if d := n - a[k]; n > a[k] {
			out = append(out, fmt.Sprintf("%s +%d", k, d))
		} else if n < a[k] && n > 0 {
			out = append(out, fmt.Sprintf("%s %d (restarted)", k, n))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// waitBytes waits until tr has off bytes; false when the download ended
// first.
func waitBytes(tr *mobility.Trace, off int64, done <-chan struct{}) bool {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for tr.Bytes() < off {
		select {
		case <-done:
			return tr.Bytes() >= off
		case <-tick.C:
		}
	}
	return true
}
