// Package demo runs the FIG. 2 system in namespaces: the testbed network,
// a samepathd load balancer at each of the three ingress points, a
// samepathd packet gateway in each gateway namespace (the kernel no longer
// forwards in either), samepath-control in the ctl namespace (RADIUS AAA
// with address assignment, the session manager, gateway health), mobiles
// that log in through NAS emulators speaking real RADIUS, a download
// through a representative address to a mobile that moves across the
// three ingress points mid-transfer (the old NAS suspends the session, the
// new one resumes it: FIG. 11 and 31), connections to both server groups
// showing the servers the gateway chose or its refusal (T8/T9 from
// samepath-control: mob2 has not ordered group B's "video", so the gateway
// answers its SYNs with a RST, FIG. 25), a ping from each mobile to a
// representative address (the echo balanced as web-a), a summary with the session
// table and the refusals per service type, and, after every mobile logs
// out (Accounting Stop, User-Request), the proxy accounting the gateways
// wrote to their logs: final T10 records per subscriber, service and URL
// (FIG. 28-29). `make demo` runs it through
// cmd/samepath-demo; its test is the privileged end-to-end check with the
// real dataplane and control process.
//
//	                                            ctl (samepath-control) -- Mgmt -- nas*, lb*, gw*
//	mob1 ~~radio~~ nas1 -- lb1 (samepathd) --+                          +-- a1 a2  group A 10.30.0.1
//	     ~~radio~~ nas2 -- lb2 (samepathd) --+-- LAN1 -- gw1 (samepathd) +-- LAN2
//	     ~~radio~~ nas3 -- lb3 (samepathd) --+        -- gw2 (samepathd) +-- b1 b2  group B 10.30.0.2
//
// Every LB holds the same T4: gw1's range -> gw1 (substitute gw2), gw2's
// range -> gw2 (substitute gw1), so whichever ingress the mobile uses, its
// packets reach its own gateway, which keeps its port-key NAT state and
// sends the answers back through the LB the mobile used last. Which
// gateway that is, the AAA decides at login (the healthy gateway with the
// fewest assigned addresses): the Access-Accept's Framed-IP-Address
// becomes the mobile's address (fig2.SetMobileAddr), and the session
// manager tells the owning gateway about every transition.
//
// Start without StartControl gives the system without the control
// process: mobiles keep the plan's addresses and tests push session events
// themselves (System.StartSession).
//
// Goroutines: one interim ticker per logged-in mobile (Close stops them);
// everything else runs on the caller's goroutine.
package demo

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/nas"
	"samepath/ctl/session"
	"samepath/testbed"
	"samepath/testbed/fig2"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

// Options configure a demo run.
type Options struct {
	// Samepathd is the samepathd binary.
	Samepathd string
	// Steering is the LBs' steering mode: "afxdp" (default) or "xdp".
	Steering string
	// Size of the download in bytes (default 20 MiB); Rate paces the
	// mobile's reading so that the moves happen with data in flight.
	Size int64
	Rate int64
	// ServeArgv runs the testbed servers (default: this executable with
	// "serve", see fig2.Config).
	ServeArgv []string
	// Out receives progress and the summary.
	Out io.Writer
	// StartControl makes Start run samepath-control too (Run always
	// does); Control and Samepathctl are the samepath-control and
	// samepathctl binaries (default: beside Samepathd).
	StartControl         bool
	Control, Samepathctl string
	// GWNAT overrides parts of the gateways' key-port NAT config; zero
	// fields keep the defaults (tests use a tiny range and short timeouts
	// to reach port exhaustion and recovery).
	GWNAT GWNAT
	// GWAccounting turns on the gateways' accounting logs (off when its
	// Log is empty).
	GWAccounting GWAccounting
	// Interim is the Acct-Interim-Interval samepath-control grants
	// (radius.acct_interim_interval), the interval the NAS emulators
	// send Interim-Updates at; InterimTimeout is its
	// sessions.interim_timeout. Zero keeps the demo's (1 s, 30 s); tests
	// of a NAS with a long interval set both.
	Interim, InterimTimeout time.Duration
	// GWSync turns on the gateways' T5 state sync with each other
	// (samepathd gw.sync, issue 17): a live download survives its
	// gateway's crash (hakill.go).
	GWSync bool
	// HAKill (make demo) turns GWSync on and, after the pings, kills gw1
	// under a download that completes through gw2, then restarts gw1
	// (hakill.go); Summary.HAKill says how it went.
	HAKill bool
	// Stacks gives mobiles (by name) an address family stack in T2:
	// "ipv6" or "dual" (default ipv4). The AAA then grants an IPv6
	// prefix from the gateway's range6 (v6.go).
	Stacks map[string]string
	// DualStack makes Run give DemoDualStack both families and
	// download over IPv6 to it after the IPv4 download (demo6.go).
	DualStack bool
}

// GWAccounting is the gateways' accounting log config (samepathd
// gw.accounting) for a run.
type GWAccounting struct {
	// Log is the log's path with one %d for the gateway's index (1, 2),
	// e.g. "/tmp/run/gw%d.acct"; empty: no accounting.
	Log string
	// Interim and SyncInterval: zero keeps samepathd's defaults.
	Interim, SyncInterval time.Duration
}

// Path is gateway g's (1-based) accounting log.
func (a GWAccounting) Path(g int) string { return fmt.Sprintf(a.Log, g) }

// yaml renders gateway g's gw.accounting line ("" without a log).
func (a GWAccounting) yaml(g int) string {
	if a.Log == "" {
		return ""
	}
	s := fmt.Sprintf("  accounting: {log: %q", a.Path(g))
	if a.Interim != 0 {
		s += fmt.Sprintf(", interim: %s", a.Interim)
	}
	if a.SyncInterval != 0 {
		s += fmt.Sprintf(", sync_interval: %s", a.SyncInterval)
	}
	return s + "}\n"
}

// GWNAT is the part of the gateways' nat config (samepathd gw.nat) a run
// may override. Zero keeps the default: ports 1024-65535, RFC timeouts.
type GWNAT struct {
	PortMin, PortMax                                 uint16
	UDPTimeout, TCPTransitoryTimeout, PortReuseDelay time.Duration
	// TCPTimeWaitTimeout is how long a closed TCP flow's record lingers
	// (its final accounting record is written after it).
	TCPTimeWaitTimeout time.Duration
	// TermPortMin..TermPortMax, if set, turn on the TCP terminator
	// (samepathd gw.terminate) with these local ports, which must lie
	// outside PortMin..PortMax.
	TermPortMin, TermPortMax uint16
}

// termYAML renders the gw.terminate line ("" when off).
func (n GWNAT) termYAML() string {
	if n.TermPortMin == 0 {
		return ""
	}
	return fmt.Sprintf("  terminate: {port_min: %d, port_max: %d}\n", n.TermPortMin, n.TermPortMax)
}

// yaml renders the port range and the overrides as flow-map entries of
// gw.nat.
func (n GWNAT) yaml() string {
	if n.PortMin == 0 {
		n.PortMin = 1024
	}
	if n.PortMax == 0 {
		n.PortMax = 65535
	}
	var b strings.Builder
	fmt.Fprintf(&b, "port_min: %d, port_max: %d", n.PortMin, n.PortMax)
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"udp_timeout", n.UDPTimeout}, {"tcp_transitory_timeout", n.TCPTransitoryTimeout}, {"port_reuse_delay", n.PortReuseDelay},
		{"tcp_time_wait_timeout", n.TCPTimeWaitTimeout}} {
		if d.v != 0 {
			fmt.Fprintf(&b, ", %s: %s", d.key, d.v)
		}
	}
	return b.String()
}

// Phase is one leg of the download: the ingress point in use and what
// each element counted while it lasted.
type Phase struct {
	Ingress int
	Bytes   int64
	// LBUp/LBDown: packets the phase's LB steered up and carried down.
	LBUp, LBDown uint64
	// GwUp[g], GwDown[g]: up and down packets gateway g+1 forwarded.
	GwUp, GwDown []uint64
}

// Pick is one connection to a representative address and the actual
// server that answered it, or how the gateway refused it (Server empty).
type Pick struct {
	Service, Rep, Server string
	Refused              string
}

// Summary is the outcome of a run.
type Summary struct {
	Steering   string
	Bytes      int64
	ChecksumOK bool
	Duration   time.Duration
	Phases     []Phase
	// Drops by LB (1-based index) and reason over the whole run.
	Drops map[int]map[string]uint64
	// GwDrops by gateway (1-based) and reason.
	GwDrops map[int]map[string]uint64
	// Picks are the servers chosen for short connections after the
	// download: round robin on group A, login unit on group B.
	Picks []Pick
	// Pings: every mobile pings group A's representative address.
	Pings []Ping
	// Flows is how many NAT records each gateway held at the end.
	Flows []int
	// Denied: refusals by gateway (1-based) and service type (T8/T9).
	Denied map[int]map[string]uint64
	// Carrier is the gateway (1-based) the AAA gave the downloading
	// mobile's address to; MobileIPs are the addresses it assigned.
	Carrier   int
	MobileIPs map[string]netip.Addr
	// Steps are the RADIUS exchanges of the NAS emulators, Interims how
	// many Interim-Updates were answered per mobile.
	Steps    []Step
	Interims map[string]int
	// Sessions is samepath-control's T3 at the end, Transitions the FIG.
	// 11 edges its session manager took, GWSessions[g-1] gateway g's T3
	// copy, Health its gateway probes and LB pushes.
	Sessions    []session.Session
	Transitions map[string]uint64
	GWSessions  [][]api.GWSession
	Health      control.HealthReport
	// Tables is samepathctl's output (sessions list, gw services, gw
	// sessions) run in the ctl namespace.
	Tables string
	// Accounting sums the gateways' final T10 records per subscriber,
	// service and URL, read from their logs (AcctLogs) after every
	// mobile logged out.
	Accounting []AcctRow
	AcctLogs   string
	// Risk is the risk-balancing part (risk.go).
	Risk *RiskDemo
	// HAKill is the gateway crash (Options.HAKill), nil without it.
	HAKill *HAKillResult
	// IPv6 is the dual-stack mobile's IPv6 download (demo6.go).
	IPv6 *V6Summary
}

func (o *Options) defaults() {
	if o.Steering == "" {
		o.Steering = "afxdp"
	}
	if o.Size == 0 {
		o.Size = 20 << 20
	}
	if o.Rate == 0 {
		o.Rate = 10 << 20
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Control == "" {
		o.Control = filepath.Join(filepath.Dir(o.Samepathd), "samepath-control")
	}
	if o.Samepathctl == "" {
		o.Samepathctl = filepath.Join(filepath.Dir(o.Samepathd), "samepathctl")
	}
	if o.Interim == 0 {
		o.Interim = demoInterim
	}
	if o.InterimTimeout == 0 {
		o.InterimTimeout = demoInterimTimeout
	}
}

// BuildBinaries builds samepathd, samepath-control and samepathctl (with
// the go command on PATH) into dir and returns samepathd's path, for
// Options.Samepathd: the others sit beside it, where Options looks for
// them. The privileged tests on this system use it.
func BuildBinaries(dir string) (string, error) {
	cmd := exec.Command("go", "build", "-o", dir+"/", "samepath/cmd/samepathd", "samepath/cmd/samepath-control", "samepath/cmd/samepathctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build binaries: %w\n%s", err, out)
	}
	return filepath.Join(dir, "samepathd"), nil
}

// Run builds the network, runs the demo and tears everything down, also
// when ctx is cancelled (Ctrl-C).
func Run(ctx context.Context, o Options) (sum *Summary, err error) {
	o.defaults()
	o.riskDefaults()
	o.StartControl = true
	o.GWSync = o.GWSync || o.HAKill
	if o.DualStack {
		dualStackDefaults(&o)
	}
	if _, err := os.Stat(o.Samepathctl); err != nil {
		return nil, fmt.Errorf("samepathctl binary: %w", err)
	}
	cleanup, err := tempAccounting(&o)
	if err != nil {
		return nil, err
	}
	defer cleanup() // after the gateways stopped (deferred below)
	sys, err := Start(ctx, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := sys.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	p := sys.TB.Plan
	// Logins through the NAS emulators at ingress 1: the AAA assigns the
	// addresses and the session manager tells the owning gateways.
	fmt.Fprintf(o.Out, "== mobiles log in through nas1 (RADIUS Access-Request, Accounting Start)\n")
	ips := map[string]netip.Addr{}
	for _, m := range p.Mobiles {
		if ips[m.Name], err = sys.Login(ctx, m.Name); err != nil {
			return nil, err
		}
	}
	sum, err = download(ctx, sys, o)
	if err != nil {
		return sum, err
	}
	sum.MobileIPs = ips
	sum.Carrier = sys.gatewayOf(ips[p.Mobiles[0].Name])
	if o.DualStack {
		if sum.IPv6, err = sys.demoIPv6(ctx, o); err != nil {
			return sum, err
		}
	}
	if sum.Picks, err = picks(ctx, sys.TB); err != nil {
		return sum, err
	}
	if sum.Pings, err = sys.pings(ctx, ips); err != nil {
		return sum, err
	}
	if o.HAKill {
		if sum.HAKill, err = sys.HAKill(ctx, o, 24<<20, 4<<20); err != nil {
			return sum, err
		}
	}
	rd, closeIdle, err := sys.risk(ctx, o, ips[p.Mobiles[0].Name])
	defer closeIdle() // after the logouts: the connection ends with its session
	if sum.Risk = rd; err != nil {
		return sum, err
	}
	sum.Drops = map[int]map[string]uint64{}
	for i, c := range sys.LBs {
		if sum.Drops[i+1], err = drops(ctx, c); err != nil {
			return sum, err
		}
	}
	sum.GwDrops = map[int]map[string]uint64{}
	for i, c := range sys.GWs {
		if sum.GwDrops[i+1], err = drops(ctx, c); err != nil {
			return sum, err
		}
		f, err := c.Flows(ctx, 0)
		if err != nil {
			return sum, err
		}
		sum.Flows = append(sum.Flows, f.Total)
	}
	if sum.Denied, err = deniedCounts(ctx, sys.GWs); err != nil {
		return sum, err
	}
	if err := sys.collect(ctx, sum, o); err != nil {
		return sum, err
	}
	sum.AcctLogs = strings.ReplaceAll(o.GWAccounting.Log, "%d", "N")
	if sum.Accounting, err = sys.accounting(ctx, o); err != nil {
		return sum, err
	}
	Print(o.Out, sum, p)
	printIPv6(o.Out, sum.IPv6)
	if _, err := splitDemo(ctx, o); err != nil { // split.go
		return sum, err
	}
	return sum, nil
}

// collect reads the control process's and the gateways' session tables,
// health and the FIG. 11 edges, and samepathctl's view of them.
func (s *System) collect(ctx context.Context, sum *Summary, o Options) error {
	s.stopAll() // the tables no longer move under the interim tickers
	sum.Steps = s.Steps()
	sum.Interims = map[string]int{}
	for name := range s.mobiles {
		n, err := s.Interims(name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		sum.Interims[name] = n
	}
	if err := s.Control.Do(ctx, http.MethodGet, "/v1/sessions", nil, &sum.Sessions); err != nil {
		return err
	}
	var cs control.Counters
	if err := s.Control.Do(ctx, http.MethodGet, "/v1/counters", nil, &cs); err != nil {
		return err
	}
	sum.Transitions = cs.Sessions.Transitions
	if err := s.Control.Do(ctx, http.MethodGet, "/v1/health", nil, &sum.Health); err != nil {
		return err
	}
	for _, c := range s.GWs {
		ss, err := c.GWSessions(ctx)
		if err != nil {
			return err
		}
		sum.GWSessions = append(sum.GWSessions, ss.Sessions)
	}
	gw := "http://" + s.TB.Plan.Gateways[max(sum.Carrier, 1)-1].ControlAPI.String()
	var tables strings.Builder
	for _, args := range [][]string{{"sessions", "list"}, {"gw", "services", "-gw", gw}, {"gw", "sessions", "-gw", gw}, {"authz"}, {"gw", "authz"}} {
		out, err := s.Samepathctl(ctx, args...)
		if err != nil {
			return err
		}
		fmt.Fprintf(&tables, "$ samepathctl %s\n%s", strings.Join(args, " "), out)
	}
	sum.Tables = tables.String()
	return nil
}

// System is the FIG. 2 testbed with samepathd running as the three LBs
// and the two gateways. Tests build on it too.
type System struct {
	TB *fig2.Testbed
	// LBs[n-1] and GWs[g-1] reach the daemons' control APIs over the
	// management network.
	LBs, GWs []*api.Client
	// Token authenticates to every daemon's API; TokenFile holds it.
	Token, TokenFile string
	// Control reaches samepath-control's API (nil without StartControl);
	// RADIUSSecret is what the NASes share with it.
	Control      *api.Client
	RADIUSSecret string
	out          io.Writer
	ctlBin       string       // samepathctl
	ctld         *fig2.Daemon // samepath-control
	ctlExe       string       // its binary
	ctlConf      string       // its config file

	gwd       []*fig2.Daemon // [g-1]: gateway g's samepathd
	lbd       []*fig2.Daemon // [n-1]: LB n's samepathd
	samepathd string
	nas       []*nas.Client // [n-1]: the NAS emulator of ingress n
	mobiles   map[string]*mobileSession
	mu        sync.Mutex // steps, interim counts, starts
	steps     []Step
	starts    int // StartSession calls: each names a new session

	daeStop context.CancelFunc // the NAS emulators' Disconnect-Request servers
	daeWG   sync.WaitGroup
}

// Start builds the testbed and starts samepathd in every LB and gateway
// namespace, with kernel forwarding off in the LBs, and with StartControl
// samepath-control in the ctl namespace (mobiles are not logged in yet:
// Login). Close tears it down.
func Start(ctx context.Context, o Options) (sys *System, err error) {
	o.defaults()
	if _, err := os.Stat(o.Samepathd); err != nil {
		return nil, fmt.Errorf("samepathd binary: %w", err)
	}
	if _, err := os.Stat(o.Control); err != nil && o.StartControl {
		return nil, fmt.Errorf("samepath-control binary: %w", err)
	}
	cfg := fig2.DefaultConfig(testbed.NewPrefix())
	cfg.ServeArgv = o.ServeArgv
	fmt.Fprintf(o.Out, "== building FIG. 2 in namespaces %s-*\n", cfg.Prefix)
	tb, err := fig2.Up(ctx, cfg)
	if err != nil {
		return nil, err
	}
	sys = &System{TB: tb, out: o.Out, ctlBin: o.Samepathctl, samepathd: o.Samepathd}
	s := sys // a failed Start returns nil: close what it built
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	p := tb.Plan
	if sys.Token, sys.TokenFile, err = writeToken(tb); err != nil {
		return nil, err
	}
	if sys.GWs, sys.gwd, err = startGWs(ctx, tb, o, sys.Token, sys.TokenFile); err != nil {
		return nil, err
	}
	if sys.LBs, sys.lbd, err = startLBs(ctx, tb, o, sys.Token, sys.TokenFile); err != nil {
		return nil, err
	}
	for n := 1; n <= fig2.NumIngress; n++ {
		if err := tb.SetLBForwarding(n, false); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(o.Out, "== samepathd: LBs (steering %s) in lb1..lb3, gateways in gw1, gw2; kernel forwarding there is off\n", o.Steering)
	for _, r := range p.Gateways {
		fmt.Fprintf(o.Out, "   T4: %v -> gw%d %s (substitute gw%d)\n", r.Ranges, r.Index, r.LAN1.MAC, 3-r.Index)
	}
	if o.StartControl {
		if err := sys.startControl(ctx, o); err != nil {
			return nil, err
		}
	}
	return sys, nil
}

// StartSession tells the gateway owning the mobile's (plan) IPv4 address
// that its session started, what the session manager does after RADIUS
// Accounting Start. It is for tests that run without the control process;
// with it, Login does this through RADIUS. Each call starts a new
// session (a new id), as each login does: a gateway ignores a start of a
// session it saw end.
func (s *System) StartSession(ctx context.Context, mobile string) error {
	m, err := s.TB.Plan.Mobile(mobile)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.starts++
	id := fmt.Sprintf("demo-%s-%d", m.Name, s.starts)
	s.mu.Unlock()
	ev := api.SessionEvent{Event: api.EventStart, SessionID: id, DeviceID: "IMEI-" + m.Name, IP: m.IPv4.String(), Seq: 1}
	if err := s.GWs[m.Gateway-1].SessionEvent(ctx, ev); err != nil {
		return fmt.Errorf("session start for %s: %w", m.Name, err)
	}
	return nil
}

// RestartGateway stops gateway g's samepathd (SIGTERM) and starts it
// again with the same config, as an operator's restart does: it comes
// back with an empty T3 copy and NAT table, and its API answers when
// RestartGateway returns.
func (s *System) RestartGateway(ctx context.Context, g int) error {
	if err := s.StopGateway(g); err != nil {
		return err
	}
	return s.StartGateway(ctx, g)
}

// StopGateway stops gateway g's samepathd (SIGTERM); StartGateway starts
// it again. Between the two the gateway is down: its probes fail and the
// session events for it wait in samepath-control's outbox.
func (s *System) StopGateway(g int) error {
	if g < 1 || g > len(s.gwd) {
		return fmt.Errorf("demo: no gateway %d", g)
	}
	return s.gwd[g-1].Stop(5 * time.Second)
}

// KillGateway kills gateway g's samepathd (SIGKILL, its process group),
// as a crash does: nothing is shut down in order, its API and probes stop
// answering at once. StartGateway starts it again.
func (s *System) KillGateway(g int) error {
	if g < 1 || g > len(s.gwd) {
		return fmt.Errorf("demo: no gateway %d", g)
	}
	d := s.gwd[g-1]
	select {
	case <-d.Done():
		return fmt.Errorf("demo: gw%d is not running", g)
	default:
	}
	if err := syscall.Kill(-d.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("demo: kill gw%d: %w", g, err)
	}
	<-d.Done()
	return nil
}

// Substitute is the gateway the LBs' T4 names after gateway g for g's
// ranges (FIG. 14): the other one.
func (s *System) Substitute(g int) int {
	return s.TB.Plan.Gateways[len(s.TB.Plan.Gateways)-g].Index
}

// StartGateway starts gateway g's samepathd, stopped by StopGateway, with
// the same config; its API answers when StartGateway returns.
func (s *System) StartGateway(ctx context.Context, g int) error {
	if g < 1 || g > len(s.gwd) {
		return fmt.Errorf("demo: no gateway %d", g)
	}
	d := s.gwd[g-1]
	pg := s.TB.Plan.Gateways[g-1]
	path := filepath.Join(s.TB.LogDir(), fmt.Sprintf("gw%d.yaml", g))
	nd, err := s.TB.StartDaemon(pg.NS, d.Name, s.samepathd, "--config", path)
	if err != nil {
		return err
	}
	s.gwd[g-1] = nd
	return waitAPI(ctx, s.GWs[g-1], nd, s.TB, d.Name)
}

// KillLB SIGKILLs LB n's samepathd, as a crash does: its XDP programs go
// with it (their links are not pinned) and kernel forwarding is off
// there, so the ingress point carries nothing until RestartLB.
func (s *System) KillLB(n int) error {
	if n < 1 || n > len(s.lbd) {
		return fmt.Errorf("demo: no LB %d", n)
	}
	d := s.lbd[n-1]
	select {
	case <-d.Done():
		return fmt.Errorf("demo: samepathd-lb%d is not running", n)
	default:
	}
	if err := d.Cmd.Process.Kill(); err != nil {
		return fmt.Errorf("demo: kill samepathd-lb%d: %w", n, err)
	}
	<-d.Done()
	return nil
}

// RestartLB starts LB n's samepathd again with its config (after KillLB
// or a stop) and returns once its API answers.
func (s *System) RestartLB(ctx context.Context, n int) error {
	if n < 1 || n > len(s.lbd) {
		return fmt.Errorf("demo: no LB %d", n)
	}
	d := s.lbd[n-1]
	if err := d.Stop(5 * time.Second); err != nil {
		return err
	}
	path := filepath.Join(s.TB.LogDir(), fmt.Sprintf("lb%d.yaml", n))
	nd, err := s.TB.StartDaemon(s.TB.Plan.Ingress[n-1].LB.NS, d.Name, s.samepathd, "--config", path)
	if err != nil {
		return err
	}
	s.lbd[n-1] = nd
	return waitAPI(ctx, s.LBs[n-1], nd, s.TB, d.Name)
}

// Close stops the NAS emulators' tickers and every daemon and removes the
// testbed.
func (s *System) Close() error {
	s.stopAll()
	fmt.Fprintf(s.out, "== tearing down %s-*\n", s.TB.Plan.Prefix)
	return s.TB.Down()
}

func drops(ctx context.Context, c *api.Client) (map[string]uint64, error) {
	cs, err := c.Counters(ctx)
	if err != nil {
		return nil, err
	}
	d := map[string]uint64{}
	for _, q := range cs.Queues {
		for r, n := range q.Drops {
			d[r] += n
		}
		// Frames the kernel dropped at the AF_XDP socket, before the
		// dataplane saw them.
		for _, k := range api.SocketDrops {
			if n := q.Socket[k]; n > 0 {
				d["xsk_"+k] += n
			}
		}
	}
	return d, nil
}

func writeToken(tb *fig2.Testbed) (token, file string, err error) {
	tok := make([]byte, 16)
	rand.Read(tok)
	token = hex.EncodeToString(tok)
	file = filepath.Join(tb.LogDir(), "api.token")
	return token, file, os.WriteFile(file, []byte(token+"\n"), 0o600)
}

// client reaches a daemon's control API over the management network.
func client(p *fig2.Plan, ap netip.AddrPort, token string) *api.Client {
	c := api.NewClient("http://" + ap.String())
	c.Token = token
	ctlNS := p.Ctl.NS
	c.HTTP = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return topo.Dial(ctx, ctlNS, network, addr)
		},
	}}
	return c
}

// NATAddr is gateway g's key-port address on LAN2.
func NATAddr(g int) netip.Addr { return netip.AddrFrom4([4]byte{10, 20, 0, byte(100 + g)}) }

// startGWs starts samepathd role gw in both gateway namespaces: group A's
// web service round robin per connection, group B's web service in login
// units (one server per mobile from login to logout), group A's DNS-like
// UDP service per packet.
func startGWs(ctx context.Context, tb *fig2.Testbed, o Options, token, tokFile string) ([]*api.Client, []*fig2.Daemon, error) {
	p := tb.Plan
	srv := func(name string, port int) string {
		s, _ := p.Server(name)
		return netip.AddrPortFrom(s.LAN.IPv4.Addr(), uint16(port)).String()
	}
	gA, gB := p.Groups[0], p.Groups[1]
	services := fmt.Sprintf(`  services:
    - {name: web-a, rep: "%s:80", proto: tcp, type: connection, policy: rr, service_type: web,
       servers: [{addr: "%s"}, {addr: "%s"}]}
    - {name: web-b, rep: "%s:80", proto: tcp, type: login, policy: rr, service_type: video,
       servers: [{addr: "%s"}, {addr: "%s"}]}
    - {name: dns-a, rep: "%s:53", proto: udp, type: packet, policy: rr, service_type: dns,
       servers: [{addr: "%s"}, {addr: "%s"}]}
`, gA.VIPv4, srv("a1", fig2.HTTPPort), srv("a2", fig2.HTTPPort),
		gB.VIPv4, srv("b1", fig2.HTTPPort), srv("b2", fig2.HTTPPort),
		gA.VIPv4, srv("a1", fig2.DNSPort), srv("a2", fig2.DNSPort))
	var out []*api.Client
	var ds []*fig2.Daemon
	for _, g := range p.Gateways {
		conf := fmt.Sprintf(`role: gw
api: %s
api_token_file: %s
xsk: {frames: 4096, frame_size: 2048, ring_size: 1024, batch: 64}
workers: {queues: 1}
gw:
  lan: {iface: %s}
  servers: {iface: %s}
  nat: {addrs: [%s%s], %s, capacity: 65536}
  probe: {interval: 500ms, timeout: 300ms, fall: 2, rise: 1}
%s%s%s`, g.ControlAPI, tokFile, g.LAN1.Name, g.LAN2.Name, NATAddr(g.Index), nat6YAML(g.Index), o.GWNAT.yaml(), o.GWNAT.termYAML()+o.GWAccounting.yaml(g.Index), services+services6(p)+services64(p, o.GWNAT), syncYAML(p, g.Index, o.GWSync))
		path := filepath.Join(tb.LogDir(), fmt.Sprintf("gw%d.yaml", g.Index))
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, nil, err
		}
		name := fmt.Sprintf("samepathd-gw%d", g.Index)
		d, err := tb.StartDaemon(g.NS, name, o.Samepathd, "--config", path)
		if err != nil {
			return nil, nil, err
		}
		c := client(p, g.ControlAPI, token)
		if err := waitAPI(ctx, c, d, tb, name); err != nil {
			return nil, nil, err
		}
		out = append(out, c)
		ds = append(ds, d)
	}
	fmt.Fprintf(o.Out, "== gateways: web-a %s:80 (rr per connection), web-b %s:80 (login unit), dns-a %s:53 (udp per packet); NAT on 10.20.0.101/102\n", gA.VIPv4, gB.VIPv4, gA.VIPv4)
	return out, ds, nil
}

// startLBs writes each LB's config, starts samepathd in its namespace and
// returns API clients reaching them over the management network, and the
// daemons.
func startLBs(ctx context.Context, tb *fig2.Testbed, o Options, token, tokFile string) ([]*api.Client, []*fig2.Daemon, error) {
	p := tb.Plan
	var t4 strings.Builder
	for _, g := range p.Gateways {
		other := p.Gateways[len(p.Gateways)-g.Index]
		for _, r := range g.Ranges {
			fmt.Fprintf(&t4, "    - range: %s\n      gateways: [{mac: %q, state: up}, {mac: %q, state: up}]\n", r, g.LAN1.MAC, other.LAN1.MAC)
		}
	}
	var clients []*api.Client
	var ds []*fig2.Daemon
	for _, in := range p.Ingress {
		lb := in.LB
		conf := fmt.Sprintf(`role: lb
api: %s
api_token_file: %s
steering: %s
xsk: {frames: 4096, frame_size: 2048, ring_size: 1024, batch: 64}
workers: {queues: 1}
lb:
  ingress: {iface: %s, next_hop_mac: %q}
  gateway_side: {iface: %s}
  t4:
%s`, lb.ControlAPI, tokFile, o.Steering, lb.Ingress.Name, lb.NASMAC, lb.LAN.Name, t4.String())
		path := filepath.Join(tb.LogDir(), fmt.Sprintf("lb%d.yaml", in.Index))
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, nil, err
		}
		name := fmt.Sprintf("samepathd-lb%d", in.Index)
		d, err := tb.StartDaemon(lb.NS, name, o.Samepathd, "--config", path)
		if err != nil {
			return nil, nil, err
		}
		c := client(p, lb.ControlAPI, token)
		if err := waitAPI(ctx, c, d, tb, name); err != nil {
			return nil, nil, err
		}
		clients = append(clients, c)
		ds = append(ds, d)
	}
	return clients, ds, nil
}

func waitAPI(ctx context.Context, c *api.Client, d *fig2.Daemon, tb *fig2.Testbed, name string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Status(ctx); err == nil {
			return nil
		}
		select {
		case <-d.Done():
			log, _ := os.ReadFile(filepath.Join(tb.LogDir(), name+".log"))
			return fmt.Errorf("%s exited: %v\n%s", name, d.Err(), log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: control API did not answer", name)
}

type snapshot struct {
	lb []api.Counters
	gw []api.Counters
}

func snap(ctx context.Context, lbs, gws []*api.Client) (snapshot, error) {
	var s snapshot
	for _, c := range lbs {
		cs, err := c.Counters(ctx)
		if err != nil {
			return s, err
		}
		s.lb = append(s.lb, cs)
	}
	for _, c := range gws {
		cs, err := c.Counters(ctx)
		if err != nil {
			return s, err
		}
		s.gw = append(s.gw, cs)
	}
	return s, nil
}

// lbPackets sums rx packets of a daemon's mobile-side and far-side queues
// (up and down), or for the LB offload its single entry.
func lbPackets(c api.Counters, ingressIface string) (up, down uint64) {
	for _, q := range c.Queues {
		switch {
		case strings.HasSuffix(q.Port, "/xdp"):
			up += q.TxPackets // the offload counts both directions together
		case strings.HasPrefix(q.Port, ingressIface+"/"):
			up += q.RxPackets
		default:
			down += q.RxPackets
		}
	}
	return up, down
}

// mobileRcvBuf is the downloading mobile's socket receive buffer.
const mobileRcvBuf = 256 << 10

// download fetches Size bytes through group A's representative address to
// mob1 and moves mob1 to ingress 2 and 3 at a third and two thirds of the
// bytes (System.Move: RADIUS suspension at the old NAS, resumption at the
// new one).
func download(ctx context.Context, sys *System, o Options) (*Summary, error) {
	tb, lbs, gws := sys.TB, sys.LBs, sys.GWs
	p := tb.Plan
	mob := p.Mobiles[0]
	if mob.Ingress != 1 {
		if err := sys.Move(ctx, mob.Name, 1); err != nil {
			return nil, err
		}
	}
	url := fmt.Sprintf("http://%s/bytes/%d", netip.AddrPortFrom(p.Groups[0].VIPv4, fig2.HTTPPort), o.Size)
	fmt.Fprintf(o.Out, "== %s downloads %d bytes from %s, moving nas1 -> nas2 -> nas3\n", mob.Name, o.Size, url)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := topo.Dial(ctx, mob.NS, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			// A fixed receive buffer (no autotuning) bounds what the
			// server can send ahead of the paced reader, so each phase's
			// bytes cross the network during that phase.
			tc.SetReadBuffer(mobileRcvBuf)
		}
		return conn, err
	}}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != o.Size {
		return nil, fmt.Errorf("download: Content-Length %d, want %d", resp.ContentLength, o.Size)
	}
	sum := &Summary{Steering: o.Steering}
	var starts, ends []snapshot
	s0, err := snap(ctx, lbs, gws)
	if err != nil {
		return nil, err
	}
	starts = append(starts, s0)
	h := sha256.New()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	buf := make([]byte, 32<<10)
	var got int64
	var phaseBytes []int64
	phaseStart := int64(0)
	start := time.Now()
	for {
		n, rerr := r.Read(buf)
		h.Write(buf[:n])
		got += int64(n)
		if phase := len(starts); phase < fig2.NumIngress && got >= int64(phase)*o.Size/fig2.NumIngress {
			e, err := snap(ctx, lbs, gws)
			if err != nil {
				return nil, err
			}
			ends = append(ends, e)
			phaseBytes = append(phaseBytes, got-phaseStart)
			phaseStart = got
			fmt.Fprintf(o.Out, "   %d bytes: %s moves to ingress %d\n", got, mob.Name, phase+1)
			moved := time.Now()
			if err := sys.Move(ctx, mob.Name, phase+1); err != nil {
				return nil, err
			}
			s, err := snap(ctx, lbs, gws)
			if err != nil {
				return nil, err
			}
			starts = append(starts, s)
			// The move's time does not count: no catch-up burst after it.
			start = start.Add(time.Since(moved))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("download broke after %d bytes: %w", got, rerr)
		}
		if ahead := time.Duration(float64(got)/float64(o.Rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	e, err := snap(ctx, lbs, gws)
	if err != nil {
		return nil, err
	}
	ends = append(ends, e)
	phaseBytes = append(phaseBytes, got-phaseStart)
	sum.Duration = time.Since(start)
	sum.Bytes = got
	sum.ChecksumOK = got == o.Size && [32]byte(h.Sum(nil)) == servers.BytesSHA256(o.Size)
	if len(starts) != len(ends) {
		return sum, errors.New("download ended before every move")
	}
	for k := range starts {
		ph := Phase{Ingress: k + 1, Bytes: phaseBytes[k]}
		u1, d1 := lbPackets(ends[k].lb[k], p.Ingress[k].LB.Ingress.Name)
		u0, d0 := lbPackets(starts[k].lb[k], p.Ingress[k].LB.Ingress.Name)
		ph.LBUp, ph.LBDown = u1-u0, d1-d0
		for g := range ends[k].gw {
			lan := p.Gateways[g].LAN1.Name
			u1, d1 := lbPackets(ends[k].gw[g], lan)
			u0, d0 := lbPackets(starts[k].gw[g], lan)
			ph.GwUp = append(ph.GwUp, u1-u0)
			ph.GwDown = append(ph.GwDown, d1-d0)
		}
		sum.Phases = append(sum.Phases, ph)
	}
	return sum, nil
}

// picks opens short connections from both mobiles to both groups' web
// services and records which server answered (the server's name page),
// or the gateway's refusal (T8/T9: mob2 has not ordered group B's video).
func picks(ctx context.Context, tb *fig2.Testbed) ([]Pick, error) {
	p := tb.Plan
	var out []Pick
	for _, m := range p.Mobiles {
		for gi, svc := range []string{"web-a", "web-b"} {
			rep := netip.AddrPortFrom(p.Groups[gi].VIPv4, fig2.HTTPPort)
			for i := 0; i < 3; i++ {
				c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
					DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
						return topo.Dial(ctx, m.NS, network, addr)
					}}}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+rep.String()+"/", nil)
				resp, err := c.Do(req)
				if why, ok := refusal(err); ok {
					out = append(out, Pick{Service: m.Name + " " + svc, Rep: rep.String(), Refused: why})
					continue
				}
				if err != nil {
					return out, fmt.Errorf("%s -> %s: %w", m.Name, rep, err)
				}
				body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
				resp.Body.Close()
				if err != nil {
					return out, err
				}
				out = append(out, Pick{Service: m.Name + " " + svc, Rep: rep.String(), Server: strings.TrimSpace(string(body))})
			}
		}
	}
	return out, nil
}

// Print writes the summary as a table.
func Print(w io.Writer, s *Summary, p *fig2.Plan) {
	fmt.Fprintf(w, "\n== summary: %d bytes in %v, sha256 %s\n", s.Bytes, s.Duration.Round(time.Millisecond), map[bool]string{true: "ok", false: "MISMATCH"}[s.ChecksumOK])
	if s.Carrier != 0 && len(p.Mobiles) > 0 {
		mob := p.Mobiles[0].Name
		fmt.Fprintf(w, "the AAA gave %s %s in gw%d's range: every phase must be carried by gw%d alone\n", mob, s.MobileIPs[mob], s.Carrier, s.Carrier)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tingress\tLB\tbytes\tLB up pkts\tLB down pkts\tgw1 up/down\tgw2 up/down\tcarried by")
	for i, ph := range s.Phases {
		var gws []string
		for g := range ph.GwUp {
			if ph.GwUp[g] > 0 || ph.GwDown[g] > 0 {
				gws = append(gws, fmt.Sprintf("gw%d", g+1))
			}
		}
		carrier := strings.Join(gws, "+")
		switch {
		case carrier == "":
			carrier = "-"
		case s.Carrier != 0 && carrier == fmt.Sprintf("gw%d", s.Carrier):
			carrier += " (AAA's pick)"
		case s.Carrier != 0:
			carrier += fmt.Sprintf(" (NOT gw%d alone)", s.Carrier)
		}
		down := fmt.Sprint(ph.LBDown)
		if s.Steering == "xdp" {
			down = "(in up)" // the offload counts both directions together
		}
		fmt.Fprintf(tw, "%d\tnas%d\tlb%d\t%d\t%d\t%s\t%d/%d\t%d/%d\t%s\n", i+1, ph.Ingress, ph.Ingress, ph.Bytes, ph.LBUp, down,
			ph.GwUp[0], ph.GwDown[0], ph.GwUp[1], ph.GwDown[1], carrier)
	}
	tw.Flush()
	if len(s.Picks) > 0 {
		fmt.Fprintln(w, "\nservers chosen by the gateways (three connections each; web-a round robin, web-b login unit; T8 refusals):")
		byKey := map[string][]string{}
		var order []string
		for _, pk := range s.Picks {
			k := pk.Service + " via " + pk.Rep
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			if pk.Refused != "" {
				byKey[k] = append(byKey[k], pk.Refused)
				continue
			}
			byKey[k] = append(byKey[k], pk.Server)
		}
		for _, k := range order {
			fmt.Fprintf(w, "  %-30s %s\n", k, pickList(byKey[k]))
		}
	}
	if len(s.Pings) > 0 {
		fmt.Fprintln(w, "\nping to a representative address (ICMP echo: balanced as the first service there with a server up):")
		for _, pg := range s.Pings {
			fmt.Fprintf(w, "  %-6s -> %-12s %d/%d replies, echo sent to %s by its gateway (service %s)\n",
				pg.Mobile, pg.Rep, pg.Received, pg.Sent, cmp.Or(pg.Server, "?"), cmp.Or(pg.Service, "?"))
		}
	}
	fmt.Fprintln(w, "\ndrops by reason (whole run):")
	printDrops(w, "lb", s.Drops)
	printDrops(w, "gw", s.GwDrops)
	for i, n := range s.Flows {
		fmt.Fprintf(w, "  gw%d holds %d NAT records\n", i+1, n)
	}
	printDenied(w, s.Denied)
	printControl(w, s)
	printAccounting(w, s.Accounting, s.AcctLogs)
}

// printControl writes the control side: RADIUS exchanges, FIG. 11 edges,
// health, the gateways' T3 copies and samepathctl's tables.
func printControl(w io.Writer, s *Summary) {
	if len(s.Steps) == 0 {
		return
	}
	var names []string
	for n := range s.Interims {
		names = append(names, n)
	}
	sort.Strings(names)
	var ints []string
	for _, n := range names {
		ints = append(ints, fmt.Sprintf("%s %d", n, s.Interims[n]))
	}
	fmt.Fprintf(w, "\nRADIUS from the NAS emulators: %d exchanges listed above, Interim-Updates answered: %s\n", len(s.Steps), strings.Join(ints, ", "))
	var edges []string
	for e, n := range s.Transitions {
		edges = append(edges, fmt.Sprintf("%s %d", e, n))
	}
	sort.Strings(edges)
	fmt.Fprintf(w, "FIG. 11 edges the session manager took: %s\n", strings.Join(edges, ", "))
	for _, ss := range s.Sessions {
		if len(ss.AcctIDs) > 0 {
			fmt.Fprintf(w, "session %s (%s, %s) resumed from Dormant as %s (FIG. 31)\n", ss.ID, ss.Device, ss.IP, strings.Join(ss.AcctIDs, ", "))
		}
	}
	fmt.Fprint(w, "health monitor:")
	for _, t := range s.Health.Targets {
		up := "undecided"
		if t.Up != nil {
			up = map[bool]string{true: "up", false: "down"}[*t.Up]
		}
		fmt.Fprintf(w, " %s %s (%d probes);", t.Name, up, t.Probes)
	}
	for _, l := range s.Health.LBs {
		fmt.Fprintf(w, " %s acked %d pushes;", l.Name, l.OK)
	}
	fmt.Fprintln(w)
	for g, ss := range s.GWSessions {
		var rows []string
		for _, r := range ss {
			rows = append(rows, fmt.Sprintf("%s %s %s %s", r.SessionID, r.DeviceID, r.IP, r.State))
		}
		if len(rows) == 0 {
			rows = []string{"none"}
		}
		fmt.Fprintf(w, "gw%d T3 copy: %s\n", g+1, strings.Join(rows, "; "))
	}
	if s.Tables != "" {
		fmt.Fprintf(w, "\n%s", s.Tables)
	}
}

func printDrops(w io.Writer, kind string, all map[int]map[string]uint64) {
	for n := 1; n <= len(all); n++ {
		d := all[n]
		if len(d) == 0 {
			fmt.Fprintf(w, "  %s%d: none\n", kind, n)
			continue
		}
		var keys []string
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, d[k]))
		}
		fmt.Fprintf(w, "  %s%d: %s\n", kind, n, strings.Join(parts, " "))
	}
}
