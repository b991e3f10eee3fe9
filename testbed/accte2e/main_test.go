package accte2e

// Helpers shared by the tests: the system under test (testbed/demo's
// FIG. 2 with samepathd LBs and gateways writing accounting logs), curl
// run inside a mobile's namespace with what it sent and received counted
// exactly, readers of the gateways' API and metrics, the accounting log
// poller and the gateway killer.
//
//	mob1, mob2 [curl] ~~ nas1..3 -- lb1..3 -- LAN1 -- gw1, gw2 [acct log] -- LAN2 -- a1 a2 b1 b2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/dp/acct"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/systest"
	"samepath/testbed/topo"
)

// TestMain: systest.Main (the binary doubles as the servers; leak check).
func TestMain(m *testing.M) { systest.Main(m) }

// requireCurl skips without the curl command, or fails when CI is set
// (`make test` installs it).
func requireCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("curl is required (apt-get install curl): %v", err)
		}
		t.Skipf("curl not installed: %v", err)
	}
}

// startSystem is systest.Start, once curl is known to be there.
func startSystem(t *testing.T, o demo.Options) *demo.System {
	t.Helper()
	requireCurl(t)
	return systest.Start(t, o)
}

// testCtx is a context bounded well beyond any step of a test; steps that
// wait for something poll with their own deadlines.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mobile(t *testing.T, sys *demo.System, name string) *fig2.Mobile {
	t.Helper()
	m, err := sys.TB.Plan.Mobile(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Subscriber names the tests give the mobiles' sessions (T3): the user id
// and the device id the accounting records must carry.
func userOf(m *fig2.Mobile) string   { return "sub-" + m.Name }
func deviceOf(m *fig2.Mobile) string { return "IMEI-" + m.Name }

// startSession tells the mobile's gateway that its session started, with
// a user id and a device id (what the session manager pushes after
// RADIUS Accounting Start).
func startSession(ctx context.Context, t *testing.T, sys *demo.System, m *fig2.Mobile) {
	t.Helper()
	ev := api.SessionEvent{Event: api.EventStart, SessionID: "acct-" + m.Name, UserID: userOf(m), DeviceID: deviceOf(m),
		IP: m.IPv4.String(), Seq: 1}
	if err := sys.GWs[m.Gateway-1].SessionEvent(ctx, ev); err != nil {
		t.Fatalf("session start for %s: %v", m.Name, err)
	}
}

// curlResult is one curl run: its exit code and stderr, what -w reported
// and what it sent and received, counted from its own output.
type curlResult struct {
	Exit   int
	Stderr string
	// From -w: the HTTP status, size_request (bytes of the request
	// curl sent), size_header (bytes of the response's status line and
	// header block), size_download (body bytes).
	Code                          int
	SizeRequest, SizeHeader, Body int64
	// Request is the request as curl -v printed it ("> " lines), CRLFs
	// restored: byte for byte what went on the wire (no request body).
	Request []byte
	// HeaderFile and BodyFile are the sizes of the -D and -o files: the
	// response's header block as received and its body.
	HeaderFile, BodyFile int64
}

// curl runs `curl -sS -v URL` inside ns with a dump of the response
// header (-D) and body (-o) in dir, and extra arguments before the URL.
// An exit code other than 0 is returned in Exit, not as an error.
func curl(ctx context.Context, ns, dir, url string, extra ...string) (curlResult, error) {
	var r curlResult
	hdr, body := filepath.Join(dir, "headers"), filepath.Join(dir, "body")
	os.Remove(hdr)
	os.Remove(body)
	args := []string{"-sS", "-v", "--http1.1", "--noproxy", "*", "--max-time", "60",
		"-D", hdr, "-o", body, "-w", "%{http_code} %{size_request} %{size_header} %{size_download}"}
	args = append(append(args, extra...), url)
	cmd := topo.CommandContext(ctx, ns, "curl", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r.Stderr = stderr.String()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Exit = ee.ExitCode()
	case err != nil:
		return r, fmt.Errorf("run curl: %w", err)
	}
	if _, err := fmt.Sscan(stdout.String(), &r.Code, &r.SizeRequest, &r.SizeHeader, &r.Body); err != nil && r.Exit == 0 {
		return r, fmt.Errorf("curl -w output %q: %w", stdout.String(), err)
	}
	for _, l := range strings.SplitAfter(r.Stderr, "\n") {
		if l, ok := strings.CutPrefix(l, "> "); ok {
			r.Request = append(r.Request, l...) // the line as sent, CRLF included
		}
	}
	if fi, err := os.Stat(hdr); err == nil {
		r.HeaderFile = fi.Size()
	}
	if fi, err := os.Stat(body); err == nil {
		r.BodyFile = fi.Size()
	}
	return r, nil
}

// repURL is http://REP/path for group g (0: A, 1: B) on port 80, the way
// curl's Host header names it.
func repURL(sys *demo.System, g int, path string) (url, attr string) {
	host := sys.TB.Plan.Groups[g].VIPv4.String()
	return "http://" + host + path, host + path
}

// metric reads one sample of the gateway's Prometheus metrics (text
// format), e.g. `samepath_gw_accounting_records_total{outcome="synced"}`;
// a sample that is absent reads as 0.
func metric(ctx context.Context, c *api.Client, sample string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, sc.Err()
}

// drops sums a daemon's drops of reason over its queues.
func drops(ctx context.Context, t *testing.T, c *api.Client, reason string) uint64 {
	t.Helper()
	cs, err := c.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, q := range cs.Queues {
		n += q.Drops[reason]
	}
	return n
}

// txPackets sums what a gateway's workers sent on the ports of iface.
func txPackets(ctx context.Context, t *testing.T, c *api.Client, iface string) uint64 {
	t.Helper()
	cs, err := c.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, q := range cs.Queues {
		if strings.HasPrefix(q.Port, iface+"/") {
			n += q.TxPackets
		}
	}
	return n
}

// flowsOf lists gateway c's NAT records of the mobile at ip.
func flowsOf(ctx context.Context, t *testing.T, c *api.Client, ip netip.Addr) []api.Flow {
	t.Helper()
	fs, err := c.Flows(ctx, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []api.Flow
	for _, f := range fs.Flows {
		if ap, err := netip.ParseAddrPort(f.Mobile); err == nil && ap.Addr() == ip {
			out = append(out, f)
		}
	}
	return out
}

// eventually polls cond every 200 ms until it holds or d passes; it
// reports whether it held. Deadlines here bound waiting, they assert no
// timing.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// records returns the log's records whose attribute is attr, in file
// order, waiting (bounded) until a final one is among them: a flow's
// final record is written once its TCP record has lingered the
// time-wait timeout.
func records(t *testing.T, log string, f acct.Filter, attr string) []acct.Entry {
	t.Helper()
	var out []acct.Entry
	var st acct.ScanStats
	var err error
	final := func() bool {
		out = out[:0]
		st, err = acct.Scan(log, f, func(e *acct.Entry) error {
			if e.Attribute() == attr {
				out = append(out, *e)
			}
			return nil
		})
		if err != nil {
			return false
		}
		for _, e := range out {
			if e.Kind == "final" {
				return true
			}
		}
		return false
	}
	if !eventually(20*time.Second, final) {
		t.Fatalf("no final record for %q in %s (filter %+v): records %+v, scan %+v, %v", attr, log, f, out, st, err)
	}
	return out
}

// retransSegs is the TCP segments retransmitted by the stacks of the
// namespaces (Tcp RetransSegs of /proc/net/snmp in each): a transfer's
// payload counts are exact only without retransmissions (the gateway
// counts every forwarded segment).
func retransSegs(ctx context.Context, nss ...string) (uint64, error) {
	var total uint64
	for _, ns := range nss {
		out, err := topo.CommandContext(ctx, ns, "cat", "/proc/net/snmp").Output()
		if err != nil {
			return 0, fmt.Errorf("snmp of %s: %w", ns, err)
		}
		var names []string
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 0 || f[0] != "Tcp:" {
				continue
			}
			if names == nil {
				names = f
				continue
			}
			for i, n := range names {
				if n == "RetransSegs" && i < len(f) {
					v, err := strconv.ParseUint(f[i], 10, 64)
					if err != nil {
						return 0, fmt.Errorf("snmp of %s: %w", ns, err)
					}
					total += v
				}
			}
		}
	}
	return total, nil
}

// killGateway SIGKILLs the samepathd of gateway g (1-based), found by its
// namespace, and waits until it is gone (the testbed reaps it).
func killGateway(t *testing.T, sys *demo.System, g int) {
	t.Helper()
	ns := sys.TB.Plan.Gateways[g-1].NS
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		t.Fatalf("pids of %s: %v", ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == "samepathd" {
			pids = append(pids, pid)
		}
	}
	if len(pids) != 1 {
		t.Fatalf("samepathd processes in %s: %v, want one", ns, pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatalf("kill samepathd-gw%d (pid %d): %v", g, pids[0], err)
	}
	if !eventually(10*time.Second, func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pids[0]))
		return errors.Is(err, os.ErrNotExist)
	}) {
		t.Fatalf("samepathd-gw%d (pid %d) still there after SIGKILL", g, pids[0])
	}
}
