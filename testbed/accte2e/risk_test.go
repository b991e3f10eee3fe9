package accte2e

// Risk balancing (R-TCP-4, tcpproxy/risk.go) on the FIG. 2 system, with
// the servers killed by PID:
//
//	mob1 [curl] ~~ nas -- lb --+-- LAN1 --+-- gw1 [netstack | netstack] --+-- a1, a2 (`testbed serve` processes, group A)
//	                                         web-a terminate, risk {replay_buffer 4096, http}
//
// Each case finds the server of curl's connection in the gateway's flow
// record, kills that process (SIGKILL: its kernel closes the socket),
// and starts it again once curl is done:
//
//   - a request killed before the answer (?delay) is answered by the
//     other server: curl gets one 200 with the right body, and while
//     that server delays its answer the flow view and the active counts
//     name it;
//   - a 50 MB download with an ETag killed at a random point completes
//     through a Range request to the other server: SHA-256 matches;
//   - the same without a validator is reset: curl fails, no success;
//   - a request larger than the replay buffer killed before the answer
//     is reset;
//   - the service's counters (gw services and Prometheus) say exactly that.

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

const riskBig = 50 << 20

func TestRiskBalancing(t *testing.T) {
	nat := demo.GWNAT{PortMax: 59999, TermPortMin: 60000, TermPortMax: 65535, TCPTimeWaitTimeout: time.Second}
	sys := startSystem(t, demo.Options{GWNAT: nat})
	ctx := testCtx(t, 5*time.Minute)
	m := mobile(t, sys, "mob1")
	startSession(ctx, t, sys, m)
	gw := sys.GWs[m.Gateway-1]
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	// web-a to mode terminate with risk balancing, read back.
	svcs, err := gw.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table api.Services
	buf := 4096
	for _, s := range svcs.Services {
		for i := range s.Servers {
			sv := &s.Servers[i]
			sv.Healthy, sv.RTTMicros, sv.CPU, sv.Active = nil, 0, 0, 0
		}
		if s.Name == "web-a" {
			s.Mode, s.Risk = "terminate", &api.Risk{ReplayBuffer: &buf, HTTP: true}
		}
		table.Services = append(table.Services, s)
	}
	if err := gw.SetServices(ctx, table); err != nil {
		t.Fatal(err)
	}
	stats := func() *api.RiskStats {
		svcs, err := gw.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range svcs.Services {
			if s.Name == "web-a" {
				if s.Risk == nil || s.Risk.ReplayBuffer == nil || *s.Risk.ReplayBuffer != buf || !s.Risk.HTTP || s.Risk.Resume == nil || !*s.Risk.Resume {
					t.Fatalf("web-a risk read back: %+v", s.Risk)
				}
				return s.RiskStats
			}
		}
		t.Fatal("no web-a")
		return nil
	}
	if st := stats(); st == nil || st.Failovers != 0 || st.Resumes != 0 {
		t.Fatalf("counters before anything: %+v", st)
	}
	v, err := metric(ctx, gw, `samepath_gw_term_risk_total{event="abort_no_server",service="web-a"}`)
	if err != nil || v != 0 {
		t.Fatalf("abort_no_server series before anything: %v, %v (want it at 0)", v, err)
	}

	p := sys.TB.Plan
	group := p.Groups[0].Name
	// serverOf waits for curl's flow and returns its server.
	serverOf := func() fig2.Server {
		t.Helper()
		var srv fig2.Server
		ok := eventually(30*time.Second, func() bool {
			for _, f := range flowsOf(ctx, t, gw, m.IPv4) {
				ap, err := netip.ParseAddrPort(f.Server)
				if err != nil || f.State != "established" {
					continue
				}
				for _, s := range p.Servers {
					if s.Group == group && s.LAN.IPv4.Addr() == ap.Addr().Unmap() {
						srv = s
						return true
					}
				}
			}
			return false
		})
		if !ok {
			t.Fatal("no flow of curl's to a server of group A")
		}
		return srv
	}
	kill := func(s fig2.Server) {
		t.Helper()
		d := sys.TB.Daemon(s.Name)
		if d == nil {
			t.Fatalf("no process for server %s", s.Name)
		}
		t.Logf("killing %s (pid %d)", s.Name, d.Cmd.Process.Pid)
		if err := syscall.Kill(d.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-d.Done()
	}
	restart := func(s fig2.Server) {
		t.Helper()
		if _, err := sys.TB.StartDaemon(s.NS, s.Name, append([]string{exe, "serve"}, fig2.ServeFlags(s)...)...); err != nil {
			t.Fatal(err)
		}
		// Back in service once the gateway's probes see it healthy.
		if !eventually(60*time.Second, func() bool {
			c, err := topo.Dial(ctx, s.NS, "tcp", fmt.Sprintf("127.0.0.1:%d", s.HTTP))
			if err != nil {
				return false
			}
			c.Close()
			svcs, err := gw.Services(ctx)
			if err != nil {
				return false
			}
			for _, sv := range svcs.Services {
				if sv.Name != "web-a" {
					continue
				}
				for _, x := range sv.Servers {
					if x.Healthy == nil || !*x.Healthy {
						return false
					}
				}
			}
			return true
		}) {
			t.Fatalf("server %s not healthy again", s.Name)
		}
	}
	// afterKill, if set, runs while curl still runs, after its server
	// was killed.
	var afterKill func(killed fig2.Server)
	// run starts curl on path, kills its server once killAt(dir) says
	// so, and returns curl's result once it ends.
	run := func(name, path string, killAt func(dir string) bool, extra ...string) curlResult {
		t.Helper()
		dir := t.TempDir()
		url, _ := repURL(sys, 0, path)
		type res struct {
			r   curlResult
			err error
		}
		done := make(chan res, 1)
		go func() {
			r, err := curl(ctx, m.NS, dir, url, extra...)
			done <- res{r, err}
		}()
		s := serverOf()
		if !eventually(60*time.Second, func() bool { return killAt(dir) }) {
			t.Fatalf("%s: never reached the point to kill at", name)
		}
		kill(s)
		if afterKill != nil {
			afterKill(s)
		}
		r := <-done
		restart(s)
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		t.Logf("%s: server %s killed; curl exit %d, HTTP %d, body %d bytes; %s", name, s.Name, r.r.Exit, r.r.Code, r.r.BodyFile, lastLine(r.r.Stderr))
		return r.r
	}
	// settled: the flow exists at once, the request reaches the server
	// a moment later (a kill before it would be a failed connect, which
	// fails over before the request is read).
	settled := func(string) bool { time.Sleep(500 * time.Millisecond); return true }
	size := func(dir string) int64 {
		fi, err := os.Stat(filepath.Join(dir, "body"))
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	sum := func(dir string) [32]byte {
		b, _ := os.ReadFile(filepath.Join(dir, "body"))
		return sha256.Sum256(b)
	}

	// 1. Killed before the answer: the other server answers. While it
	// delays its answer, the flow view (gw flows) and the active counts
	// name it, not the killed one.
	afterKill = func(killed fig2.Server) {
		t.Helper()
		var last []api.Flow
		var conns map[string]int64
		moved := false
		eventually(20*time.Second, func() bool {
			fs := flowsOf(ctx, t, gw, m.IPv4)
			if len(fs) != 1 {
				return len(last) > 0 // curl's flow ended: stop looking
			}
			last = fs
			svcs, err := gw.Services(ctx)
			if err != nil {
				return false
			}
			conns = map[string]int64{}
			for _, sv := range svcs.Services {
				if sv.Name == "web-a" {
					for _, x := range sv.Servers {
						conns[x.Addr] = x.Active
					}
				}
			}
			ap, err := netip.ParseAddrPort(fs[0].Server)
			moved = err == nil && ap.Addr().Unmap() != killed.LAN.IPv4.Addr() &&
				conns[fs[0].Server] == 1 && conns[fmt.Sprintf("%s:%d", killed.LAN.IPv4.Addr(), fig2.HTTPPort)] == 0
			return moved
		})
		if !moved {
			t.Errorf("after the failover from %s: flow %+v, active %v; want the substitute's flow, counted on it alone", killed.Name, last, conns)
		}
	}
	r := run("before the answer", "/bytes/1000000?delay=3s", settled)
	afterKill = nil
	if r.Exit != 0 || r.Code != 200 || r.BodyFile != 1000000 {
		t.Errorf("before the answer: curl exit %d, HTTP %d, %d bytes; want one 200 of 1000000", r.Exit, r.Code, r.BodyFile)
	}

	// 2. 50 MB with an ETag killed at a random point: resumed.
	at := int64(riskBig/10) + rand.Int64N(riskBig*7/10)
	dir := ""
	r = run("resume", fmt.Sprintf("/bytes/%d?validator=etag&rate=20000000", riskBig), func(d string) bool { dir = d; return size(d) >= at })
	if r.Exit != 0 || r.Code != 200 || r.BodyFile != riskBig {
		t.Errorf("resume (killed past %d bytes): curl exit %d, HTTP %d, %d bytes", at, r.Exit, r.Code, r.BodyFile)
	} else if got, want := sum(dir), servers.BytesSHA256(riskBig); got != want {
		t.Errorf("resume: SHA-256 %x, want %x", got, want)
	}

	// 3. The same without a validator: reset, never a short success.
	at = int64(riskBig/10) + rand.Int64N(riskBig*7/10)
	r = run("no validator", fmt.Sprintf("/bytes/%d?rate=20000000", riskBig), func(d string) bool { return size(d) >= at })
	if r.Exit == 0 || r.BodyFile >= riskBig || !strings.Contains(r.Stderr, "reset") {
		t.Errorf("no validator: curl exit %d, %d bytes, %q; want a reset before the end", r.Exit, r.BodyFile, lastLine(r.Stderr))
	}

	// 4. A request larger than the replay buffer: reset.
	r = run("overflow", "/bytes/1000?delay=3s", settled, "-H", "X-Pad: "+strings.Repeat("x", 2*buf))
	if r.Exit == 0 || !strings.Contains(r.Stderr, "reset") {
		t.Errorf("overflow: curl exit %d, HTTP %d, %q; want a reset", r.Exit, r.Code, lastLine(r.Stderr))
	}

	// 5. The counters: exactly these, in the API and in Prometheus; and
	// one log line per event.
	log, err := os.ReadFile(filepath.Join(sys.TB.LogDir(), fmt.Sprintf("samepathd-gw%d.log", m.Gateway)))
	if err != nil {
		t.Fatal(err)
	}
	if kept, reset := strings.Count(string(log), "terminated connection kept"), strings.Count(string(log), "terminated connection reset"); kept != 2 || reset != 2 {
		t.Errorf("gateway log: %d lines of connections kept, %d reset; want 2 (failover, resume) and 2 (overflow, mid-response)", kept, reset)
	}
	want := map[string]uint64{"failover": 1, "resume": 1, "abort_replay_overflow": 1, "abort_no_server": 0, "abort_mid_response": 1, "abort_resume_mismatch": 0}
	st := stats()
	got := map[string]uint64{"failover": st.Failovers, "resume": st.Resumes}
	for k, v := range st.Aborts {
		got["abort_"+k] = v
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("gw services: %s = %d, want %d", k, got[k], w)
		}
		v, err := metric(ctx, gw, fmt.Sprintf(`samepath_gw_term_risk_total{event=%q,service="web-a"}`, k))
		if err != nil || uint64(v) != w {
			t.Errorf("prometheus %s = %v (%v), want %d", k, v, err, w)
		}
	}
}
