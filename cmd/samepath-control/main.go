// Command samepath-control is the control process: RADIUS AAA with address
// assignment, the session manager, gateway health and the control API.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"samepath/ctl/control"
	"samepath/internal/version"
)

func main() {
	fs := flag.NewFlagSet("samepath-control", flag.ExitOnError)
	cfgPath := fs.String("config", "", "YAML configuration file (required)")
	check := fs.Bool("check", false, "validate the configuration and exit")
	version.AddFlag(fs, "samepath-control", os.Stdout, os.Exit)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: samepath-control --config FILE [--check] | --version\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nexample configuration:\n\n%s", control.ExampleConfig)
	}
	fs.Parse(os.Args[1:])
	if *cfgPath == "" {
		fs.Usage()
		os.Exit(2)
	}
	cfg, err := control.LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "samepath-control:", err)
		os.Exit(1)
	}
	if *check {
		fmt.Println("configuration ok")
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := control.New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "samepath-control:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "samepath-control:", err)
		os.Exit(1)
	}
}
