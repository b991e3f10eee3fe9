package fig2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"samepath/testbed/linkem"
	"samepath/testbed/topo"
)

// DefaultStateDir holds one state file per run.
const DefaultStateDir = "/run/samepath/testbed"

// Config says how to build a run.
type Config struct {
	Prefix  string // namespace prefix (e.g. "sptb" + run id); required
	Mobiles int    // default 2
	// ServeArgv is the command that runs `testbed serve` (flags are
	// appended), executed inside each server namespace. Default:
	// [this executable, "serve"].
	ServeArgv []string
	// Wireless, when set, puts linkem with this setting (both directions) on
	// every mobile <-> NAS link. LinkemArgv runs `testbed linkem` (default:
	// [this executable, "linkem"]).
	Wireless   *linkem.Config
	LinkemArgv []string
	StateDir   string // default DefaultStateDir
}

// DefaultConfig returns a config for prefix with two mobiles.
func DefaultConfig(prefix string) Config {
	return Config{Prefix: prefix, Mobiles: 2, StateDir: DefaultStateDir}
}

// Validate checks c.
func (c Config) Validate() error {
	if c.Prefix == "" {
		return errors.New("fig2: empty prefix")
	}
	if c.Wireless != nil {
		if err := c.Wireless.Validate(); err != nil {
			return fmt.Errorf("fig2: wireless: %w", err)
		}
	}
	return nil
}

// Testbed is a running FIG. 2 network.
type Testbed struct {
	Plan     *Plan
	stateDir string
	mu       sync.Mutex
	children []*Daemon // processes this process started
}

// statePath is where run prefix keeps its state.
func statePath(dir, prefix string) string { return filepath.Join(dir, prefix+".json") }

// LogDir is where the run's processes write their output.
func (tb *Testbed) LogDir() string { return filepath.Join(tb.stateDir, tb.Plan.Prefix) }

// Up builds the network, starts the servers (and linkem) and waits until
// the servers answer. On error everything made so far is removed.
func Up(ctx context.Context, c Config) (tb *Testbed, err error) {
	if c.Mobiles == 0 {
		c.Mobiles = 2
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p, err := NewPlan(c.Prefix, c.Mobiles, c.Wireless != nil)
	if err != nil {
		return nil, err
	}
	if left, _ := topo.ListNetns(c.Prefix + "-"); len(left) > 0 {
		return nil, fmt.Errorf("fig2: prefix %s in use (%d namespaces): run `testbed down %s` first", c.Prefix, len(left), c.Prefix)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("fig2: %w", err)
	}
	if c.ServeArgv == nil {
		c.ServeArgv = []string{exe, "serve"}
	}
	if c.LinkemArgv == nil {
		c.LinkemArgv = []string{exe, "linkem"}
	}
	tb = &Testbed{Plan: p, stateDir: c.StateDir}
	built := tb
	defer func() {
		if err != nil {
			built.Down()
		}
	}()
	if err := os.MkdirAll(tb.LogDir(), 0o755); err != nil {
		return nil, fmt.Errorf("fig2: %w", err)
	}
	if err := tb.save(); err != nil { // so that `testbed down` finds a half-built run
		return nil, err
	}
	if err := build(p); err != nil {
		return nil, err
	}
	if c.Wireless != nil {
		for _, m := range p.Mobiles {
			for _, pr := range m.Air {
				argv := append(append(append([]string(nil), c.LinkemArgv...), "--a", pr[0].Name, "--b", pr[1].Name), c.Wireless.Args()...)
				if _, err := tb.start(p.Air, "linkem-"+pr[0].Name, argv); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, s := range p.Servers {
		argv := append(append([]string(nil), c.ServeArgv...),
			"--name", s.Name, "--http", ":"+strconv.Itoa(s.HTTP), "--tcp-echo", ":"+strconv.Itoa(s.Echo),
			"--udp", ":"+strconv.Itoa(s.Echo), "--dns", ":"+strconv.Itoa(s.DNS),
			"--v4", s.LAN.IPv4.Addr().String(), "--v6", s.LAN.IPv6.Addr().String())
		if _, err := tb.start(s.NS, s.Name, argv); err != nil {
			return nil, err
		}
	}
	for _, m := range p.Mobiles {
		if err := attach(p, &m, m.Ingress); err != nil {
			return nil, err
		}
	}
	for i := range p.Servers {
		if err := waitTCP(ctx, p.Servers[i].NS, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p.Servers[i].HTTP)), 10*time.Second); err != nil {
			return nil, fmt.Errorf("fig2: server %s: %w (log in %s)", p.Servers[i].Name, err, tb.LogDir())
		}
	}
	return tb, tb.save()
}

// Daemon is a process the testbed started inside a namespace.
type Daemon struct {
	Name, NS string
	Cmd      *exec.Cmd
	done     chan struct{}
	err      error
}

// Done is closed when the process has exited (it is reaped for you).
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Err is the process's exit error once Done is closed.
func (d *Daemon) Err() error {
	<-d.done
	return d.err
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs, and waits for exit.
func (d *Daemon) Stop(grace time.Duration) error {
	select {
	case <-d.done:
		return nil
	default:
	}
	d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(grace):
	}
	d.Cmd.Process.Kill()
	<-d.done
	return nil
}

// start runs argv inside namespace ns as a tracked child writing to
// LogDir/name.log.
func (tb *Testbed) start(ns, name string, argv []string) (*Daemon, error) {
	log, err := os.Create(filepath.Join(tb.LogDir(), name+".log"))
	if err != nil {
		return nil, fmt.Errorf("fig2: %w", err)
	}
	cmd := topo.Command(ns, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	err = cmd.Start()
	log.Close()
	if err != nil {
		return nil, fmt.Errorf("fig2: start %s in %s: %w", name, ns, err)
	}
	d := &Daemon{Name: name, NS: ns, Cmd: cmd, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	tb.mu.Lock()
	tb.children = append(tb.children, d)
	tb.mu.Unlock()
	return d, nil
}

func waitTCP(ctx context.Context, ns string, ap netip.AddrPort, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := topo.Dial(cctx, ns, "tcp", ap.String())
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nothing listens on %s after %v: %w", ap, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Down stops every process in the run's namespaces, removes the namespaces
// (and with them every link) and the state file. It is safe on a half-built
// run and may be called twice.
func (tb *Testbed) Down() error {
	err := DownPrefix(tb.stateDir, tb.Plan.Prefix)
	// Children of this process are also stopped directly and reaped, in
	// case one was still between fork and entering its namespace.
	tb.mu.Lock()
	children := tb.children
	tb.children = nil
	tb.mu.Unlock()
	for _, d := range children {
		d.Stop(time.Second)
	}
	return err
}

// DownPrefix removes the run with prefix whether or not a state file exists
// (a crashed run's leftovers): processes in PREFIX-* namespaces, the
// namespaces, the state file and logs.
func DownPrefix(stateDir, prefix string) error {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	var errs []error
	if err := topo.KillProcs(prefix+"-", 2*time.Second); err != nil {
		errs = append(errs, err)
	}
	names, err := topo.ListNetns(prefix + "-")
	if err != nil {
		errs = append(errs, err)
	}
	for _, n := range names {
		if err := topo.DeleteNetns(n); err != nil {
			errs = append(errs, err)
		}
	}
	os.RemoveAll(filepath.Join(stateDir, prefix))
	os.Remove(filepath.Join(stateDir, prefix+".lock"))
	if err := os.Remove(statePath(stateDir, prefix)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (tb *Testbed) save() error {
	b, err := json.MarshalIndent(tb.Plan, "", "  ")
	if err != nil {
		return fmt.Errorf("fig2: %w", err)
	}
	if err := os.MkdirAll(tb.stateDir, 0o755); err != nil {
		return fmt.Errorf("fig2: %w", err)
	}
	p := statePath(tb.stateDir, tb.Plan.Prefix)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("fig2: write state: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("fig2: write state: %w", err)
	}
	return nil
}

// Load opens the run with prefix from its state file (written by Up in this
// or another process).
func Load(stateDir, prefix string) (*Testbed, error) {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	b, err := os.ReadFile(statePath(stateDir, prefix))
	if err != nil {
		return nil, fmt.Errorf("fig2: run %s: %w", prefix, err)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("fig2: state of %s: %w", prefix, err)
	}
	if p.Prefix != prefix || p.Topology != "fig2" {
		return nil, fmt.Errorf("fig2: state file of %s names %q/%q", prefix, p.Topology, p.Prefix)
	}
	return &Testbed{Plan: &p, stateDir: stateDir}, nil
}

// Runs lists the prefixes with a state file in stateDir.
func Runs(stateDir string) ([]string, error) {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	m, err := filepath.Glob(filepath.Join(stateDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range m {
		out = append(out, filepath.Base(f[:len(f)-len(".json")]))
	}
	return out, nil
}

// Command returns a command running argv inside namespace ns (see
// topo.Command). Start it yourself; use StartDaemon for tracked processes.
func (tb *Testbed) Command(ns string, argv ...string) *exec.Cmd {
	return topo.Command(ns, argv[0], argv[1:]...)
}

// StartDaemon starts argv inside namespace ns (through `ip netns exec`, so
// it sees its namespace's /sys), output to LogDir/name.log. Down stops it
// (found by namespace, whichever process started it).
func (tb *Testbed) StartDaemon(ns, name string, argv ...string) (*Daemon, error) {
	if len(argv) == 0 {
		return nil, errors.New("fig2: empty command")
	}
	return tb.start(ns, name, argv)
}
