package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"layeh.com/radius/rfc2866"

	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/health"
	"samepath/ctl/nas"
	"samepath/testbed/fig2"
	"samepath/testbed/topo"
)

// The control process's settings in the demo: interims every second (the
// Access-Accept's Acct-Interim-Interval, which the NAS emulators follow)
// and a session without one for 30 s closes (both: Options), health
// probes twice a second (HealthInterval, one success brings a
// gateway up), each gateway's T3 copy read back every SessionResync.
const (
	demoInterim        = time.Second
	demoInterimTimeout = 30 * time.Second
	HealthInterval     = 500 * time.Millisecond
	SessionResync      = time.Second
)

// controlConfig is samepath-control's YAML for the plan: T1 from the
// gateways' IPv4 ranges, control-API URLs and LAN1 MACs, the LBs' APIs for
// T4 state pushes, the NASes' management addresses as RADIUS clients (each
// with the LAN1 MAC of its ingress point's LB as lb_mac), T2
// from usersFile, T9/T8 for the mobiles' devices (authzYAML), interims
// every interim and closed after interimTimeout without one.
func controlConfig(p *fig2.Plan, stateDir, tokFile, usersFile, secret string, devices []string, interim, interimTimeout time.Duration) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\nradius:\n  auth: %q\n  acct: %q\n  require_message_authenticator: true\n  clients:\n",
		stateDir, p.Ctl.RADIUS.String(), netip.AddrPortFrom(p.Ctl.RADIUS.Addr(), p.Ctl.RADIUS.Port()+1).String())
	for _, in := range p.Ingress {
		// lb_mac: a resume at this NAS points the gateway's down path at
		// this ingress point's LB at once (R-GW-4).
		fmt.Fprintf(&b, "    - {prefix: %s, secret: %q, name: nas%d, disconnect_port: %d, lb_mac: %q}\n", in.NAS.Mgmt.IPv4.Addr(), secret, in.Index, daePort, in.LB.LAN.MAC)
	}
	fmt.Fprintf(&b, "  session_timeout: 1h\n  acct_interim_interval: %v\n", interim)
	fmt.Fprintf(&b, "sessions: {interim_timeout: %v, dormant_timeout: 10m, pending_timeout: 1m, resync: %v}\n", interimTimeout, SessionResync)
	b.WriteString("gateways:\n")
	for _, g := range p.Gateways {
		var v4 netip.Prefix
		for _, r := range g.Ranges {
			if r.Addr().Is4() {
				v4 = r
			}
		}
		if !v4.IsValid() {
			return "", fmt.Errorf("gw%d has no IPv4 range", g.Index)
		}
		fmt.Fprintf(&b, "  - {name: gw%d, range: %s%s, api: \"http://%s\", mac: %q}\n", g.Index, v4, range6YAML(g), g.ControlAPI, g.LAN1.MAC)
	}
	fmt.Fprintf(&b, "gateway_token_file: %s\nlbs:\n", tokFile)
	for _, in := range p.Ingress {
		fmt.Fprintf(&b, "  - {name: lb%d, api: \"http://%s\", token_file: %s}\n", in.Index, in.LB.ControlAPI, tokFile)
	}
	fmt.Fprintf(&b, "health: {interval: %v, timeout: 400ms, fall: 2, rise: 1, lb_resync: 10s}\n", HealthInterval)
	fmt.Fprintf(&b, "api: {listen: %q, token_file: %s}\nusers_file: %s\n", p.Ctl.API.String(), tokFile, usersFile)
	b.WriteString(authzYAML(p, devices))
	return b.String(), nil
}

// startControl starts samepath-control in the ctl namespace and waits
// until it serves and its health monitor has found both gateways up and
// told every LB.
func (s *System) startControl(ctx context.Context, o Options) error {
	tb, p := s.TB, s.TB.Plan
	secret := make([]byte, 12)
	rand.Read(secret)
	s.RADIUSSecret = hex.EncodeToString(secret)
	// T2: one user per mobile, with a password made for this run.
	var users strings.Builder
	var devices []string
	s.mobiles = map[string]*mobileSession{}
	for _, m := range p.Mobiles {
		pw := make([]byte, 8)
		rand.Read(pw)
		ms := &mobileSession{name: m.Name, user: m.Name, password: hex.EncodeToString(pw), device: "IMEI-" + m.Name}
		s.mobiles[m.Name] = ms
		devices = append(devices, ms.device)
		fmt.Fprintf(&users, "- {id: %s, password: %q, device_id: %q%s}\n", ms.user, ms.password, ms.device, stackYAML(o.Stacks[m.Name]))
	}
	usersFile := filepath.Join(tb.LogDir(), "users.yaml")
	if err := os.WriteFile(usersFile, []byte(users.String()), 0o600); err != nil {
		return err
	}
	conf, err := controlConfig(p, filepath.Join(tb.LogDir(), "control"), s.TokenFile, usersFile, s.RADIUSSecret, devices, o.Interim, o.InterimTimeout)
	if err != nil {
		return err
	}
	s.ctlConf = filepath.Join(tb.LogDir(), "control.yaml")
	if err := os.WriteFile(s.ctlConf, []byte(conf), 0o600); err != nil {
		return err
	}
	s.Control = client(p, p.Ctl.API, s.Token)
	s.ctlExe = o.Control
	if err := s.execControl(ctx); err != nil {
		return err
	}
	for in := range p.Ingress {
		s.nas = append(s.nas, &nas.Client{
			Auth:   p.Ctl.RADIUS.String(),
			Acct:   netip.AddrPortFrom(p.Ctl.RADIUS.Addr(), p.Ctl.RADIUS.Port()+1).String(),
			Secret: []byte(s.RADIUSSecret), NASID: fmt.Sprintf("nas%d", in+1), Timeout: time.Second, Retries: 2,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return topo.Dial(ctx, p.Ingress[in].NAS.NS, network, addr)
			},
		})
	}
	if err := s.serveDisconnects(); err != nil {
		return err
	}
	h, err := s.waitHealth(ctx)
	if err != nil {
		return err
	}
	var gws, lbs []string
	for _, t := range h.Targets {
		gws = append(gws, t.Name+" up")
	}
	for _, l := range h.LBs {
		lbs = append(lbs, l.Name)
	}
	fmt.Fprintf(s.out, "== samepath-control in %s: RADIUS %s (+1 accounting), API %s, T1 %s; health: %s, pushed to %s\n",
		p.Ctl.NS, p.Ctl.RADIUS, p.Ctl.API, t1Summary(p), strings.Join(gws, ", "), strings.Join(lbs, " "))
	st, err := s.waitAuthz(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "== service authorization from samepath-control: %s\n", s.authzLine(ctx, st))
	return nil
}

// execControl starts samepath-control in the ctl namespace with the
// run's config and waits until its API answers.
func (s *System) execControl(ctx context.Context) error {
	d, err := s.TB.StartDaemon(s.TB.Plan.Ctl.NS, "samepath-control", s.ctlExe, "--config", s.ctlConf)
	if err != nil {
		return err
	}
	s.ctld = d
	return waitAPI(ctx, s.Control, d, s.TB, "samepath-control")
}

// KillControl kills samepath-control (SIGKILL, its process group), as a
// crash does: no orderly shutdown, its RADIUS ports and API stop
// answering at once; the NAS emulators' requests go unanswered.
// StartControl starts it again. Between the two, the gateways and LBs
// keep the state they were given.
func (s *System) KillControl() error {
	d := s.ctld
	if d == nil {
		return errors.New("demo: no control process (Start without StartControl)")
	}
	select {
	case <-d.Done():
		return errors.New("demo: samepath-control is not running")
	default:
	}
	if err := syscall.Kill(-d.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("demo: kill samepath-control: %w", err)
	}
	<-d.Done()
	return nil
}

// StartControl starts samepath-control again, after KillControl, with the
// same config and state directory (it restores T3 and the address
// assignments from there); it returns once its API answers and its health
// monitor has found every gateway up and told every LB.
func (s *System) StartControl(ctx context.Context) error {
	if s.ctld == nil {
		return errors.New("demo: no control process (Start without StartControl)")
	}
	select {
	case <-s.ctld.Done():
	default:
		return errors.New("demo: samepath-control is running")
	}
	if err := s.execControl(ctx); err != nil {
		return err
	}
	_, err := s.waitHealth(ctx)
	return err
}

// daePort is where the NAS emulators take Disconnect-Request (RFC 5176).
const daePort = 3799

// serveDisconnects has each NAS emulator answer Disconnect-Requests on its
// management address (where its accounting comes from): a request for the
// session a mobile holds at that NAS ends it there (interims stop, the
// mobile is no longer logged in at any NAS) and is acknowledged.
func (s *System) serveDisconnects() error {
	p := s.TB.Plan
	ctx, cancel := context.WithCancel(context.Background())
	s.daeStop = cancel
	for i, in := range p.Ingress {
		conn, err := topo.ListenPacket(in.NAS.NS, "udp", netip.AddrPortFrom(in.NAS.Mgmt.IPv4.Addr(), daePort).String())
		if err != nil {
			cancel()
			return fmt.Errorf("nas%d disconnect port: %w", i+1, err)
		}
		n := i + 1
		s.daeWG.Add(1)
		go func() {
			defer s.daeWG.Done()
			nas.ServeDisconnect(ctx, conn, []byte(s.RADIUSSecret), func(d nas.DisconnectRequest) bool { return s.disconnected(n, d) })
		}()
	}
	return nil
}

// disconnected ends, at NAS n, the session d names, if a mobile holds it.
func (s *System) disconnected(n int, d nas.DisconnectRequest) bool {
	for name, ms := range s.mobiles {
		ms.mu.Lock()
		held := ms.nas == n && ms.acctID == d.AcctSessionID
		if held {
			s.stopInterims(ms)
			ms.nas, ms.aaaID = 0, "" // the session is closed: a new login starts another
		}
		gw := ms.gw
		ms.mu.Unlock()
		if held {
			s.step(Step{Mobile: name, NAS: n, Request: "Disconnect-Request", Result: d.AcctSessionID + " ACK", GW: gw})
			return true
		}
	}
	return false
}

func t1Summary(p *fig2.Plan) string {
	var parts []string
	for _, g := range p.Gateways {
		for _, r := range g.Ranges {
			if r.Addr().Is4() {
				parts = append(parts, fmt.Sprintf("gw%d %s", g.Index, r))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// waitHealth waits until the control process's monitor has every gateway
// up and every LB has acknowledged every gateway's state.
func (s *System) waitHealth(ctx context.Context) (control.HealthReport, error) {
	var h control.HealthReport
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := s.Control.Do(ctx, http.MethodGet, "/v1/health", nil, &h)
		if err == nil && healthDone(h, len(s.TB.Plan.Gateways)) {
			return h, nil
		}
		if time.Now().After(deadline) {
			return h, fmt.Errorf("samepath-control: gateways not up or not pushed to every LB: %+v (%v)", h, err)
		}
		select {
		case <-ctx.Done():
			return h, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func healthDone(h control.HealthReport, gateways int) bool {
	up := 0
	for _, t := range h.Targets {
		if t.Kind == health.KindGateway && t.Up != nil && *t.Up {
			up++
		}
	}
	if up != gateways || len(h.LBs) == 0 {
		return false
	}
	for _, l := range h.LBs {
		n := 0
		for _, st := range l.Pushed {
			if st == api.StateUp {
				n++
			}
		}
		if n != gateways {
			return false
		}
	}
	return true
}

// Step is one RADIUS exchange a NAS emulator made and what the owning
// gateway's T3 copy showed after it.
type Step struct {
	Mobile  string
	NAS     int    // ingress point whose NAS sent it
	Request string // e.g. "Access-Request", "Accounting Start"
	Result  string // e.g. "Accept 10.101.0.1", the Acct-Session-Id
	GW      int    // gateway owning the address (0 before the Accept)
	GWState string // that gateway's T3 row afterwards ("active", "dormant")
	// Took is how long the exchange and the wait for the gateway's T3
	// row took, where timed; shown when over slowStep.
	Took time.Duration
}

// slowStep: a step that took longer is shown with its time (a move's
// gap in the mobility soak reads against it).
const slowStep = 250 * time.Millisecond

// mobileSession is a NAS emulator's view of one mobile: credentials,
// the address the AAA gave, and the accounting session at its NAS.
type mobileSession struct {
	name, user, password, device string

	mu sync.Mutex
	ip netip.Addr // the session's address: IPv4, or the IPv6 prefix's first address
	// ip6 is the IPv6 prefix (or address) the AAA gave; zero without.
	ip6     netip.Prefix
	gw      int
	nas     int    // ingress point whose NAS holds the session; 0: none
	acctID  string // Acct-Session-Id at that NAS
	aaaID   string // the control process's session id (first Acct-Session-Id)
	starts  int
	base    [2]uint64 // link counters (in, out) at Start
	interim time.Duration
	stop    chan struct{}
	done    chan struct{}
	sent    int // Interim-Updates answered
	err     error
}

// Login logs mobile in through the NAS of its current ingress point
// (FIG. 3): Access-Request, the Access-Accept's Framed-IP-Address becomes
// the mobile's address in the testbed, then Accounting Start; it returns
// once the gateway owning the address holds the session (R-GW-7), and
// keeps sending Interim-Updates at the Accept's interval until the mobile
// moves or the context ends.
func (s *System) Login(ctx context.Context, mobile string) (netip.Addr, error) {
	ms, m, err := s.mobile(mobile)
	if err != nil {
		return netip.Addr{}, err
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.nas != 0 {
		// Still logged in: the new Start supersedes that session at the
		// control process (its interims stop here).
		s.stopInterims(ms)
		ms.nas, ms.aaaID = 0, ""
	}
	n := m.Ingress
	g, err := s.nas[n-1].Login(ctx, ms.user, ms.password, ms.device)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s login at nas%d: %w", mobile, n, err)
	}
	ip := g.IP
	if !ip.IsValid() {
		ip = g.IP6.Addr() // IPv6-only
	}
	gw := s.gatewayOf(ip)
	if gw == 0 {
		return netip.Addr{}, fmt.Errorf("%s: the AAA assigned %s, in no gateway's range", mobile, ip)
	}
	ms.ip, ms.ip6, ms.gw, ms.interim = ip, g.IP6, gw, g.Interim
	s.step(Step{Mobile: mobile, NAS: n, Request: "Access-Request", Result: "Accept " + grantText(g), GW: gw})
	if g.IP.IsValid() {
		if err := s.TB.SetMobileAddr(mobile, g.IP); err != nil {
			return netip.Addr{}, err
		}
	}
	if g.IP6.IsValid() {
		if _, err := s.TB.SetMobileAddr6(mobile, g.IP6); err != nil {
			return netip.Addr{}, err
		}
	}
	if err := s.startAcct(ctx, ms, n); err != nil {
		return netip.Addr{}, err
	}
	return g.IP, nil
}

// Move moves mobile to ingress point n the way a PPP session is suspended
// and resumed (FIG. 31): the old NAS sends Accounting Stop with
// Acct-Terminate-Cause Idle-Timeout (the session goes Dormant), the link
// moves, and the new NAS sends Accounting Start under its own
// Acct-Session-Id (Dormant -> Act). Without a session (NoControl) only
// the link moves.
func (s *System) Move(ctx context.Context, mobile string, n int) error {
	ms, _, err := s.mobile(mobile)
	if err != nil {
		return s.TB.Move(mobile, n)
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.nas != 0 && ms.nas != n {
		old := ms.nas
		t0 := time.Now()
		if err := s.sendStop(ctx, ms, old, rfc2866.AcctTerminateCause_Value_IdleTimeout); err != nil {
			return err
		}
		st, err := s.waitGW(ctx, ms, "dormant")
		s.step(Step{Mobile: mobile, NAS: old, Request: "Stop Idle-Timeout", Result: ms.acctID, GW: ms.gw, GWState: st, Took: time.Since(t0)})
		if err != nil {
			return err
		}
	}
	t0 := time.Now()
	if err := s.TB.Move(mobile, n); err != nil {
		return err
	}
	if d := time.Since(t0); d > slowStep {
		fmt.Fprintf(s.out, "   %s: the link move to nas%d took %v\n", mobile, n, d.Round(time.Millisecond))
	}
	if ms.ip.IsValid() && ms.nas == 0 {
		return s.startAcct(ctx, ms, n)
	}
	return nil
}

// sendStop stops ms's interim ticker and sends Accounting Stop for its
// session from NAS n with cause. Called with ms.mu held.
func (s *System) sendStop(ctx context.Context, ms *mobileSession, n int, cause rfc2866.AcctTerminateCause) error {
	s.stopInterims(ms)
	in, out := s.octets(ms, n)
	a := nas.Acct{Status: rfc2866.AcctStatusType_Value_Stop, SessionID: ms.acctID, User: ms.user, Device: ms.device, IP: ms.ip, IP6: ms.ip6,
		Cause: cause, InOctets: in, OutOctets: out}
	if err := s.nas[n-1].Account(ctx, a); err != nil {
		return fmt.Errorf("%s stop at nas%d: %w", ms.name, n, err)
	}
	ms.nas = 0
	return nil
}

// startAcct sends Accounting Start from NAS n, waits for the gateway's T3
// row to be active and starts the interim ticker. Called with ms.mu held.
func (s *System) startAcct(ctx context.Context, ms *mobileSession, n int) error {
	t0 := time.Now()
	ms.starts++
	ms.acctID = fmt.Sprintf("nas%d-%s-%d", n, ms.name, ms.starts)
	ms.nas = n
	ms.base = s.linkCounters(ms.name, n)
	a := nas.Acct{Status: rfc2866.AcctStatusType_Value_Start, SessionID: ms.acctID, User: ms.user, Device: ms.device, IP: ms.ip, IP6: ms.ip6}
	if err := s.nas[n-1].Account(ctx, a); err != nil {
		return fmt.Errorf("%s start at nas%d: %w", ms.name, n, err)
	}
	if ms.aaaID == "" {
		// The control process names a session after its first Start; a
		// Start resuming a Dormant session (Move) keeps that name.
		ms.aaaID = ms.acctID
	}
	st, err := s.waitGW(ctx, ms, "active")
	s.step(Step{Mobile: ms.name, NAS: n, Request: "Accounting Start", Result: ms.acctID, GW: ms.gw, GWState: st, Took: time.Since(t0)})
	if err != nil {
		return err
	}
	if ms.interim > 0 {
		ms.stop, ms.done = make(chan struct{}), make(chan struct{})
		go s.routineInterims(ctx, ms, n, ms.acctID, ms.stop, ms.done)
	}
	return nil
}

// routineInterims sends Interim-Update for the session at NAS n every
// interval until stop closes or ctx ends.
func (s *System) routineInterims(ctx context.Context, ms *mobileSession, n int, acctID string, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(ms.interim)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
		}
		in, out := s.octets(ms, n)
		a := nas.Acct{Status: rfc2866.AcctStatusType_Value_InterimUpdate, SessionID: acctID, User: ms.user, Device: ms.device, IP: ms.ip, IP6: ms.ip6, InOctets: in, OutOctets: out}
		err := s.nas[n-1].Account(ctx, a)
		s.mu.Lock()
		if err != nil {
			ms.err = fmt.Errorf("interim at nas%d: %w", n, err)
		} else {
			ms.sent++
		}
		s.mu.Unlock()
	}
}

// stopInterims stops the ticker and waits for an exchange in flight.
func (s *System) stopInterims(ms *mobileSession) {
	if ms.stop != nil {
		close(ms.stop)
		<-ms.done
		ms.stop, ms.done = nil, nil
	}
}

// Interims reports how many Interim-Updates were answered for mobile and
// the last interim error.
func (s *System) Interims(mobile string) (int, error) {
	ms, _, err := s.mobile(mobile)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return ms.sent, ms.err
}

// stopAll stops every interim ticker (Close).
func (s *System) stopAll() {
	for _, ms := range s.mobiles {
		ms.mu.Lock()
		s.stopInterims(ms)
		ms.mu.Unlock()
	}
	if s.daeStop != nil {
		s.daeStop()
		s.daeWG.Wait()
	}
}

func (s *System) mobile(name string) (*mobileSession, *fig2.Mobile, error) {
	m, err := s.TB.Plan.Mobile(name)
	if err != nil {
		return nil, nil, err
	}
	ms := s.mobiles[name]
	if ms == nil {
		return nil, m, errors.New("demo: no control process (Start without StartControl)")
	}
	return ms, m, nil
}

// gatewayOf is the gateway (1-based) whose range holds ip, or 0.
func (s *System) gatewayOf(ip netip.Addr) int {
	for _, g := range s.TB.Plan.Gateways {
		for _, r := range g.Ranges {
			if r.Contains(ip) {
				return g.Index
			}
		}
	}
	return 0
}

// linkCounters reads the NAS end of mobile's wireless link to ingress n:
// received (from the mobile) and sent (to it) bytes.
func (s *System) linkCounters(mobile string, n int) [2]uint64 {
	m, err := s.TB.Plan.Mobile(mobile)
	if err != nil {
		return [2]uint64{}
	}
	side := m.NASSide[n-1]
	h, err := topo.Open(side.NS)
	if err != nil {
		return [2]uint64{}
	}
	defer h.Close()
	st, err := h.LinkStats(side.Name)
	if err != nil {
		return [2]uint64{}
	}
	return [2]uint64{st.RxBytes, st.TxBytes}
}

// octets are the session's Acct-Input/Output-Octets at NAS n since its Start.
func (s *System) octets(ms *mobileSession, n int) (in, out uint32) {
	c := s.linkCounters(ms.name, n)
	return uint32(c[0] - ms.base[0]), uint32(c[1] - ms.base[1])
}

// waitGW waits until the gateway serving the mobile's address shows its
// AAA session on that address in state want, and returns the state seen.
// That is the owning gateway, or its substitute while the owner's API does
// not answer (it is down: the LBs steer the range to the substitute,
// which holds the range's sessions too).
func (s *System) waitGW(ctx context.Context, ms *mobileSession, want string) (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	seen := "(none)"
	for {
		g := ms.gw
		ss, err := s.GWs[g-1].GWSessions(ctx)
		if err != nil {
			g = s.Substitute(ms.gw)
			ss, err = s.GWs[g-1].GWSessions(ctx)
		}
		if err == nil {
			for _, r := range ss.Sessions {
				if r.IP == ms.ip.String() {
					seen = r.State
					if r.State == want && r.SessionID == ms.aaaID && r.DeviceID == ms.device {
						return seen, nil
					}
				}
			}
		}
		if time.Now().After(deadline) {
			return seen, fmt.Errorf("gw%d: session of %s (%s, %s) is %s, want %s (%v)", g, ms.name, ms.aaaID, ms.ip, seen, want, err)
		}
		select {
		case <-ctx.Done():
			return seen, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *System) step(st Step) {
	s.mu.Lock()
	s.steps = append(s.steps, st)
	s.mu.Unlock()
	state := ""
	if st.GWState != "" {
		state = fmt.Sprintf("gw%d T3: %s", st.GW, st.GWState)
	} else if st.GW != 0 {
		state = fmt.Sprintf("(gw%d's range)", st.GW)
	}
	if st.Took > slowStep {
		state += fmt.Sprintf(" (took %v)", st.Took.Round(time.Millisecond))
	}
	fmt.Fprintf(s.out, "   nas%d %s: %-18s %-22s %s\n", st.NAS, st.Mobile, st.Request, st.Result, state)
}

// Steps returns the RADIUS exchanges so far.
func (s *System) Steps() []Step {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Step(nil), s.steps...)
}

// Samepathctl runs the samepathctl binary (Options.Samepathctl) inside the
// ctl namespace with the run's token file and samepath-control's API, and
// returns its standard output (its standard error is in the error).
func (s *System) Samepathctl(ctx context.Context, args ...string) (string, error) {
	argv := append([]string{"-control", "http://" + s.TB.Plan.Ctl.API.String(), "-token-file", s.TokenFile}, args...)
	cmd := topo.CommandContext(ctx, s.TB.Plan.Ctl.NS, s.ctlBin, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("samepathctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
