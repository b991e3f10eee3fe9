package gwe2e

// samepathctl capture (issue 18) on a gateway during curl exchanges:
//
//	mob1 10.101.0.10 ~~ nas1 -- lb1 -- LAN1 -- gw1 [NAT 10.20.0.101] -- LAN2 -- a1 10.20.0.11, a2 10.20.0.12
//	  curl http://10.30.0.1/              ^ samepathctl capture -daemon gw1 tcp port 80
//
// The capture holds each frame as gw1 received it and as it sent it: the
// mobile's 10.101.0.10 -> 10.30.0.1:80 and its NATed 10.20.0.101 ->
// server:80, and back. tcpdump -r reads the file.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/topo"
)

var ctlBuild struct {
	once sync.Once
	bin  string
	err  error
}

// samepathctl builds the CLI beside samepathd, once.
func samepathctl(t *testing.T) string {
	t.Helper()
	dir := filepath.Dir(samepathd(t))
	ctlBuild.once.Do(func() {
		ctlBuild.bin = filepath.Join(dir, "samepathctl")
		if out, err := exec.Command("go", "build", "-o", ctlBuild.bin, "samepath/cmd/samepathctl").CombinedOutput(); err != nil {
			ctlBuild.err = fmt.Errorf("build samepathctl: %w\n%s", err, out)
		}
	})
	if ctlBuild.err != nil {
		t.Fatal(ctlBuild.err)
	}
	return ctlBuild.bin
}

func TestCapture(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Fatal("tcpdump is needed to compile the filter and read the file")
	}
	curl, curlErr := exec.LookPath("curl")
	sys := startSystem(t, demo.Options{Samepathctl: samepathctl(t)})
	ctx := testCtx(t, 2*time.Minute)
	m := mobile(t, sys, "mob1")
	gw := sys.GWs[m.Gateway-1]
	if err := sys.StartSession(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	web := rep(sys, 0, fig2.HTTPPort)
	fetch := func() error {
		if curlErr != nil {
			_, err := fetchName(ctx, m.NS, web)
			return err
		}
		out, err := topo.CommandContext(ctx, m.NS, curl, "-sS", "--max-time", "5", "http://"+web+"/").CombinedOutput()
		if err != nil {
			return fmt.Errorf("curl: %w: %s", err, out)
		}
		return nil
	}
	if !eventually(10*time.Second, func() bool { return fetch() == nil }) {
		t.Fatalf("no web exchange through gw%d before the capture: %v", m.Gateway, fetch())
	}

	file := filepath.Join(t.TempDir(), "gw.pcapng")
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		// 40 frames: more than the first exchange the capture may have
		// missed part of, two whole ones at least.
		out, err := sys.Samepathctl(ctx, "capture", "-daemon", gw.Base, "-w", file, "-count", "40", "-duration", "60s", "tcp", "port", "80")
		done <- result{out, err}
	}()
	var res result
	exchanges := 0
	for res.out == "" && res.err == nil {
		select {
		case res = <-done:
			continue
		case <-time.After(200 * time.Millisecond):
		}
		if err := fetch(); err != nil {
			t.Fatalf("exchange %d during the capture: %v", exchanges, err)
		}
		exchanges++
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	t.Logf("%d exchanges (curl: %v); samepathctl capture:\n%s", exchanges, curlErr == nil, res.out)
	if !strings.Contains(res.out, "frames    40") || !strings.Contains(res.out, "ended by  count") {
		t.Errorf("capture summary:\n%s\nwant 40 frames, ended by count", res.out)
	}

	tr, err := exec.Command(tcpdump, "-nn", "-r", file).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r %s: %v\n%s", file, err, tr)
	}
	t.Logf("tcpdump -nn -r:\n%s", tr)
	mob, vip, nat := regexp.QuoteMeta(m.IPv4.String()), regexp.QuoteMeta(sys.TB.Plan.Groups[0].VIPv4.String()), regexp.QuoteMeta(demo.NATAddr(m.Gateway).String())
	srv := `10\.20\.0\.1[12]`
	for what, re := range map[string]string{
		"up, as received (mobile -> representative)": `IP ` + mob + `\.\d+ > ` + vip + `\.80: `,
		"up, as sent (NAT address -> server)":        `IP ` + nat + `\.\d+ > ` + srv + `\.80: `,
		"down, as received (server -> NAT address)":  `IP ` + srv + `\.80 > ` + nat + `\.\d+: `,
		"down, as sent (representative -> mobile)":   `IP ` + vip + `\.80 > ` + mob + `\.\d+: `,
	} {
		if !regexp.MustCompile(re).Match(tr) {
			t.Errorf("tcpdump -r shows no %s (%s)", what, re)
		}
	}

	// The comments pair each frame as received with itself as sent.
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	lan, lan2 := sys.TB.Plan.Gateways[m.Gateway-1].LAN1.Name, sys.TB.Plan.Gateways[m.Gateway-1].LAN2.Name
	var rx, tx int
	for {
		data, ci, opts, err := rd.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ifc, _ := rd.Interface(ci.InterfaceIndex)
		c := strings.Join(opts.Comments, "|")
		switch {
		case strings.Contains(c, " rx ") && strings.Contains(c, "forwarded to"):
			rx++
		case strings.Contains(c, " tx ") && strings.Contains(c, "after rewriting"):
			tx++
		default:
			t.Errorf("packet on %s: comment %q", ifc.Name, c)
		}
		if !strings.HasPrefix(ifc.Name, lan+"/") && !strings.HasPrefix(ifc.Name, lan2+"/") {
			t.Errorf("packet on interface %q, want %s or %s", ifc.Name, lan, lan2)
		}
		if len(data) < 54 {
			t.Errorf("packet of %d bytes", len(data))
		}
	}
	if rx != 40 || tx != 40 {
		t.Errorf("%d frames as received and %d as sent, want 40 and 40", rx, tx)
	}
}
