// Command samepath-agent runs on each actual server and reports the
// host's CPU load over HTTP for the gateway's CPU-load balancing policy
// (GET /load -> {"cpu":37.5}; ?format=text -> 37.5%).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"samepath/dp/balance"
	"samepath/internal/version"
)

type config struct {
	listen   string
	interval time.Duration
	fixed    float64 // >= 0: report this instead of the measured load
	procStat string
}

const example = `
example:
  samepath-agent -listen :9990              # on every server
  curl -s http://SERVER:9990/load           # {"cpu":37.5}
  curl -s 'http://SERVER:9990/load?format=text'   # 37.5%
  samepath-agent -listen 127.0.0.1:9990 -fixed 80   # demo: a busy server

The gateway polls it for services with policy "cpu" (check.agent_port,
default 9990). The load is the busy share of all CPUs between two reads
of /proc/stat, one interval apart.
`

func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("samepath-agent", flag.ContinueOnError)
	fs.SetOutput(out)
	c := config{}
	fs.StringVar(&c.listen, "listen", ":"+strconv.Itoa(balance.DefaultAgentPort), "HTTP listen address")
	fs.DurationVar(&c.interval, "interval", time.Second, "CPU sampling interval")
	fs.Float64Var(&c.fixed, "fixed", -1, "report this load (0..100) instead of measuring (tests, demos)")
	fs.StringVar(&c.procStat, "proc-stat", "/proc/stat", "CPU counters file")
	version.AddFlag(fs, "samepath-agent", os.Stdout, os.Exit)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: samepath-agent [flags]\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), example)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.interval <= 0 {
		return c, fmt.Errorf("interval %v: want > 0", c.interval)
	}
	if c.fixed > 100 {
		return c, fmt.Errorf("fixed load %v: want 0..100, or negative to measure", c.fixed)
	}
	return c, nil
}

// run serves on l until ctx is done.
func run(ctx context.Context, c config, l net.Listener, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	load := func() (float64, bool) { return c.fixed, true }
	sampled := make(chan struct{})
	if c.fixed < 0 {
		s := balance.NewCPUSampler(c.procStat)
		if err := s.Sample(); err != nil {
			return err
		}
		load = s.Load
		go func() {
			defer close(sampled)
			var last string
			s.Run(ctx, c.interval, func(err error) {
				if err.Error() != last { // log changes, not every interval
					log.Warn("cpu sample", "err", err)
					last = err.Error()
				}
			})
		}()
	} else {
		close(sampled)
	}
	srv := &http.Server{Handler: balance.AgentHandler(load), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("serving", "addr", l.Addr().String(), "fixed", c.fixed >= 0)
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	cancel() // Serve may have failed on its own: stop the sampler too
	<-sampled
	return err
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "samepath-agent:", err)
		os.Exit(2)
	}
	l, err := net.Listen("tcp", c.listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "samepath-agent:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, c, l, log); err != nil {
		fmt.Fprintln(os.Stderr, "samepath-agent:", err)
		os.Exit(1)
	}
}
