// Package radius is the `make perf` section "radius" (issue 5 benchmark):
// samepath-control's Access-Request throughput and latency on loopback,
// measured by the Go load generator bin/radload (perf/radload) run Reps
// times, as medians [min-max], against the target of 20 000 answers/s.
//
// It runs radload as a subprocess and parses its -json line; BenchAccess
// (access.go) is the in-process samepath-control radload measures by
// default. Nothing here is on a hot path.
package radius

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"time"

	"samepath/ctl/nas"
	"samepath/perf/bench"
)

// Markers delimit the section of BENCHMARKS.md.
const (
	BeginMarker = "<!-- perf:radius begin -->"
	EndMarker   = "<!-- perf:radius end -->"
)

// Target is issue 5's goal on this box, in answers per second.
const Target = 20000

// Config configures a run.
type Config struct {
	Radload string   // bin/radload
	Args    []string // its arguments (without -json)
	Reps    int
	Out     io.Writer
	Command string
}

// DefaultConfig is the `make perf` run: 3 runs of 3 s, 1 000 users, 4
// sockets with 64 requests in flight each (radload's defaults).
func DefaultConfig(radload string) Config {
	return Config{Radload: radload, Reps: 3, Args: []string{"-duration", "3s", "-users", "1000", "-conns", "4", "-window", "64"}}
}

// QuickConfig is a development run: 1 run of 1 s.
func QuickConfig(radload string) Config {
	c := DefaultConfig(radload)
	c.Reps, c.Args = 1, []string{"-duration", "1s", "-users", "200", "-conns", "4", "-window", "64"}
	return c
}

// Result is a finished run.
type Result struct {
	Config Config
	Env    bench.Env
	Runs   []nas.LoadResult
}

// Run runs radload Reps times.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Reps < 1 || cfg.Radload == "" {
		return nil, fmt.Errorf("radius: reps %d, radload %q: want reps >= 1 and a radload binary", cfg.Reps, cfg.Radload)
	}
	res := &Result{Config: cfg, Env: bench.Environment(cfg.Command)}
	args := append(slices.Clone(cfg.Args), "-json")
	for rep := 1; rep <= cfg.Reps; rep++ {
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, cfg.Radload, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return res, fmt.Errorf("radius: %s: %w: %s", cfg.Radload, err, strings.TrimSpace(errb.String()))
		}
		var r nas.LoadResult
		if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); err != nil {
			return res, fmt.Errorf("radius: parse radload output %q: %w", out.String(), err)
		}
		if r.Accepts == 0 {
			return res, fmt.Errorf("radius: run %d: no Access-Accept: %s", rep, r)
		}
		if cfg.Out != nil {
			fmt.Fprintf(cfg.Out, "radius rep %d: %s\n", rep, r)
		}
		res.Runs = append(res.Runs, r)
	}
	res.Env.LoadAfter = bench.Loadavg()
	return res, nil
}

type summary struct{ med, min, max float64 }

func (r *Result) summary(f func(nas.LoadResult) float64) summary {
	var v []float64
	for _, x := range r.Runs {
		v = append(v, f(x))
	}
	if len(v) == 0 {
		return summary{}
	}
	return summary{bench.Median(v), slices.Min(v), slices.Max(v)}
}

func ms(d float64) string { return fmt.Sprintf("%.2f", d/float64(time.Millisecond)) }

// Markdown renders the section (markers included).
func (r *Result) Markdown() string {
	var b strings.Builder
	e, c := r.Env, r.Config
	fmt.Fprintf(&b, "%s\n## radius\n\n_Written by `make perf` (perf/radius); do not edit by hand._\n\n", BeginMarker)
	fmt.Fprintf(&b, "samepath-control's RADIUS authentication (Access-Request with PAP -> Access-Accept with Framed-IP-Address) on loopback UDP, driven by bin/radload: its default mode starts samepath-control's server in-process (two gateways, the users in a temporary state directory, PBKDF2 paid once per user in a warm-up), then keeps a window of requests in flight per socket for the duration and measures answers per second and request-to-answer latency. Median [min-max] over %d runs.\n\n", len(r.Runs))
	fmt.Fprintf(&b, "| | |\n|---|---|\n| date | %s |\n| commit | %s |\n| kernel | %s |\n| CPU | %s (%d CPUs) |\n", e.Date, e.Commit, e.Kernel, e.CPU, e.NCPU)
	fmt.Fprintf(&b, "| CPU placement | not pinned: server and load generator share the %d CPUs (one process, GOMAXPROCS=%d) |\n", e.NCPU, e.NCPU)
	fmt.Fprintf(&b, "| load average | %s before, %s after |\n", e.LoadBefore, e.LoadAfter)
	fmt.Fprintf(&b, "| command | `%s` |\n| per run | `%s %s -json` |\n\n", e.Command, c.Radload, strings.Join(c.Args, " "))
	rate := r.summary(func(x nas.LoadResult) float64 { return x.Rate })
	p50 := r.summary(func(x nas.LoadResult) float64 { return float64(x.P50) })
	p99 := r.summary(func(x nas.LoadResult) float64 { return float64(x.P99) })
	mx := r.summary(func(x nas.LoadResult) float64 { return float64(x.Max) })
	var sent, acc, rej, to, inv uint64
	for _, x := range r.Runs {
		sent, acc, rej, to, inv = sent+x.Sent, acc+x.Accepts, rej+x.Rejects, to+x.Timeouts, inv+x.Invalid
	}
	fmt.Fprintf(&b, "| answers/s | x target (%d/s) | p50 ms | p99 ms | max ms | sent | accepts | rejects | timeouts | invalid |\n|---|---|---|---|---|---|---|---|---|---|\n", Target)
	fmt.Fprintf(&b, "| %.0f [%.0f-%.0f] | %.2f | %s | %s [%s-%s] | %s | %d | %d | %d | %d | %d |\n\n",
		rate.med, rate.min, rate.max, rate.med/Target, ms(p50.med), ms(p99.med), ms(p99.min), ms(p99.max), ms(mx.med), sent, acc, rej, to, inv)
	mark := "met"
	if rate.med < Target {
		mark = "MISSED"
	}
	fmt.Fprintf(&b, "Target (issue 5): Access-Request throughput >= %d/s: %.0f/s, %s. Counts are summed over the runs; latency is per request, from send to answer, including the load generator's own queueing with %s requests in flight.\n%s\n",
		Target, rate.med, mark, windowDesc(c.Args), EndMarker)
	return b.String()
}

func windowDesc(args []string) string {
	conns, window := "?", "?"
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-conns":
			conns = args[i+1]
		case "-window":
			window = args[i+1]
		}
	}
	return conns + " x " + window
}

// Write writes the section into mdPath.
func (r *Result) Write(mdPath string) error {
	return bench.WriteSection(mdPath, BeginMarker, EndMarker, r.Markdown())
}
