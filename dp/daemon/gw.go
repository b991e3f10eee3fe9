package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/dp/acct"
	"samepath/dp/balance"
	"samepath/dp/neigh"
	"samepath/dp/xlat"
	"samepath/nat"
	"samepath/ring/xsk"
	"samepath/ring/xsk/xdpfilter"
	"samepath/tcpproxy"
)

// gwState is the gateway role's run-time state shared with the API.
type gwState struct {
	gw       *dp.GW
	flows    *nat.PortTable
	services *balance.Table
	dist     *balance.Dist
	authz    *dp.Authz
	acct     *acct.Log    // nil without accounting
	term     *TermControl // nil without a terminator

	mu       sync.Mutex
	sessions map[string]*gwSession // by control-process session id
	byIP     map[netip.Addr]string // every session's address; only theirs
	nextID   uint64
	tombs    tombstones

	sync *gwSync // nil without gw.sync (gwsync.go)
}

type gwSession struct {
	api.GWSession
	id    uint64
	addrs []netip.Prefix // IP, and IP6 of a dual-stack session; the worker's T3 keys
	lb    nat.MAC        // the LB of the latest event that named one (R-GW-4)
}

// Tombstone bounds: an ended or displaced session's tombstone is kept
// for tombstoneTTL, and at most tombstoneMax of them (the oldest go
// first; about 100 bytes each). Past them a stale event of the session
// counts as new again. The control process's outbox delivers a gateway's
// events in order and repeats one only until it is acknowledged, so a
// stale repeat follows its original by seconds, not an hour. Session ids
// must not be reused within the bound: a new session under an ended one's
// id, starting again at seq 1, would be ignored.
const (
	tombstoneTTL = time.Hour
	tombstoneMax = 1 << 16
)

// tombstones remembers the last sequence number of sessions that are no
// longer in T3, so that their late or repeated events are ignored.
type tombstones struct {
	ttl   time.Duration
	max   int
	now   func() time.Time
	seq   map[string]tomb // by session id
	order []tombEntry     // oldest first; may name tombs since renewed or lifted
	gen   uint64
}

type tomb struct {
	seq uint64
	gen uint64 // which bury made it: its entry in order
}

type tombEntry struct {
	id  string
	gen uint64
	at  time.Time
}

func newTombstones(ttl time.Duration, max int, now func() time.Time) tombstones {
	return tombstones{ttl: ttl, max: max, now: now, seq: map[string]tomb{}}
}

// covers reports whether an event of session id with seq is not newer
// than the session's tombstone.
func (t *tombstones) covers(id string, seq uint64) bool {
	tb, ok := t.seq[id]
	return ok && seq <= tb.seq
}

// bury leaves (or raises) id's tombstone at seq, and drops what is past
// the bounds.
func (t *tombstones) bury(id string, seq uint64) {
	now := t.now()
	if tb, ok := t.seq[id]; ok && tb.seq > seq {
		seq = tb.seq
	}
	t.gen++
	t.seq[id] = tomb{seq: seq, gen: t.gen}
	t.order = append(t.order, tombEntry{id: id, gen: t.gen, at: now})
	t.expire(now)
}

// lift removes id's tombstone: a newer event brought the session back.
func (t *tombstones) lift(id string) { delete(t.seq, id) }

func (t *tombstones) expire(now time.Time) {
	for len(t.order) > 0 && (len(t.order) > t.max || now.Sub(t.order[0].at) > t.ttl) {
		e := t.order[0]
		t.order = t.order[1:]
		if tb, ok := t.seq[e.id]; ok && tb.gen == e.gen {
			delete(t.seq, e.id) // not renewed since
		}
	}
}

func newGWState(pipe *dp.GW, flows *nat.PortTable, services *balance.Table, dist *balance.Dist, authz *dp.Authz, alog *acct.Log) *gwState {
	return &gwState{gw: pipe, flows: flows, services: services, dist: dist, authz: authz, acct: alog,
		sessions: map[string]*gwSession{}, byIP: map[netip.Addr]string{},
		tombs: newTombstones(tombstoneTTL, tombstoneMax, time.Now)}
}

// startGW opens the gateway role: AF_XDP sockets on queue 0 of both sides
// sharing one UMEM, an XDP filter per side (LAN: frames to the gateway's
// MAC; servers: frames to the key-port addresses), the NAT table, T6/T7,
// the neighbor resolver and the server prober.
func (d *Daemon) startGW(ctx context.Context) error {
	g := d.cfg.GW
	lan, err := net.InterfaceByName(g.Lan.Iface)
	if err != nil {
		return fmt.Errorf("gw.lan.iface %q: %w", g.Lan.Iface, err)
	}
	srv, err := net.InterfaceByName(g.Servers.Iface)
	if err != nil {
		return fmt.Errorf("gw.servers.iface %q: %w", g.Servers.Iface, err)
	}
	if len(lan.HardwareAddr) != 6 || len(srv.HardwareAddr) != 6 {
		return errors.New("gw interfaces must be Ethernet")
	}
	pc, err := g.PortTableConfig()
	if err != nil {
		return err
	}
	// The guard first, so that it goes last at a stop (closers run last
	// first), after the addresses.
	if err := d.guardNATAddrs(slices.Concat(pc.GwAddrs, pc.PeerAddrs)); err != nil {
		return err
	}
	if err := d.addNATAddrs(srv, pc.GwAddrs); err != nil {
		return err
	}
	exclude, err := localAddrs(lan, srv, g.Exclude)
	if err != nil {
		return err
	}
	var kernel []netip.Addr // the host's own addresses, without the key-port ones
	for _, a := range exclude {
		isNAT := false
		for _, n := range slices.Concat(pc.GwAddrs, pc.PeerAddrs) {
			isNAT = isNAT || n == a
		}
		if !isNAT {
			kernel = append(kernel, a)
		}
	}
	flows, err := nat.NewPortTable(pc)
	if err != nil {
		return err
	}
	svcs, err := ServiceConfigs(g.Services)
	if err != nil {
		return err
	}
	services, err := balance.NewTable(svcs)
	if err != nil {
		return err
	}
	dist, err := balance.NewDist(services, pc.Capacity)
	if err != nil {
		return err
	}
	nb := neigh.New()
	go nb.Run(ctx, d.log, srv.Index, time.Second)
	for _, c := range svcs { // resolve the actual servers before traffic needs them
		for _, s := range c.Servers {
			nb.Resolve(s.Addr.Addr().As16())
		}
	}
	prc, _ := g.ProberConfig()
	prc.OnChange = func(service string, server netip.AddrPort, healthy bool, err error) {
		d.log.Info("server health", "service", service, "server", server, "healthy", healthy, "err", err)
	}
	prober, err := balance.NewProber(services, prc)
	if err != nil {
		return err
	}
	go prober.Run(ctx)

	t9, t8, err := AuthzRows(g.Authz)
	if err != nil {
		return err
	}
	authz, err := dp.NewAuthz(t9, t8)
	if err != nil {
		return err
	}
	var prod *acct.Producer
	var alog *acct.Log
	if g.Accounting.Log != "" {
		lc, err := g.Accounting.LogConfig()
		if err != nil {
			return err
		}
		if alog, err = acct.Open(lc); err != nil {
			return fmt.Errorf("accounting log: %w", err)
		}
		if n := alog.Stats().Recovered; n > 0 {
			// The last run crashed: Open wrote its open flows' final
			// records from their last checkpoints (R-ACCT-2).
			d.log.Warn("accounting: final records written for flows a crash ended", "flows", n, "cause", "gateway-restart", "log", alog.Path())
		}
		d.closers = append(d.closers, alog.Close) // runs last: after the worker stopped
		if prod, err = alog.Register(); err != nil {
			return err
		}
	}
	requireSession := g.RequireSession == nil || *g.RequireSession
	var tr *xlat.Translator
	if xc, ok, err := g.XlatConfig(); err != nil {
		return err
	} else if ok {
		if tr, err = xlat.New(xc); err != nil {
			return err
		}
		d.log.Info("ipv4/ipv6 translation on", "pool6", xc.Pool6, "eam", len(xc.EAM))
	} else {
		d.log.Info("ipv4/ipv6 translation off: flows to servers of the other family are refused")
	}
	var term *tcpproxy.Terminator
	var hooks *dp.TermHooks
	var tctl *TermControl
	if tc, ok, err := g.TermConfig(); err != nil {
		return err
	} else if ok {
		hooks = &dp.TermHooks{}
		hooks.Install(&tc)
		if term, err = tcpproxy.New(tc); err != nil {
			return fmt.Errorf("terminator: %w", err)
		}
		// Closers run last first: this one after the gateway's EndAll,
		// which resets the live connections and writes their records.
		d.closers = append(d.closers, func() error {
			if err := term.Close(); err != nil && !errors.Is(err, tcpproxy.ErrClosed) {
				return err
			}
			return nil
		})
		all, _, _, _ := g.Terminate.TermProfiles() // TermConfig checked them
		if tctl, err = NewTermControl(term, all, d.cfg.XSK.FrameSize, d.log); err != nil {
			term.Close()
			return fmt.Errorf("config: gw.terminate: %w", err)
		}
		d.log.Info("tcp termination on", "server_addrs", tc.ServerAddrs, "server_ports", tc.ServerPorts,
			"mobile_profile", tc.MobileProfile.Name, "server_profile", tc.ServerProfile.Name)
	}
	pipe, err := dp.NewGW(dp.GWConfig{
		Lan: 0, Servers: 1,
		LanMAC: nat.MAC(lan.HardwareAddr), ServerMAC: nat.MAC(srv.HardwareAddr),
		Flows: flows, Services: services, Dist: dist, Neighbors: nb,
		RequireSession: requireSession, LBCacheSize: g.LBCache, ExpireBudget: 64, Authz: authz,
		Acct: prod, AcctInterim: g.Accounting.Interim, Xlat: tr, ResumeHold: dp.DefaultResumeHold,
		Terminator: term, TermHooks: hooks,
	})
	if err != nil {
		return err
	}
	pipe.SetRiskLog(d.log)
	d.closers = append(d.closers, func() error {
		// The worker has returned (closers run after it): this goroutine
		// owns the table now. Open flows end here, so the accounting log,
		// closed next, gets their final records.
		if n := pipe.EndAll(5 * time.Second); n > 0 {
			d.log.Info("open flows ended at shutdown", "flows", n, "accounting", alog != nil)
		}
		pipe.Close()
		return nil
	})

	// One filter per side: what each side hands the dataplane differs.
	var prefixes []netip.Prefix
	for _, a := range slices.Concat(pc.GwAddrs, pc.PeerAddrs) { // a peer's: after a takeover (gwsync.go)
		prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	fLan, err := xdpfilter.Load(xdpfilter.Match{DstMACs: [][6]byte{[6]byte(lan.HardwareAddr)}, ExcludeDst: kernel})
	if err != nil {
		return err
	}
	d.closers = append(d.closers, fLan.Close)
	fSrv, err := xdpfilter.Load(xdpfilter.Match{DstMACs: [][6]byte{[6]byte(srv.HardwareAddr)}, DstPrefixes: prefixes, ExcludeDst: kernel})
	if err != nil {
		return err
	}
	d.closers = append(d.closers, fSrv.Close)

	xc := d.cfg.XSK
	u, err := xsk.NewUmem(xsk.UmemConfig{Frames: xc.Frames, FrameSize: uint32(xc.FrameSize), Logger: d.log})
	if err != nil {
		return err
	}
	d.closers = append(d.closers, u.Close)
	socks, err := xsk.NewShared(u, []string{lan.Name, srv.Name}, 0, xc.RingSize, xc.BusyPoll)
	if err != nil {
		return err
	}
	var ports []dp.Port
	for i, s := range socks {
		d.closers = append(d.closers, s.Close)
		f := []*xdpfilter.Filter{fLan, fSrv}[i]
		if err := f.Register(s); err != nil {
			return err
		}
		ports = append(ports, s)
	}
	cpu := -1
	if len(d.cfg.Workers.CPUs) > 0 {
		cpu = d.cfg.Workers.CPUs[0]
	}
	wc := dp.DefaultWorkerConfig()
	wc.Batch, wc.CPU = xc.Batch, cpu
	wc.OnPanic = d.panics.report
	w, err := dp.NewWorker(wc, ports, pipe)
	if err != nil {
		return err
	}
	d.workers = append(d.workers, w)
	d.cpus = append(d.cpus, cpu)
	if err := fLan.Attach(lan.Index, xdpfilter.Native); err != nil {
		return err
	}
	if err := fSrv.Attach(srv.Index, xdpfilter.Native); err != nil {
		return err
	}
	// Closers run last-in first-out: detach before the sockets close.
	d.closers = append(d.closers, fLan.Close, fSrv.Close)
	d.gw = newGWState(pipe, flows, services, dist, authz, alog)
	d.gw.term = tctl
	if g.Sync != nil {
		if d.gw.sync, err = d.startSync(ctx, pipe, flows, srv, pc.GwAddrs); err != nil {
			return err
		}
	}
	d.log.Info("gateway ready", "lan", lan.Name, "servers", srv.Name, "nat", pc.GwAddrs,
		"ports", fmt.Sprintf("%d-%d", pc.PortMin, pc.PortMax), "services", len(svcs), "require_session", requireSession)
	return nil
}

// addNATAddrs puts the key-port addresses on the server-side interface,
// so the kernel answers ARP/ND for them, and removes the ones it added at
// exit.
func (d *Daemon) addNATAddrs(ifi *net.Interface, addrs []netip.Addr) error {
	link, err := netlink.LinkByIndex(ifi.Index)
	if err != nil {
		return fmt.Errorf("nat addresses: %w", err)
	}
	have, err := localAddrs(ifi)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		present := false
		for _, h := range have {
			present = present || h == a
		}
		if present {
			continue
		}
		na := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}}
		if a.Is6() {
			na.Flags = 0x02 // IFA_F_NODAD: usable at once
			// Deprecated (preferred lifetime 0, valid forever): the
			// kernel still answers ND for it and takes what is sent to
			// it, but never picks it as a source (RFC 6724 rule 3).
			// Otherwise its /128 beats the interface's /64 in source
			// selection (the longest match is capped at an address's
			// prefix length), and the kernel's own connections to the
			// servers (the health probes) would come from it: their
			// answers go to the dataplane, which drops them (no_flow),
			// and every IPv6 server is seen down (no_server).
			na.ValidLft, na.PreferedLft = math.MaxUint32, 0
		}
		if err := netlink.AddrAdd(link, na); err != nil {
			return fmt.Errorf("add nat address %s to %s: %w", a, ifi.Name, err)
		}
		d.closers = append(d.closers, func() error { return netlink.AddrDel(link, na) })
		d.log.Info("nat address added", "addr", a, "iface", ifi.Name)
	}
	return nil
}

// sessionEvent applies a T3 notification (R-GW-7). Events are ordered
// per session by Seq, which must be 1 or more: an event not newer than
// the last applied for its session is acknowledged and ignored, and so
// is one not newer than the tombstone an end leaves (see tombstoneTTL),
// so retries and racing repeats are idempotent and an ended session does
// not come back. A session whose event names another address moves
// there: the worker closes the old address's gate and drops its flows.
// A session given an address that another holds displaces that one (its
// flows go, it is tombstoned at its last seq).
func (s *gwState) sessionEvent(ev api.SessionEvent) error {
	addrs, err := eventAddrs(ev)
	if err != nil {
		return err
	}
	if ev.SessionID == "" {
		return errors.New("session_id is required")
	}
	if ev.Seq == 0 {
		return errors.New("seq: want 1 or more (it orders a session's events)")
	}
	switch ev.Event {
	case api.EventStart, api.EventActive, api.EventDormant, api.EventEnd:
	default:
		return fmt.Errorf("event %q: want start, active, dormant or end", ev.Event)
	}
	var lb nat.MAC
	if ev.LBMAC != "" {
		if lb, err = nat.ParseMAC(ev.LBMAC); err != nil {
			return fmt.Errorf("lb_mac: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tombs.expire(s.tombs.now())
	if s.tombs.covers(ev.SessionID, ev.Seq) {
		return nil // a late event of an ended session
	}
	cur := s.sessions[ev.SessionID]
	if cur != nil && ev.Seq <= cur.Seq {
		return nil // a retry or a late event
	}
	if ev.Event == api.EventEnd {
		if cur != nil {
			s.remove(cur)
		}
		s.tombs.bury(ev.SessionID, ev.Seq) // also when the end overtook the start
		return nil
	}
	s.tombs.lift(ev.SessionID)
	if cur != nil && !slices.Equal(cur.addrs, addrs) {
		s.remove(cur) // the old addresses' gates close (the worker keys T3 by address)
		cur = nil
	}
	for _, a := range addrs {
		if old, ok := s.byIP[a.Addr()]; ok && old != ev.SessionID {
			if o := s.sessions[old]; o != nil {
				// The worker replaces it at this address, dropping its
				// flows; its other address's gate closes too.
				s.remove(o)
				s.tombs.bury(old, o.Seq)
			}
		}
	}
	if cur == nil {
		s.nextID++
		cur = &gwSession{id: s.nextID}
	}
	state := "active"
	if ev.Event == api.EventDormant {
		state = "dormant"
	}
	cur.addrs = addrs
	acctID := ev.AcctSessionID
	if acctID == "" { // a control process that does not send it: keep what an earlier event said
		acctID = cur.AcctSessionID
	}
	if acctID == "" {
		acctID = ev.SessionID // the Acct-Session-Id of the Start that created the session
	}
	cur.GWSession = api.GWSession{SessionID: ev.SessionID, UserID: ev.UserID, DeviceID: ev.DeviceID, IP: ev.IP, State: state, Seq: ev.Seq,
		AcctSessionID: acctID, IP6: ev.IP6}
	if lb != (nat.MAC{}) {
		cur.lb = lb // an event without one keeps what the last said
	}
	s.sessions[ev.SessionID] = cur
	for _, a := range addrs {
		s.byIP[a.Addr()] = ev.SessionID
		s.gw.Apply(dp.SessionEvent{Session: s.dpSession(cur, a)})
	}
	return nil
}

// eventAddrs is every address whose gate ev opens: IP (IPv4, or an IPv6
// address), and IP6, an IPv6 address or /64. An IPv6-only session names
// its first address as IP and its /64 as IP6: one gate, the /64.
func eventAddrs(ev api.SessionEvent) ([]netip.Prefix, error) {
	ip, err := netip.ParseAddr(ev.IP)
	if err != nil {
		return nil, fmt.Errorf("ip: %w", err)
	}
	ip = ip.Unmap()
	if ev.IP6 == "" {
		return []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}, nil
	}
	var p6 netip.Prefix
	if strings.Contains(ev.IP6, "/") {
		p6, err = netip.ParsePrefix(ev.IP6)
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(ev.IP6)
		p6 = netip.PrefixFrom(a, 128)
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("ip6: %w", err)
	case !p6.Addr().Is6() || p6.Addr().Is4In6():
		return nil, fmt.Errorf("ip6 %s: not IPv6", ev.IP6)
	case p6.Bits() != 128 && p6.Bits() != dpPrefix6Bits:
		return nil, fmt.Errorf("ip6 %s: want an address or a /%d", ev.IP6, dpPrefix6Bits)
	case p6 != p6.Masked():
		return nil, fmt.Errorf("ip6 %s: host bits set (want %s)", ev.IP6, p6.Masked())
	}
	if ip.Is4() {
		return []netip.Prefix{netip.PrefixFrom(ip, 32), p6}, nil
	}
	if !p6.Contains(ip) {
		return nil, fmt.Errorf("ip6 %s: does not hold the IPv6 ip %s", ev.IP6, ip)
	}
	return []netip.Prefix{p6}, nil
}

// dpPrefix6Bits is the IPv6 prefix length the worker's session gate
// matches (dp.Session.Prefix).
const dpPrefix6Bits = 64

// remove takes c out of T3 and has the worker end it at each of its
// addresses, with every flow record of it.
func (s *gwState) remove(c *gwSession) {
	delete(s.sessions, c.SessionID)
	for _, a := range c.addrs {
		if s.byIP[a.Addr()] == c.SessionID {
			delete(s.byIP, a.Addr())
			s.gw.Apply(dp.SessionEvent{End: true, Session: s.dpSession(c, a)})
		}
	}
}

// dpSession is the worker's T3 copy of c at address a.
func (s *gwState) dpSession(c *gwSession, a netip.Prefix) dp.Session {
	return dp.Session{ID: c.id, Name: c.SessionID, AcctSessionID: c.AcctSessionID, UserID: c.UserID, DeviceID: c.DeviceID,
		IP: a.Addr().As16(), Prefix: !a.IsSingleIP(), Dormant: c.State == "dormant", Seq: c.Seq, LB: c.lb}
}

func (s *gwState) sessionList() api.GWSessions {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := api.GWSessions{Sessions: []api.GWSession{}}
	for _, c := range s.sessions {
		out.Sessions = append(out.Sessions, c.GWSession)
	}
	sort.Slice(out.Sessions, func(i, j int) bool { return out.Sessions[i].SessionID < out.Sessions[j].SessionID })
	return out
}

func (s *gwState) sessionName(id uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.sessions {
		if c.id == id {
			return c.SessionID
		}
	}
	return ""
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1, 58:
		return "icmp"
	}
	return strconv.Itoa(int(p))
}

// ServicesView renders T6/T11/T9 with the probes' view.
func ServicesView(t *balance.Table) api.Services {
	out := api.Services{Services: []api.Service{}}
	for _, st := range t.Status() {
		var cfgType string
		var mode balance.Mode
		var risk balance.Risk
		for _, c := range t.Services() {
			if c.Name == st.Name {
				cfgType, mode, risk = c.ServiceType, c.Mode, c.Risk
			}
		}
		as := api.Service{Name: st.Name, Rep: st.Rep.String(), Proto: protoName(st.Proto), Type: st.Type.String(),
			Policy: st.Policy.String(), ServiceType: cfgType, Mode: mode.String(), Servers: []api.Server{}}
		if mode == balance.TerminateMode {
			as.Risk = riskView(risk)
		}
		for _, sv := range st.Servers {
			h := sv.Healthy
			as.Servers = append(as.Servers, api.Server{Addr: sv.Addr.String(), Weight: sv.Weight, State: sv.Admin.String(),
				Healthy: &h, RTTMicros: sv.RTT.Microseconds(), CPU: sv.Load, Active: sv.Conns})
		}
		out.Services = append(out.Services, as)
	}
	return out
}

// ReplaceServices makes t hold exactly the services in, keeping the
// run-time state of servers that stay.
func ReplaceServices(t *balance.Table, in api.Services) error {
	cfgs, err := ServiceConfigs(in.Services)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, c := range cfgs {
		keep[c.Name] = true
		if _, err := t.Put(c); err != nil {
			return err
		}
	}
	for _, c := range t.Services() {
		if !keep[c.Name] {
			if err := t.Delete(c.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// flowList lists up to limit flow records passing filter; Total counts
// every record that passes it.
func (s *gwState) flowList(limit int, filter api.FlowFilter) api.Flows {
	out := api.Flows{Flows: []api.Flow{}}
	now := s.gw.Clock()
	svcNames := map[uint32]string{}
	for _, st := range s.services.Status() {
		svcNames[st.ID] = st.Name
	}
	s.flows.Snapshot(func(b nat.Binding) bool {
		if filter.Empty() && len(out.Flows) >= limit {
			out.Total++
			return true
		}
		f := api.Flow{
			Proto:     protoName(b.Flow.Proto),
			Mobile:    netip.AddrPortFrom(b.Flow.Src.Addr(), b.Flow.SPort).String(),
			Dest:      netip.AddrPortFrom(b.Flow.Dst.Addr(), b.Flow.DPort).String(),
			Gateway:   netip.AddrPortFrom(b.GwAddr.Addr(), b.GwPort).String(),
			Server:    netip.AddrPortFrom(b.Server.Addr(), b.SPort).String(),
			Session:   s.sessionName(b.Session),
			UpPackets: b.UpPackets, UpBytes: b.UpBytes, DownPackets: b.DownPackets, DownBytes: b.DownBytes,
		}
		if b.Service != 0 {
			f.Service = svcNames[b.Service-1]
		}
		if b.Flow.Proto == 6 {
			f.State = b.State.String()
		}
		f.AgeSec = (now - b.Created) / int64(time.Second)
		f.IdleSec = (now - b.LastSeen) / int64(time.Second)
		if !filter.Match(f) {
			return true
		}
		out.Total++
		if len(out.Flows) < limit {
			out.Flows = append(out.Flows, f)
		}
		return true
	})
	return out
}

// ServiceRoutes adds the service-table endpoints (T6/T11/T9: GET/PUT
// /v1/services, PUT /v1/services/policy, PUT /v1/services/server) for t;
// changes of a server's state are logged to slog.Default.
func ServiceRoutes(v1 *http.ServeMux, t *balance.Table) {
	serviceRoutes(v1, t, slog.Default(), nil, nil)
}

// serviceRoutes: maint, if not nil, is told of every server put into
// maint (the gateway ends the flows still on it); risk, if set, gives a
// service's risk counters (risk.go).
func serviceRoutes(v1 *http.ServeMux, t *balance.Table, log *slog.Logger, maint func(service string, addr netip.AddrPort), risk func(string) [tcpproxy.NumRiskCounters]uint64) {
	v1.HandleFunc("GET /v1/services", func(w http.ResponseWriter, _ *http.Request) { reply(w, withRiskStats(ServicesView(t), risk)) })
	v1.HandleFunc("PUT /v1/services", func(w http.ResponseWriter, r *http.Request) {
		var in api.Services
		if !decode(w, r, &in, "services") {
			return
		}
		before := adminStates(t)
		if err := ReplaceServices(t, in); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		logAdminChanges(log, before, adminStates(t), maint)
		reply(w, api.Ack{OK: true})
	})
	v1.HandleFunc("PUT /v1/services/policy", func(w http.ResponseWriter, r *http.Request) {
		var pc api.PolicyChange
		if !decode(w, r, &pc) {
			return
		}
		p, err := balance.ParsePolicy(pc.Policy)
		if err == nil {
			err = t.SetPolicy(pc.Service, p)
		}
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		reply(w, api.Ack{OK: true})
	})
	weightRoutes(v1, t, log)
	v1.HandleFunc("PUT /v1/services/server", func(w http.ResponseWriter, r *http.Request) {
		var ss api.ServerState
		if !decode(w, r, &ss) {
			return
		}
		ap, err := netip.ParseAddrPort(ss.Addr)
		if err != nil {
			fail(w, http.StatusBadRequest, fmt.Errorf("addr: %w", err))
			return
		}
		st, err := balance.ParseAdminState(ss.State)
		if err == nil && ss.State == "" {
			err = errors.New("state: want up, drain or maint")
		}
		var was balance.AdminState
		if err == nil {
			was, err = t.SetAdmin(ss.Service, ap, st)
		}
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		if was != st {
			log.Info("server state changed", "service", ss.Service, "server", ap.String(), "state", st.String(), "was", was.String())
			if st == balance.AdminMaint && maint != nil {
				maint(ss.Service, ap)
			}
		}
		reply(w, api.Ack{OK: true})
	})
}

// gwRoutes adds the gateway endpoints to mux.
func gwRoutes(v1 *http.ServeMux, s *gwState, log *slog.Logger) {
	syncRoutes(v1, s.sync)
	v1.HandleFunc("POST /v1/sessions/events", func(w http.ResponseWriter, r *http.Request) {
		var ev api.SessionEvent
		if !decode(w, r, &ev) {
			return
		}
		if err := s.sessionEvent(ev); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		reply(w, api.Ack{OK: true})
	})
	v1.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, _ *http.Request) { reply(w, s.sessionList()) })
	serviceRoutes(v1, s.services, log, s.endServerFlows, s.gw.RiskCounts)
	xlatRoutes(v1, s.gw.XlatRuntime(), s.xlatCounters)
	viewRoutes(v1, s)
	TermRoutes(v1, s.term)
	v1.HandleFunc("GET /v1/authz", func(w http.ResponseWriter, _ *http.Request) {
		t9, t8 := s.authz.Rows()
		out := api.Authz{T9: []api.T9Row{}, T8: []api.T8Row{}, Denied: s.authz.Denied()}
		for _, r := range t9 {
			out.T9 = append(out.T9, api.T9Row{Rep: r.Rep.String(), ServiceType: r.ServiceType})
		}
		for _, r := range t8 {
			out.T8 = append(out.T8, api.T8Row{Device: r.Device, ServiceType: r.ServiceType, Allowed: r.Allowed})
		}
		reply(w, out)
	})
	v1.HandleFunc("PUT /v1/authz", func(w http.ResponseWriter, r *http.Request) {
		var in api.Authz
		if !decode(w, r, &in, "t9", "t8") {
			return
		}
		t9, t8, err := AuthzRows(in)
		if err == nil {
			err = s.authz.Replace(t9, t8)
		}
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		reply(w, api.Ack{OK: true})
	})
	v1.HandleFunc("GET /v1/flows", func(w http.ResponseWriter, r *http.Request) {
		limit := 1000
		if l := r.URL.Query().Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 {
				fail(w, http.StatusBadRequest, errors.New("limit: want a number >= 0"))
				return
			}
			limit = n
		}
		q := r.URL.Query()
		filter := api.FlowFilter{Mobile: q.Get("mobile"), Session: q.Get("session"), Service: q.Get("service"), Server: q.Get("server")}
		for key, v := range map[string]string{"mobile": filter.Mobile, "server": filter.Server} {
			if v == "" {
				continue
			}
			if _, err := netip.ParseAddr(v); err != nil {
				if _, err := netip.ParseAddrPort(v); err != nil {
					fail(w, http.StatusBadRequest, fmt.Errorf("%s %q: want an address or address:port", key, v))
					return
				}
			}
		}
		reply(w, s.flowList(limit, filter))
	})
}
