package gwe2e

// A real Prometheus server (the Debian package prometheus) in the ctl
// namespace scrapes every samepathd of the system over the management
// network, with samepath's alert rules loaded; a query through its HTTP
// API sees the gateway's forwarded packets rise during a download. The
// download runs over IPv4 (web-a), then over IPv6 (web-a6,
// family_test.go), scraped by the same Prometheus: the queue counters
// have no family label, so each run also checks that the gateway's
// transmitted bytes rose by at least what the mobile read and that the
// family's service counted the download's one new flow.
//
//	ctl: prometheus 127.0.0.1:19090 --mgmt--> lb1..3, gw1, gw2 :9180/metrics
//	mob1 ~~ nas1 -- lb1 -- gw1 -- a1/a2 (GET /bytes/N, read slowly)

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/internal/promcheck"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/privtest"
	"samepath/testbed/systest"
	"samepath/testbed/topo"
)

const promAddr = "127.0.0.1:19090" // inside the ctl namespace

func TestPrometheusScrapes(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		privtest.Missing(t, "prometheus (apt-get install prometheus; make deps)")
	}
	sys := systest.Start(t, demo.Options{})
	ctx := testCtx(t, 3*time.Minute)
	ctlNS := sys.TB.Plan.Ctl.NS

	// promtool's lint of every live daemon's /metrics.
	for _, c := range append(append([]*api.Client(nil), sys.LBs...), sys.GWs...) {
		promcheck.Metrics(t, c.Base+"/metrics", get(ctx, t, c.HTTP, c.Base+"/metrics"))
	}

	dir := t.TempDir()
	rules, err := filepath.Abs("../../ctl/alerts/samepath.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	targets := func(cs []*api.Client) string {
		var hs []string
		for _, c := range cs {
			hs = append(hs, strconv.Quote(strings.TrimPrefix(c.Base, "http://")))
		}
		return strings.Join(hs, ", ")
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: samepathd-lb
    static_configs: [{targets: [%s]}]
  - job_name: samepathd-gw
    static_configs: [{targets: [%s]}]
`, rules, targets(sys.LBs), targets(sys.GWs))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithTimeout(ctx, 150*time.Second) // bounded whatever happens
	cmd := topo.CommandContext(pctx, ctlNS, promBin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	var logs systest.Output
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", logs.String())
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return topo.Dial(ctx, ctlNS, network, addr)
		},
	}}
	query := func(q string) (float64, bool) {
		b, err := getErr(ctx, hc, "http://"+promAddr+"/api/v1/query?query="+url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		if json.Unmarshal(b, &r) != nil || r.Status != "success" || len(r.Data.Result) != 1 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	n := len(sys.LBs) + len(sys.GWs)
	if !eventually(30*time.Second, func() bool { v, ok := query(`sum(up{job=~"samepathd-.*"})`); return ok && v == float64(n) }) {
		t.Fatalf("prometheus does not see the %d daemons up", n)
	}
	if b, err := getErr(ctx, hc, "http://"+promAddr+"/api/v1/rules"); err != nil || !strings.Contains(string(b), "SamepathPollerStalled") {
		t.Errorf("alert rules not loaded: %v %.300s", err, b)
	}

	forFamilies(t, func(t *testing.T, f family) { testScrapeDownload(ctx, t, sys, f, query) })
}

// testScrapeDownload downloads over family f from mob1 through its
// gateway while Prometheus scrapes it, and queries the rise.
func testScrapeDownload(ctx context.Context, t *testing.T, sys *demo.System, f family, query func(string) (float64, bool)) {
	m := mobile(t, sys, "mob1")
	if err := f.startSession(ctx, sys, m); err != nil {
		t.Fatal(err)
	}
	gwInst := strings.TrimPrefix(sys.GWs[m.Gateway-1].Base, "http://")
	sel := fmt.Sprintf(`{job="samepathd-gw",instance=%q}`, gwInst)
	fwd := `sum(samepath_tx_packets_total` + sel + `)`
	txBytes := `sum(samepath_tx_bytes_total` + sel + `)`
	svc := f.svc("web-a")
	newFlows := fmt.Sprintf(`sum(samepath_gw_server_new_flows_total{job="samepathd-gw",instance=%q,service=%q})`, gwInst, svc)
	// A scrape after the session started and before the download.
	time.Sleep(1500 * time.Millisecond)
	before, ok := query(fwd)
	if !ok {
		t.Fatalf("no value for %s", fwd)
	}
	bytesBefore, ok := query(txBytes)
	if !ok {
		t.Fatalf("no value for %s", txBytes)
	}
	flowsBefore, ok := query(newFlows)
	if !ok {
		t.Fatalf("no value for %s", newFlows)
	}
	w, err := dialWeb(ctx, m.NS, f.rep(sys, 0, fig2.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := fmt.Fprintf(w.c, "GET /bytes/%d HTTP/1.1\r\nHost: rep\r\n\r\n", 1<<34); err != nil {
		t.Fatal(err)
	}
	// Read slowly (about 4 MB/s) so the download lasts while Prometheus
	// scrapes; done stops it once the rise is seen.
	done := make(chan struct{})
	read := make(chan int64, 1)
	go func() {
		var total int64
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-done:
				read <- total
				return
			case <-time.After(15 * time.Millisecond):
			}
			w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := w.r.Read(buf)
			total += int64(k)
			if err != nil {
				<-done
				read <- total
				return
			}
		}
	}()
	var during float64
	rose := eventually(20*time.Second, func() bool {
		v, ok := query(fwd)
		during = v
		return ok && v >= before+1000
	})
	r, _ := query(fmt.Sprintf(`sum(rate(samepath_tx_packets_total%s[5s]))`, sel))
	close(done)
	got := <-read
	t.Logf("gateway %s forwarded packets %v -> %v (rate %.0f/s) during a %s download of %d bytes so far", gwInst, before, during, r, f.name, got)
	if !rose {
		t.Fatalf("forwarded packets %v -> %v: no rise of 1000 seen during the download (%d bytes read)", before, during, got)
	}
	if got < 1<<20 {
		t.Errorf("download read only %d bytes", got)
	}
	// The gateway sent every byte the mobile read, with headers: a
	// later scrape shows at least that much more.
	var bytesAfter float64
	if !eventually(10*time.Second, func() bool {
		bytesAfter, ok = query(txBytes)
		return ok && bytesAfter >= bytesBefore+float64(got)
	}) {
		t.Errorf("%s: %v -> %v, want a rise of %d bytes at least (what the mobile read over %s)", txBytes, bytesBefore, bytesAfter, got, f.name)
	}
	// The download is the one new flow of the family's service.
	var flowsAfter float64
	if !eventually(10*time.Second, func() bool {
		flowsAfter, ok = query(newFlows)
		return ok && flowsAfter == flowsBefore+1
	}) {
		t.Errorf("%s: %v -> %v, want the download's one new flow", newFlows, flowsBefore, flowsAfter)
	}
	t.Logf("%s: %v -> %v (%d bytes read); %s new flows %v -> %v", txBytes, bytesBefore, bytesAfter, got, svc, flowsBefore, flowsAfter)
}

func get(ctx context.Context, t *testing.T, hc *http.Client, u string) []byte {
	t.Helper()
	b, err := getErr(ctx, hc, u)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func getErr(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return b, err
}
