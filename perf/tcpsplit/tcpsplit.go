package tcpsplit

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"samepath/ctl/api"
	"samepath/perf/bench"
	"samepath/perf/gwnat"
	"samepath/tcpproxy"
	"samepath/testbed/linkem"
	"samepath/testbed/topo"
)

// Variant names.
const (
	NAT     = "nat"       // samepathd, port-key NAT: end-to-end kernel TCP
	Term    = "terminate" // samepathd, the terminator (tcpproxy)
	HAProxy = "haproxy"   // HAProxy 1 thread, mode tcp
	// The references, straight to the server (ServerIP:ServerPort)
	// through the DUT by the mobile's and the server's default routes.
	L2Fwd     = bench.L2FwdName // pktgen fwd both ways: samepath's engine alone, copy-mode AF_XDP on In and Out
	KernelFwd = "kernel-fwd"    // Linux IPv4 forwarding in the DUT namespace, no XDP
)

// Reference reports whether variant v is a reference row (no service,
// no target: the client connects to the server itself).
func Reference(v string) bool { return v == L2Fwd || v == KernelFwd }

// Case is one path setting.
type Case struct {
	Name, Title string
	// Wireless and Wired are the linkem settings of each side (both
	// directions); nil: a kernel bridge, no emulation.
	Wireless, Wired *linkem.Config
	// ServerWindow, if > 0, caps the server's TCP buffers (tcp_wmem and
	// tcp_rmem maximum in its namespace) at this many bytes, and the
	// server writes only while fewer are unacknowledged in its socket
	// (SIOCOUTQ): the buffer caps alone do not hold the window on this
	// kernel (ss -m showed a bulk writer's queue at 278 KB against a
	// 64 KiB sndbuf, and 170 KB in flight with cubic).
	ServerWindow int
	Variants     []string
	// Scale multiplies Config.Size for this case (0 = 1): the clean path
	// moves 20 MiB in a fraction of a second, mostly ramp-up.
	Scale int64
	// Base is the variant the target compares with, Min the target ratio.
	Base string
	Min  float64
}

// Bytes is the case's download size.
func (c Case) Bytes(size int64) int64 { return size * max(c.Scale, 1) }

// WirelessBDP is the bandwidth-delay product of the emulated wireless
// link at its longest (50 Mbit/s, 100 ms).
const WirelessBDP = 50_000_000 / 8 / 10

func link(rtt time.Duration, loss float64, rate int64) *linkem.Config {
	c := linkem.DefaultConfig()
	c.Delay, c.Loss, c.Rate = rtt/2, loss, rate
	if rate > 0 {
		// A backlog of one BDP (a radio's buffers hold about that); the
		// default 256 KiB would drop slow start's overshoot at 42 ms of
		// queue and cost the terminated side, not the end-to-end one.
		c.Queue = WirelessBDP
	}
	return &c
}

// Cases are the three of issue 13 item 5.
func Cases() []Case {
	return []Case{
		{Name: "window", Title: "(a) window mismatch: server TCP buffers 64 KiB, wireless 100 ms RTT, 50 Mbit/s, no loss",
			Wireless: link(100*time.Millisecond, 0, 50_000_000), ServerWindow: 64 << 10,
			Variants: []string{NAT, Term}, Base: NAT, Min: 5},
		{Name: "lossy", Title: "(b) lossy wireless: 40 ms RTT, 1% loss, 50 Mbit/s; wired 60 ms RTT, no loss",
			Wireless: link(40*time.Millisecond, 0.01, 50_000_000), Wired: link(60*time.Millisecond, 0, 0),
			Variants: []string{NAT, Term}, Base: NAT, Min: 1.5},
		{Name: "clean", Title: "(c) clean path, no emulation",
			Variants: []string{NAT, Term, HAProxy, L2Fwd, KernelFwd}, Base: HAProxy, Min: 0.5, Scale: 10},
	}
}

// Config configures a run.
type Config struct {
	Samepathd string
	Pktgen    string // pktgen binary for the l2fwd reference (`pktgen fwd`)
	HAProxy   string // the haproxy binary
	Go        string // go command for the idle-memory benchmark ("" skips it)
	Size      int64  // bytes per download
	Reps      int
	Cases     []Case
	// Timeout bounds one download.
	Timeout time.Duration
	// DUTCPU runs the device under test (samepathd, HAProxy: all
	// threads); this process (client, server, linkem) runs on GenCPU.
	DUTCPU, GenCPU int
	// KernelCC is the congestion control of the kernel ends' sockets
	// (client and server, TCP_CONGESTION; a namespace's default can only
	// be one of the host's tcp_allowed_congestion_control). Default cubic,
	// Linux's default and one netstack has; this host's default is bbr,
	// which ignores random loss. "" leaves the namespace default.
	KernelCC string
	// NoPin leaves this process's threads where they are (the demo,
	// which goes on after the run); the DUT still runs on DUTCPU.
	NoPin   bool
	Out     io.Writer
	Command string
}

// DefaultConfig is the `make perf` run: 20 MiB, 3 reps.
func DefaultConfig(samepathd string) Config {
	return Config{Samepathd: samepathd, Pktgen: bench.PktgenBeside(samepathd), HAProxy: "haproxy", Go: "go", Size: 20 << 20, Reps: 3, Cases: Cases(),
		Timeout: 5 * time.Minute, DUTCPU: 1, GenCPU: 0, KernelCC: "cubic"}
}

// QuickConfig is a development run: 2 MiB, 1 rep.
func QuickConfig(samepathd string) Config {
	c := DefaultConfig(samepathd)
	c.Size, c.Reps, c.Timeout = 2<<20, 1, 2*time.Minute
	return c
}

// Sample is one download.
type Sample struct {
	Case, Variant string
	Rep           int
	Bytes         int64
	Seconds       float64
	Mbps          float64 // goodput: payload bytes the client read per second, from connect to EOF
	Err           string  `json:",omitempty"`
	// SSMobile and SSServer are `ss -tin` of the kernel ends at half the
	// download (the mobile's connection, the server's).
	SSMobile, SSServer string `json:",omitempty"`
	// Relay: linkem counters during the download, toward the server (up)
	// and toward the mobile (down).
	RelayUp, RelayDown linkem.Stats
	// Gateway: samepathd's queue counters during the download.
	Gateway string `json:",omitempty"`
	CPUBusy []float64
}

// Memory is the idle-connection benchmark's result (bytes per connection).
type Memory struct {
	Through, Direct, Terminator []float64
	Err                         string `json:",omitempty"`
}

// Result is a finished run.
type Result struct {
	Config    Config `json:"-"`
	Env       bench.Env
	Samples   []Sample
	Placement []string
	Profiles  []tcpproxy.Profile
	Memory    Memory
	Duration  float64 // seconds
}

func (c *Config) logf(format string, a ...any) {
	if c.Out != nil {
		fmt.Fprintf(c.Out, format+"\n", a...)
	}
}

// Run measures every case: per rep, every variant in turn (A B A B ...).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("tcp-split needs root (network namespaces, XDP)")
	}
	if _, err := os.Stat(cfg.Samepathd); err != nil {
		return nil, fmt.Errorf("samepathd binary: %w", err)
	}
	start := time.Now()
	res := &Result{Config: cfg, Env: bench.Environment(cfg.Command),
		Profiles: []tcpproxy.Profile{tcpproxy.Wireless(), tcpproxy.Wired()}}
	if !cfg.NoPin {
		if err := pinSelf(cfg.GenCPU); err != nil {
			return nil, err
		}
		res.Placement = append(res.Placement, fmt.Sprintf("perfrun (client in ns mob, server in ns srv, linkem in ns air and wan; goroutines of one process): all threads on CPU%d", cfg.GenCPU))
	}
	if stale := cleanStale("sptcpsplit"); len(stale) > 0 {
		cfg.logf("removed stale namespaces of runs no longer alive: %s", strings.Join(stale, " "))
	}
	t := NewTopo("sptcpsplit")
	if err := t.Up(); err != nil {
		return nil, err
	}
	defer t.Down()
	srv, err := startServer(t.Srv, cfg.KernelCC)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	defWmem, _ := topo.ReadSysctl(t.Srv, "net/ipv4/tcp_wmem")
	defRmem, _ := topo.ReadSysctl(t.Srv, "net/ipv4/tcp_rmem")
	placed := map[string]bool{}
	for _, c := range cfg.Cases {
		if ctx.Err() != nil {
			break
		}
		cfg.logf("--- %s", c.Title)
		if err := t.StartRelays(c.Wireless, c.Wired); err != nil {
			return res, err
		}
		wm, rm := defWmem, defRmem
		if c.ServerWindow > 0 {
			w := fmt.Sprintf("4096 %d %d", c.ServerWindow, c.ServerWindow)
			wm, rm = w, w
		}
		if err := errors.Join(topo.Sysctl(t.Srv, "net/ipv4/tcp_wmem", wm), topo.Sysctl(t.Srv, "net/ipv4/tcp_rmem", rm)); err != nil {
			return res, err
		}
		srv.window.Store(int64(c.ServerWindow))
		for rep := 1; rep <= cfg.Reps && ctx.Err() == nil; rep++ {
			for _, v := range c.Variants {
				s, place := runOne(ctx, &cfg, t, c, v, rep)
				res.Placement = addPlacement(res.Placement, placed, place)
				res.Samples = append(res.Samples, s)
				if s.Err != "" {
					cfg.logf("  rep %d %-9s %s", rep, v, s.Err)
				} else {
					cfg.logf("  rep %d %-9s %8.2f Mbit/s (%d bytes in %.2f s)", rep, v, s.Mbps, s.Bytes, s.Seconds)
				}
			}
		}
	}
	if err := t.StopRelays(); err != nil {
		cfg.logf("stop relays: %v", err)
	}
	if cfg.Go != "" && ctx.Err() == nil {
		cfg.logf("--- memory per idle terminated connection (go test -bench IdleConnMemory ./tcpproxy)")
		res.Memory = idleMemory(ctx, cfg)
	}
	res.Env.LoadAfter = bench.Loadavg()
	res.Duration = time.Since(start).Seconds()
	return res, ctx.Err()
}

// addPlacement appends place to list unless it is empty (the variant
// failed to start) or a line for the same program, its first word, is
// there already.
func addPlacement(list []string, placed map[string]bool, place string) []string {
	f := strings.Fields(place)
	if len(f) == 0 || placed[f[0]] {
		return list
	}
	placed[f[0]] = true
	return append(list, place)
}

// cleanStale removes the topologies of earlier runs whose process is gone.
func cleanStale(prefix string) []string {
	names, err := topo.ListNetns(prefix + "-")
	if err != nil {
		return nil
	}
	var removed []string
	for _, n := range names {
		pidS, _, _ := strings.Cut(strings.TrimPrefix(n, prefix+"-"), "-")
		pid, err := strconv.Atoi(pidS)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // still running
		}
		topo.KillProcs(fmt.Sprintf("%s-%d-", prefix, pid), 2*time.Second)
		if topo.DeleteNetns(n) == nil {
			removed = append(removed, n)
		}
	}
	return removed
}

// pinSelf pins every thread of this process to cpu (threads made later
// inherit it from their creators).
func pinSelf(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, d := range tasks {
		tid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pin thread %d to cpu %d: %w", tid, cpu, err)
		}
	}
	return nil
}

// runOne starts variant v, downloads once and stops it.
func runOne(ctx context.Context, cfg *Config, t *Topo, c Case, v string, rep int) (Sample, string) {
	s := Sample{Case: c.Name, Variant: v, Rep: rep}
	var stop func() error
	var err error
	var port int
	var place string
	var pid int
	host := RepIP.String()
	switch v {
	case NAT, Term:
		port = NATPort
		if v == Term {
			port = TermPort
		}
		stop, err = bench.StartDUT(t.Bench(), "samepathd", []string{"taskset", "-c", strconv.Itoa(cfg.DUTCPU), mustAbs(cfg.Samepathd), "--config", writeTemp(t, "samepathd.yaml", SamepathdConfig(t))}, &pid)
		if err == nil {
			place = fmt.Sprintf("samepathd: started under taskset -c %d, so every thread (the worker, the terminator's netstack and splice goroutines) runs on CPU%d and Go has one P; CPUs allowed per thread at start: %s",
				cfg.DUTCPU, cfg.DUTCPU, allowedSummary(pid))
		}
	case HAProxy:
		port = HAProxyPort
		stop, pid, err = startHAProxy(t, cfg.HAProxy, cfg.DUTCPU)
		if err == nil {
			place = fmt.Sprintf("haproxy: nbthread 1, taskset -c %d (CPUs allowed: %s); the DUT kernel's TCP receive for its sockets runs in softirq on the CPU that transmits into In or Out", cfg.DUTCPU, allowedSummary(pid))
		}
	case L2Fwd:
		host, port = ServerIP.String(), ServerPort
		stop, pid, err = startL2Fwd(t, cfg.Pktgen, cfg.DUTCPU)
		if err == nil {
			place = fmt.Sprintf("pktgen fwd (the %s reference): started under taskset -c %d as samepathd is, so every thread runs on CPU%d and Go has one P; CPUs allowed per thread at start: %s",
				L2Fwd, cfg.DUTCPU, cfg.DUTCPU, allowedSummary(pid))
		}
	case KernelFwd:
		host, port = ServerIP.String(), ServerPort
		var desc string
		stop, desc, err = startKernelFwd(t, cfg.DUTCPU)
		place = "kernel-fwd (reference): " + desc
	default:
		err = fmt.Errorf("unknown variant %q", v)
	}
	if err != nil {
		s.Err = err.Error()
		return s, ""
	}
	gateway := v == NAT || v == Term
	var gw0 api.Counters
	if gateway {
		gw0, _ = counters(t.DUT)
	}
	up0, down0 := t.RelayStats()
	cpu0, _ := cpuTimes()
	s.Bytes, s.Seconds, s.SSMobile, s.SSServer, err = download(ctx, t, net.JoinHostPort(host, strconv.Itoa(port)), c.Bytes(cfg.Size), cfg.Timeout, cfg.KernelCC)
	cpu1, _ := cpuTimes()
	up1, down1 := t.RelayStats()
	s.RelayUp, s.RelayDown = subStats(up1, up0), subStats(down1, down0)
	s.CPUBusy = busy(cpu0, cpu1)
	if gateway {
		if gw1, cerr := counters(t.DUT); cerr == nil {
			s.Gateway = gwnat.CounterDelta(gw0, gw1)
		}
	}
	if err != nil {
		s.Err = err.Error()
	} else if s.Seconds > 0 {
		s.Mbps = float64(s.Bytes) * 8 / s.Seconds / 1e6
	}
	if serr := stop(); serr != nil && s.Err == "" {
		s.Err = serr.Error()
	}
	return s, place
}

// allowedSummary counts pid's threads per Cpus_allowed_list.
func allowedSummary(pid int) string {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return "?"
	}
	n := map[string]int{}
	var keys []string
	for _, d := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, d.Name()))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				v = strings.TrimSpace(v)
				if n[v] == 0 {
					keys = append(keys, v)
				}
				n[v]++
			}
		}
	}
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d threads on %s", n[k], k))
	}
	return strings.Join(parts, ", ")
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func writeTemp(t *Topo, name, content string) string {
	p := filepath.Join(os.TempDir(), t.Prefix+"-"+name)
	os.WriteFile(p, []byte(content), 0o644)
	return p
}

// SamepathdConfig is the gateway: one service per way through, both to
// the same server.
func SamepathdConfig(t *Topo) string {
	return fmt.Sprintf(`role: gw
api: %s
workers: {queues: 1}   # the whole process runs under taskset on the DUT CPU
gw:
  lan: {iface: %s}
  servers: {iface: %s}
  nat: {addrs: [%s], port_min: 1024, port_max: 59999, capacity: 65536}
  require_session: false   # no AAA in the benchmark
  services:
    - {name: split-nat, rep: "%s:%d", proto: tcp, type: connection, policy: rr, servers: [{addr: "%s:%d", state: up}]}
    - {name: split-term, rep: "%s:%d", proto: tcp, type: connection, policy: rr, mode: terminate, servers: [{addr: "%s:%d", state: up}]}
  terminate: {port_min: 60000, port_max: 65535}
`, gwnat.APIAddr, t.In, t.Out, NATAddr, RepIP, NATPort, ServerIP, ServerPort, RepIP, TermPort, ServerIP, ServerPort)
}

// HAProxyConfig is HAProxy's: one thread, mode tcp, RepIP:82 -> server.
func HAProxyConfig() string {
	return fmt.Sprintf(`global
    nbthread 1
    maxconn 1000
defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m
frontend split
    bind %s:%d
    default_backend server
backend server
    server s1 %s:%d
`, RepIP, HAProxyPort, ServerIP, ServerPort)
}

// startHAProxy adds RepIP to the DUT's loopback, starts HAProxy pinned to
// cpu and returns once it listens; stop ends it and removes the address.
func startHAProxy(t *Topo, bin string, cpu int) (func() error, int, error) {
	if _, err := exec.LookPath(bin); err != nil {
		return nil, 0, fmt.Errorf("haproxy not installed (Debian package haproxy): %w", err)
	}
	if out, err := topo.Command(t.DUT, "ip", "addr", "replace", RepIP.String()+"/32", "dev", "lo").CombinedOutput(); err != nil {
		return nil, 0, fmt.Errorf("add %s to lo: %w: %s", RepIP, err, out)
	}
	delAddr := func() { topo.Command(t.DUT, "ip", "addr", "del", RepIP.String()+"/32", "dev", "lo").Run() }
	path := writeTemp(t, "haproxy.cfg", HAProxyConfig())
	var logs strings.Builder
	cmd := topo.Command(t.DUT, "taskset", "-c", strconv.Itoa(cpu), bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		delAddr()
		return nil, 0, fmt.Errorf("start haproxy: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		defer delAddr()
		select {
		case err := <-exited:
			return fmt.Errorf("haproxy exited early: %v: %s", err, logs.String())
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := topo.Command(t.DUT, "ss", "-Hltn", fmt.Sprintf("sport = :%d", HAProxyPort)).Output()
		if strings.TrimSpace(string(out)) != "" {
			return stop, cmd.Process.Pid, nil
		}
		select {
		case err := <-exited:
			delAddr()
			return nil, 0, fmt.Errorf("haproxy exited: %v: %s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, 0, fmt.Errorf("haproxy not listening on %s:%d within 10s: %s", RepIP, HAProxyPort, logs.String())
		}
	}
}

// server answers each connection's 8-byte big-endian length with that
// many bytes, then closes.
type server struct {
	l  net.Listener
	cc string
	// window, if > 0, bounds the bytes each connection keeps in its
	// socket unacknowledged (SIOCOUTQ): a send window of that size.
	window atomic.Int64
}

// setCC sets the socket's congestion control (TCP_CONGESTION).
func setCC(cc string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		if cc == "" {
			return nil
		}
		var serr error
		if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc) }); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("TCP_CONGESTION %s: %w", cc, serr)
		}
		return nil
	}
}

func startServer(ns, cc string) (*server, error) {
	var l net.Listener
	err := topo.Do(ns, func() (err error) {
		lc := net.ListenConfig{Control: setCC(cc)}
		l, err = lc.Listen(context.Background(), "tcp", fmt.Sprintf("%s:%d", ServerIP, ServerPort))
		return err
	})
	if err != nil {
		return nil, err
	}
	s := &server{l: l, cc: cc}
	go s.serve()
	return s, nil
}

func (s *server) serve() {
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if rc, err := c.(*net.TCPConn).SyscallConn(); err == nil {
				setCC(s.cc)("", "", rc) // children inherit it from the listener; make sure
			}
			var h [8]byte
			if _, err := io.ReadFull(c, h[:]); err != nil {
				return
			}
			n := int64(binary.BigEndian.Uint64(h[:]))
			win := s.window.Load()
			rc, _ := c.(*net.TCPConn).SyscallConn()
			for n > 0 {
				k := min(n, int64(len(buf)))
				if win > 0 {
					k = min(k, windowChunk)
					for outq(rc)+k > win {
						time.Sleep(100 * time.Microsecond)
					}
				}
				if _, err := c.Write(buf[:k]); err != nil {
					return
				}
				n -= k
			}
		}()
	}
}

// windowChunk is what a window-limited server writes at a time.
const windowChunk = 8 << 10

// outq is the bytes in the socket's send queue not yet acknowledged
// (sent or not): SIOCOUTQ.
func outq(rc syscall.RawConn) int64 {
	var q int
	rc.Control(func(fd uintptr) { q, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
	return int64(q)
}

func (s *server) Close() error { return s.l.Close() }

// startL2Fwd runs `pktgen fwd` in the DUT namespace both ways (In -> Out
// to the server's MAC, Out -> In to the mobile's), pinned to cpu as
// samepathd is (taskset on the whole process; its worker is not pinned on
// its own, as samepathd's is not: under taskset Go sees one CPU), and
// returns once its filter sits on In.
func startL2Fwd(t *Topo, bin string, cpu int) (func() error, int, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, 0, fmt.Errorf("pktgen binary (make build): %w", err)
	}
	var pid int
	c := strconv.Itoa(cpu)
	stop, err := bench.StartDUT(t.Bench(), "pktgen fwd", []string{"taskset", "-c", c, mustAbs(bin), "fwd", "-in", t.In, "-out", t.Out,
		"-dst-mac", t.SMAC.String(), "-back-dst-mac", t.MMAC.String()}, &pid)
	return stop, pid, err
}

// startKernelFwd turns the DUT namespace into a plain IPv4 router with
// GRO: ip_forward=1, GRO on In and Out, their NAPI threaded and pinned to
// cpu, and TSO off on their peers (A1, W0). An XDP program on a veth
// turns its peer's TSO off, which is what lets the AF_XDP variants'
// frames take the veth's NAPI path; a veth with GRO but a TSO-capable
// peer takes every frame by netif_rx on the sending CPU, without GRO
// (a first version without the TSO step left CPU1 20% busy). stop puts
// back what was there; desc says what it set.
func startKernelFwd(t *Topo, cpu int) (stop func() error, desc string, err error) {
	var undo []func() error
	stop = func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		return errors.Join(errs...)
	}
	fail := func(err error) (func() error, string, error) { return nil, "", errors.Join(err, stop()) }
	if err := topo.Sysctl(t.DUT, "net/ipv4/ip_forward", "1"); err != nil {
		return fail(err)
	}
	undo = append(undo, func() error { return topo.Sysctl(t.DUT, "net/ipv4/ip_forward", "0") })
	for _, p := range []struct{ ns, dev string }{{t.Air, t.A1}, {t.Wan, t.W0}} {
		was, err := tso(p.ns, p.dev, "")
		if err != nil {
			return fail(err)
		}
		if _, err := tso(p.ns, p.dev, "off"); err != nil {
			return fail(err)
		}
		undo = append(undo, func() error { _, err := tso(p.ns, p.dev, was); return err })
	}
	var threads []string
	for _, dev := range []string{t.In, t.Out} {
		was, err := topo.GRO(t.DUT, dev)
		if err != nil {
			return fail(err)
		}
		if err := topo.SetGRO(t.DUT, dev, true); err != nil {
			return fail(err)
		}
		undo = append(undo, func() error { return topo.SetGRO(t.DUT, dev, was) })
		ths, err := bench.PinNAPI(t.DUT, dev, cpu, 0)
		undo = append(undo, func() error { return setThreaded(t.DUT, dev, false) })
		if err != nil {
			return fail(err)
		}
		if len(ths) == 0 {
			return fail(fmt.Errorf("kernel-fwd: no napi/%s-* thread after GRO on", dev))
		}
		for _, th := range ths {
			threads = append(threads, fmt.Sprintf("%s on CPU %s", th.Name, th.Allowed))
		}
	}
	return stop, fmt.Sprintf("ip_forward=1 in ns dut, no process; GRO on In and Out, TSO off on their peers (as an XDP program on In or Out makes it), their NAPI threaded and pinned (%s, SCHED_OTHER), so the DUT's receive, GRO, forwarding and transmit run on CPU%d",
		strings.Join(threads, ", "), cpu), nil
}

// tso turns TCP segmentation offload on dev in ns "on" or "off" (ethtool
// -K) unless set is empty, and returns what it was before.
func tso(ns, dev, set string) (string, error) {
	out, err := topo.Command(ns, "ethtool", "-k", dev).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ethtool -k %s/%s: %w: %s", ns, dev, err, strings.TrimSpace(string(out)))
	}
	was := ""
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "tcp-segmentation-offload:"); ok {
			was = strings.Fields(v)[0]
		}
	}
	if was != "on" && was != "off" {
		return "", fmt.Errorf("ethtool -k %s/%s: no tcp-segmentation-offload line", ns, dev)
	}
	if set != "" {
		if out, err := topo.Command(ns, "ethtool", "-K", dev, "tso", set).CombinedOutput(); err != nil {
			return "", fmt.Errorf("ethtool -K %s/%s tso %s: %w: %s", ns, dev, set, err, strings.TrimSpace(string(out)))
		}
	}
	return was, nil
}

// setThreaded sets /sys/class/net/DEV/threaded in ns.
func setThreaded(ns, dev string, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	if out, err := topo.Command(ns, "sh", "-c", "echo "+v+" > /sys/class/net/"+dev+"/threaded").CombinedOutput(); err != nil {
		return fmt.Errorf("threaded napi %s on %s/%s: %w: %s", v, ns, dev, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// download fetches size bytes from addr in the mobile's namespace
// and returns the bytes read and the seconds from connect to EOF; at half
// the bytes it records `ss -tin` at both kernel ends.
func download(ctx context.Context, t *Topo, addr string, size int64, timeout time.Duration, cc string) (got int64, secs float64, ssMob, ssSrv string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var c net.Conn
	err = topo.Do(t.Mob, func() (err error) {
		d := net.Dialer{Control: setCC(cc)}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	if err != nil {
		return 0, 0, "", "", fmt.Errorf("connect %s: %w", addr, err)
	}
	defer c.Close()
	stopWatch := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stopWatch()
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], uint64(size))
	if _, err := c.Write(h[:]); err != nil {
		return 0, 0, "", "", fmt.Errorf("request: %w", err)
	}
	type ss struct{ mob, srv string }
	ssc := make(chan ss, 1)
	buf := make([]byte, 256<<10)
	sampled := false
	for {
		n, rerr := c.Read(buf)
		got += int64(n)
		if !sampled && got >= size/2 {
			sampled = true
			go func() {
				m, _ := topo.Command(t.Mob, "ss", "-tinH", "state", "established").Output()
				s, _ := topo.Command(t.Srv, "ss", "-tinmH", "state", "established", fmt.Sprintf("sport = :%d", ServerPort)).Output()
				ssc <- ss{strings.TrimSpace(string(m)), strings.TrimSpace(string(s))}
			}()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = fmt.Errorf("after %d of %d bytes: %w", got, size, rerr)
			break
		}
	}
	secs = time.Since(start).Seconds()
	if sampled {
		s := <-ssc
		ssMob, ssSrv = s.mob, s.srv
	}
	if err == nil && got != size {
		err = fmt.Errorf("got %d bytes, want %d", got, size)
	}
	return got, secs, ssMob, ssSrv, err
}

// counters reads samepathd's GET /v1/counters in ns.
func counters(ns string) (api.Counters, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return topo.Dial(ctx, ns, network, addr)
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	resp, err := cl.Get("http://" + gwnat.APIAddr + "/v1/counters")
	if err != nil {
		return api.Counters{}, err
	}
	defer resp.Body.Close()
	var cs api.Counters
	return cs, json.NewDecoder(resp.Body).Decode(&cs)
}

// cpuTimes reads busy and total ticks per CPU from /proc/stat.
func cpuTimes() ([][2]uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	var out [][2]uint64
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var total, idle uint64
		for i, v := range f[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		out = append(out, [2]uint64{total - idle, total})
	}
	return out, nil
}

func busy(a, b [][2]uint64) []float64 {
	if len(a) != len(b) {
		return nil
	}
	out := make([]float64, len(a))
	for i := range a {
		if dt := b[i][1] - a[i][1]; dt > 0 {
			out[i] = float64(b[i][0]-a[i][0]) / float64(dt)
		}
	}
	return out
}
