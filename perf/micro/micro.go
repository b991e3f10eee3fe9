// Package micro is the `make perf` section "micro": the hot-path Go
// benchmarks (`go test -bench`, memory ports and table lookups, no
// devices) run -count times, summarized as medians per benchmark (as
// benchstat does) and written into their own section of BENCHMARKS.md.
// The raw `go test` output is saved beside it, in the format benchstat
// reads, so that two runs can be compared with benchstat.
//
// It runs `go` as a subprocess; nothing here is on a hot path.
package micro

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"samepath/perf/bench"
)

// Markers delimit the section of BENCHMARKS.md.
const (
	BeginMarker = "<!-- perf:micro begin -->"
	EndMarker   = "<!-- perf:micro end -->"
)

// Package is one package's benchmarks.
type Package struct {
	Path string // import path relative to the module root, e.g. "./dp"
	// Exclude names benchmarks (top level, without "Benchmark") left out:
	// those measured in a section of their own.
	Exclude []string
	// Sub, if set, selects the sub-benchmarks (the part of -bench after
	// the slash) of the benchmarks named in SubOf, which run in an
	// invocation of their own (a benchmark without sub-benchmarks would
	// report nothing under a two-level pattern).
	Sub   string
	SubOf []string
}

// Config configures a run.
type Config struct {
	Go        string // the go command
	Packages  []Package
	Count     int    // -count
	Benchtime string // -benchtime
	Out       io.Writer
	Command   string
}

// DefaultConfig is the `make perf` run: -count 5, -benchtime 100ms.
func DefaultConfig() Config {
	return Config{Go: "go", Count: 5, Benchtime: "100ms", Packages: []Package{
		{Path: "./dp"}, {Path: "./nat", Exclude: []string{"Hold1M"}, Sub: "^flows=1$", SubOf: []string{"Up", "Down", "Touch", "CreateDelete", "Expire"}}, {Path: "./dp/header"},
		{Path: "./dp/rewrite"}, {Path: "./dp/balance"}, {Path: "./dp/steer"}, {Path: "./dp/capture"},
	}}
}

// QuickConfig is a development run: -count 1, -benchtime 20ms.
func QuickConfig() Config {
	c := DefaultConfig()
	c.Count, c.Benchtime = 1, "20ms"
	return c
}

// Summary is the median [min-max] of one metric over the runs.
type Summary struct{ Median, Min, Max float64 }

func summarize(v []float64) Summary {
	return Summary{Median: bench.Median(v), Min: slices.Min(v), Max: slices.Max(v)}
}

// Row is one benchmark's results.
type Row struct {
	Pkg, Name string
	Runs      int
	Metrics   map[string]Summary // unit -> summary ("ns/op", "MB/s", "B/op", "allocs/op", custom)
}

// Result is a finished run.
type Result struct {
	Config Config
	Env    bench.Env
	Rows   []Row
	Raw    string // the go test output of every package
	Failed []string
}

func (c *Config) logf(format string, a ...any) {
	if c.Out != nil {
		fmt.Fprintf(c.Out, format+"\n", a...)
	}
}

// List returns the top-level benchmark names of pkg (go test -list).
func List(ctx context.Context, goCmd, pkg string) ([]string, error) {
	out, err := exec.CommandContext(ctx, goCmd, "test", "-list", "^Benchmark", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("go test -list %s: %w", pkg, err)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			names = append(names, strings.TrimSpace(l))
		}
	}
	return names, nil
}

// Run runs every package's benchmarks and summarizes them. A package that
// fails is recorded in Failed and the others go on.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Count < 1 || cfg.Benchtime == "" || cfg.Go == "" {
		return nil, fmt.Errorf("micro: count %d, benchtime %q, go %q: want count >= 1 and both set", cfg.Count, cfg.Benchtime, cfg.Go)
	}
	res := &Result{Config: cfg, Env: bench.Environment(cfg.Command)}
	var raw strings.Builder
	for _, p := range cfg.Packages {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		names, err := List(ctx, cfg.Go, p.Path)
		if err != nil {
			res.Failed = append(res.Failed, err.Error())
			cfg.logf("micro: %v", err)
			continue
		}
		var whole, sub []string
		for _, n := range names {
			short := strings.TrimPrefix(n, "Benchmark")
			switch {
			case slices.Contains(p.Exclude, short):
			case p.Sub != "" && slices.Contains(p.SubOf, short):
				sub = append(sub, regexp.QuoteMeta(n))
			default:
				whole = append(whole, regexp.QuoteMeta(n))
			}
		}
		for _, group := range []struct {
			names []string
			sub   string
		}{{whole, ""}, {sub, p.Sub}} {
			if len(group.names) == 0 {
				continue
			}
			pat := "^(" + strings.Join(group.names, "|") + ")$"
			if group.sub != "" {
				pat += "/" + group.sub
			}
			rows, out, err := runBench(ctx, &cfg, p.Path, pat)
			raw.WriteString(out)
			if err != nil {
				res.Failed = append(res.Failed, err.Error())
			}
			res.Rows = append(res.Rows, rows...)
		}
	}
	res.Raw = raw.String()
	res.Env.LoadAfter = bench.Loadavg()
	return res, nil
}

// runBench runs one go test -bench invocation and parses its output.
func runBench(ctx context.Context, cfg *Config, pkg, pattern string) ([]Row, string, error) {
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchmem",
		"-count", strconv.Itoa(cfg.Count), "-benchtime", cfg.Benchtime, pkg}
	cfg.logf("micro: %s %s", cfg.Go, strings.Join(args, " "))
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, cfg.Go, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s: %w: %s", pkg, err, lastLines(out.String(), 5))
		cfg.logf("micro: %v", err)
	}
	rows := Parse(out.String())
	cfg.logf("micro: %s: %d benchmarks in %s", pkg, len(rows), time.Since(start).Round(time.Second))
	return rows, out.String(), err
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// Parse reads go test -bench output (one or more packages) and returns
// one row per benchmark, in order of first appearance, with the median,
// min and max of every metric over its runs.
func Parse(out string) []Row {
	type acc struct {
		row  Row
		vals map[string][]float64
	}
	var order []string
	accs := map[string]*acc{}
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the GOMAXPROCS suffix
			}
		}
		key := pkg + " " + name
		a := accs[key]
		if a == nil {
			a = &acc{row: Row{Pkg: pkg, Name: strings.TrimPrefix(name, "Benchmark")}, vals: map[string][]float64{}}
			accs[key] = a
			order = append(order, key)
		}
		a.row.Runs++
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			a.vals[f[i+1]] = append(a.vals[f[i+1]], v)
		}
	}
	var rows []Row
	for _, k := range order {
		a := accs[k]
		a.row.Metrics = map[string]Summary{}
		for unit, v := range a.vals {
			a.row.Metrics[unit] = summarize(v)
		}
		rows = append(rows, a.row)
	}
	return rows
}

// Num formats a benchmark figure with 3 significant digits or so.
func Num(v float64) string {
	switch {
	case v == math.Trunc(v) && v < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// Markdown renders the section (markers included); raw is the path of the
// saved go test output relative to BENCHMARKS.md.
func (r *Result) Markdown(raw string) string {
	var b strings.Builder
	e, c := r.Env, r.Config
	fmt.Fprintf(&b, "%s\n## micro\n\n_Written by `make perf` (perf/micro); do not edit by hand._\n\n", BeginMarker)
	fmt.Fprintf(&b, "Hot-path Go benchmarks on memory ports and in-memory tables (no devices): per benchmark the median [min-max] over %d runs, as benchstat summarizes them. ", c.Count)
	fmt.Fprintf(&b, "For the pipelines (LB, GW) one op is one packet, including the memory ports' copy in and out. MB/s counts frame bytes. The raw output, in benchstat's input format, is in [%s](%s) (`benchstat old.txt %s` compares two runs).\n\n", raw, raw, raw)
	fmt.Fprintf(&b, "| | |\n|---|---|\n| date | %s |\n| commit | %s |\n| kernel | %s |\n| CPU | %s (%d CPUs) |\n", e.Date, e.Commit, e.Kernel, e.CPU, e.NCPU)
	fmt.Fprintf(&b, "| CPU placement | not pinned: GOMAXPROCS=%d, both CPUs shared with the rest of the box |\n", e.NCPU)
	fmt.Fprintf(&b, "| load average | %s before, %s after |\n", e.LoadBefore, e.LoadAfter)
	var cmds []string
	for _, p := range c.Packages {
		d := p.Path
		if p.Sub != "" {
			d += fmt.Sprintf(" (%s: sub-benchmarks %s only, a second invocation with pattern `^(NAMES)$/%s`)", strings.Join(p.SubOf, ", "), p.Sub, p.Sub)
		}
		cmds = append(cmds, d)
	}
	fmt.Fprintf(&b, "| command | `%s` |\n", e.Command)
	fmt.Fprintf(&b, "| per package | `%s test -run '^$' -bench '^(BENCHMARKS)$' -benchmem -count %d -benchtime %s PKG` for %s (BENCHMARKS: every benchmark of the package but those with a section of their own) |\n\n",
		c.Go, c.Count, c.Benchtime, strings.Join(cmds, ", "))
	fmt.Fprintf(&b, "| package | benchmark | ns/op | MB/s | B/op | allocs/op | other |\n|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		cell := func(unit string, spread bool) string {
			s, ok := row.Metrics[unit]
			if !ok {
				return "-"
			}
			if spread && s.Min != s.Max {
				return fmt.Sprintf("%s [%s-%s]", Num(s.Median), Num(s.Min), Num(s.Max))
			}
			return Num(s.Median)
		}
		var other []string
		var units []string
		for u := range row.Metrics {
			switch u {
			case "ns/op", "MB/s", "B/op", "allocs/op":
			default:
				units = append(units, u)
			}
		}
		slices.Sort(units)
		for _, u := range units {
			other = append(other, Num(row.Metrics[u].Median)+" "+u)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", strings.TrimPrefix(row.Pkg, "samepath/"), row.Name,
			cell("ns/op", true), cell("MB/s", false), cell("B/op", false), cell("allocs/op", false), strings.Join(other, ", "))
	}
	if len(r.Failed) > 0 {
		fmt.Fprintf(&b, "\nFailed:\n\n")
		for _, f := range r.Failed {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	fmt.Fprintf(&b, "%s\n", EndMarker)
	return b.String()
}

// Write saves the raw output at rawPath and the section into mdPath.
func (r *Result) Write(mdPath, rawPath string) error {
	if err := os.MkdirAll(filepath.Dir(rawPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(rawPath, []byte(r.Raw), 0o644); err != nil {
		return fmt.Errorf("write raw benchmark output: %w", err)
	}
	rel, err := bench.RelPath(mdPath, rawPath)
	if err != nil {
		return err
	}
	return bench.WriteSection(mdPath, BeginMarker, EndMarker, r.Markdown(rel))
}
