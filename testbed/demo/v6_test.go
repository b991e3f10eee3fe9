package demo_test

// IPv6 subscribers end to end (issue 15), the FIG. 2 system with the
// real dataplane and samepath-control:
//
//	mob1 (ipv6 only)  ~~ nas1..3 -- lb1..3 -- LAN1 -- gw1 (10.101.0.0/24, fd00:101::/64)
//	mob2 (dual stack) ~~                            \- gw2 (10.102.0.0/24, fd00:102::/64)
//	                                                 -- LAN2 -- a1 a2 (web-a, web-a6), b1 b2 (web-b, web-b6)
//
// mob2 logs in first and takes gw1's IPv4 address and its one /64; mob1
// then gets gw2's /64, downloads 20 MB from web-a6 over three moves, and
// gw2 carries every phase.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/dp/acct"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/privtest"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

func httpClient(m *fig2.Mobile, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return topo.Dial(ctx, m.NS, network, addr)
		}}}
}

// mobileFlows6 are gateway c's flow records of the mobile address a.
func mobileFlows6(ctx context.Context, c *api.Client, a netip.Addr) ([]api.Flow, error) {
	fs, err := c.FlowsMatching(ctx, 100, api.FlowFilter{Mobile: a.String()})
	return fs.Flows, err
}

func TestIPv6Subscribers(t *testing.T) {
	logs := t.TempDir()
	ctx, sys := startControlWith(t, demo.Options{Stacks: map[string]string{"mob1": "ipv6", "mob2": "dual"},
		GWAccounting: demo.GWAccounting{Log: filepath.Join(logs, "gw%d.acct"), SyncInterval: 50 * time.Millisecond},
		GWNAT:        term64NAT})
	p := sys.TB.Plan

	// Dual stack: one address of each family, from one gateway.
	if _, err := sys.Login(ctx, "mob2"); err != nil {
		t.Fatal(err)
	}
	v4, p6, err := sys.MobileAddrs("mob2")
	if err != nil {
		t.Fatal(err)
	}
	if !netip.MustParsePrefix("10.101.0.0/24").Contains(v4) || p6 != netip.MustParsePrefix("fd00:101::/64") {
		t.Fatalf("mob2 (dual stack) got %s and %s, want gw1's", v4, p6)
	}
	// IPv6 only: gw2, the one with room (and the least loaded).
	if _, err := sys.Login(ctx, "mob1"); err != nil {
		t.Fatal(err)
	}
	v4, p6, _ = sys.MobileAddrs("mob1")
	if v4.IsValid() || p6 != netip.MustParsePrefix("fd00:102::/64") {
		t.Fatalf("mob1 (ipv6 only) got %v and %s, want gw2's /64 alone", v4, p6)
	}
	out, err := sys.Radclient(ctx, "mob1")
	if err != nil || !strings.Contains(out, "Framed-IPv6-Prefix = fd00:102::/64") || strings.Contains(out, "Framed-IP-Address =") {
		t.Fatalf("radclient login of mob1 (%v):\n%s", err, out)
	}
	m1, _ := p.Mobile("mob1")
	m2, _ := p.Mobile("mob2")
	if !p6.Contains(m1.IPv6) {
		t.Fatalf("mob1 holds %s, not in its prefix %s", m1.IPv6, p6)
	}

	// 20 MB over IPv6 from web-a6 across three moves.
	const size, rate = 20 << 20, 5 << 20
	webA6 := netip.AddrPortFrom(p.Groups[0].VIPv6, fig2.HTTPPort)
	var got atomic.Int64
	type result struct {
		sum [32]byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/bytes/%d?rate=%d", webA6, size, rate), nil)
		resp, err := httpClient(m1, 90*time.Second).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			h.Write(buf[:n])
			got.Add(int64(n))
			if err == io.EOF {
				break
			}
			if err != nil {
				done <- result{err: err}
				return
			}
		}
		var r result
		h.Sum(r.sum[:0])
		done <- r
	}()
	phase := func(what string) {
		t.Helper()
		f2, err := mobileFlows6(ctx, sys.GWs[1], m1.IPv6)
		if err != nil || len(f2) == 0 {
			t.Errorf("%s: gw2 holds no flow of mob1 %s (%v)", what, m1.IPv6, err)
			for g, c := range sys.GWs {
				fs, _ := c.Flows(ctx, 100)
				t.Logf("gw%d flows: %+v", g+1, fs.Flows)
			}
			for _, m := range []*fig2.Mobile{m1, m2} {
				out, _ := topo.Command(m.NS, "ip", "-6", "addr").CombinedOutput()
				t.Logf("%s addresses:\n%s", m.Name, out)
			}
		}
		if f1, err := mobileFlows6(ctx, sys.GWs[0], m1.IPv6); err != nil || len(f1) != 0 {
			t.Errorf("%s: gw1 holds flows of mob1: %+v (%v)", what, f1, err)
		}
	}
	for k, n := range []int{2, 3, 1} {
		for got.Load() < int64(k+1)*size/4 {
			select {
			case r := <-done:
				t.Fatalf("download ended before move %d: %v (%d bytes)", k+1, r.err, got.Load())
			case <-time.After(10 * time.Millisecond):
			}
		}
		phase(fmt.Sprintf("before move %d", k+1))
		if err := sys.Move(ctx, "mob1", n); err != nil {
			t.Fatalf("move %d to nas%d: %v", k+1, n, err)
		}
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("download: %v after %d bytes", r.err, got.Load())
	}
	if r.sum != servers.BytesSHA256(size) || got.Load() != size {
		t.Fatalf("download: %d bytes, SHA-256 %x, want %d bytes %x", got.Load(), r.sum, int64(size), servers.BytesSHA256(size))
	}
	phase("after the last move")

	// mob2 uses both families to the same service types: web (group A)
	// allowed, video (group B, which only mob1's device orders) refused.
	for _, tc := range []struct {
		rep  netip.Addr
		want bool
	}{{p.Groups[0].VIPv4, true}, {p.Groups[0].VIPv6, true}, {p.Groups[1].VIPv4, false}, {p.Groups[1].VIPv6, false}} {
		_, err := httpClient(m2, 3*time.Second).Get("http://" + netip.AddrPortFrom(tc.rep, fig2.HTTPPort).String() + "/")
		if (err == nil) != tc.want {
			t.Errorf("mob2 to %s: error %v, want served %v", tc.rep, err, tc.want)
			for _, c := range []*api.Client{sys.GWs[0], sys.LBs[m2.Ingress-1]} {
				cs, _ := c.Counters(ctx)
				fs, _ := c.Flows(ctx, 100)
				ss, _ := c.GWSessions(ctx)
				t.Logf("counters %+v\nflows %+v\nsessions %+v", cs, fs.Flows, ss)
			}
			svcs, _ := sys.GWs[0].Services(ctx)
			t.Logf("gw1 services %+v", svcs)
			for _, args := range [][]string{{"-6", "route", "get", "fd00:20::11"}, {"-6", "addr", "show", "lan2"}, {"-6", "neigh"}} {
				out, _ := topo.Command(p.Gateways[0].NS, "ip", args...).CombinedOutput()
				t.Logf("gw1 ip %v:\n%s", args, out)
			}
		}
	}
	v6ToV4(ctx, t, sys, m1, m2)
	if err := sys.Logout(ctx, "mob2"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	fams := map[bool]bool{}
	for time.Now().Before(deadline) && !(fams[true] && fams[false]) {
		es, _, err := acct.Query(filepath.Join(logs, "gw1.acct"), acct.Filter{User: "mob2"})
		if err == nil {
			for _, e := range es {
				if e.Kind == "final" && e.Device == "IMEI-mob2" && e.ServiceType == "web" {
					fams[netip.MustParseAddrPort(e.Rep).Addr().Is4()] = true
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !fams[true] || !fams[false] {
		t.Errorf("gw1's accounting of mob2: web records by family %v, want both", fams)
	}
	v6ToV4Accounting(ctx, t, sys, logs)
}

// TestDemoDualStack is make demo's IPv6 part (samepath-demo -dual-stack):
// mob2 gets both families from one gateway and downloads over IPv6 from
// group A's IPv6 address while it moves between ingress points, every
// phase's flow carried by that gateway alone, and at the same time over
// IPv6 from group A's IPv4 servers through the terminator (web-a64);
// the summary shows both families.
func TestDemoDualStack(t *testing.T) {
	privtest.Require(t)
	bin := buildBinaries(t)
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	sum, err := demo.Run(ctx, demo.Options{Samepathd: bin, ServeArgv: []string{exe, "serve"}, Out: &out, DualStack: true})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	s := sum.IPv6
	if s == nil || !s.ChecksumOK || !s.IPv4.Is4() || !s.Prefix.Contains(s.Address) || len(s.Phases) != 3 {
		t.Fatalf("IPv6 part %+v", s)
	}
	gw := s.Phases[0].Gateways
	for k, ph := range s.Phases {
		if len(ph.Gateways) != 1 || ph.Gateways[0] != gw[0] {
			t.Errorf("phase %d: flow carried by %v, want gw%v alone", k+1, ph.Gateways, gw)
		}
	}
	// The IPv6 -> IPv4 download through the terminator, over the same
	// moves, on the same gateway.
	if d := s.To4; d == nil || !d.ChecksumOK || d.Service != demo.Term64Service || !d.Rep.Addr().Is6() || len(d.Phases) != 3 {
		t.Errorf("IPv6 to IPv4 part %+v", d)
	} else {
		for k, ph := range d.Phases {
			if len(ph.Gateways) != 1 || ph.Gateways[0] != gw[0] || ph.Ingress != s.Phases[k].Ingress {
				t.Errorf("IPv6 to IPv4 phase %d: ingress %d, flow carried by %v, want ingress %d and gw%v alone", k+1, ph.Ingress, ph.Gateways, s.Phases[k].Ingress, gw)
			}
		}
	}
	if !strings.Contains(out.String(), "IPv6 to IPv4 ("+demo.Term64Service+", terminated)") {
		t.Errorf("summary lacks the IPv6 to IPv4 download:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "IPv6 prefix "+s.Prefix.String()) || !strings.Contains(out.String(), "sha256 ok") {
		t.Errorf("summary lacks the IPv6 part:\n%s", out.String())
	}
}
