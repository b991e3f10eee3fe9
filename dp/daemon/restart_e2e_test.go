package daemon_test

// An LB killed with SIGKILL and started again at once (issue 11, defects
// 5 and 6): it starts on the first try (the bind of a queue the kernel is
// still releasing is retried inside), and it steers by the gateway states
// samepath-control holds, not its config's, from its first answer and its
// first frame. Topology: lbTopo's (e2e_test.go), with samepath-control in
// lb1's namespace on 127.0.0.1:9190 and lb1's config naming it as
// lb.control; its T4 says both gateways are up.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/ring/xsk"
	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

const (
	ctlAPI = "127.0.0.1:9190"
	gw1MAC = "02:00:00:00:00:a1"
	gw2MAC = "02:00:00:00:00:a2"
)

// proc is a process started in a namespace, logging to a file.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startProc(t *testing.T, ns, logPath string, argv ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	p := &proc{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { cmd.Wait(); close(p.done) }()
	return p
}

// stop interrupts p and waits for it (killing it after 5 s).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) logText() string { b, _ := os.ReadFile(p.log); return string(b) }

// nsGet is curl in ns; ok is false while nothing answers (or on an HTTP error).
func nsGet(ns, url string) (string, bool) {
	out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sf", "--max-time", "2", url).CombinedOutput()
	return string(out), err == nil
}

func TestLBRestartAfterKill(t *testing.T) {
	privtest.Require(t)
	bin := buildSamepathd(t)
	ctlBin := filepath.Join(t.TempDir(), "samepath-control")
	if out, err := exec.Command("go", "build", "-o", ctlBin, "samepath/cmd/samepath-control").CombinedOutput(); err != nil {
		t.Fatalf("build samepath-control: %v\n%s", err, out)
	}
	for _, steering := range []string{"afxdp", "xdp"} {
		t.Run(steering, func(t *testing.T) { testLBRestart(t, bin, ctlBin, steering) })
	}
}

func testLBRestart(t *testing.T, bin, ctlBin, steering string) {
	tp := newLBTopo(t)
	ns := tp.ns["lb1"]
	dir := t.TempDir()

	// samepath-control: T1 names both gateways; no probes (the test sets
	// the state), no resync (so only the start-up fetch can correct a
	// restarted LB).
	ctlCfg := fmt.Sprintf(`state_dir: %s
radius: {auth: "127.0.0.1:0", acct: "127.0.0.1:0", clients: [{prefix: 127.0.0.1, secret: testing123}]}
gateways:
  - {name: gw1, range: 10.100.0.0/24, mac: %q}
  - {name: gw2, range: 10.100.1.0/24, mac: %q}
lbs:
  - {name: lb1, api: "http://127.0.0.1:9180"}
health: {disabled: true, lb_resync: 0s}
api: {listen: %q}
pbkdf2_iterations: 1000
`, filepath.Join(dir, "state"), gw1MAC, gw2MAC, ctlAPI)
	ctlPath := filepath.Join(dir, "control.yaml")
	if err := os.WriteFile(ctlPath, []byte(ctlCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := startProc(t, ns, filepath.Join(dir, "control.log"), ctlBin, "--config", ctlPath)
	t.Cleanup(func() {
		ctl.stop()
		if t.Failed() {
			t.Logf("control log:\n%s", ctl.logText())
		}
	})
	waitFor(t, "samepath-control's API", ctl, func() bool { _, ok := nsGet(ns, "http://"+ctlAPI+"/healthz"); return ok })

	lbCfg := fmt.Sprintf(`role: lb
api: 127.0.0.1:9180
steering: %s
xsk: {frames: 4096, frame_size: 2048, ring_size: 1024, batch: 64}
workers: {queues: 1}
lb:
  ingress: {iface: in, next_hop_ip: 10.0.1.2}
  gateway_side: {iface: lan}
  t4:
    - range: 10.101.0.0/24
      gateways: [{mac: %q, state: up}, {mac: %q, state: up}]
  control: {url: "http://%s", wait: 5s, required: true}
`, steering, gw1MAC, gw2MAC, ctlAPI)
	lbPath := filepath.Join(dir, "lb.yaml")
	if err := os.WriteFile(lbPath, []byte(lbCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	lbLog := filepath.Join(dir, "lb.log")
	var lb *proc
	t.Cleanup(func() {
		if lb != nil {
			lb.stop()
		}
		if t.Failed() {
			b, _ := os.ReadFile(lbLog)
			t.Logf("lb1 log (every run):\n%s", b)
		}
	})
	// firstT4 starts lb1 and returns its T4 as its API first answers it.
	firstT4 := func() api.T4 {
		t.Helper()
		lb = startProc(t, ns, lbLog, bin, "--config", lbPath)
		var out string
		waitFor(t, "lb1's first T4 answer", lb, func() bool {
			var ok bool
			out, ok = nsGet(ns, "http://127.0.0.1:9180/v1/t4")
			return ok
		})
		var t4 api.T4
		if err := jsonUnmarshal(out, &t4); err != nil {
			t.Fatalf("lb1 T4 %q: %v", out, err)
		}
		return t4
	}
	state := func(t4 api.T4, mac string) string {
		for _, r := range t4.Rows {
			for _, g := range r.Gateways {
				if g.MAC == mac {
					return g.State
				}
			}
		}
		return "absent"
	}
	const n = 20
	sent := 0
	if t4 := firstT4(); state(t4, gw1MAC) != "up" {
		t.Fatalf("first start, control has decided nothing yet: gw1 %s, want the config's up (%+v)", state(t4, gw1MAC), t4)
	}
	// Control takes gw1 down; its push reaches lb1.
	if out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sSf", "-X", "PUT", "-d", `{"admin":"down"}`,
		"http://"+ctlAPI+"/v1/gateways/gw1/admin").CombinedOutput(); err != nil {
		t.Fatalf("gw1 admin down: %v\n%s", err, out)
	}
	waitFor(t, "control's push of gw1 down", lb, func() bool {
		out, _ := nsGet(ns, "http://127.0.0.1:9180/v1/t4")
		return strings.Contains(out, `"mac":"`+gw1MAC+`","state":"down"`)
	})
	tp.send(1, n)
	sent += n
	if g1, g2 := tp.gwCounts(); g1 != 0 || g2 != sent {
		t.Fatalf("gw1 down before the kill: gw1 %d gw2 %d, want 0 and %d", g1, g2, sent)
	}
	// Kill and restart at once, three times: every start must succeed,
	// and lb1 must say and do what control says from the start. Whether
	// the kernel still holds the killed socket's queue when the new one
	// binds is up to the kernel's work queue; in the first round (afxdp)
	// the test makes sure it does, holding in/q0 with a socket of its own
	// that it closes only after the restart began.
	for round := 1; round <= 3; round++ {
		lb.cmd.Process.Signal(syscall.SIGKILL)
		<-lb.done
		var released chan struct{}
		if round == 1 && steering == "afxdp" {
			holder := holdQueue(t, ns, "in")
			released = make(chan struct{})
			go func() {
				time.Sleep(300 * time.Millisecond) // samepathd is binding by now
				holder()
				close(released)
			}()
		}
		t4 := firstT4()
		if released != nil {
			<-released
			if logs, _ := os.ReadFile(lbLog); !strings.Contains(string(logs), "retrying bind") {
				t.Errorf("round 1: lb1 started while in/q0 was held without retrying its bind?\n%s", logs)
			}
		}
		if st := state(t4, gw1MAC); st != "down" {
			t.Fatalf("round %d: lb1's first T4 answer after restart says gw1 is %s; control says down (%+v)", round, st, t4)
		}
		tp.send(1, n)
		sent += n
		if g1, g2 := tp.gwCounts(); g1 != 0 || g2 != sent {
			t.Fatalf("round %d: after restart gw1 %d gw2 %d, want 0 and %d (a frame went to the down gateway)", round, g1, g2, sent)
		}
	}
	logs, _ := os.ReadFile(lbLog)
	t.Logf("busy-queue retries over the restarts: %d; T4 from control: %d", strings.Count(string(logs), "retrying bind"),
		strings.Count(string(logs), "gateway states from control"))
}

// holdQueue binds an AF_XDP socket to queue 0 of ifname in ns, as the
// socket of a killed process holds it until the kernel has released it,
// and returns the func that closes it.
func holdQueue(t *testing.T, ns, ifname string) func() {
	t.Helper()
	ucfg := xsk.DefaultUmemConfig()
	ucfg.Frames = 1024
	u, err := xsk.NewUmem(ucfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := xsk.DefaultConfig(ifname, 0)
	cfg.RxSize, cfg.TxSize, cfg.FillSize, cfg.CompSize = 256, 256, 256, 256
	var s *xsk.Socket
	// The killed samepathd's socket may still be being released: wait
	// for it here too (not only through New's own retries, so this holds
	// with BindBusyWait 0 as well).
	for deadline := time.Now().Add(5 * time.Second); ; {
		err = topo.Do(ns, func() error { s, err = xsk.New(u, cfg); return err })
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		u.Close()
		t.Fatalf("hold %s/q0 in %s: %v", ifname, ns, err)
	}
	return func() { s.Close(); u.Close() }
}

// waitFor polls cond until it holds; it fails at once if p exits, and
// after 15 s (a bound on a hung test, not a timing assertion).
func waitFor(t *testing.T, what string, p *proc, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		if p.exited() {
			t.Fatalf("waiting for %s: the process exited (%v):\n%s", what, p.cmd.ProcessState, p.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
