package gwe2e

// samepathctl capture (issue 18) on a gateway during curl exchanges:
//
//	mob1 10.101.0.10 ~~ nas1 -- lb1 -- LAN1 -- gw1 [NAT 10.20.0.101] -- LAN2 -- a1 10.20.0.11, a2 10.20.0.12
//	  curl http://10.30.0.1/              ^ samepathctl capture -daemon gw1 tcp port 80
//
// The capture holds each frame as gw1 received it and as it sent it: the
// mobile's 10.101.0.10 -> 10.30.0.1:80 and its NATed 10.20.0.101 ->
// server:80, and back. tcpdump -r reads the file. The case runs over
// IPv4, then over IPv6 (family_test.go) on the same system: mob1
// fd00:101::10 -> fd00:30::1:80 (web-a6), NATed fd00:20::101 ->
// fd00:20::11 or ::12, and back; the IPv4 session stays open.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
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
	"samepath/testbed/systest"
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
	dir := filepath.Dir(systest.Samepathd(t))
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
	sys := systest.Start(t, demo.Options{Samepathctl: samepathctl(t)})
	ctx := testCtx(t, 4*time.Minute)
	forFamilies(t, func(t *testing.T, f family) { testCapture(ctx, t, sys, f, tcpdump) })
}

// testCapture captures 40 frames of mob1's web exchanges of family f on
// its gateway and reads them back.
func testCapture(ctx context.Context, t *testing.T, sys *demo.System, f family, tcpdump string) {
	curl, curlErr := exec.LookPath("curl")
	m := mobile(t, sys, "mob1")
	gw := sys.GWs[m.Gateway-1]
	if err := f.startSession(ctx, sys, m); err != nil {
		t.Fatal(err)
	}
	web := f.rep(sys, 0, fig2.HTTPPort)
	fetch := func() error {
		if curlErr != nil {
			_, err := fetchName(ctx, m.NS, web)
			return err
		}
		// -g: the brackets of an IPv6 literal are no glob.
		out, err := topo.CommandContext(ctx, m.NS, curl, "-sS", "-g", "--max-time", "5", "http://"+web+"/").CombinedOutput()
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
	q := func(a netip.Addr) string { return regexp.QuoteMeta(a.String()) }
	ip, mob, vip, nat := f.tcpdumpIP(), q(f.addr(m)), q(f.vip(sys, 0)), q(f.natAddr(m.Gateway))
	srv := `(?:` + q(f.serverAddr(t, sys, "a1")) + `|` + q(f.serverAddr(t, sys, "a2")) + `)`
	for what, re := range map[string]string{
		"up, as received (mobile -> representative)": `(?m)^\S+ ` + ip + ` ` + mob + `\.\d+ > ` + vip + `\.80: `,
		"up, as sent (NAT address -> server)":        `(?m)^\S+ ` + ip + ` ` + nat + `\.\d+ > ` + srv + `\.80: `,
		"down, as received (server -> NAT address)":  `(?m)^\S+ ` + ip + ` ` + srv + `\.80 > ` + nat + `\.\d+: `,
		"down, as sent (representative -> mobile)":   `(?m)^\S+ ` + ip + ` ` + vip + `\.80 > ` + mob + `\.\d+: `,
	} {
		if !regexp.MustCompile(re).Match(tr) {
			t.Errorf("tcpdump -r shows no %s (%s)", what, re)
		}
	}

	// tcpdump -vv verifies each TCP checksum: the rewrites each way kept
	// them right (over IPv6 the pseudo-header holds the whole addresses).
	vv, err := exec.Command(tcpdump, "-nn", "-vv", "-r", file).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -vv -r %s: %v\n%s", file, err, vv)
	}
	if ok, bad := strings.Count(string(vv), "(correct)"), strings.Count(string(vv), "incorrect"); ok != 80 || bad != 0 {
		t.Errorf("tcpdump -vv -r: %d TCP checksums correct and %d incorrect, want 80 and 0:\n%s", ok, bad, vv)
	}

	// The comments pair each frame as received with itself as sent.
	fl, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	rd, err := pcapgo.NewNgReader(fl, pcapgo.DefaultNgReaderOptions)
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
		if len(data) < f.minTCPFrame() {
			t.Errorf("packet of %d bytes, want %d at least", len(data), f.minTCPFrame())
		} else if et := binary.BigEndian.Uint16(data[12:]); et != f.etherType() {
			t.Errorf("packet of EtherType %#04x, want %#04x (%s)", et, f.etherType(), f.name)
		}
	}
	if rx != 40 || tx != 40 {
		t.Errorf("%d frames as received and %d as sent, want 40 and 40", rx, tx)
	}
}
