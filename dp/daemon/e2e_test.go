package daemon_test

// Three samepathd LBs with the same T4 steer one mobile's packets to the
// same gateway (R-LB-1, R-LB-2), fail over to the substitute and back
// (R-LB-4), drop when every gateway is down, carry the down direction to
// the next hop (R-LB-3), and leave ARP and pings to the LB to the kernel
// (R-LB-5).
//
//	                     +-------+ in    lan +----------+
//	 +-----------+  s1---| lb1   |---------- |          |--- gw1 (02:..:a1)
//	 | src       |  s2---| lb2   |---------- | sw: br0  |
//	 | 10.101.0.5|  s3---| lb3   |---------- |          |--- gw2 (02:..:a2)
//	 +-----------+       +-------+           +----------+
//	 s_i 10.0.i.2/24     in 10.0.i.1/24      lan 10.9.0.1i/24, gw_k 10.9.0.k/24
//
// The mobile address 10.101.0.5 lives on src's loopback; src picks the LB
// by its route toward the "server" 10.200.0.1. Each gateway counts, with
// an nftables rule, the UDP datagrams from the mobile it receives.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/testbed/privtest"
)

type lbTopo struct {
	t   *testing.T
	pfx string
	ns  map[string]string // role -> namespace name
}

func (tp *lbTopo) sh(ns string, cmd string) string {
	tp.t.Helper()
	args := []string{"-c", cmd}
	var c *exec.Cmd
	if ns == "" {
		c = exec.Command("bash", args...)
	} else {
		c = exec.Command("ip", append([]string{"netns", "exec", ns, "bash"}, args...)...)
	}
	out, err := c.CombinedOutput()
	if err != nil {
		tp.t.Fatalf("%s: %s: %v\n%s", ns, cmd, err, out)
	}
	return string(out)
}

func buildSamepathd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "samepathd")
	out, err := exec.Command("go", "build", "-o", bin, "samepath/cmd/samepathd").CombinedOutput()
	if err != nil {
		t.Fatalf("build samepathd: %v\n%s", err, out)
	}
	return bin
}

func newLBTopo(t *testing.T) *lbTopo {
	tp := &lbTopo{t: t, pfx: privtest.Name("splb", ""), ns: map[string]string{}}
	for _, r := range []string{"src", "sw", "gw1", "gw2", "lb1", "lb2", "lb3"} {
		n := tp.pfx + r
		tp.ns[r] = n
		tp.sh("", "ip netns add "+n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		tp.sh(n, "ip link set lo up")
	}
	tp.sh(tp.ns["sw"], "ip link add br0 type bridge && ip link set br0 up")
	// Gateways.
	for k := 1; k <= 2; k++ {
		g := tp.ns[fmt.Sprintf("gw%d", k)]
		tp.sh("", fmt.Sprintf("ip link add eth0 netns %s address 02:00:00:00:00:a%d type veth peer name g%d netns %s", g, k, k, tp.ns["sw"]))
		tp.sh(tp.ns["sw"], fmt.Sprintf("ip link set g%d master br0 up", k))
		tp.sh(g, fmt.Sprintf("ip addr add 10.9.0.%d/24 dev eth0 && ip link set eth0 up && ip route add 10.101.0.0/24 via 10.9.0.11", k))
		tp.sh(g, "nft add table inet t && nft add chain inet t c '{ type filter hook prerouting priority 0; }' && nft add rule inet t c ip saddr 10.101.0.5 udp dport 9999 counter")
	}
	// LBs and the source.
	tp.sh(tp.ns["src"], "ip addr add 10.101.0.5/32 dev lo")
	tp.sh(tp.ns["src"], "nft add table inet t && nft add chain inet t c '{ type filter hook prerouting priority 0; }' && nft add rule inet t c ip daddr 10.101.0.5 udp dport 7777 counter")
	for i := 1; i <= 3; i++ {
		l := tp.ns[fmt.Sprintf("lb%d", i)]
		tp.sh("", fmt.Sprintf("ip link add in netns %s type veth peer name s%d netns %s", l, i, tp.ns["src"]))
		tp.sh("", fmt.Sprintf("ip link add lan netns %s type veth peer name l%d netns %s", l, i, tp.ns["sw"]))
		tp.sh(tp.ns["sw"], fmt.Sprintf("ip link set l%d master br0 up && ethtool -K l%d gro on tx off >/dev/null", i, i))
		tp.sh(tp.ns["src"], fmt.Sprintf("ip addr add 10.0.%d.2/24 dev s%d && ip link set s%d up && ethtool -K s%d gro on tx off >/dev/null", i, i, i, i))
		tp.sh(l, fmt.Sprintf("ip addr add 10.0.%d.1/24 dev in && ip addr add 10.9.0.1%d/24 dev lan && ip link set in up && ip link set lan up", i, i))
	}
	return tp
}

func (tp *lbTopo) startLB(bin string, i int, steering, t4 string) string {
	t := tp.t
	l := tp.ns[fmt.Sprintf("lb%d", i)]
	dir := t.TempDir()
	apiAddr := "127.0.0.1:9180"
	cfg := fmt.Sprintf(`role: lb
api: %s
steering: %s
xsk: {frames: 4096, frame_size: 2048, ring_size: 1024, batch: 64}
workers: {queues: 1}
lb:
  ingress: {iface: in, next_hop_ip: 10.0.%d.2}
  gateway_side: {iface: lan}
  t4:
%s`, apiAddr, steering, i, t4)
	path := filepath.Join(dir, "lb.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "log"))
	cmd := exec.Command("ip", "netns", "exec", l, bin, "--config", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		// The XDP programs must be gone after a clean stop.
		if out, _ := exec.Command("ip", "-n", l, "link", "show").CombinedOutput(); strings.Contains(string(out), "xdp") {
			t.Errorf("lb%d: XDP still attached after stop:\n%s", i, out)
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Logf("lb%d log:\n%s", i, b)
		}
	})
	// Wait for the API.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.Command("ip", "netns", "exec", l, "curl", "-sf", "http://"+apiAddr+"/healthz").CombinedOutput()
		if err == nil && strings.Contains(string(out), "ok") {
			return l
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("lb%d exited:\n%s", i, b)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("lb%d: control API did not come up", i)
	return ""
}

// counter reads the nftables rule counter's packets in ns.
func (tp *lbTopo) counter(ns string) int {
	out := tp.sh(ns, "nft list chain inet t c")
	f := strings.Fields(out[strings.Index(out, "packets"):])
	n, err := strconv.Atoi(f[1])
	if err != nil {
		tp.t.Fatalf("parse nft counter: %v\n%s", err, out)
	}
	return n
}

// send sends n datagrams from the mobile through lb i.
func (tp *lbTopo) send(i, n int) {
	tp.sh(tp.ns["src"], fmt.Sprintf("ip route replace 10.200.0.0/24 via 10.0.%d.1 src 10.101.0.5", i))
	tp.sh(tp.ns["src"], fmt.Sprintf("for k in $(seq %d); do echo x$k > /dev/udp/10.200.0.1/9999; done", n))
}

func (tp *lbTopo) gwCounts() (int, int) {
	// Frames cross veths asynchronously: give them a moment to land.
	time.Sleep(200 * time.Millisecond)
	return tp.counter(tp.ns["gw1"]), tp.counter(tp.ns["gw2"])
}

func lbAPI(t *testing.T, ns string) func(method, path, body string) string {
	return func(method, path, body string) string {
		args := []string{"netns", "exec", ns, "curl", "-sS", "-X", method, "http://127.0.0.1:9180" + path}
		if body != "" {
			args = append(args, "-H", "Content-Type: application/json", "-d", body)
		}
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s in %s: %v\n%s", method, path, ns, err, out)
		}
		return string(out)
	}
}

func TestThreeLBsSteerToOneGateway(t *testing.T) {
	privtest.Require(t)
	for _, steering := range []string{"afxdp", "xdp"} {
		t.Run(steering, func(t *testing.T) { testThreeLBs(t, steering) })
	}
}

func testThreeLBs(t *testing.T, steering string) {
	bin := buildSamepathd(t)
	tp := newLBTopo(t)
	t4 := `    - range: 10.101.0.0/24
      gateways: [{mac: "02:00:00:00:00:a1", state: up}, {mac: "02:00:00:00:00:a2", state: up}]
`
	var lbs []string
	for i := 1; i <= 3; i++ {
		lbs = append(lbs, tp.startLB(bin, i, steering, t4))
	}
	const n = 20
	// Every LB sends the mobile to the primary gateway.
	for i := 1; i <= 3; i++ {
		tp.send(i, n)
		if g1, g2 := tp.gwCounts(); g1 != i*n || g2 != 0 {
			t.Fatalf("after lb%d: gw1 %d gw2 %d, want %d and 0", i, g1, g2, i*n)
		}
	}
	// Primary down on every LB (as the health monitor would do).
	for _, l := range lbs {
		lbAPI(t, l)("PUT", "/v1/gateways/state", `{"mac":"02:00:00:00:00:a1","state":"down"}`)
	}
	for i := 1; i <= 3; i++ {
		tp.send(i, n)
	}
	if g1, g2 := tp.gwCounts(); g1 != 3*n || g2 != 3*n {
		t.Fatalf("primary down: gw1 %d gw2 %d, want %d and %d", g1, g2, 3*n, 3*n)
	}
	// All down: counted drops, nothing reaches any gateway.
	for _, l := range lbs {
		lbAPI(t, l)("PUT", "/v1/gateways/state", `{"mac":"02:00:00:00:00:a2","state":"down"}`)
	}
	for i := 1; i <= 3; i++ {
		tp.send(i, n)
	}
	if g1, g2 := tp.gwCounts(); g1 != 3*n || g2 != 3*n {
		t.Fatalf("all down: gw1 %d gw2 %d, want unchanged %d and %d", g1, g2, 3*n, 3*n)
	}
	for i, l := range lbs {
		var c api.Counters
		out := lbAPI(t, l)("GET", "/v1/counters", "")
		if err := jsonUnmarshal(out, &c); err != nil {
			t.Fatal(err)
		}
		var drops uint64
		for _, q := range c.Queues {
			drops += q.Drops["all_gateways_down"]
		}
		if drops != n {
			t.Errorf("lb%d: all_gateways_down drops %d, want %d (%s)", i+1, drops, n, out)
		}
	}
	// Restore the primary: back to gw1.
	for _, l := range lbs {
		lbAPI(t, l)("PUT", "/v1/gateways/state", `{"mac":"02:00:00:00:00:a1","state":"up"}`)
	}
	tp.send(2, n)
	if g1, g2 := tp.gwCounts(); g1 != 4*n || g2 != 3*n {
		t.Fatalf("restored: gw1 %d gw2 %d, want %d and %d", g1, g2, 4*n, 3*n)
	}
	// Down direction: gw1 -> lb1 -> the mobile's next hop.
	tp.sh(tp.ns["gw1"], fmt.Sprintf("for k in $(seq %d); do echo y$k > /dev/udp/10.101.0.5/7777; done", n))
	time.Sleep(200 * time.Millisecond)
	if got := tp.counter(tp.ns["src"]); got != n {
		t.Errorf("down direction: %d datagrams reached the mobile's side, want %d", got, n)
	}
	// The kernel keeps ARP and pings to the LB's own addresses.
	for i := 1; i <= 3; i++ {
		tp.sh(tp.ns["src"], fmt.Sprintf("ping -c 2 -i 0.2 -W 2 10.0.%d.1 >/dev/null", i))
		tp.sh(tp.ns["gw1"], fmt.Sprintf("ping -c 2 -i 0.2 -W 2 10.9.0.1%d >/dev/null", i))
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
