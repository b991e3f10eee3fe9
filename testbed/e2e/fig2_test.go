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
	// The LB namespace really is on the path: without forwarding there,
	// mob1 (on ingress 1) loses a1.
	if err := tb.SetLBForwarding(1, false); err != nil {
		t.Fatal(err)
	}
	if r, _ := topo.Ping(mob1.NS, p.Servers[0].LAN.IPv4.Addr(), 2, 10*time.Millisecond, 300*time.Millisecond); r.Received != 0 {
		t.Errorf("reply through lb1 with forwarding off: %+v", r)
	}
	if err := tb.SetLBForwarding(1, true); err != nil {
		t.Fatal(err)
	}
	// GRO is on at the peers of every LB interface (XDP redirect into a
	// veth needs NAPI at its peer).
	for _, in := range p.Ingress {
		for _, peer := range []string{in.LB.Ingress.Peer, in.LB.LAN.Peer} {
			ns, link, _ := strings.Cut(peer, "/")
			if on, err := topo.GRO(ns, link); err != nil || !on {
				t.Errorf("GRO on %s = %v %v, want on", peer, on, err)
			}
		}
	}
	// A second run with the same prefix is refused and harms nothing.
	c := fig2.DefaultConfig(p.Prefix)
	c.StateDir = t.TempDir()
	if _, err := fig2.Up(context.Background(), c); err == nil {
		t.Fatal("second Up with the same prefix succeeded")
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

// TestFig2DownloadWhileMoving downloads 20 MB from a1 to mob1 while mob1
// moves nas1 -> nas2 -> nas3; the connection must survive with the right
// bytes, and each phase must be carried by that phase's LB and by gw1.
func TestFig2DownloadWhileMoving(t *testing.T) {
	tb := upFig2(t)
	p := tb.Plan
	mob1, a1 := p.Mobiles[0], p.Servers[0]
	const size = 20 << 20
	want := servers.BytesSHA256(size)

	for _, v6 := range []bool{false, true} {
		dst := a1.LAN.IPv4.Addr()
		if v6 {
			dst = a1.LAN.IPv6.Addr()
		}
		t.Run(fmt.Sprintf("to %s", dst), func(t *testing.T) {
			if err := tb.Move("mob1", 1); err != nil {
				t.Fatal(err)
			}
			url := fmt.Sprintf("http://%s/bytes/%d", netip.AddrPortFrom(dst, fig2.HTTPPort), size)
			c := client(mob1.NS)
			defer c.CloseIdleConnections()
			resp, err := c.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ContentLength != size {
				t.Fatalf("Content-Length %d", resp.ContentLength)
			}
			snap := func() []fig2.GatewayCounters {
				cs, err := tb.AllCounters()
				if err != nil {
					t.Fatal(err)
				}
				return cs
			}
			// Phase k (1..3) runs on ingress k; starts[k-1] and ends[k-1] are
			// the counters at its start (after the move into it) and end
			// (before the move out of it). What flows during a move belongs
			// to neither phase.
			starts := [][]fig2.GatewayCounters{snap()}
			var ends [][]fig2.GatewayCounters
			movedAt := []int64{}
			h := sha256.New()
			r := bufio.NewReaderSize(resp.Body, 64<<10)
			buf := make([]byte, 32<<10)
			var got int64
			start := time.Now()
			// Read at about 10 MB/s, so that the transfer lasts ~2 s and
			// the moves at 1/3 and 2/3 happen with data in flight.
			const rate = 10 << 20
			for {
				n, err := r.Read(buf)
				h.Write(buf[:n])
				got += int64(n)
				if phase := len(starts); phase < 3 && got >= int64(phase)*size/3 {
					ends = append(ends, snap())
					if err := tb.Move("mob1", phase+1); err != nil {
						t.Fatal(err)
					}
					movedAt = append(movedAt, got)
					starts = append(starts, snap())
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("download broke after %d bytes: %v", got, err)
				}
				if ahead := time.Duration(float64(got)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
			ends = append(ends, snap())
			if got != size || [32]byte(h.Sum(nil)) != want {
				t.Fatalf("got %d bytes, checksum match %v", got, [32]byte(h.Sum(nil)) == want)
			}
			if len(movedAt) != 2 {
				t.Fatalf("moved %d times", len(movedAt))
			}
			t.Logf("moved at %v of %d bytes in %v", movedAt, size, time.Since(start))
			for k := 1; k <= 3; k++ {
				d1 := ends[k-1][0].Sub(starts[k-1][0])
				d2 := ends[k-1][1].Sub(starts[k-1][1])
				t.Logf("phase %d (lb%d): gw1 %+v, gw2 %+v", k, k, d1, d2)
				if d1.UpByLB[k-1].Packets == 0 || d1.Down.Packets == 0 {
					t.Errorf("phase %d: gw1 did not carry it through lb%d: %+v", k, k, d1)
				}
				for j := range d1.UpByLB {
					if j != k-1 && d1.UpByLB[j].Packets != 0 {
						t.Errorf("phase %d: gw1 saw up traffic from lb%d", k, j+1)
					}
				}
				if d2.Up.Packets != 0 || d2.Down.Packets != 0 {
					t.Errorf("phase %d: gw2 carried %+v", k, d2)
				}
			}
		})
	}
}
