package balance

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testProber(t *testing.T, tb *Table) *Prober {
	t.Helper()
	cfg := DefaultProberConfig()
	cfg.Interval, cfg.Timeout, cfg.Fall, cfg.Rise = 2*time.Second, 2*time.Second, 2, 2
	p, err := NewProber(tb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func listenTCP(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l
}

func healthy(t *testing.T, tb *Table, name string, i int) bool {
	t.Helper()
	id, _ := tb.ID(name)
	return tb.Status()[id].Servers[i].Healthy
}

// TestProberTCP: a server that goes away goes down after Fall failed
// rounds and comes back after Rise good ones; the other stays up.
func TestProberTCP(t *testing.T) {
	l1 := listenTCP(t, "127.0.0.1:0")
	l2 := listenTCP(t, "127.0.0.1:0")
	defer l2.Close()
	a1 := netip.MustParseAddrPort(l1.Addr().String())
	a2 := netip.MustParseAddrPort(l2.Addr().String())
	tb := newTable(t, svcCfg("web", "192.0.2.1:80", FastestResponse, ConnectionUnit,
		[]Server{{Addr: a1, Up: true}, {Addr: a2, Up: true}}))
	var changes []string
	p := testProber(t, tb)
	p.cfg.OnChange = func(s string, a netip.AddrPort, up bool, err error) {
		changes = append(changes, a.String()+map[bool]string{true: " up", false: " down"}[up])
		if up != (err == nil) {
			t.Errorf("OnChange up=%v err=%v", up, err)
		}
	}
	ctx := context.Background()
	p.Round(ctx)
	st := tb.Status()[0]
	if !st.Servers[0].Healthy || st.Servers[0].RTT <= 0 || st.Servers[1].RTT <= 0 {
		t.Fatalf("after a good round: %+v", st.Servers)
	}
	l1.Close()
	steps := []struct {
		listen bool
		want   bool
	}{
		{false, true},  // 1 failure < Fall
		{false, false}, // 2 failures: down
		{false, false},
		{true, false},  // 1 success < Rise
		{false, false}, // a failure resets the rise count
		{true, false},
		{true, true}, // 2 successes: up
	}
	for i, s := range steps {
		var l net.Listener
		if s.listen {
			l = listenTCP(t, a1.String())
		}
		p.Round(ctx)
		if l != nil {
			l.Close()
		}
		if got := healthy(t, tb, "web", 0); got != s.want {
			t.Fatalf("step %d: healthy = %v, want %v", i, got, s.want)
		}
		if !healthy(t, tb, "web", 1) {
			t.Fatalf("step %d: the other server went down", i)
		}
		if i == 2 {
			for range 5 {
				if _, idx, _ := tb.Pick(0); idx != 1 {
					t.Fatalf("down server picked")
				}
			}
		}
	}
	want := []string{a1.String() + " down", a1.String() + " up"}
	if strings.Join(changes, ",") != strings.Join(want, ",") {
		t.Errorf("changes %v, want %v", changes, want)
	}
	// Every failed check is counted (issue 18: per-server failures),
	// including those Fall damped: 4 rounds without a listener.
	if st := tb.Status()[0].Servers; st[0].Failures != 4 || st[1].Failures != 0 {
		t.Errorf("check failures %d, %d; want 4, 0", st[0].Failures, st[1].Failures)
	}
}

func TestProberHTTP(t *testing.T) {
	var fail atomic.Bool
	var paths sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.Path, true)
		if fail.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	a := netip.MustParseAddrPort(srv.Listener.Addr().String())
	c := svcCfg("web", "192.0.2.1:80", RoundRobin, LoginUnit, []Server{{Addr: netip.AddrPortFrom(a.Addr(), 8080), Up: true}})
	c.Check = Check{Kind: "http", Port: a.Port(), Path: "/healthz"}
	tb := newTable(t, c)
	p := testProber(t, tb)
	ctx := context.Background()
	p.Round(ctx)
	if _, ok := paths.Load("/healthz"); !ok || !healthy(t, tb, "web", 0) {
		t.Fatal("http check did not reach /healthz or marked down")
	}
	fail.Store(true)
	p.Round(ctx)
	p.Round(ctx)
	if healthy(t, tb, "web", 0) {
		t.Fatal("503 twice: still healthy")
	}
	if _, _, ok := tb.Pick(0); ok {
		t.Fatal("pick with the only server down")
	}
	fail.Store(false)
	p.Round(ctx)
	p.Round(ctx)
	if !healthy(t, tb, "web", 0) {
		t.Fatal("200 twice: still down")
	}
}

func udpEcho(t *testing.T, reply string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			if string(b[:n]) == "ping" {
				c.WriteToUDPAddrPort([]byte(reply), from)
			}
		}
	}()
	return c
}

func TestProberUDP(t *testing.T) {
	good := udpEcho(t, "pong 1")
	defer good.Close()
	wrong := udpEcho(t, "nope")
	defer wrong.Close()
	gone := udpEcho(t, "pong")
	gone.Close()
	addr := func(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }
	c := ServiceConfig{Name: "dns", Rep: ap("192.0.2.5:53"), Proto: ProtoUDP, Type: PacketUnit,
		Servers: []Server{{Addr: addr(good), Up: true}, {Addr: addr(wrong), Up: true}, {Addr: addr(gone), Up: true}},
		Check:   Check{Kind: "udp", Send: "ping", Expect: "pong"}}
	tb := newTable(t, c)
	p := testProber(t, tb)
	p.Round(context.Background())
	p.Round(context.Background())
	got := []bool{healthy(t, tb, "dns", 0), healthy(t, tb, "dns", 1), healthy(t, tb, "dns", 2)}
	if got[0] != true || got[1] != false || got[2] != false {
		t.Errorf("healthy = %v, want [true false false] (good, wrong reply, port closed)", got)
	}

	// No check configured on a UDP service: never probed, stays up.
	c.Check = Check{}
	c.Name, c.Rep = "dns2", ap("192.0.2.6:53")
	tb2 := newTable(t, c)
	p2 := testProber(t, tb2)
	for range 3 {
		p2.Round(context.Background())
	}
	if !healthy(t, tb2, "dns2", 2) {
		t.Error("unchecked UDP server marked down")
	}
}

// TestProberAgent: two servers on 127.0.0.1 and 127.0.0.2 with an agent
// each on the same port; the CPU policy follows their reports.
func TestProberAgent(t *testing.T) {
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := netip.MustParseAddrPort(l1.Addr().String()).Port()
	l2, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port).String())
	if err != nil {
		l1.Close()
		t.Skipf("127.0.0.2:%d not available: %v", port, err)
	}
	var load1 atomic.Value
	load1.Store(70.0)
	s1 := &http.Server{Handler: AgentHandler(func() (float64, bool) { return load1.Load().(float64), true })}
	s2 := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(" 20% \n")) })}
	go s1.Serve(l1)
	go s2.Serve(l2)
	defer s1.Close()
	c := svcCfg("app", "192.0.2.1:80", CPULoad, ServiceUnit, []Server{
		{Addr: ap("127.0.0.1:1"), Up: true}, {Addr: ap("127.0.0.2:1"), Up: true}})
	c.Check = Check{Kind: "none", AgentPort: port}
	tb := newTable(t, c)
	p := testProber(t, tb)
	p.Round(context.Background())
	st := tb.Status()[0].Servers
	if st[0].Load != 70 || st[1].Load != 20 {
		t.Fatalf("loads %v, %v; want 70, 20", st[0].Load, st[1].Load)
	}
	if _, i, _ := tb.Pick(0); i != 1 {
		t.Errorf("pick = %d, want the less loaded 1", i)
	}
	load1.Store(5.5)
	s2.Close() // agent 2 gone: its load becomes unknown
	p.Round(context.Background())
	st = tb.Status()[0].Servers
	if st[0].Load != 5.5 || st[1].Load != -1 {
		t.Fatalf("loads %v, %v; want 5.5, unknown", st[0].Load, st[1].Load)
	}
	if _, i, _ := tb.Pick(0); i != 0 {
		t.Errorf("pick = %d, want 0", i)
	}
	if !st[1].Healthy {
		t.Error("agent failure changed health")
	}
}

func TestProberRunCancel(t *testing.T) {
	l := listenTCP(t, "127.0.0.1:0")
	defer l.Close()
	tb := newTable(t, svcCfg("web", "192.0.2.1:80", FastestResponse, 0, []Server{{Addr: netip.MustParseAddrPort(l.Addr().String()), Up: true}}))
	p := testProber(t, tb)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	for tb.Status()[0].Servers[0].RTT == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestProberConfig(t *testing.T) {
	bad := []func(c *ProberConfig){
		func(c *ProberConfig) { c.Interval = 0 },
		func(c *ProberConfig) { c.Timeout = c.Interval + 1 },
		func(c *ProberConfig) { c.Fall = 0 },
		func(c *ProberConfig) { c.Rise = 0 },
		func(c *ProberConfig) { c.Concurrency = 0 },
	}
	for i, f := range bad {
		c := DefaultProberConfig()
		f(&c)
		if _, err := NewProber(&Table{}, c); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
}

func TestParseLoad(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		err  bool
	}{
		{`{"cpu":37.5}`, 37.5, false},
		{" {\"cpu\": 0}\n", 0, false},
		{"37%", 37, false},
		{" 99.9 % \n", 99.9, false},
		{"100", 100, false},
		{`{"load":3}`, 0, true},
		{`{"cpu":"x"}`, 0, true},
		{"101%", 0, true},
		{"-1", 0, true},
		{"NaN", 0, true},
		{"up", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLoad([]byte(tt.in))
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseLoad(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadLoad) {
			t.Errorf("ParseLoad(%q) err %v is not ErrBadLoad", tt.in, err)
		}
	}
}
