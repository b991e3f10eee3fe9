// Command samepath-control is the control process: RADIUS AAA with address
// assignment, the session manager, gateway health and the control API.
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

	"samepath/ctl/control"
	"samepath/internal/logfmt"
	"samepath/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is samepath-control with its arguments; it returns the exit status.
// -check and the start run the same validation: control.Config.Check.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("samepath-control", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (required)")
	check := fs.Bool("check", false, "validate the configuration (values, state directory, token and users files) and exit")
	logFormat := logfmt.AddFlag(fs)
	version.AddFlag(fs, "samepath-control", os.Stdout, os.Exit)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: samepath-control --config FILE [--check] [-log-format text|json] | --version\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nexample configuration:\n\n%s", control.ExampleConfig)
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
	log, err := logfmt.New(stderr, *logFormat, slog.LevelInfo)
	if err != nil {
		fmt.Fprintln(stderr, "samepath-control:", err)
		return 2
	}
	// -check and the start run the same checks, here; control.New runs
	// them again (it is also started by tests and benchmarks).
	cfg, err := control.LoadConfig(*cfgPath)
	if err == nil {
		err = cfg.Check()
	}
	if err != nil {
		fmt.Fprintln(stderr, "samepath-control:", err)
		return 1
	}
	if *check {
		fmt.Fprintln(stdout, "configuration ok")
		return 0
	}
	c, err := control.New(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "samepath-control:", err)
		return 1
	}
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "samepath-control:", err)
		return 1
	}
	return 0
}
