package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/dp/balance"
	"samepath/dp/dptest"
	"samepath/dp/neigh"
	"samepath/nat"
	"samepath/ring/memport"
)

// gwRig is the gateway role's API over a real dp.GW on memory ports:
// port 0 faces the LBs, port 1 the servers. The test's goroutine is the
// worker: poll runs it once, applying queued session events first.
//
//	mobile addrA 10.101.0.5, addrB 10.101.0.6 --- lb --- gw --- dst 10.20.0.50
type gwRig struct {
	t     *testing.T
	s     *gwState
	w     *dp.Worker
	ports [2]*memport.Port
	c     *api.Client
	base  string
	clock time.Time // the tombstones' clock
	logs  *syncBuf  // the API's log lines (JSON)
	log   *slog.Logger
}

// syncBuf is a log destination safe for the API's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// messages are the msg fields of the lines logged so far.
func (w *syncBuf) messages(t *testing.T) []map[string]any {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(w.b.String()), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

var (
	rigLanMAC = dptest.MAC("02:00:00:00:20:01")
	rigSrvMAC = dptest.MAC("02:00:00:00:20:02")
	rigLBMAC  = dptest.MAC("02:00:00:00:01:02")
	rigDstMAC = dptest.MAC("02:00:00:00:30:50")
	addrA     = netip.MustParseAddr("10.101.0.5")
	addrB     = netip.MustParseAddr("10.101.0.6")
	rigDst    = netip.MustParseAddr("10.20.0.50")
	rigDst6   = netip.MustParseAddr("2001:db8:20::50")
)

type gwTestBackend struct{ s *gwState }

func (b gwTestBackend) Status() api.Status     { return api.Status{Role: "gw"} }
func (b gwTestBackend) Counters() api.Counters { return api.Counters{} }
func (b gwTestBackend) T4() *nat.T4            { return nil }
func (b gwTestBackend) gwState() *gwState      { return b.s }

func newGWRig(t *testing.T) *gwRig {
	t.Helper()
	return newGWRigAddrs(t)
}

// newGWRigAddrs is newGWRig with extra key-port addresses (an IPv6 one
// for IPv6 mobiles).
func newGWRigAddrs(t *testing.T, extra ...netip.Addr) *gwRig {
	t.Helper()
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs = append([]netip.Addr{netip.MustParseAddr("10.20.0.101")}, extra...)
	pc.PortMin, pc.PortMax, pc.Capacity = 1024, 65535, 1024
	flows, err := nat.NewPortTable(pc)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := ServiceConfigs([]api.Service{{Name: "web", Rep: "10.30.0.1:80", Proto: "tcp", Type: "connection", Policy: "rr",
		Servers: []api.Server{{Addr: "10.20.0.11:8080", State: "up"}}}})
	if err != nil {
		t.Fatal(err)
	}
	services, err := balance.NewTable(svcs)
	if err != nil {
		t.Fatal(err)
	}
	dist, err := balance.NewDist(services, pc.Capacity)
	if err != nil {
		t.Fatal(err)
	}
	t9, t8, err := AuthzRows(api.Authz{T9: []api.T9Row{{Rep: "10.30.0.1", ServiceType: "web"}},
		T8: []api.T8Row{{Device: "IMEI-1", ServiceType: "web", Allowed: true}}})
	if err != nil {
		t.Fatal(err)
	}
	authz, err := dp.NewAuthz(t9, t8)
	if err != nil {
		t.Fatal(err)
	}
	nb := neigh.New()
	nb.Set(map[[16]byte][6]byte{rigDst.As16(): rigDstMAC, netip.MustParseAddr("10.20.0.11").As16(): rigDstMAC, rigDst6.As16(): rigDstMAC})
	g, err := dp.NewGW(dp.GWConfig{Lan: 0, Servers: 1, LanMAC: rigLanMAC, ServerMAC: rigSrvMAC,
		Flows: flows, Services: services, Dist: dist, Neighbors: nb, RequireSession: true,
		LBCacheSize: 1024, ExpireBudget: 64, Authz: authz})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	u, _ := memport.NewUmem(4096)
	lan, _ := memport.New(memport.DefaultConfig("lan/q0"), u)
	srv, _ := memport.New(memport.DefaultConfig("srv/q0"), u)
	w, err := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{lan, srv}, g)
	if err != nil {
		t.Fatal(err)
	}
	r := &gwRig{t: t, w: w, ports: [2]*memport.Port{lan, srv}, clock: time.Unix(1e9, 0), logs: &syncBuf{}}
	r.log = slog.New(slog.NewJSONHandler(r.logs, nil))
	r.s = newGWState(g, flows, services, dist, authz, nil)
	r.s.tombs.now = func() time.Time { return r.clock }
	hs := httptest.NewServer(NewHandler(gwTestBackend{r.s}, NewRegistry(func() api.Counters { return api.Counters{} }), "", r.log))
	t.Cleanup(hs.Close)
	r.base, r.c = hs.URL, api.NewClient(hs.URL)
	return r
}

// event posts ev through the API and lets the worker apply it.
func (r *gwRig) event(kind, id string, ip netip.Addr, seq uint64) {
	r.t.Helper()
	ev := api.SessionEvent{Event: kind, SessionID: id, DeviceID: "IMEI-1", IP: ip.String(), Seq: seq}
	if err := r.c.SessionEvent(context.Background(), ev); err != nil {
		r.t.Fatalf("%s %s seq %d: %v", kind, id, seq, err)
	}
	r.w.Poll()
}

// sessions is GET /v1/sessions as "id@ip/state/seq".
func (r *gwRig) sessions() []string {
	r.t.Helper()
	var out api.GWSessions
	if err := r.c.Do(context.Background(), http.MethodGet, "/v1/sessions", nil, &out); err != nil {
		r.t.Fatal(err)
	}
	got := []string{}
	for _, s := range out.Sessions {
		got = append(got, fmt.Sprintf("%s@%s/%s/%d", s.SessionID, s.IP, s.State, s.Seq))
	}
	return got
}

// up sends one UDP datagram from the mobile address src through the
// gateway and returns "forwarded" or the drop reason.
func (r *gwRig) up(src netip.Addr) string {
	r.t.Helper()
	before := r.w.Counters(0).Snapshot()
	f := dptest.Frame().Eth(rigLBMAC, rigLanMAC)
	if src.Is4() {
		f.IPv4(src, rigDst)
	} else {
		f.IPv6(src, rigDst6)
	}
	if !r.ports[0].Inject(f.UDP(4000, 53).Payload([]byte("q")).Bytes()) {
		r.t.Fatal("inject failed")
	}
	r.w.Poll()
	if out := r.ports[1].TakeAll(); len(out) == 1 {
		return "forwarded"
	}
	after := r.w.Counters(0).Snapshot()
	for i := range after.Drops {
		if after.Drops[i] != before.Drops[i] {
			return dp.Reason(i).String()
		}
	}
	r.t.Fatal("packet neither sent nor dropped")
	return ""
}

func TestGWSessionEndLeavesTombstone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events func(r *gwRig)
	}{
		{"start end start again", func(r *gwRig) {
			r.event(api.EventStart, "s1", addrA, 5)
			r.event(api.EventEnd, "s1", addrA, 6)
			r.event(api.EventStart, "s1", addrA, 5)
		}},
		{"end overtakes start", func(r *gwRig) {
			r.event(api.EventEnd, "s1", addrA, 6)
			r.event(api.EventStart, "s1", addrA, 5)
		}},
		{"racing repeats, highest is the end", func(r *gwRig) {
			r.event(api.EventStart, "s1", addrA, 5)
			r.event(api.EventActive, "s1", addrA, 6)
			r.event(api.EventEnd, "s1", addrA, 7)
			r.event(api.EventActive, "s1", addrA, 6)
			r.event(api.EventEnd, "s1", addrA, 7)
			r.event(api.EventStart, "s1", addrA, 5)
			r.event(api.EventDormant, "s1", addrA, 7)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newGWRig(t)
			tc.events(r)
			if d := cmp.Diff([]string{}, r.sessions()); d != "" {
				t.Errorf("sessions (-want +got):\n%s", d)
			}
			if got := r.up(addrA); got != "no_session" {
				t.Errorf("packet from the ended session's address: %s, want no_session", got)
			}
			// A new session on the same address works normally.
			r.event(api.EventStart, "s2", addrA, 1)
			if d := cmp.Diff([]string{"s2@10.101.0.5/active/1"}, r.sessions()); d != "" {
				t.Errorf("sessions after a new start (-want +got):\n%s", d)
			}
			if got := r.up(addrA); got != "forwarded" {
				t.Errorf("packet from the new session: %s", got)
			}
		})
	}
}

func TestGWSessionTombstoneBounds(t *testing.T) {
	r := newGWRig(t)
	r.s.tombs.max = 3
	for i := 1; i <= 4; i++ {
		r.event(api.EventEnd, fmt.Sprintf("s%d", i), addrA, 2)
	}
	if n := len(r.s.tombs.seq); n != 3 {
		t.Errorf("%d tombstones, want the bound 3", n)
	}
	// s1's tombstone was the oldest: it went, so its start counts again.
	r.event(api.EventStart, "s1", addrA, 1)
	r.event(api.EventStart, "s2", addrB, 1)
	if d := cmp.Diff([]string{"s1@10.101.0.5/active/1"}, r.sessions()); d != "" {
		t.Errorf("past the count bound (-want +got):\n%s", d)
	}
	// Past the time bound every tombstone goes.
	r.clock = r.clock.Add(tombstoneTTL + time.Second)
	r.event(api.EventStart, "s3", addrB, 1)
	if n := len(r.s.tombs.seq); n != 0 {
		t.Errorf("%d tombstones after the ttl, want 0", n)
	}
	if d := cmp.Diff([]string{"s1@10.101.0.5/active/1", "s3@10.101.0.6/active/1"}, r.sessions()); d != "" {
		t.Errorf("past the time bound (-want +got):\n%s", d)
	}
	// A newer event than the tombstone brings the session back.
	r.event(api.EventEnd, "s1", addrA, 2)
	r.event(api.EventActive, "s1", addrA, 3)
	if d := cmp.Diff([]string{"s1@10.101.0.5/active/3", "s3@10.101.0.6/active/1"}, r.sessions()); d != "" {
		t.Errorf("newer than the tombstone (-want +got):\n%s", d)
	}
}

func TestGWSessionTombstoneRenewed(t *testing.T) {
	r := newGWRig(t)
	r.s.tombs.max = 3
	r.event(api.EventEnd, "s1", addrA, 2)
	r.event(api.EventEnd, "s2", addrA, 2)
	r.event(api.EventEnd, "s3", addrA, 2)
	r.event(api.EventEnd, "s1", addrA, 4) // renewed: now the newest
	r.event(api.EventEnd, "s4", addrA, 2) // s2, the oldest, goes
	r.event(api.EventStart, "s1", addrA, 3)
	r.event(api.EventStart, "s2", addrB, 1)
	if d := cmp.Diff([]string{"s2@10.101.0.6/active/1"}, r.sessions()); d != "" {
		t.Errorf("sessions (-want +got):\n%s", d)
	}
	if n := len(r.s.tombs.seq); n != 3 {
		t.Errorf("%d tombstones, want 3 (s1, s3, s4)", n)
	}
}

func TestGWSessionSeqZeroRefused(t *testing.T) {
	r := newGWRig(t)
	err := r.c.SessionEvent(context.Background(), api.SessionEvent{Event: api.EventStart, SessionID: "s1", IP: addrA.String()})
	if err == nil {
		t.Fatal("seq 0 accepted")
	}
	r.w.Poll()
	if d := cmp.Diff([]string{}, r.sessions()); d != "" {
		t.Errorf("sessions (-want +got):\n%s", d)
	}
}

func TestGWSessionAddressChangeClosesOldGate(t *testing.T) {
	r := newGWRig(t)
	r.event(api.EventStart, "s1", addrA, 1)
	if got := r.up(addrA); got != "forwarded" {
		t.Fatalf("packet from A after start: %s", got)
	}
	if r.s.flows.Len() != 1 {
		t.Fatalf("%d flows, want A's one", r.s.flows.Len())
	}
	r.event(api.EventActive, "s1", addrB, 2)
	if got := r.up(addrA); got != "no_session" {
		t.Errorf("packet from A after the move to B: %s, want no_session", got)
	}
	if got := r.up(addrB); got != "forwarded" {
		t.Errorf("packet from B after the move: %s", got)
	}
	if d := cmp.Diff([]string{"s1@10.101.0.6/active/2"}, r.sessions()); d != "" {
		t.Errorf("sessions after the move (-want +got):\n%s", d)
	}
	r.event(api.EventEnd, "s1", addrB, 3)
	for _, a := range []netip.Addr{addrA, addrB} {
		if got := r.up(a); got != "no_session" {
			t.Errorf("packet from %s after the end: %s, want no_session", a, got)
		}
	}
	if n := r.s.flows.Len(); n != 0 {
		t.Errorf("%d flows after the end", n)
	}
	if d := cmp.Diff([]string{}, r.sessions()); d != "" {
		t.Errorf("sessions after the end (-want +got):\n%s", d)
	}
}

func TestGWSessionDisplacedByNewSession(t *testing.T) {
	r := newGWRig(t)
	r.event(api.EventStart, "s1", addrA, 1)
	r.event(api.EventStart, "s2", addrA, 1)  // the address went to s2
	r.event(api.EventActive, "s1", addrA, 1) // a late repeat of s1's start
	if d := cmp.Diff([]string{"s2@10.101.0.5/active/1"}, r.sessions()); d != "" {
		t.Errorf("sessions (-want +got):\n%s", d)
	}
	// s2 moves on; s1, gone, does not hold A.
	r.event(api.EventActive, "s2", addrB, 2)
	if got := r.up(addrA); got != "no_session" {
		t.Errorf("packet from A: %s, want no_session", got)
	}
	if got := r.up(addrB); got != "forwarded" {
		t.Errorf("packet from B: %s", got)
	}
}

// TestGWSessionLBMAC: a session event's lb_mac (the LB serving the NAS
// of the session's latest start or resume) moves the mobile's down
// packets to that LB at once, with no up packet (R-GW-4); an event
// without one keeps it; a malformed one is refused.
func TestGWSessionLBMAC(t *testing.T) {
	r := newGWRig(t)
	mob := netip.MustParseAddr("10.101.0.5")
	r.event(api.EventStart, "s1", mob, 1)
	if got := r.up(mob); got != "forwarded" {
		t.Fatalf("up: %s", got)
	}
	var b nat.Binding
	r.s.flows.Snapshot(func(x nat.Binding) bool { b = x; return false })
	down := func() string {
		t.Helper()
		f := dptest.Frame().Eth(rigDstMAC, rigSrvMAC).IPv4(rigDst, b.GwAddr.Addr()).UDP(53, b.GwPort).Payload([]byte("a")).Bytes()
		if !r.ports[1].Inject(f) {
			t.Fatal("inject failed")
		}
		r.w.Poll()
		out := r.ports[0].TakeAll()
		if len(out) != 1 {
			t.Fatalf("down packet not forwarded (%d out)", len(out))
		}
		return nat.MAC(out[0][:6]).String()
	}
	if got := down(); got != nat.MAC(rigLBMAC).String() {
		t.Fatalf("before any event, down to %s", got)
	}
	lb2 := "02:00:00:00:02:02"
	ev := api.SessionEvent{Event: api.EventActive, SessionID: "s1", DeviceID: "IMEI-1", IP: mob.String(), Seq: 2, LBMAC: lb2}
	if err := r.c.SessionEvent(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r.w.Poll()
	if got := down(); got != lb2 {
		t.Errorf("after the resume behind %s, down to %s", lb2, got)
	}
	r.event(api.EventActive, "s1", mob, 3) // an interim: no lb_mac
	if got := down(); got != lb2 {
		t.Errorf("after an event without lb_mac, down to %s", got)
	}
	ev.Seq, ev.LBMAC = 4, "not-a-mac"
	if err := r.c.SessionEvent(context.Background(), ev); err == nil || !strings.Contains(err.Error(), "lb_mac") {
		t.Errorf("malformed lb_mac: %v, want an error naming lb_mac", err)
	}
}

// TestGWFlowsFilter: GET /v1/flows lists only the records of the mobile,
// session, service or server asked for (an address matches any port),
// Total counting those; a malformed address is refused.
func TestGWFlowsFilter(t *testing.T) {
	r := newGWRig(t)
	mob1, mob2 := netip.MustParseAddr("10.101.0.5"), netip.MustParseAddr("10.101.0.6")
	r.event(api.EventStart, "s1", mob1, 1)
	r.event(api.EventStart, "s2", mob2, 1)
	for _, m := range []netip.Addr{mob1, mob1, mob2} {
		if got := r.up(m); got != "forwarded" {
			t.Fatalf("up from %v: %s", m, got)
		}
	}
	// r.up sends the same datagram each time: mob1 has one flow.
	ctx := context.Background()
	for _, tc := range []struct {
		f    api.FlowFilter
		want int
	}{
		{api.FlowFilter{}, 2},
		{api.FlowFilter{Mobile: "10.101.0.5"}, 1},
		{api.FlowFilter{Mobile: "10.101.0.5:4000"}, 1},
		{api.FlowFilter{Mobile: "10.101.0.5:4001"}, 0},
		{api.FlowFilter{Session: "s2"}, 1},
		{api.FlowFilter{Session: "s3"}, 0},
		{api.FlowFilter{Server: rigDst.String()}, 2},
		{api.FlowFilter{Server: rigDst.String(), Mobile: "10.101.0.6"}, 1},
		{api.FlowFilter{Service: "web"}, 0}, // the datagrams are unbalanced
	} {
		f, err := r.c.FlowsMatching(ctx, 100, tc.f)
		if err != nil {
			t.Fatalf("%+v: %v", tc.f, err)
		}
		if len(f.Flows) != tc.want || f.Total != tc.want {
			t.Errorf("filter %+v: %d records (total %d), want %d", tc.f, len(f.Flows), f.Total, tc.want)
		}
		for _, fl := range f.Flows {
			if !tc.f.Match(fl) {
				t.Errorf("filter %+v listed %+v", tc.f, fl)
			}
		}
	}
	if _, err := r.c.FlowsMatching(ctx, 100, api.FlowFilter{Mobile: "nonsense"}); err == nil || !strings.Contains(err.Error(), "mobile") {
		t.Errorf("malformed mobile: %v, want an error naming it", err)
	}
}
