package accte2e

// TCP termination's connection semantics end to end (R-TCP-1, R-AUTH-1,
// R-GW-7), beyond TestTerminateAccounting's body and payload counts:
//
//	mob1 [term-peer client] ~~ nas -- lb -- gw1 [netstack | netstack] -- a1 [term-peer server :9100]
//	                                         tcp-a 10.30.0.1:9100 terminate -> a1:9100
//	                                         web-b 10.30.0.2:80 terminate, T8: IMEI-mob1 no video
//
// The test binary is both peers ("term-peer client|server", dispatched
// from init, so that the namespaces run the same code): kernel TCP on
// both ends, the gateway's two netstacks in between. Each check is one
// connection, its first line naming what the server does:
//   - halfclose: the client sends and shuts its write side; the server
//     reads to EOF (the FIN reached it) and answers with the count, which
//     the client still receives;
//   - serverhalf: the server sends and shuts its write side; the client
//     reads to EOF, then sends; the server reports what it got after its FIN;
//   - rst: the server resets (SO_LINGER 0); the client's read fails with
//     ECONNRESET, not EOF;
//   - clientrst: the client resets; the server's read fails with ECONNRESET;
//   - hold: both wait; the session's end (T3 end event) resets the
//     connection: ECONNRESET at the client and at the server.
//
// A refused service (web-b, mode terminate, video not ordered) gets the
// gateway's RST (curl exit 7) and nothing reaches the terminator.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/testbed/demo"
	"samepath/testbed/systest"
	"samepath/testbed/topo"
)

func init() {
	if len(os.Args) > 2 && os.Args[1] == "term-peer" {
		os.Exit(termPeer(os.Args[2:]))
	}
}

// termPeer runs one peer: "server :PORT" (each accepted connection's
// outcome as a line on stdout) or "client ADDR MODE" (its outcome as the
// last line; exit 0 when it is the expected one).
func termPeer(args []string) int {
	switch {
	case len(args) == 2 && args[0] == "server":
		l, err := net.Listen("tcp", args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("listening")
		for {
			c, err := l.Accept()
			if err != nil {
				return 1
			}
			go func() {
				if out := peerServe(c.(*net.TCPConn)); out != "" {
					fmt.Println(out)
				}
			}()
		}
	case len(args) == 3 && args[0] == "client":
		out, err := peerClient(args[1], args[2])
		if err != nil {
			fmt.Printf("%s: %v\n", args[2], err)
			return 1
		}
		fmt.Println(out)
		return 0
	}
	fmt.Fprintln(os.Stderr, "usage: term-peer server :PORT | client ADDR MODE")
	return 2
}

// readEnd reads c to its end: nil at EOF, the error otherwise.
func readEnd(c net.Conn) (int64, error) {
	n, err := io.Copy(io.Discard, c)
	return n, err
}

func peerServe(c *net.TCPConn) string {
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	mode, err := br.ReadString('\n')
	if err != nil {
		return "" // a health probe
	}
	mode = strings.TrimSpace(mode)
	switch mode {
	case "halfclose":
		n, err := io.Copy(io.Discard, br)
		if err != nil {
			return fmt.Sprintf("halfclose read: %v", err)
		}
		fmt.Fprintf(c, "got %d\n", n)
		return "halfclose done"
	case "serverhalf":
		c.Write(make([]byte, 50000))
		c.CloseWrite()
		n, err := io.Copy(io.Discard, br)
		return fmt.Sprintf("serverhalf after fin %d %v", n, err)
	case "rst":
		c.Write([]byte("ready\n"))
		if _, err := br.ReadString('\n'); err != nil {
			return fmt.Sprintf("rst: %v", err)
		}
		c.SetLinger(0)
		return "rst sent"
	case "clientrst", "hold":
		c.Write([]byte("ready\n"))
		_, err := io.Copy(io.Discard, br)
		switch {
		case errors.Is(err, syscall.ECONNRESET):
			return mode + " reset"
		case err == nil:
			return mode + " eof"
		}
		return fmt.Sprintf("%s %v", mode, err)
	}
	return "unknown mode " + mode
}

func peerClient(addr, mode string) (string, error) {
	d, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", err
	}
	c := d.(*net.TCPConn)
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(c, "%s\n", mode)
	br := bufio.NewReader(c)
	switch mode {
	case "halfclose":
		c.Write(make([]byte, 100000))
		if err := c.CloseWrite(); err != nil {
			return "", err
		}
		b, err := io.ReadAll(br)
		if err != nil {
			return "", fmt.Errorf("read after half-close: %w (%q)", err, b)
		}
		if string(b) != "got 100000\n" {
			return "", fmt.Errorf("answer %q, want the server's count of the 100000 bytes", b)
		}
		return "ok", nil
	case "serverhalf":
		n, err := io.Copy(io.Discard, br)
		if err != nil || n != 50000 {
			return "", fmt.Errorf("read to the server's FIN: %d bytes, %v", n, err)
		}
		if _, err := c.Write([]byte("after-fin\n")); err != nil {
			return "", err
		}
		c.CloseWrite()
		return "ok", nil
	case "rst", "clientrst", "hold":
		if l, err := br.ReadString('\n'); err != nil || l != "ready\n" {
			return "", fmt.Errorf("ready: %q %v", l, err)
		}
		switch mode {
		case "clientrst":
			c.SetLinger(0)
			return "ok", nil
		case "rst":
			c.Write([]byte("go\n"))
		case "hold":
			fmt.Println("ready")
		}
		_, err := readEnd(br2conn{br, c})
		if errors.Is(err, syscall.ECONNRESET) {
			return "reset", nil
		}
		return "", fmt.Errorf("read: %v, want ECONNRESET", err)
	}
	return "", fmt.Errorf("unknown mode %q", mode)
}

// br2conn reads through a bufio.Reader over c.
type br2conn struct {
	*bufio.Reader
	net.Conn
}

func (b br2conn) Read(p []byte) (int, error) { return b.Reader.Read(p) }

// lines collects a process's stdout lines.
type lines struct{ b systest.Output }

func (l *lines) has(s string) bool {
	for _, ln := range strings.Split(l.b.String(), "\n") {
		if ln == s {
			return true
		}
	}
	return false
}

func TestTerminateConnections(t *testing.T) {
	nat := demo.GWNAT{PortMax: 59999, TermPortMin: 60000, TermPortMax: 65535, TCPTimeWaitTimeout: time.Second}
	sys := startSystem(t, demo.Options{GWNAT: nat})
	ctx := testCtx(t, 3*time.Minute)
	m := mobile(t, sys, "mob1")
	startSession(ctx, t, sys, m)
	gw := sys.GWs[m.Gateway-1]
	p := sys.TB.Plan
	grpA, grpB := p.Groups[0].VIPv4.String(), p.Groups[1].VIPv4.String()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	// The peer server on a1, port 9100.
	var a1 = p.Servers[0]
	for _, s := range p.Servers {
		if s.Group == p.Groups[0].Name {
			a1 = s
			break
		}
	}
	var srvOut lines
	srv := topo.CommandContext(ctx, a1.NS, exe, "term-peer", "server", ":9100")
	srv.Stdout, srv.Stderr = &srvOut.b, &srvOut.b
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
		srv.Wait()
		if t.Failed() {
			t.Logf("term-peer server output:\n%s", srvOut.b.String())
		}
	})
	if !eventually(10*time.Second, func() bool { return srvOut.has("listening") }) {
		t.Fatalf("term-peer server: %s", srvOut.b.String())
	}

	// T9/T8: group A web (ordered), group B video (not ordered).
	authz := api.Authz{T9: []api.T9Row{{Rep: grpA, ServiceType: "web"}, {Rep: grpB, ServiceType: "video"}},
		T8: []api.T8Row{{Device: deviceOf(m), ServiceType: "web", Allowed: true}, {Device: deviceOf(m), ServiceType: "video", Allowed: false}}}
	if err := gw.SetAuthz(ctx, authz); err != nil {
		t.Fatal(err)
	}
	// tcp-a to the peer server, web-b terminated too.
	svcs, err := gw.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table api.Services
	for _, s := range svcs.Services {
		for i := range s.Servers {
			sv := &s.Servers[i]
			sv.Healthy, sv.RTTMicros, sv.CPU, sv.Active = nil, 0, 0, 0
		}
		if s.Name == "web-b" {
			s.Mode = "terminate"
		}
		table.Services = append(table.Services, s)
	}
	a1Addr := a1.LAN.IPv4.Addr().String()
	table.Services = append(table.Services, api.Service{Name: "tcp-a", Rep: grpA + ":9100", Proto: "tcp", Type: "connection", Policy: "rr",
		ServiceType: "web", Mode: "terminate", Servers: []api.Server{{Addr: a1Addr + ":9100", Weight: 1, State: api.StateUp}}})
	if err := gw.SetServices(ctx, table); err != nil {
		t.Fatal(err)
	}
	termCtr := func() api.TCPCounters {
		t.Helper()
		c, err := gw.TCPCounters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	client := func(mode string) (*exec.Cmd, *lines) {
		var out lines
		cmd := topo.CommandContext(ctx, m.NS, exe, "term-peer", "client", grpA+":9100", mode)
		cmd.Stdout, cmd.Stderr = &out.b, &out.b
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	run := func(mode, want, serverLine string) {
		t.Helper()
		cmd, out := client(mode)
		if err := cmd.Wait(); err != nil || !out.has(want) {
			t.Errorf("%s: client %v, output %q, want %q", mode, err, out.b.String(), want)
		}
		if serverLine != "" && !eventually(10*time.Second, func() bool { return srvOut.has(serverLine) }) {
			t.Errorf("%s: the server did not report %q", mode, serverLine)
		}
	}
	before := termCtr()
	run("halfclose", "ok", "halfclose done")
	run("serverhalf", "ok", "serverhalf after fin 10 <nil>")
	run("rst", "reset", "rst sent")
	run("clientrst", "ok", "clientrst reset")

	// A session end resets the session's connection both ways.
	cmd, out := client("hold")
	if !eventually(20*time.Second, func() bool { return out.has("ready") }) {
		t.Fatalf("hold: no ready: %q", out.b.String())
	}
	ev := api.SessionEvent{Event: api.EventEnd, SessionID: "acct-" + m.Name, IP: m.IPv4.String(), Seq: 2}
	if err := gw.SessionEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil || !out.has("reset") {
		t.Errorf("hold: client %v, output %q, want reset after the session's end", err, out.b.String())
	}
	if !eventually(10*time.Second, func() bool { return srvOut.has("hold reset") }) {
		t.Errorf("hold: the server's connection was not reset by the session's end")
	}
	after := termCtr()
	for k, want := range map[string]uint64{"spliced": 5, "end_fin": 2, "end_server_reset": 1, "end_mobile_reset": 1, "end_session": 1} {
		if got := after.Conns[k] - before.Conns[k]; got != want {
			t.Errorf("terminator %s: %d, want %d (%v)", k, got, want, after.Conns)
		}
	}
	if after.Bytes.MobileRx <= before.Bytes.MobileRx+100000 || after.Bytes.ServerTx != after.Bytes.MobileRx {
		t.Errorf("spliced bytes %+v (before %+v)", after.Bytes, before.Bytes)
	}

	// Refused (R-AUTH-1): a new session, web-b terminated but video not
	// ordered: the gateway's RST to the SYN, nothing for the terminator.
	ev = api.SessionEvent{Event: api.EventStart, SessionID: "acct2-" + m.Name, UserID: userOf(m), DeviceID: deviceOf(m), IP: m.IPv4.String(), Seq: 1}
	if err := gw.SessionEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	syns := termCtr().Conns["syn"]
	url, _ := repURL(sys, 1, "/bytes/1000")
	r, err := curl(ctx, m.NS, t.TempDir(), url)
	if err != nil || r.Exit != 7 {
		t.Errorf("curl to the refused web-b: %v, exit %d (want 7, connection refused)\n%s", err, r.Exit, r.Stderr)
	}
	if got := termCtr().Conns["syn"]; got != syns {
		t.Errorf("terminator SYNs %d -> %d: a refused service reached it", syns, got)
	}
	if v, err := metric(ctx, gw, `samepath_gw_denied_total{service_type="video"}`); err != nil || v < 1 {
		t.Errorf("denied video: %v %v", v, err)
	}
	// The terminator's counters on /metrics (series present from the start).
	for sample, min := range map[string]float64{
		`samepath_tcp_connections_total{event="end_session"}`:            1,
		`samepath_tcp_connections_total{event="refused_session_limit"}`:  0,
		`samepath_tcp_active_connections`:                                0,
		`samepath_tcp_spliced_bytes_total{direction="rx",side="mobile"}`: 100000,
	} {
		if v, err := metric(ctx, gw, sample); err != nil || v < min {
			t.Errorf("%s = %v (%v), want >= %v", sample, v, err, min)
		}
	}
	body := getMetrics(ctx, t, gw)
	for _, want := range []string{`samepath_tcp_connections_total{event="refused_session_limit"} 0`, "samepath_consumed_packets_total{", "samepath_originated_packets_total{"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}

	// A profile changed at run time (the mobile side's MSS, cubic to
	// reno): tcp-a still works for the new session's connections.
	ps, err := gw.TCPProfiles(ctx)
	if err != nil || ps.Mobile != "wireless" {
		t.Fatalf("tcp profiles: %+v %v", ps, err)
	}
	for _, pr := range ps.Profiles {
		if pr.Name == "wireless" {
			pr.Set("mss", "1300")
			pr.Set("congestion", "reno")
			if err := gw.PutTCPProfile(ctx, pr); err != nil {
				t.Fatal(err)
			}
		}
	}
	run("halfclose", "ok", "")
	run("rst", "reset", "")
}

func getMetrics(ctx context.Context, t *testing.T, c *api.Client) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/metrics", nil)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
