package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"samepath/perf/pktgen"
	"samepath/perf/xdpprog"
)

// Case is one traffic shape.
type Case struct {
	Size  int // frame size with FCS
	Flows int
}

func (c Case) String() string { return fmt.Sprintf("%d B, %d flows", c.Size, c.Flows) }

// Config configures a run of a scenario.
type Config struct {
	// Scenario names the run in errors and logs ("lb-steer", "gw-nat").
	Scenario string
	Reps     int           // runs of each variant, alternating (A B A B ...)
	Warm     time.Duration // traffic before counting starts
	Measure  time.Duration // counting window
	Cases    []Case
	Variants []Variant
	GenCPU   int // generator thread
	SinkCPU  int // the sink device's NAPI thread
	Batch    int // live-frames kernel batch size
	// SinkSoftirq leaves the sink device's NAPI unthreaded: it then runs in
	// softirq on whichever CPU scheduled it (the DUT's, for most variants).
	SinkSoftirq bool
	GenRate     float64 // generator pps; 0 = full speed
	// NAPIFifo, when > 0, runs the pinned NAPI threads SCHED_FIFO at this
	// priority, so that other work on a shared box cannot delay them.
	NAPIFifo int
	Prefix   string
	Out      io.Writer // progress log; nil = silent
	Verbose  bool      // also log the veth drop/error counters that moved
	// DevDrops records the veth drop/error counters that moved during each
	// case (whole case, warm-up included) in the samples' DevDrops.
	Command  string // recorded as the exact command
	DevDrops bool
	// Frame, when set, adjusts the generated frames of a case (e.g. the
	// destination address and port); by default they go from SrcIP to
	// DstIP of the topology, UDP port 9, with the case's flows spread
	// over source ports and (50 000 ports each) source addresses.
	Frame func(t *Topology, c Case, f *pktgen.FrameSpec)
	// Engine is the generator's engine: pktgen.EngineLive (the default,
	// fastest) or pktgen.EngineAFXDP. Live frames are recycled by the
	// kernel without restoring their bytes, so a device under test that
	// rewrites headers in place (kernel forwarding, NAT) changes the frames
	// the generator sends next; AF_XDP copy-mode TX hands the DUT a copy.
	Engine string
	// GenFrames describes the generated frames in the report (default
	// "IPv4 UDP").
	GenFrames string
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Reps < 1:
		return fmt.Errorf("%s: reps must be >= 1", c.Scenario)
	case c.Measure <= 0 || c.Warm < 0:
		return fmt.Errorf("%s: measure must be > 0 and warm >= 0", c.Scenario)
	case len(c.Cases) == 0 || len(c.Variants) == 0:
		return fmt.Errorf("%s: no cases or no variants", c.Scenario)
	case runtime.NumCPU() < 2 && (c.GenCPU != 0 || c.SinkCPU != 0):
		return fmt.Errorf("%s: needs 2 CPUs for the placement", c.Scenario)
	}
	return nil
}

// Sample is one measurement.
type Sample struct {
	Variant string
	Case    Case
	Rep     int
	SinkPPS float64 // frames per second counted at the sink
	SinkBPS float64 // bits per second at the sink (with FCS)
	GenPPS  float64 // generator's own rate
	Loss    float64 // fraction of stamped frames not received (whole run)
	Late    uint64  // stamped frames received out of order
	// Note is what the variant's Observe hook recorded after the case
	// (e.g. the DUT's own drop counters); empty without one.
	Note string `json:",omitempty"`
	// DevDrops lists the veth drop and error counters that moved during
	// the case (Config.DevDrops).
	DevDrops string `json:",omitempty"`
	// CPUBusy is, per CPU, the fraction of the counting window not idle
	// (/proc/stat deltas: everything but idle and iowait), whoever ran.
	CPUBusy []float64 `json:",omitempty"`
}

// Env records the machine and the run.
type Env struct {
	Date, Commit, Kernel, CPU, Command string
	NCPU                               int
	// LoadBefore and LoadAfter are /proc/loadavg around the run: other
	// work on the box shows here.
	LoadBefore, LoadAfter string
}

// Result is a finished run.
type Result struct {
	Config    Config
	Env       Env
	Samples   []Sample
	Skipped   map[string]string   // variant name -> reason
	Placement map[string][]string // variant name -> placement and XDP mode lines
}

// Variant returns the configured variant called name.
func (r *Result) Variant(name string) (Variant, bool) {
	for _, v := range r.Config.Variants {
		if v.Name == name {
			return v, true
		}
	}
	return Variant{}, false
}

func (c *Config) logf(format string, a ...any) {
	if c.Out != nil {
		fmt.Fprintf(c.Out, format+"\n", a...)
	}
}

// Run builds the topology, measures every variant and case Reps times in
// alternation, and tears everything down.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	res := &Result{Config: cfg, Env: Environment(cfg.Command), Skipped: map[string]string{}, Placement: map[string][]string{}}
	var active []Variant
	for _, v := range cfg.Variants {
		if v.Skip != nil {
			if err := v.Skip(); err != nil {
				res.Skipped[v.Name] = err.Error()
				cfg.logf("skip %s: %v", v.Name, err)
				continue
			}
		}
		active = append(active, v)
	}
	if gone, err := CleanStale(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("clean stale runs: %w", err)
	} else if len(gone) > 0 {
		cfg.logf("removed namespaces of dead runs: %v", gone)
	}
	t := NewTopology(cfg.Prefix)
	if err := t.Up(); err != nil {
		return nil, err
	}
	cfg.logf("%s topology %s: %s/%s -> %s/%s | %s/%s -> %s/%s", cfg.Scenario, t.Prefix, t.Gen, t.GenDev, t.DUT, t.In, t.DUT, t.Out, t.Sink, t.SinkDev)
	var runErr error
	measurements := 0
	// Variants alternate per case (A B A B for one frame size and flow
	// count, then the next case), so the measurements a ratio pairs are
	// seconds apart: the host's state (two vCPUs whose speed changes with
	// what else the host runs) drifts less between them than over a whole
	// variant's cases. Each variant is set up again for each case.
	for rep := 1; rep <= cfg.Reps && runErr == nil; rep++ {
		for ci, c := range cfg.Cases {
			for _, v := range active {
				if ctx.Err() != nil {
					runErr = ctx.Err()
					break
				}
				if _, failed := res.Skipped[v.Name]; failed {
					continue
				}
				first := rep == 1 && ci == 0
				samples, place, err := runVariant(ctx, &cfg, t, v, rep, []Case{c}, first, &measurements)
				if err != nil {
					// A failing DUT must not hide the baselines: record and go on.
					res.Skipped[v.Name] = fmt.Sprintf("failed in rep %d: %v", rep, err)
					cfg.logf("variant %s failed: %v", v.Name, err)
					continue
				}
				if first {
					res.Placement[v.Name] = place
				}
				res.Samples = append(res.Samples, samples...)
			}
			if runErr != nil {
				break
			}
		}
	}
	if err := t.Down(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("teardown: %w", err))
	}
	res.Env.LoadAfter = Loadavg()
	return res, runErr
}

// runVariant sets variant v up, measures cases and tears it down; with
// logPlace it logs the placement it checked.
func runVariant(ctx context.Context, cfg *Config, t *Topology, v Variant, rep int, cases []Case, logPlace bool, n *int) (_ []Sample, _ []string, err error) {
	teardown, err := v.Setup(t)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if terr := teardown(); terr != nil {
			err = errors.Join(err, terr)
		}
	}()
	sinkCPU := cfg.SinkCPU
	if cfg.SinkSoftirq {
		sinkCPU = -1
	}
	sinkNS, sinkDev := t.Sink, t.SinkDev
	if v.SinkOn == SinkGen {
		sinkNS, sinkDev = t.Gen, t.GenDev
	}
	sink, err := pktgen.OpenSink(sinkNS, sinkDev, false)
	if err != nil {
		return nil, nil, err
	}
	defer sink.Close()

	var place []string
	for _, p := range []struct {
		what, ns, dev string
		cpu           int
	}{{"DUT ingress " + t.In, t.DUT, t.In, v.InNAPICPU}, {"sink " + sinkDev, sinkNS, sinkDev, sinkCPU}} {
		if p.cpu < 0 {
			mode, err := XDPMode(p.ns, p.dev)
			if err != nil {
				return nil, nil, err
			}
			place = append(place, fmt.Sprintf("%s: NAPI not threaded (softirq where scheduled); XDP attach: %s", p.what, mode))
			continue
		}
		ths, err := PinNAPI(p.ns, p.dev, p.cpu, cfg.NAPIFifo)
		if err != nil {
			return nil, nil, err
		}
		mode, err := XDPMode(p.ns, p.dev)
		if err != nil {
			return nil, nil, err
		}
		if len(ths) == 0 {
			return nil, nil, fmt.Errorf("%s: no napi/%s-* thread (no NAPI on the device?)", p.what, p.dev)
		}
		for _, th := range ths {
			place = append(place, fmt.Sprintf("%s: NAPI thread %s (pid %d) allowed CPUs %s, %s; XDP attach: %s", p.what, th.Name, th.PID, th.Allowed, th.Policy, mode))
		}
		if mode != "xdp" && mode != "none" {
			return nil, nil, fmt.Errorf("%s: XDP attached as %s, want native (xdp)", p.what, mode)
		}
	}
	engine := "live frames"
	if cfg.Engine == pktgen.EngineAFXDP {
		engine = "AF_XDP TX"
	}
	place = append(place, fmt.Sprintf("generator: pktgen %s thread pinned to CPU%d in %s, out of %s", engine, cfg.GenCPU, t.Gen, t.GenDev))
	if v.Placement != nil {
		place = append(place, v.Placement(cfg.NAPIFifo)...)
	}
	if logPlace {
		for _, l := range place {
			cfg.logf("  %s | %s", v.Name, l)
		}
	}
	var out []Sample
	for _, c := range cases {
		*n++
		s, err := measure(ctx, cfg, t, sink, v, c, *n)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", c, err)
		}
		s.Variant, s.Rep = v.Name, rep
		if v.Observe != nil {
			s.Note = v.Observe(c)
		}
		cfg.logf("rep %d %-16s %-20s sink %7.3f Mpps %7.3f Gbit/s  gen %7.3f Mpps  loss %5.1f%%  late %d",
			rep, v.Name, c, s.SinkPPS/1e6, s.SinkBPS/1e9, s.GenPPS/1e6, 100*s.Loss, s.Late)
		if s.Note != "" {
			cfg.logf("    %s: %s", v.Name, s.Note)
		}
		out = append(out, s)
	}
	return out, place, nil
}

// measure runs one case; n numbers the run's measurements (for stream ids).
func measure(ctx context.Context, cfg *Config, t *Topology, sink *pktgen.Sink, v Variant, c Case, n int) (Sample, error) {
	if err := sink.Reset(); err != nil {
		return Sample{}, err
	}
	tx := pktgen.DefaultTxConfig()
	tx.Netns, tx.Iface = t.Gen, t.GenDev
	tx.Frame.Size, tx.Frame.SrcMAC, tx.Frame.DstMAC = c.Size, t.GenMAC, t.InMAC
	tx.Frame.SrcIP, tx.Frame.DstIP = t.SrcIP, t.DstIP
	tx.Frame.SrcAddrs = (c.Flows + 49999) / 50000
	tx.Frame.SrcPorts = (c.Flows + tx.Frame.SrcAddrs - 1) / tx.Frame.SrcAddrs
	if cfg.Frame != nil {
		cfg.Frame(t, c, &tx.Frame)
	}
	if v.Frame != nil {
		v.Frame(t, c, &tx.Frame)
	}
	if cfg.Engine != "" {
		tx.Engine = cfg.Engine
	}
	tx.CPUs, tx.Batch, tx.Rate = []int{cfg.GenCPU}, cfg.Batch, cfg.GenRate
	tx.Duration = cfg.Warm + cfg.Measure + 100*time.Millisecond
	// A fresh stream id per measurement: frames of the previous one still
	// queued in the DUT then count under their own stream, not as late
	// frames of this one.
	tx.StreamBase = uint32(n % xdpprog.MaxGenStreams)
	type txDone struct {
		r   pktgen.TxResult
		err error
	}
	devs := [][2]string{{t.Gen, t.GenDev}, {t.DUT, t.In}, {t.DUT, t.Out}, {t.Sink, t.SinkDev}}
	var before []map[string]uint64
	if cfg.Verbose || cfg.DevDrops {
		for _, d := range devs {
			m, _ := devStats(d[0], d[1])
			before = append(before, m)
		}
	}
	done := make(chan txDone, 1)
	go func() {
		r, err := pktgen.RunTx(ctx, tx)
		done <- txDone{r, err}
	}()
	fail := func(err error) (Sample, error) { <-done; return Sample{}, err }
	time.Sleep(cfg.Warm)
	a, err := sink.Totals()
	ta := time.Now()
	statA, _ := cpuTimes()
	if err != nil {
		return fail(err)
	}
	time.Sleep(cfg.Measure)
	b, err := sink.Totals()
	tb := time.Now()
	statB, _ := cpuTimes()
	if err != nil {
		return fail(err)
	}
	d := <-done
	if d.err != nil {
		return Sample{}, d.err
	}
	time.Sleep(50 * time.Millisecond) // let the last frames drain before reading streams
	snap, err := sink.Snapshot()
	if err != nil {
		return Sample{}, err
	}
	drops := ""
	if cfg.Verbose || cfg.DevDrops {
		var parts []string
		for i, d := range devs {
			m, _ := devStats(d[0], d[1])
			if l := lossCounters(d[1], before[i], m, d[1] == sink.Iface); l != "" {
				parts = append(parts, l)
			}
		}
		drops = strings.Join(parts, "; ")
		if cfg.Verbose {
			cfg.logf("    drops/errors: %s", drops)
		}
	}
	dt := tb.Sub(ta).Seconds()
	s := Sample{Case: c,
		SinkPPS: float64(b.Packets-a.Packets) / dt,
		SinkBPS: float64(b.Bytes-a.Bytes+pktgen.FCSLen*(b.Packets-a.Packets)) * 8 / dt,
		GenPPS:  d.r.PPS(), Late: snap.Streams.Late, DevDrops: drops, CPUBusy: busy(statA, statB)}
	if d.r.Packets > 0 {
		s.Loss = 1 - float64(snap.Streams.Received)/float64(d.r.Packets)
	}
	return s, nil
}

// Environment records the machine, the commit and the load average now.
func Environment(command string) Env {
	e := Env{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), NCPU: runtime.NumCPU(), Command: command, LoadBefore: Loadavg()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		e.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				e.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		e.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			e.Commit += " (dirty)"
		}
	}
	return e
}

// Loadavg is the first three fields of /proc/loadavg ("?" if unreadable).
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuTimes reads the per-CPU lines of /proc/stat: busy and total ticks.
func cpuTimes() ([][2]uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	var out [][2]uint64
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var total, idle uint64
		for i, v := range f[1:] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat %s: %w", f[0], err)
			}
			if i >= 7 { // steal, guest, guest_nice: not this guest's time
				break
			}
			total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		out = append(out, [2]uint64{total - idle, total})
	}
	return out, nil
}

// busy is the busy fraction per CPU between two cpuTimes readings.
func busy(a, b [][2]uint64) []float64 {
	if len(a) != len(b) {
		return nil
	}
	out := make([]float64, len(a))
	for i := range a {
		if dt := b[i][1] - a[i][1]; dt > 0 {
			out[i] = float64(b[i][0]-a[i][0]) / float64(dt)
		}
	}
	return out
}
