// Command samepathd is the samepath dataplane daemon: role lb (the load
// balancers' steering by T4) or gw (the packet gateway).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"samepath/dp/daemon"
	"samepath/internal/version"
)

func main() {
	cfgPath := flag.String("config", "", "YAML config file (required)")
	check := flag.Bool("check", false, "validate the config and exit")
	verbose := flag.Bool("v", false, "debug logging")
	version.AddFlag(flag.CommandLine, "samepathd", os.Stdout, os.Exit)
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: samepathd --config FILE [-check] [-v] | --version\n\nRuns the samepath dataplane until SIGTERM or SIGINT; the XDP programs are detached on exit.\n\nflags:\n")
		flag.PrintDefaults()
		fmt.Fprintf(os.Stderr, "\nexample config, role lb:\n\n%s\nexample config, role gw:\n\n%s", daemon.Example, daemon.ExampleGW)
	}
	flag.Parse()
	if *cfgPath == "" {
		flag.Usage()
		os.Exit(2)
	}
	daemon.Version = version.Get() // what the status endpoint reports
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := daemon.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "samepathd:", err)
		os.Exit(2)
	}
	if *check {
		fmt.Println("config ok")
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := daemon.Run(ctx, cfg, log); err != nil {
		fmt.Fprintln(os.Stderr, "samepathd:", err)
		os.Exit(1)
	}
}
