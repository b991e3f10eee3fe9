package linkem

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
)

// Main is `testbed linkem ARGS`: it bridges --a and --b (in the namespace
// it runs in) with the given settings in both directions until SIGTERM or
// SIGINT, then prints the counters as JSON and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("linkem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := DefaultConfig()
	var a, b, rate string
	fs.StringVar(&a, "a", "", "first interface")
	fs.StringVar(&b, "b", "", "second interface")
	fs.DurationVar(&c.Delay, "delay", 0, "one-way delay per direction")
	fs.DurationVar(&c.Jitter, "jitter", 0, "jitter, uniform +-")
	fs.Float64Var(&c.Loss, "loss", 0, "loss probability per frame, 0..1")
	fs.StringVar(&rate, "rate", "0", "rate cap per direction, bits/s (suffixes kbit, mbit, gbit); 0 = none")
	fs.IntVar(&c.Burst, "burst", c.Burst, "token bucket depth, bytes")
	fs.IntVar(&c.Queue, "queue", c.Queue, "backlog limit behind the rate cap, bytes")
	fs.BoolVar(&c.Reorder, "reorder", false, "let jitter reorder frames")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of loss and jitter")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: testbed linkem --a IF --b IF [flags]\n\nexample (inside the air namespace):\n"+
			"  testbed linkem --a m1n1a --b m1n1b --delay 25ms --jitter 2ms --loss 0.01 --rate 20mbit\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	r, err := ParseRate(rate)
	if err != nil {
		fmt.Fprintf(stderr, "linkem: %v\n", err)
		return 2
	}
	c.Rate = r
	if a == "" || b == "" {
		fmt.Fprintln(stderr, "linkem: --a and --b are required")
		return 2
	}
	ba := c
	ba.Seed = c.Seed + 1
	e, err := Open(a, b, c, ba)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = e.Run(ctx)
	abs, bas := e.Stats()
	json.NewEncoder(stdout).Encode(map[string]Stats{a + ">" + b: abs, b + ">" + a: bas})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
