// Command testbed builds and drives the samepath namespace testbeds.
//
//	testbed up fig2 [--json]     build FIG. 2, start its servers
//	testbed down [RUN]           remove a run completely
//	testbed move [--run RUN] MOBILE INGRESS
//	testbed addr [--run RUN] MOBILE ADDR
//	testbed list | clean | plan | counters | exec
//	testbed serve ... | linkem ...   (run inside namespaces by `up`)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"samepath/internal/version"
	"samepath/testbed"
	"samepath/testbed/fig2"
	"samepath/testbed/linkem"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

const usage = `usage: testbed COMMAND [flags] [args] | testbed --version

commands:
  up fig2 [--id ID] [--mobiles N] [--json] [--delay D --jitter D --loss P --rate R]
        build the FIG. 2 network in namespaces PREFIX-* (PREFIX = sptb + id) and start
        its servers; --json prints the address plan; the linkem flags put an emulated
        radio link (both directions) between each mobile and each NAS
  down [RUN]           stop every process of the run, remove its namespaces and state
  move [--run RUN] MOBILE INGRESS
        move a mobile (mob1 or 1) to ingress point INGRESS (1..3, or nas2/lb2); it keeps
        its current address and routes (the one addr set)
  addr [--run RUN] MOBILE ADDR
        give a mobile the IPv4 address ADDR (e.g. the one the AAA assigned), as a
        Framed-IP-Address does: on its wireless links, its NAS's and the gateways' routes
  list                 runs and leftovers (namespaces, processes)
  clean                remove every run and leftover of the family "sptb"
  plan [RUN]           print a running run's address plan as JSON
  counters [RUN]       print what each gateway forwarded, per LB (JSON)
  exec [--run RUN] ROLE CMD [ARGS...]
        run a command inside the run's namespace PREFIX-ROLE (e.g. mob1, lb2, a1)
  serve ...            (internal) the servers: testbed serve -h
  linkem ...           (internal) the link emulator: testbed linkem -h

RUN is a run prefix (see list), or omitted / "fig2" when only one run exists.

examples:
  testbed up fig2 --json > plan.json
  testbed exec mob1 curl -s http://10.20.0.11/bytes/1000000 | sha256sum
  testbed move mob1 2
  testbed addr mob1 10.101.0.77
  testbed up fig2 --id radio --delay 20ms --loss 0.01 --rate 20mbit
  testbed down
  testbed clean
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "-version" || args[0] == "--version" {
		fmt.Fprintln(stdout, version.String("testbed"))
		return 0
	}
	stateDir := fig2.DefaultStateDir
	if d := os.Getenv("SAMEPATH_TESTBED_STATE"); d != "" {
		stateDir = d
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		return servers.Main(rest, stderr)
	case "linkem":
		return linkem.Main(rest, stdout, stderr)
	case "up":
		err = up(rest, stateDir, stdout, stderr)
	case "down":
		err = down(rest, stateDir, stdout)
	case "move":
		err = move(rest, stateDir, stdout)
	case "addr":
		err = setAddr(rest, stateDir, stdout)
	case "list":
		err = list(stateDir, stdout)
	case "clean":
		err = testbed.Clean(stateDir)
	case "plan":
		err = withRun(rest, stateDir, func(tb *fig2.Testbed) error { return printJSON(stdout, tb.Plan) })
	case "counters":
		err = withRun(rest, stateDir, func(tb *fig2.Testbed) error {
			cs, err := tb.AllCounters()
			if err != nil {
				return err
			}
			return printJSON(stdout, cs)
		})
	case "exec":
		return execIn(rest, stateDir, stderr)
	default:
		fmt.Fprintf(stderr, "testbed: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "testbed %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// parse parses flags that may come before, between or after positional
// arguments, and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func up(args []string, stateDir string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "run id (default: random); the prefix is sptb+id")
	mobiles := fs.Int("mobiles", 2, "number of mobiles")
	asJSON := fs.Bool("json", false, "print the address plan as JSON")
	lc := linkem.DefaultConfig()
	var rate string
	fs.DurationVar(&lc.Delay, "delay", 0, "radio link one-way delay (linkem)")
	fs.DurationVar(&lc.Jitter, "jitter", 0, "radio link jitter (linkem)")
	fs.Float64Var(&lc.Loss, "loss", 0, "radio link loss probability (linkem)")
	fs.StringVar(&rate, "rate", "", "radio link rate cap, e.g. 20mbit (linkem)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "fig2" {
		return fmt.Errorf("want exactly one topology name; known: fig2")
	}
	prefix := testbed.NewPrefix()
	if *id != "" {
		prefix = testbed.Family + *id
	}
	c := fig2.DefaultConfig(prefix)
	c.Mobiles = *mobiles
	c.StateDir = stateDir
	if rate != "" {
		if lc.Rate, err = linkem.ParseRate(rate); err != nil {
			return err
		}
	}
	if lc.Delay > 0 || lc.Jitter > 0 || lc.Loss > 0 || lc.Rate > 0 {
		c.Wireless = &lc
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tb, err := fig2.Up(ctx, c)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, tb.Plan)
	}
	fmt.Fprintf(stdout, "run %s up: %d namespaces, logs in %s\nremove it with: testbed down %s\n",
		prefix, len(tb.Plan.Namespaces()), tb.LogDir(), prefix)
	return nil
}

func down(args []string, stateDir string, stdout io.Writer) error {
	name := ""
	if len(args) > 1 {
		return errors.New("want at most one run")
	}
	if len(args) == 1 {
		name = args[0]
	}
	if name == "" || name == "fig2" {
		// What `list` shows counts: a crashed run's leftover namespaces
		// are a run too, so "the only run" must be the only one listed.
		runs, err := testbed.List(stateDir)
		if err != nil {
			return err
		}
		if len(runs) > 1 {
			var ps []string
			for _, r := range runs {
				ps = append(ps, r.Prefix)
			}
			return fmt.Errorf("%d runs (%s): name one", len(runs), strings.Join(ps, ", "))
		}
	}
	prefix, err := testbed.Resolve(stateDir, name)
	if err != nil {
		// A crashed run without a state file: remove by prefix anyway.
		if name == "" || name == "fig2" || !strings.HasPrefix(name, testbed.Family) {
			return err
		}
		prefix = name
	}
	if err := fig2.DownPrefix(stateDir, prefix); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "run %s down\n", prefix)
	return nil
}

func move(args []string, stateDir string, stdout io.Writer) error {
	fs := flag.NewFlagSet("move", flag.ContinueOnError)
	runName := fs.String("run", "", "run prefix")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("want MOBILE INGRESS")
	}
	mobile := mobileName(pos[0])
	in, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(pos[1], "nas"), "lb"))
	if err != nil {
		return fmt.Errorf("ingress %q: want 1..%d, nasN or lbN", pos[1], fig2.NumIngress)
	}
	return withRun([]string{*runName}, stateDir, func(tb *fig2.Testbed) error {
		if err := tb.Move(mobile, in); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s now on ingress %d (nas%d, lb%d)\n", mobile, in, in, in)
		return nil
	})
}

// mobileName accepts "mob1" or "1".
func mobileName(s string) string {
	if _, err := strconv.Atoi(s); err == nil {
		return "mob" + s
	}
	return s
}

func setAddr(args []string, stateDir string, stdout io.Writer) error {
	fs := flag.NewFlagSet("addr", flag.ContinueOnError)
	runName := fs.String("run", "", "run prefix")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("want MOBILE ADDR")
	}
	a, err := netip.ParseAddr(pos[1])
	if err != nil || !a.Is4() {
		return fmt.Errorf("address %q: want an IPv4 address", pos[1])
	}
	mobile := mobileName(pos[0])
	return withRun([]string{*runName}, stateDir, func(tb *fig2.Testbed) error {
		if err := tb.SetMobileAddr(mobile, a); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s now has %s\n", mobile, a)
		return nil
	})
}

func withRun(args []string, stateDir string, fn func(*fig2.Testbed) error) error {
	name := ""
	if len(args) > 0 {
		name = args[0]
	}
	prefix, err := testbed.Resolve(stateDir, name)
	if err != nil {
		return err
	}
	tb, err := fig2.Load(stateDir, prefix)
	if err != nil {
		return err
	}
	return fn(tb)
}

func list(stateDir string, stdout io.Writer) error {
	runs, err := testbed.List(stateDir)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PREFIX\tTOPOLOGY\tNAMESPACES\tPROCESSES")
	for _, r := range runs {
		t := r.Topology
		if t == "" {
			t = "(leftover)"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", r.Prefix, t, len(r.Namespaces), r.Processes)
	}
	return w.Flush()
}

func execIn(args []string, stateDir string, stderr io.Writer) int {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runName := fs.String("run", "", "run prefix")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 2 {
		fmt.Fprintln(stderr, "testbed exec: want ROLE CMD [ARGS...]")
		return 2
	}
	prefix, err := testbed.Resolve(stateDir, *runName)
	if err != nil {
		fmt.Fprintf(stderr, "testbed exec: %v\n", err)
		return 1
	}
	cmd := topo.Command(prefix+"-"+fs.Arg(0), fs.Arg(1), fs.Args()[2:]...)
	cmd.SysProcAttr = nil // stay in the terminal's process group (Ctrl-C reaches it)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee interface{ ExitCode() int }
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(stderr, "testbed exec: %v\n", err)
		return 1
	}
	return 0
}

func printJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}
