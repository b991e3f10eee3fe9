package e2e

// FIG. 2 testbed, kernel forwarding in LBs and gateways:
//
//	               +- nas1 -- lb1 -+                 +- a1 10.20.0.11
//	mob1 10.101.0.10 ~ nas2 -- lb2 -+- LAN1 -+- gw1 -+- a2 10.20.0.12
//	mob2 10.102.0.10 ~ nas3 -- lb3 -+         +- gw2 -+- b1 10.20.0.21
//	  (one wireless link per NAS,             LAN2  +- b2 10.20.0.22
//	   only the current one up)
//
// mob1's range (10.101.0.0/24, fd00:101::/64) belongs to gw1: every phase of
// its download must cross gw1 whichever LB carries it.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"samepath/testbed/fig2"
	"samepath/testbed/privtest"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

func upFig2(t *testing.T) *fig2.Testbed {
	t.Helper()
	privtest.Require(t)
	c := fig2.DefaultConfig(privtest.Name("sptb", ""))
	c.StateDir = t.TempDir()
	c.ServeArgv = selfArgv(t, "serve")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tb, err := fig2.Up(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Down() })
	return tb
}

// assertGone checks that nothing of the run is left: no namespace, no
// process in one, no link with the prefix in the root namespace, no state.
func assertGone(t *testing.T, tb *fig2.Testbed, stateDir string) {
	t.Helper()
	prefix := tb.Plan.Prefix
	if ns, _ := topo.ListNetns(prefix); len(ns) != 0 {
		t.Errorf("namespaces left: %v", ns)
	}
	if ps, _ := topo.Procs(prefix); len(ps) != 0 {
		t.Errorf("processes left: %+v", ps)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, prefix) {
			t.Errorf("link left in the root namespace: %s", i.Name)
		}
	}
	// No process anywhere still runs our servers (found by command line).
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), "\x00"+prefix+"-") {
			t.Errorf("process %s still runs in the run's namespaces: %q", e.Name(), b)
		}
	}
	if runs, _ := fig2.Runs(stateDir); len(runs) != 0 {
		t.Errorf("state files left: %v", runs)
	}
}

func TestFig2UpPingDown(t *testing.T) {
	tb := upFig2(t)
	p := tb.Plan
	mob1 := p.Mobiles[0]
	for _, s := range p.Servers {
		for _, dst := range []netip.Addr{s.LAN.IPv4.Addr(), s.LAN.IPv6.Addr()} {
			r, err := topo.Ping(mob1.NS, dst, 3, 10*time.Millisecond, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if r.Received == 0 {
				t.Errorf("mob1 -> %s %s: no reply", s.Name, dst)
			}
		}
	}
	// mob2 (gw2's range) reaches b2 over IPv6 through gw2.
	before, err := tb.Counters(2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := topo.Ping(p.Mobiles[1].NS, p.Servers[3].LAN.IPv6.Addr(), 3, 10*time.Millisecond, 2*time.Second)
	if err != nil || r.Received == 0 {
		t.Fatalf("mob2 -> b2: %+v %v", r, err)
	}
	after, _ := tb.Counters(2)
	if d := after.Sub(before); d.UpByLB[0].Packets < 3 || d.Down.Packets < 3 {
		t.Errorf("gw2 counted %+v for 3 pings from mob2 via lb1", d)
	}
	// The HTTP server answers with its name, the UDP echo echoes.
	body := get(t, mob1.NS, fmt.Sprintf("http://%s/", p.Servers[2].LAN.IPv4.Addr()))
	if body != "b1\n" {
		t.Errorf("GET / on b1 = %q", body)
	}
	uc, err := topo.Dial(context.Background(), mob1.NS, "udp", netip.AddrPortFrom(p.Servers[0].LAN.IPv6.Addr(), fig2.EchoPort).String())
	if err != nil {
		t.Fatal(err)
	}
	uc.SetDeadline(time.Now().Add(2 * time.Second))
	uc.Write([]byte("echo?"))
	buf := make([]byte, 16)
	n, err := uc.Read(buf)
	uc.Close()
	if err != nil || string(buf[:n]) != "echo?" {
		t.Errorf("udp echo from a1: %q %v", buf[:n], err)
	}

	stateDir := strings.TrimSuffix(tb.LogDir(), "/"+p.Prefix)
	if err := tb.Down(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, tb, stateDir)
}

func get(t *testing.T, ns, url string) string {
	t.Helper()
	c := client(ns)
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// client is an HTTP client whose connections are made inside namespace ns.
func client(ns string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return topo.Dial(ctx, ns, network, addr)
		},
		DisableKeepAlives: true,
	}}
}

var _ = bufio.NewReader
var _ = sha256.New
var _ = servers.Bytes
