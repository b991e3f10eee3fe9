package gwsync

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"samepath/nat"
)

// gw is one side of the test: a table with its owner goroutine (ops run
// there), its journal and its syncer.
type gw struct {
	t       *testing.T
	name    string
	tab     *nat.PortTable
	j       *nat.Journal
	ops     chan func()
	s       *Syncer
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	took    []netip.Addr
	gave    []netip.Addr
	announc int
	logs    bytes.Buffer              // its syncer's log, under mu
	tags    map[nat.FlowKey][2]uint64 // the latest tag received per flow, under mu
}

func (g *gw) Write(p []byte) (int, error) { g.mu.Lock(); defer g.mu.Unlock(); return g.logs.Write(p) }

func (g *gw) logText() string { g.mu.Lock(); defer g.mu.Unlock(); return g.logs.String() }

// logged reports whether the syncer's log has a line with every one of subs.
func (g *gw) logged(subs ...string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
lines:
	for _, l := range strings.Split(g.logs.String(), "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue lines
			}
		}
		return true
	}
	return false
}

var (
	addr1 = netip.MustParseAddr("192.0.2.1")
	addr2 = netip.MustParseAddr("192.0.2.2")
	srv   = nat.Addr16From(netip.MustParseAddr("198.51.100.7"))
)

func freePort(t *testing.T) string { return freePortTB(t) }

func freePortTB(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startGW(t *testing.T, name string, own, peerAddr netip.Addr, listen, peerName, peerListen string) *gw {
	t.Helper()
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs, pc.PeerAddrs = []netip.Addr{own}, []netip.Addr{peerAddr}
	pc.PortMin, pc.PortMax, pc.Capacity = 10000, 10999, 1024
	tab, err := nat.NewPortTable(pc)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := nat.NewJournal(1024)
	tab.SetJournal(j)
	g := &gw{t: t, name: name, tab: tab, j: j, ops: make(chan func(), 64), done: make(chan struct{}), tags: map[nat.FlowKey][2]uint64{}}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case f := <-g.ops:
				f()
			}
		}
	}()
	cfg := DefaultConfig()
	cfg.Name, cfg.Listen, cfg.Token = name, listen, "secret"
	cfg.Peers = []Peer{{Name: peerName, Addr: peerListen, NAT: []netip.Addr{peerAddr}}}
	cfg.Batch, cfg.PeerTimeout, cfg.Wait = 20*time.Millisecond, 300*time.Millisecond, 10*time.Second
	cfg.Journal, cfg.Table = j, tab
	cfg.Log = slog.New(slog.NewTextHandler(g, nil))
	cfg.Apply = func(cs []nat.Change) {
		g.mu.Lock()
		for i := range cs {
			if cs[i].Tag != ([2]uint64{}) {
				g.tags[cs[i].B.Flow] = cs[i].Tag
			}
		}
		g.mu.Unlock()
		g.ops <- func() {
			for i := range cs {
				c := &cs[i]
				switch c.Op {
				case nat.OpEnd:
					if id, ok := tab.Up(&c.B.Flow); ok && tab.IsPeer(id) {
						tab.Delete(id, nat.Released)
					}
				default:
					if id, err := tab.Install(&c.B, 1); errors.Is(err, nat.ErrExists) {
						tab.Refresh(id, c.B.State, 1)
					}
				}
			}
		}
	}
	cfg.Takeover = func(a []netip.Addr) error { g.mu.Lock(); g.took = append(g.took, a...); g.mu.Unlock(); return nil }
	cfg.Giveback = func(a []netip.Addr) error { g.mu.Lock(); g.gave = append(g.gave, a...); g.mu.Unlock(); return nil }
	cfg.Announce = func([]netip.Addr) error { g.mu.Lock(); g.announc++; g.mu.Unlock(); return nil }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.s = s
	go func() { s.Run(ctx); close(g.done) }()
	t.Cleanup(g.stop)
	return g
}

func (g *gw) stop() {
	g.cancel()
	<-g.done
}

// do runs f on the owner and waits.
func (g *gw) do(f func()) {
	ch := make(chan struct{})
	g.ops <- func() { f(); close(ch) }
	<-ch
}

func (g *gw) bindings() map[nat.FlowKey]nat.Binding {
	m := map[nat.FlowKey]nat.Binding{}
	g.tab.Snapshot(func(b nat.Binding) bool { m[b.Flow] = b; return true })
	return m
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func key(sport uint16) nat.FlowKey {
	return nat.MakeFlowKey(nat.ProtoTCP, netip.AddrPortFrom(netip.MustParseAddr("10.1.0.5"), sport), netip.MustParseAddrPort("203.0.113.10:80"))
}

// same reports whether the flows of want are in got with the same key
// port, server and state.
func same(want, got map[nat.FlowKey]nat.Binding) bool {
	for k, w := range want {
		g, ok := got[k]
		if !ok || g.GwAddr != w.GwAddr || g.GwPort != w.GwPort || g.Server != w.Server || g.SPort != w.SPort || g.State != w.State {
			return false
		}
	}
	return true
}

// TestSyncTakeoverFailback: the primary's bindings reach the substitute
// (same key, server and state), ends too; the primary dies; its flows
// arrive at the substitute, which takes its addresses over; the primary
// returns with an empty table, gets its flows back and the one opened on
// the substitute meanwhile, says it is ready, and the substitute gives
// the addresses back.
func TestSyncTakeoverFailback(t *testing.T) {
	l1, l2 := freePort(t), freePort(t)
	g1 := startGW(t, "gw1", addr1, addr2, l1, "gw2", l2)
	g2 := startGW(t, "gw2", addr2, addr1, l2, "gw1", l1)
	waitFor(t, "both ready", func() bool { return g1.s.Ready() && g2.s.Ready() })

	var ids []uint32
	g1.do(func() {
		for i := range 3 {
			k := key(uint16(40000 + i))
			id, err := g1.tab.Create(&k, srv, 8080, 0, 0, 1)
			if err != nil {
				t.Error(err)
			}
			g1.tab.Touch(id, true, 60, nat.FlagSYN, 1)
			ids = append(ids, id)
		}
		g1.tab.Delete(ids[2], nat.TCPClose)
	})
	want := g1.bindings()
	waitFor(t, "gw1's flows at gw2", func() bool { return len(g2.bindings()) == 2 && same(want, g2.bindings()) })

	// gw1 dies; gw2 sees its stream end and takes its address.
	g1.stop()
	waitFor(t, "takeover", func() bool { return g2.s.Stats().Takeovers == 1 })
	g2.mu.Lock()
	took := g2.took
	g2.mu.Unlock()
	if !slices.Equal(took, []netip.Addr{addr1}) {
		t.Fatalf("taken over %v, want %v", took, addr1)
	}
	if !g2.logged("level=WARN", "takeover:", "peer=gw1", "addrs=[192.0.2.1]") {
		t.Fatalf("takeover not logged:\n%s", g2.logText())
	}
	// A flow opened on gw2 during the outage, named for accounting.
	tag := [2]uint64{0xfeed, 9}
	g2.do(func() {
		k := key(41000)
		id, err := g2.tab.Create(&k, srv, 8080, 0, 0, 2)
		if err != nil {
			t.Error(err)
		}
		g2.tab.SetTag(id, tag)
	})
	want2 := g2.bindings()

	// gw1 returns empty: gw2's dump gives it everything; then gw2 hands
	// the addresses back.
	g1b := startGW(t, "gw1", addr1, addr2, l1, "gw2", l2)
	waitFor(t, "gw1 ready with gw2's dump", func() bool { return g1b.s.Ready() })
	if got := g1b.bindings(); len(got) != 3 || !same(want2, got) {
		t.Fatalf("gw1 after the restart holds %v, want %v", got, want2)
	}
	g1b.mu.Lock()
	gotTag := g1b.tags[key(41000)]
	g1b.mu.Unlock()
	if gotTag != tag {
		t.Fatalf("the dump named gw2's flow %v, want %v (its accounting name)", gotTag, tag)
	}
	waitFor(t, "failback", func() bool { return g2.s.Stats().Failbacks == 1 })
	g2.mu.Lock()
	gave := g2.gave
	g2.mu.Unlock()
	if !slices.Equal(gave, []netip.Addr{addr1}) {
		t.Fatalf("given back %v, want %v", gave, addr1)
	}
	if !g2.logged("failback:", "peer=gw1", "addrs=[192.0.2.1]") {
		t.Fatalf("failback not logged:\n%s", g2.logText())
	}
	waitFor(t, "gw1 announces", func() bool { g1b.mu.Lock(); defer g1b.mu.Unlock(); return g1b.announc == 1 })
	// gw1's flows are its own again: their port stays out of allocation.
	g1b.do(func() {
		for i := range 998 {
			k := key(uint16(50000 + i))
			if _, err := g1b.tab.Create(&k, srv, 8080, 0, 0, 3); err != nil {
				t.Errorf("create %d: %v", i, err)
				return
			}
		}
		k := key(60000)
		if _, err := g1b.tab.Create(&k, srv, 8080, 0, 0, 3); !errors.Is(err, nat.ErrExhausted) {
			t.Errorf("create past the free ports: %v, want exhausted (2 of 1000 held)", err)
		}
	})
	st := g2.s.Stats()
	if len(st.Peers) != 1 || !st.Peers[0].Connected || st.Peers[0].TakenOver || st.Dropped != 0 {
		t.Fatalf("gw2 stats %+v", st)
	}
}

// TestNoTakeoverOfAPeerNeverSeen: a gateway that starts while its peer
// is down takes nothing over (the peer may be starting too) and is ready
// after Wait.
func TestNoTakeoverOfAPeerNeverSeen(t *testing.T) {
	l1, l2 := freePort(t), freePort(t)
	g2 := startGW(t, "gw2", addr2, addr1, l2, "gw1", l1)
	time.Sleep(500 * time.Millisecond) // > PeerTimeout
	if st := g2.s.Stats(); st.Takeovers != 0 || st.Ready {
		t.Fatalf("alone: %+v, want no takeover and not ready before Wait", st)
	}
}

// TestSyncRefusesBadToken: a stream with the wrong token is closed
// before any change is applied.
func TestSyncRefusesBadToken(t *testing.T) {
	l1, l2 := freePort(t), freePort(t)
	g1 := startGW(t, "gw1", addr1, addr2, l1, "gw2", l2)
	c, err := net.Dial("tcp", l1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("SPSYNC1 gw2 wrong\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Fatalf("bad token answered %q", line)
	}
	if st := g1.s.Stats(); st.Received != 0 || st.Peers[0].Connected {
		t.Fatalf("stats after a refused stream: %+v", st)
	}
}

// TestWireRoundTrip: records survive encoding; a malformed frame is an
// error, not a panic.
func TestWireRoundTrip(t *testing.T) {
	cs := []nat.Change{
		{Op: nat.OpCreate, B: nat.Binding{Flow: key(1), GwAddr: nat.Addr16From(addr1), GwPort: 10001, Server: srv, SPort: 8080, State: nat.TCPEstablished}},
		{Op: nat.OpEnd, B: nat.Binding{Flow: key(2), GwAddr: nat.Addr16From(addr1), GwPort: 10002, Server: srv, SPort: 8080}},
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := writeFrame(w, header{typ: frameChanges, flags: flagReady, sent: 42}, cs); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	raw := buf.Bytes()
	h, got, err := readFrame(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil || h.sent != 42 || h.flags != flagReady {
		t.Fatalf("read: %+v %v", h, err)
	}
	if !slices.Equal(cs, got) {
		t.Fatalf("round trip: got %+v, want %+v", got, cs)
	}
	for _, bad := range [][]byte{
		{9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{frameHeartbeat, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		append(append([]byte(nil), raw[:hdrSize]...), append([]byte{7}, raw[hdrSize+1:]...)...),
		raw[:hdrSize+3],
	} {
		if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(bad))); err == nil {
			t.Errorf("frame % x accepted", bad[:min(len(bad), 20)])
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{frameChanges, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		readFrame(bufio.NewReader(bytes.NewReader(b)))
	})
}
