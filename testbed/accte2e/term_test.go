package accte2e

// TCP termination (T11 mode terminate, dp/gw_term.go, tcpproxy) on the
// FIG. 2 system, accounted:
//
//	mob1 [curl] ~~ nas -- lb --+-- LAN1 --+-- gw1 [netstack | netstack] --+-- a1, a2 (kernel TCP, group A)
//	                                         T5 keys 1024-59999           terminator's own ports 60000-65535
//	                                         on 10.20.0.101               on 10.20.0.101
//
// web-a (10.30.0.1:80) is switched to mode terminate on gw1 through PUT
// /v1/services and read back. curl's downloads through it then end at
// the gateway's netstack, which opens its own connection to a1 or a2:
// the server's kernel sees its peer at the gateway's address with a
// port of the terminator's range (ss in the server's namespace, while a
// paced download lasts), not a T5 key port. The body arrives intact
// (SHA-256 of curl's -o file against the server's stream), and each
// flow's final T10 record carries exactly the payload curl sent and
// received (download: the record's payload counts are the mobile
// connection's own, tcpproxy.ConnStats, so retransmissions do not
// inflate them).

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/dp/acct"
	"samepath/testbed/demo"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

func TestTerminateAccounting(t *testing.T) {
	acc := demo.GWAccounting{Log: filepath.Join(t.TempDir(), "gw%d.acct"), SyncInterval: 100 * time.Millisecond}
	nat := demo.GWNAT{PortMax: 59999, TermPortMin: 60000, TermPortMax: 65535, TCPTimeWaitTimeout: time.Second}
	sys := startSystem(t, demo.Options{GWNAT: nat, GWAccounting: acc})
	ctx := testCtx(t, 3*time.Minute)
	m := mobile(t, sys, "mob1")
	startSession(ctx, t, sys, m)
	gw := sys.GWs[m.Gateway-1]

	// web-a to mode terminate, read back.
	svcs, err := gw.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table api.Services
	found := false
	modes := map[string]string{} // what the others must keep
	for _, s := range svcs.Services {
		modes[s.Name] = s.Mode
		for i := range s.Servers {
			sv := &s.Servers[i]
			sv.Healthy, sv.RTTMicros, sv.CPU, sv.Active = nil, 0, 0, 0
		}
		if s.Name == "web-a" {
			s.Mode, found = "terminate", true
		}
		table.Services = append(table.Services, s)
	}
	if !found {
		t.Fatalf("no web-a in %+v", svcs)
	}
	if err := gw.SetServices(ctx, table); err != nil {
		t.Fatal(err)
	}
	if svcs, err = gw.Services(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs.Services {
		want := modes[s.Name]
		if s.Name == "web-a" {
			want = "terminate"
		}
		if s.Mode != want {
			t.Errorf("service %s: mode %q, want %q", s.Name, s.Mode, want)
		}
	}

	// The body, byte for byte.
	const n = 777777
	url, _ := repURL(sys, 0, "/bytes/777777")
	dir := t.TempDir()
	r, err := curl(ctx, m.NS, dir, url)
	if err != nil || r.Exit != 0 || r.Code != 200 {
		t.Fatalf("curl %s: %v, exit %d, HTTP %d\n%s", url, err, r.Exit, r.Code, r.Stderr)
	}
	body, err := os.ReadFile(filepath.Join(dir, "body"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sha256.Sum256(body), servers.BytesSHA256(n); got != want || len(body) != n {
		t.Fatalf("body: %d bytes, SHA-256 %x, want %d bytes %x", len(body), got, n, want)
	}

	// The servers see the terminator's connection: from the NAT
	// address, a port of gw.terminate's range.
	p := sys.TB.Plan
	peers := make(chan netip.AddrPort, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	var lastSS []byte
	go func() {
		defer close(done)
		for {
			for _, s := range p.Servers {
				if s.Group != p.Groups[0].Name {
					continue
				}
				out, err := topo.CommandContext(ctx, s.NS, "ss", "-tnH", "state", "established").CombinedOutput()
				lastSS = out
				if err != nil {
					continue
				}
				sc := bufio.NewScanner(bytes.NewReader(out))
				for sc.Scan() {
					f := strings.Fields(sc.Text())
					if len(f) < 4 {
						continue
					}
					ap, err := netip.ParseAddrPort(f[len(f)-1])
					ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) // a dual-stack listener's peer: [::ffff:a.b.c.d]
					if err == nil && ap.Addr() == demo.NATAddr(m.Gateway) {
						select {
						case peers <- ap:
						default:
						}
						return
					}
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	// ~1.2 MB at 300 KB/s: four seconds with the connection open. The
	// record's payload counts are the connection's own; its packet and
	// byte counts are the mobile side's segments, which with curl
	// pacing include the terminator's window probes and retransmissions
	// (so no header-bytes-per-packet bound here, unlike download's).
	url, attr := repURL(sys, 0, "/bytes/1200000")
	r, err = curl(ctx, m.NS, t.TempDir(), url, "--limit-rate", "300K")
	close(stop)
	<-done
	if err != nil || r.Exit != 0 || r.Code != 200 || r.BodyFile != 1200000 {
		t.Fatalf("paced curl: %v, exit %d, HTTP %d, body %d\n%s", err, r.Exit, r.Code, r.BodyFile, r.Stderr)
	}
	for _, e := range records(t, acc.Path(m.Gateway), acct.Filter{Device: deviceOf(m)}, attr) {
		if e.Kind != "final" {
			continue
		}
		sent, received := uint64(r.SizeRequest), uint64(r.HeaderFile+r.BodyFile)
		if e.UpPayload == nil || *e.UpPayload != sent || *e.DownPayload != received || e.Cause != "tcp-close" || e.Service != "web-a" {
			t.Errorf("paced transfer's record %+v, payload %v/%v, want %d/%d", e, deref(e.UpPayload), deref(e.DownPayload), sent, received)
		}
		if e.DownBytes < received+40*e.DownPackets || e.UpBytes < sent+40*e.UpPackets {
			t.Errorf("paced transfer's record: bytes up %d down %d for %d/%d packets: less than payload plus headers", e.UpBytes, e.DownBytes, e.UpPackets, e.DownPackets)
		}
	}
	select {
	case ap := <-peers:
		t.Logf("server's peer during the paced download: %v", ap)
		if ap.Port() < nat.TermPortMin || ap.Port() > nat.TermPortMax {
			t.Errorf("server's peer %v: want a port of the terminator's range %d-%d", ap, nat.TermPortMin, nat.TermPortMax)
		}
	default:
		t.Errorf("no server connection from the gateway seen during the download; last ss:\n%s", lastSS)
	}
	// Plain downloads, exact payload counts.
	for _, size := range []int64{1, 123456} {
		download(ctx, t, sys, acc, m, 0, size, "web-a", "web")
	}
	if d := drops(ctx, t, gw, "term_full"); d != 0 {
		t.Logf("term_full drops: %d (the mobile retransmitted)", d)
	}
}
