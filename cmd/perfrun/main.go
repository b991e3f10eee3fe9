// Command perfrun runs samepath's `make perf` scenarios and rewrites their
// sections of BENCHMARKS.md.
//
//	perfrun -scenario all                      # everything `make perf` runs (< 10 min, plus ~10 min of tcp-split)
//	perfrun -scenario tcp-split                # TCP termination against NAT and HAProxy (~8-12 min; -quick ~1 min)
//	perfrun -scenario lb-steer                 # one scenario
//	perfrun -scenario gw-nat,radius -quick     # 1 rep, short windows, for development
//	perfrun -scenario lb-steer -variants xdp-redirect,kernel-fwd
//
// Scenarios: lb-steer, gw-nat and xlat (packets through a device under
// test, perf/lbsteer, perf/gwnat and perf/xlatgw on perf/bench), micro (go test -bench of the
// hot paths, perf/micro), flows-1m (the NAT table holding 1 M flows,
// perf/flowmem) and radius (bin/radload against samepath-control,
// perf/radius) and tcp-split (downloads through NAT, the TCP terminator and
// HAProxy over emulated wireless links, perf/tcpsplit).
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"samepath/internal/version"
	"samepath/perf/bench"
	"samepath/perf/flowmem"
	"samepath/perf/gwnat"
	"samepath/perf/lbsteer"
	"samepath/perf/micro"
	"samepath/perf/radius"
	"samepath/perf/tcpsplit"
	"samepath/perf/xlatgw"
)

// packet is a packet scenario: its configs and how it renders.
type packet struct {
	name         string
	def, quick   func(samepathd string) bench.Config
	write        func(r *bench.Result, md, chart string) error
	load         func(path string) (*bench.Result, error)
	defaultChart string
}

var packets = []packet{
	{name: "lb-steer", def: lbsteer.DefaultConfig, quick: lbsteer.QuickConfig, write: lbsteer.Write, load: lbsteer.LoadResult,
		defaultChart: "perf/results/lb-steer.svg"},
	{name: "gw-nat", def: gwnat.DefaultConfig, quick: gwnat.QuickConfig, write: gwnat.Write, load: gwnat.LoadResult,
		defaultChart: "perf/results/gw-nat.svg"},
	{name: "xlat", def: xlatgw.DefaultConfig, quick: xlatgw.QuickConfig, write: xlatgw.Write, load: xlatgw.LoadResult,
		defaultChart: "perf/results/xlat.svg"},
}

var allScenarios = []string{"micro", "flows-1m", "radius", "lb-steer", "gw-nat", "xlat", "tcp-split"}

type flags struct {
	quick                   bool
	reps                    int
	measure                 time.Duration
	samepathd, radload, goC string
	variants                map[string]bool
	genRate                 float64
	sinkSoftirq             bool
	sinkThreaded            bool
	fifo                    int
	verbose                 bool
	md, chart, render       string
	microRaw                string
	command                 string
	splitSize               int64
	splitCases              string
}

func main() {
	var f flags
	scenario := flag.String("scenario", "lb-steer", "comma-separated scenarios, or all: "+strings.Join(allScenarios, ", "))
	flag.BoolVar(&f.quick, "quick", false, "development run: 1 rep, short windows, fewer benchmark runs")
	flag.IntVar(&f.reps, "reps", 0, "runs per variant of the packet scenarios (default 3, quick 1)")
	flag.DurationVar(&f.measure, "measure", 0, "counting window per case of the packet scenarios (default 2s, quick 0.5s)")
	flag.StringVar(&f.samepathd, "samepathd", "bin/samepathd", "samepathd binary for the samepathd variants")
	flag.StringVar(&f.radload, "radload", "bin/radload", "radload binary (scenario radius)")
	flag.StringVar(&f.goC, "go", "go", "go command (scenarios micro and flows-1m)")
	variants := flag.String("variants", "", "comma-separated variant names of the packet scenarios (default all): lb-steer xdp-redirect,xdp-tx,kernel-fwd,samepathd-afxdp,samepathd-xdp,afxdp-l2fwd; gw-nat nft-nat,samepathd-gw,afxdp-l2fwd; xlat gw-v4,gw-xlat; tcp-split nat,terminate,haproxy,afxdp-l2fwd,kernel-fwd")
	flag.Float64Var(&f.genRate, "gen-rate", 0, "generator rate in pps (0 = full speed)")
	flag.BoolVar(&f.sinkSoftirq, "sink-softirq", false, "leave the sink's NAPI unthreaded: softirq on the CPU that transmits into it (the default of lb-steer and gw-nat)")
	flag.BoolVar(&f.sinkThreaded, "sink-threaded", false, "thread the sink's NAPI and pin it to CPU0, beside the generator, instead")
	flag.IntVar(&f.fifo, "napi-fifo", 50, "run the pinned NAPI threads SCHED_FIFO at this priority (0 = leave them SCHED_OTHER)")
	flag.BoolVar(&f.verbose, "v", false, "log the veth drop and error counters of every measurement")
	flag.StringVar(&f.md, "md", "BENCHMARKS.md", "markdown file whose sections are rewritten; empty = do not write")
	flag.StringVar(&f.chart, "chart", "", "SVG chart path of a single packet scenario (default perf/results/SCENARIO.svg)")
	flag.StringVar(&f.render, "render", "", "re-render -md and -chart of one packet scenario from its saved results JSON (written beside the chart) without measuring")
	flag.StringVar(&f.microRaw, "micro-raw", "perf/results/micro.txt", "where scenario micro saves the raw go test output (benchstat input)")
	flag.Int64Var(&f.splitSize, "split-size", 0, "bytes per download of tcp-split (default 20 MiB, quick 2 MiB)")
	flag.StringVar(&f.splitCases, "split-cases", "", "comma-separated cases of tcp-split (default all): window, lossy, clean")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: perfrun [flags]\n\nexamples:\n  perfrun -scenario all\n  perfrun -scenario gw-nat -quick\n  perfrun -scenario lb-steer -render perf/results/lb-steer.json\n\n")
		flag.PrintDefaults()
	}
	version.AddFlag(flag.CommandLine, "perfrun", os.Stdout, os.Exit)
	flag.Parse()
	f.command = strings.Join(os.Args, " ")
	var want []string
	for _, s := range strings.Split(*scenario, ",") {
		s = strings.TrimSpace(s)
		if s == "all" {
			want = append(want, allScenarios...)
			continue
		}
		known := false
		for _, a := range allScenarios {
			known = known || a == s
		}
		if !known {
			fmt.Fprintf(os.Stderr, "perfrun: unknown scenario %q (have: %s, all)\n", s, strings.Join(allScenarios, ", "))
			os.Exit(2)
		}
		want = append(want, s)
	}
	if *variants != "" {
		f.variants = map[string]bool{}
		for _, v := range strings.Split(*variants, ",") {
			f.variants[strings.TrimSpace(v)] = true
		}
	}
	if f.chart != "" && len(want) > 1 {
		fmt.Fprintln(os.Stderr, "perfrun: -chart names the chart of one scenario")
		os.Exit(2)
	}
	if f.render != "" {
		if len(want) != 1 {
			fmt.Fprintln(os.Stderr, "perfrun: -render needs exactly one packet scenario")
			os.Exit(2)
		}
		if want[0] == "tcp-split" {
			res, err := tcpsplit.LoadResult(f.render)
			chart := cmp.Or(f.chart, tcpsplit.DefaultChart)
			if err == nil {
				err = tcpsplit.Write(res, f.md, chart)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "perfrun:", err)
				os.Exit(1)
			}
			fmt.Printf("rendered %s into %s and %s\n", f.render, f.md, chart)
			return
		}
		p, ok := findPacket(want[0])
		if !ok {
			fmt.Fprintf(os.Stderr, "perfrun: -render: %s is not a packet scenario\n", want[0])
			os.Exit(2)
		}
		res, err := p.load(f.render)
		chart := f.chart
		if chart == "" {
			chart = p.defaultChart
		}
		if err == nil {
			err = p.write(res, f.md, chart)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "perfrun:", err)
			os.Exit(1)
		}
		fmt.Printf("rendered %s into %s and %s\n", f.render, f.md, chart)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	var failed []string
	for _, s := range want {
		if ctx.Err() != nil {
			failed = append(failed, s+": interrupted")
			break
		}
		t0 := time.Now()
		fmt.Printf("=== %s (load average %s)\n", s, bench.Loadavg())
		if err := runScenario(ctx, s, &f); err != nil {
			fmt.Fprintf(os.Stderr, "perfrun: %s: %v\n", s, err)
			failed = append(failed, s)
		}
		fmt.Printf("=== %s done in %s\n", s, time.Since(t0).Round(time.Second))
	}
	fmt.Printf("perfrun: %s in %s\n", strings.Join(want, ", "), time.Since(start).Round(time.Second))
	if len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "perfrun: failed: %s\n", strings.Join(failed, ", "))
		os.Exit(1)
	}
}

func findPacket(name string) (packet, bool) {
	for _, p := range packets {
		if p.name == name {
			return p, true
		}
	}
	return packet{}, false
}

func runScenario(ctx context.Context, name string, f *flags) error {
	if p, ok := findPacket(name); ok {
		return runPacket(ctx, p, f)
	}
	switch name {
	case "micro":
		cfg := micro.DefaultConfig()
		if f.quick {
			cfg = micro.QuickConfig()
		}
		cfg.Go, cfg.Out, cfg.Command = f.goC, os.Stdout, f.command
		res, err := micro.Run(ctx, cfg)
		if err != nil {
			return err
		}
		if len(res.Failed) > 0 {
			err = fmt.Errorf("%d packages failed: %s", len(res.Failed), strings.Join(res.Failed, "; "))
		}
		if f.md != "" {
			if werr := res.Write(f.md, f.microRaw); werr != nil {
				return errors.Join(err, werr)
			}
			fmt.Printf("wrote %s (section micro) and %s\n", f.md, f.microRaw)
		}
		return err
	case "flows-1m":
		cfg := flowmem.DefaultConfig()
		cfg.Go, cfg.Out, cfg.Command = f.goC, os.Stdout, f.command
		res, err := flowmem.Measure(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Printf("flows-1m: %d live, %.0f bytes/flow (heap %.1f MiB), create %.0f ns, up %.0f ns, down %.0f ns\n",
			res.Live, res.BytesPerFlow, float64(res.HeapFull)/(1<<20), res.CreateNs, res.UpNs, res.DownNs)
		if f.md != "" {
			if err := res.Write(f.md); err != nil {
				return err
			}
			fmt.Printf("wrote %s (section flows-1m)\n", f.md)
		}
		return nil
	case "tcp-split":
		cfg := tcpsplit.DefaultConfig(f.samepathd)
		if f.quick {
			cfg = tcpsplit.QuickConfig(f.samepathd)
		}
		if f.reps > 0 {
			cfg.Reps = f.reps
		}
		if f.splitSize > 0 {
			cfg.Size = f.splitSize
		}
		if f.splitCases != "" {
			var keep []tcpsplit.Case
			for _, c := range cfg.Cases {
				if strings.Contains(","+f.splitCases+",", ","+c.Name+",") {
					keep = append(keep, c)
				}
			}
			if len(keep) == 0 {
				return fmt.Errorf("-split-cases %q: none of window, lossy, clean", f.splitCases)
			}
			cfg.Cases = keep
		}
		if f.variants != nil {
			for i := range cfg.Cases {
				cfg.Cases[i].Variants = slices.DeleteFunc(cfg.Cases[i].Variants, func(v string) bool { return !f.variants[v] })
			}
		}
		cfg.Go, cfg.Out, cfg.Command = f.goC, os.Stdout, f.command
		res, err := tcpsplit.Run(ctx, cfg)
		if res != nil && len(res.Samples) > 0 && f.md != "" {
			chart := cmp.Or(f.chart, tcpsplit.DefaultChart)
			if werr := tcpsplit.Write(res, f.md, chart); werr != nil {
				return errors.Join(err, werr)
			}
			fmt.Printf("wrote %s (section tcp-split) and %s\n", f.md, chart)
		}
		return err
	case "radius":
		cfg := radius.DefaultConfig(f.radload)
		if f.quick {
			cfg = radius.QuickConfig(f.radload)
		}
		cfg.Out, cfg.Command = os.Stdout, f.command
		res, err := radius.Run(ctx, cfg)
		if err != nil {
			return err
		}
		if f.md != "" {
			if err := res.Write(f.md); err != nil {
				return err
			}
			fmt.Printf("wrote %s (section radius)\n", f.md)
		}
		return nil
	}
	return fmt.Errorf("unknown scenario %q", name)
}

func runPacket(ctx context.Context, p packet, f *flags) error {
	cfg := p.def(f.samepathd)
	if f.quick {
		cfg = p.quick(f.samepathd)
	}
	if f.reps > 0 {
		cfg.Reps = f.reps
	}
	if f.measure > 0 {
		cfg.Measure = f.measure
	}
	if f.variants != nil {
		var keep []bench.Variant
		for _, v := range cfg.Variants {
			if f.variants[v.Name] {
				keep = append(keep, v)
			}
		}
		if len(keep) == 0 {
			fmt.Printf("%s: no variant selected by -variants, skipped\n", p.name)
			return nil
		}
		cfg.Variants = keep
	}
	if f.genRate > 0 {
		cfg.GenRate = f.genRate
	}
	switch {
	case f.sinkSoftirq && f.sinkThreaded:
		return errors.New("-sink-softirq and -sink-threaded exclude each other")
	case f.sinkSoftirq:
		cfg.SinkSoftirq = true
	case f.sinkThreaded:
		cfg.SinkSoftirq = false
	}
	cfg.NAPIFifo = f.fifo
	cfg.Out, cfg.Verbose = os.Stdout, f.verbose
	cfg.Command = f.command
	res, err := bench.Run(ctx, cfg)
	if err != nil && (res == nil || len(res.Samples) == 0) {
		return err
	}
	chart := f.chart
	if chart == "" {
		chart = p.defaultChart
	}
	if f.md != "" {
		if werr := p.write(res, f.md, chart); werr != nil {
			return errors.Join(err, werr)
		}
		fmt.Printf("wrote %s (section %s) and %s\n", f.md, p.name, chart)
	}
	return err
}
