// Command perfrun runs samepath's `make perf` scenarios and rewrites their
// sections of BENCHMARKS.md.
//
//	perfrun -scenario lb-steer                 # full run (< 10 min), as make perf does
//	perfrun -scenario lb-steer -quick          # 1 rep, short windows, for development
//	perfrun -variants xdp-redirect,kernel-fwd  # a subset of variants
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"samepath/perf/lbsteer"
)

func main() {
	scenario := flag.String("scenario", "lb-steer", "scenario to run (lb-steer)")
	quick := flag.Bool("quick", false, "development run: 1 rep, short windows")
	reps := flag.Int("reps", 0, "runs per variant (default 3, quick 1)")
	measure := flag.Duration("measure", 0, "counting window per case (default 2s, quick 0.5s)")
	samepathd := flag.String("samepathd", "bin/samepathd", "samepathd binary for the samepathd variants")
	variants := flag.String("variants", "", "comma-separated variant names (default all): xdp-redirect,xdp-tx,kernel-fwd,samepathd-afxdp,samepathd-xdp")
	genRate := flag.Float64("gen-rate", 0, "generator rate in pps (0 = full speed)")
	sinkSoftirq := flag.Bool("sink-softirq", false, "leave the sink's NAPI unthreaded (softirq where scheduled) instead of pinning it to CPU0")
	fifo := flag.Int("napi-fifo", 50, "run the pinned NAPI threads SCHED_FIFO at this priority (0 = leave them SCHED_OTHER)")
	verbose := flag.Bool("v", false, "log the veth drop and error counters of every measurement")
	md := flag.String("md", "BENCHMARKS.md", "markdown file whose section is rewritten; empty = do not write")
	chart := flag.String("chart", "perf/results/lb-steer.svg", "SVG chart path")
	render := flag.String("render", "", "re-render -md and -chart from a saved results JSON (written beside the chart) without measuring")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: perfrun [flags]\n\nexample: perfrun -scenario lb-steer -quick\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *scenario != "lb-steer" {
		fmt.Fprintf(os.Stderr, "perfrun: unknown scenario %q (have: lb-steer)\n", *scenario)
		os.Exit(2)
	}
	if *render != "" {
		res, err := lbsteer.LoadResult(*render)
		if err == nil {
			err = res.Write(*md, *chart)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "perfrun:", err)
			os.Exit(1)
		}
		fmt.Printf("rendered %s into %s and %s\n", *render, *md, *chart)
		return
	}
	cfg := lbsteer.DefaultConfig(*samepathd)
	if *quick {
		cfg = lbsteer.QuickConfig(*samepathd)
	}
	if *reps > 0 {
		cfg.Reps = *reps
	}
	if *measure > 0 {
		cfg.Measure = *measure
	}
	if *variants != "" {
		want := map[string]bool{}
		for _, v := range strings.Split(*variants, ",") {
			want[strings.TrimSpace(v)] = true
		}
		var keep []lbsteer.Variant
		for _, v := range cfg.Variants {
			if want[v.Name] {
				keep = append(keep, v)
				delete(want, v.Name)
			}
		}
		if len(want) > 0 {
			fmt.Fprintf(os.Stderr, "perfrun: unknown variants %v\n", want)
			os.Exit(2)
		}
		cfg.Variants = keep
	}
	cfg.GenRate, cfg.SinkSoftirq = *genRate, *sinkSoftirq
	cfg.NAPIFifo = *fifo
	cfg.Out, cfg.Verbose = os.Stdout, *verbose
	cfg.Command = strings.Join(os.Args, " ")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := lbsteer.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "perfrun:", err)
		if res == nil || len(res.Samples) == 0 {
			os.Exit(1)
		}
	}
	fmt.Printf("lb-steer done in %s\n", time.Since(start).Round(time.Second))
	if *md != "" {
		if err := res.Write(*md, *chart); err != nil {
			fmt.Fprintln(os.Stderr, "perfrun:", err)
			os.Exit(1)
		}
		fmt.Printf("wrote %s (section lb-steer) and %s\n", *md, *chart)
	}
	if err != nil {
		os.Exit(1)
	}
}
