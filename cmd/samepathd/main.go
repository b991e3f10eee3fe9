// Command samepathd is the samepath dataplane daemon: role lb (the load
// balancers' steering by T4) or gw (the packet gateway).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"samepath/dp/daemon"
	"samepath/internal/logfmt"
	"samepath/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is samepathd with its arguments; it returns the exit status: 2 for
// a configuration -check refuses (with or without -check: both run
// daemon.Config.Check), 1 when the start fails past it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("samepathd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file (required)")
	check := fs.Bool("check", false, "validate the config (values, token file, accounting directory, interfaces) and exit")
	verbose := fs.Bool("v", false, "debug logging")
	logFormat := logfmt.AddFlag(fs)
	version.AddFlag(fs, "samepathd", stdout, os.Exit)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: samepathd --config FILE [-check] [-v] [-log-format text|json] | --version\n\nRuns the samepath dataplane until SIGTERM or SIGINT; the XDP programs are detached on exit.\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nexample config, role lb:\n\n%s\nexample config, role gw:\n\n%s", daemon.Example, daemon.ExampleGW)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *cfgPath == "" {
		fs.Usage()
		return 2
	}
	daemon.Version = version.Get() // what the status endpoint reports
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log, err := logfmt.New(stderr, *logFormat, level)
	if err != nil {
		fmt.Fprintln(stderr, "samepathd:", err)
		return 2
	}
	// -check and the start run the same checks, here; daemon.Run runs
	// them again (tests start it without this command).
	cfg, err := daemon.Load(*cfgPath)
	if err == nil {
		err = cfg.Check()
	}
	if err != nil {
		fmt.Fprintln(stderr, "samepathd:", err)
		return 2
	}
	if *check {
		fmt.Fprintln(stdout, "config ok")
		return 0
	}
	if err := daemon.Run(ctx, cfg, log); err != nil {
		fmt.Fprintln(stderr, "samepathd:", err)
		return 1
	}
	return 0
}
