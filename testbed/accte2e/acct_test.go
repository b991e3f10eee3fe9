package accte2e

// Service authorization and accounting of served transfers, two
// subscribers with different service orders:
//
//	                                             T9: 10.30.0.1 web, 10.30.0.2 video
//	mob1 10.101.0.10 IMEI-mob1 ~~ nas1..3 -- lb1..3 --+       +-- gw1 --+-- a1 a2  web-a 10.30.0.1:80 (connection unit)
//	mob2 10.102.0.10 IMEI-mob2 ~~ nas1..3 -- lb1..3 --+-LAN1--+-- gw2 --+-- b1 b2  web-b 10.30.0.2:80 (login unit)
//	[curl]                                                       |     |
//	T8: IMEI-mob1 web+video, IMEI-mob2 web only           gw1.acct     gw2.acct (interim 500 ms, fsync 100 ms,
//	                                                                            time-wait linger 1 s)
//
// refused: mob2's curl to group B gets the gateway's RST in answer to its
// SYN (curl exit 7, "Connection refused"; a RST after the handshake would
// read exit 56, "Connection reset by peer": both are the gateway's proxy
// refusal, a silent drop would time out instead), gw2 counts the denial
// under "video", opens no NAT record and sends nothing toward the servers;
// mob1 reaches group B and mob2 group A.
//
// records: curl downloads of known sizes; each flow's final record (written
// when the closed connection's record has lingered the 1 s time-wait
// timeout) carries exactly the TCP payload curl sent and received. What
// curl received is counted from curl's own files: -D (the response's
// status line and header block as received) plus -o (the body; the
// server sends Content-Length, no chunked framing, so the body file is
// the body's wire bytes), cross-checked with -w size_header and
// size_download. What it sent is the request curl -v prints ("> " lines,
// CRLF restored), cross-checked with -w size_request; curl sends nothing
// else on the connection. Only retransmitted segments (the gateway counts
// every segment it forwards) could make the counts differ; the failure
// message then says how many the stacks retransmitted.
//
// interim: a download paced by curl --limit-rate over several seconds
// gets interim records (cumulative counters, non-decreasing) before its
// final one.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"samepath/ctl/api"
	"samepath/dp/acct"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
)

func TestAuthzAccounting(t *testing.T) {
	acc := demo.GWAccounting{Log: filepath.Join(t.TempDir(), "gw%d.acct"), Interim: 500 * time.Millisecond, SyncInterval: 100 * time.Millisecond}
	sys := startSystem(t, demo.Options{GWNAT: demo.GWNAT{TCPTimeWaitTimeout: time.Second}, GWAccounting: acc})
	ctx := testCtx(t, 3*time.Minute)
	p := sys.TB.Plan
	m1, m2 := mobile(t, sys, "mob1"), mobile(t, sys, "mob2")
	startSession(ctx, t, sys, m1)
	startSession(ctx, t, sys, m2)
	grpA, grpB := p.Groups[0].VIPv4.String(), p.Groups[1].VIPv4.String()

	// The service orders, pushed to both gateways (PUT /v1/authz) and
	// read back.
	authz := api.Authz{
		T9: []api.T9Row{{Rep: grpA, ServiceType: "web"}, {Rep: grpB, ServiceType: "video"}},
		T8: []api.T8Row{
			{Device: deviceOf(m1), ServiceType: "web", Allowed: true},
			{Device: deviceOf(m1), ServiceType: "video", Allowed: true},
			{Device: deviceOf(m2), ServiceType: "web", Allowed: true},
			{Device: deviceOf(m2), ServiceType: "video", Allowed: false},
		},
	}
	for g, c := range sys.GWs {
		if err := c.SetAuthz(ctx, authz); err != nil {
			t.Fatalf("gw%d: %v", g+1, err)
		}
		got, err := c.Authz(ctx)
		if err != nil {
			t.Fatalf("gw%d: %v", g+1, err)
		}
		sortRows := []cmp.Option{cmpopts.IgnoreFields(api.Authz{}, "Denied"),
			cmpopts.SortSlices(func(a, b api.T9Row) bool { return a.Rep < b.Rep }),
			cmpopts.SortSlices(func(a, b api.T8Row) bool { return a.Device+a.ServiceType < b.Device+b.ServiceType })}
		if d := cmp.Diff(authz, got, sortRows...); d != "" {
			t.Fatalf("gw%d authz read back (-want +got):\n%s", g+1, d)
		}
	}

	t.Run("refused", func(t *testing.T) { testRefused(ctx, t, sys, m1, m2) })

	// Transfers and the final records they must produce.
	type transfer struct {
		m       *fig2.Mobile
		group   int
		size    int64
		service string
		stype   string
	}
	transfers := []transfer{
		{m1, 0, 123456, "web-a", "web"},
		{m1, 0, 1, "web-a", "web"},
		{m2, 0, 234567, "web-a", "web"},
		{m1, 1, 345678, "web-b", "video"},
		{m2, 0, 0, "web-a", "web"},
	}
	t.Run("records", func(t *testing.T) {
		for _, tr := range transfers {
			t.Run(fmt.Sprintf("%s_%s_%d", tr.m.Name, tr.service, tr.size), func(t *testing.T) {
				recs := download(ctx, t, sys, acc, tr.m, tr.group, tr.size, tr.service, tr.stype)
				for _, e := range recs {
					if e.Kind == "interim" && e.Cause != "interim" {
						t.Errorf("interim record with cause %q", e.Cause)
					}
				}
			})
		}
	})

	t.Run("interim", func(t *testing.T) {
		// ~1.6 MB at 400 KB/s: about four seconds, eight interim periods.
		recs := download(ctx, t, sys, acc, m1, 0, 1600000, "web-a", "web", "--limit-rate", "400K")
		fin := slices.IndexFunc(recs, func(e acct.Entry) bool { return e.Kind == "final" })
		if fin != len(recs)-1 {
			t.Errorf("records after the final one: %+v", recs[fin+1:])
		}
		if fin < 1 {
			t.Fatalf("no interim record before the final one of a %v transfer: %+v", recs[fin].End.Sub(recs[fin].Start), recs)
		}
		for i := 1; i <= fin; i++ {
			prev, cur := &recs[i-1], &recs[i]
			if prev.Kind != "interim" || prev.Cause != "interim" {
				t.Errorf("record %d before the final one: kind %q cause %q", i-1, prev.Kind, prev.Cause)
			}
			if cur.End.Before(prev.End) {
				t.Errorf("record %d: end %v before the previous record's %v", i, cur.End, prev.End)
			}
			pc, cc := counters(prev), counters(cur)
			for k := range cc {
				if cc[k] < pc[k] {
					t.Errorf("record %d (%s): counter %d went down: %v -> %v", i, cur.Kind, k, pc, cc)
				}
			}
		}
		t.Logf("%d interim records, then the final one after %v", fin, recs[fin].End.Sub(recs[fin].Start).Round(time.Millisecond))
		// Every record of one flow carries the flow's start and its flow
		// id, which ties interim records to their final one.
		t.Run("same_start", func(t *testing.T) {
			for i := range recs {
				if recs[i].Flow == "" || recs[i].Flow != recs[0].Flow {
					t.Errorf("record %d (%s): flow %q, record 0: flow %q", i, recs[i].Kind, recs[i].Flow, recs[0].Flow)
				}
				if !recs[i].Start.Equal(recs[0].Start) {
					t.Errorf("record %d (%s): start %s, record 0: start %s (%v apart)", i, recs[i].Kind,
						recs[i].Start.Format(time.RFC3339Nano), recs[0].Start.Format(time.RFC3339Nano), recs[i].Start.Sub(recs[0].Start))
				}
			}
		})
	})

	t.Run("no_mobile_addresses", func(t *testing.T) {
		// Steps S79-S80: records name the subscriber, not the mobile's
		// addresses.
		for g := 1; g <= len(sys.GWs); g++ {
			b, err := os.ReadFile(acc.Path(g))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []*fig2.Mobile{m1, m2} {
				if strings.Contains(string(b), `"`+m.IPv4.String()) {
					t.Errorf("gw%d's log names %s's address %s", g, m.Name, m.IPv4)
				}
			}
		}
	})
}

// counters lists a record's cumulative counters in a fixed order.
func counters(e *acct.Entry) []uint64 {
	var up, down uint64
	if e.UpPayload != nil {
		up = *e.UpPayload
	}
	if e.DownPayload != nil {
		down = *e.DownPayload
	}
	return []uint64{e.UpPackets, e.UpBytes, e.DownPackets, e.DownBytes, up, down}
}

// testRefused: mob2 may not use "video" (group B): the gateway answers
// its SYN with a RST; mob1 may, and mob2 may use "web" (group A).
func testRefused(ctx context.Context, t *testing.T, sys *demo.System, m1, m2 *fig2.Mobile) {
	gw := sys.GWs[m2.Gateway-1]
	srvIface := sys.TB.Plan.Gateways[m2.Gateway-1].LAN2.Name
	authz0, err := gw.Authz(ctx)
	if err != nil {
		t.Fatal(err)
	}
	drops0 := drops(ctx, t, gw, "denied")
	created0, err := metric(ctx, gw, "samepath_gw_flows_created_total")
	if err != nil {
		t.Fatal(err)
	}
	tx0 := txPackets(ctx, t, gw, srvIface)

	url, _ := repURL(sys, 1, "/bytes/1000")
	r, err := curl(ctx, m2.NS, t.TempDir(), url)
	if err != nil {
		t.Fatal(err)
	}
	// A RST in answer to the SYN fails connect() with ECONNREFUSED: curl
	// exit 7 ("Failed to connect ... Couldn't connect to server"; -v
	// shows "Connection refused"). A RST on an established connection
	// would be exit 56 ("Recv failure: Connection reset by peer"). A
	// dropped SYN would time out (exit 28).
	switch {
	case r.Exit == 7 && strings.Contains(r.Stderr, "Connection refused"):
	case r.Exit == 56 && strings.Contains(r.Stderr, "Connection reset"):
	default:
		t.Errorf("%s from %s: curl exit %d, want 7 (connection refused) or 56 (connection reset); stderr:\n%s", url, m2.Name, r.Exit, r.Stderr)
	}
	t.Logf("%s from %s (not allowed video): curl exit %d: %s", url, m2.Name, r.Exit, lastLine(r.Stderr))

	authz1, err := gw.Authz(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if authz1.Denied["video"] <= authz0.Denied["video"] {
		t.Errorf("gw%d denied[video] %d -> %d: want it to grow", m2.Gateway, authz0.Denied["video"], authz1.Denied["video"])
	}
	if authz1.Denied["web"] != authz0.Denied["web"] {
		t.Errorf("gw%d denied[web] %d -> %d: web was not refused", m2.Gateway, authz0.Denied["web"], authz1.Denied["web"])
	}
	if d := drops(ctx, t, gw, "denied"); d <= drops0 {
		t.Errorf("gw%d denied drops %d -> %d: want the SYN counted", m2.Gateway, drops0, d)
	}
	created1, err := metric(ctx, gw, "samepath_gw_flows_created_total")
	if err != nil {
		t.Fatal(err)
	}
	if created1 != created0 {
		t.Errorf("gw%d created %v NAT records for a refused connection", m2.Gateway, created1-created0)
	}
	if tx := txPackets(ctx, t, gw, srvIface); tx != tx0 {
		t.Errorf("gw%d sent %d packets toward the servers during a refused connection", m2.Gateway, tx-tx0)
	}
	for _, f := range flowsOf(ctx, t, gw, m2.IPv4) {
		if strings.HasPrefix(f.Dest, sys.TB.Plan.Groups[1].VIPv4.String()+":") {
			t.Errorf("gw%d holds a NAT record of %s toward group B: %+v", m2.Gateway, m2.Name, f)
		}
	}
	t.Logf("gw%d denied[video] %d -> %d", m2.Gateway, authz0.Denied["video"], authz1.Denied["video"])

	// The others are served.
	for _, c := range []struct {
		m     *fig2.Mobile
		group int
		names []string
	}{{m1, 1, []string{"b1", "b2"}}, {m2, 0, []string{"a1", "a2"}}} {
		url, _ := repURL(sys, c.group, "/")
		dir := t.TempDir()
		r, err := curl(ctx, c.m.NS, dir, url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := os.ReadFile(filepath.Join(dir, "body"))
		if r.Exit != 0 || r.Code != 200 || !slices.Contains(c.names, strings.TrimSpace(string(body))) {
			t.Errorf("%s from %s: curl exit %d, HTTP %d, body %q; stderr:\n%s", url, c.m.Name, r.Exit, r.Code, body, r.Stderr)
		}
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// download fetches /bytes/size from group g with curl in m's namespace,
// checks what curl got, waits for the flow's final accounting record in
// m's gateway's log and checks it against what curl sent and received.
// A service in mode terminate is checked as a terminated flow: payload
// exact, header bytes bounded by the retransmissions on the mobile's side
// of the terminator (retransmitted segments are legitimate there, and
// add bytes but no payload). It returns the flow's records in file order.
func download(ctx context.Context, t *testing.T, sys *demo.System, acc demo.GWAccounting, m *fig2.Mobile, g int, size int64,
	service, stype string, extra ...string) []acct.Entry {
	t.Helper()
	p := sys.TB.Plan
	nss := []string{m.NS}
	var servers []string
	for _, s := range p.Servers {
		nss = append(nss, s.NS)
		if s.Group == p.Groups[g].Name {
			servers = append(servers, fmt.Sprintf("%s:%d", s.LAN.IPv4.Addr(), fig2.HTTPPort))
		}
	}
	gw := sys.GWs[m.Gateway-1]
	term := terminated(ctx, t, gw, service)
	re0, err := retransSegs(ctx, nss...)
	if err != nil {
		t.Fatal(err)
	}
	mob0, err := retransSegs(ctx, m.NS)
	if err != nil {
		t.Fatal(err)
	}
	var term0 uint64
	if term {
		term0 = termRetransmits(ctx, t, gw)
	}
	url, attr := repURL(sys, g, fmt.Sprintf("/bytes/%d", size))
	r, err := curl(ctx, m.NS, t.TempDir(), url, extra...)
	if err != nil {
		t.Fatal(err)
	}
	re1, err := retransSegs(ctx, nss...)
	if err != nil {
		t.Fatal(err)
	}
	if r.Exit != 0 || r.Code != 200 {
		t.Fatalf("%s from %s: curl exit %d, HTTP %d; stderr:\n%s", url, m.Name, r.Exit, r.Code, r.Stderr)
	}
	// What curl got, counted two ways.
	if r.Body != size || r.BodyFile != size {
		t.Errorf("body: curl counted %d, wrote %d, want %d", r.Body, r.BodyFile, size)
	}
	if r.HeaderFile != r.SizeHeader || r.HeaderFile == 0 {
		t.Errorf("response header: %d bytes in the -D file, curl counted %d", r.HeaderFile, r.SizeHeader)
	}
	if int64(len(r.Request)) != r.SizeRequest || r.SizeRequest == 0 {
		t.Errorf("request: %d bytes printed by -v (%q), curl counted %d", len(r.Request), r.Request, r.SizeRequest)
	}
	host := p.Groups[g].VIPv4.String()
	if !strings.Contains(string(r.Request), "\r\nHost: "+host+"\r\n") {
		t.Errorf("curl's request %q does not name host %s", r.Request, host)
	}
	sent, received := uint64(r.SizeRequest), uint64(r.HeaderFile+r.BodyFile)

	log := acc.Path(m.Gateway)
	recs := records(t, log, acct.Filter{Device: deviceOf(m)}, attr)
	var finals []acct.Entry
	for _, e := range recs {
		if e.Kind == "final" {
			finals = append(finals, e)
		}
	}
	if len(finals) != 1 {
		t.Fatalf("%d final records for %s: %+v", len(finals), attr, finals)
	}
	// Read once the record has ended: every segment it counts was sent.
	mob1, err := retransSegs(ctx, m.NS)
	if err != nil {
		t.Fatal(err)
	}
	var term1 uint64
	if term {
		term1 = termRetransmits(ctx, t, gw)
	}
	e := finals[0]
	t.Logf("%s: curl sent %d, received %d (header %d + body %d); final record %+v up_payload %v down_payload %v",
		attr, sent, received, r.HeaderFile, r.BodyFile, e, deref(e.UpPayload), deref(e.DownPayload))
	want := acct.Entry{Kind: "final", User: userOf(m), Device: deviceOf(m), Service: service, ServiceType: stype,
		URL: attr, Rep: fmt.Sprintf("%s:%d", host, fig2.HTTPPort), Proto: "tcp", Cause: "tcp-close"}
	got := e
	if got.AcctSessionID == "" {
		t.Errorf("final record without the session's Acct-Session-Id: %+v", e)
	}
	got.Session, got.Server, got.Start, got.End, got.Flow, got.AcctSessionID = 0, "", time.Time{}, time.Time{}, "", ""
	got.UpPackets, got.UpBytes, got.DownPackets, got.DownBytes, got.UpPayload, got.DownPayload = 0, 0, 0, 0, nil, nil
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("final record (-want +got):\n%s", d)
	}
	if !slices.Contains(servers, e.Server) {
		t.Errorf("server %q: want one of %v", e.Server, servers)
	}
	if e.End.Before(e.Start) || e.Start.IsZero() {
		t.Errorf("start %v, end %v", e.Start, e.End)
	}
	if e.UpPayload == nil || e.DownPayload == nil {
		t.Fatalf("final record without payload counts: %+v", e)
	}
	// A NAT flow's payload counts every segment the gateway forwards,
	// retransmissions too (acct.Record): exact without them, otherwise at
	// most one MSS more per retransmitted segment. A terminated flow's
	// are its connection's (tcpproxy.ConnStats), each byte once: exact.
	const mss = 1448
	if term {
		if *e.UpPayload != sent || *e.DownPayload != received {
			t.Errorf("terminated: payload up %d down %d, curl sent %d and received %d", *e.UpPayload, *e.DownPayload, sent, received)
		}
	} else if re := re1 - re0; re == 0 {
		if *e.UpPayload != sent || *e.DownPayload != received {
			t.Errorf("payload up %d down %d, curl sent %d and received %d (no TCP segment was retransmitted)",
				*e.UpPayload, *e.DownPayload, sent, received)
		}
	} else {
		var gwDrops []map[string]uint64
		if cs, err := sys.GWs[m.Gateway-1].Counters(ctx); err == nil {
			for _, q := range cs.Queues {
				gwDrops = append(gwDrops, q.Drops)
			}
		}
		t.Logf("%d TCP segments retransmitted during the transfer: payload counts may exceed curl's by up to %d bytes (gw%d drops by queue so far: %v)",
			re, re*mss, m.Gateway, gwDrops)
		if *e.UpPayload < sent || *e.UpPayload > sent+re*mss || *e.DownPayload < received || *e.DownPayload > received+re*mss {
			t.Errorf("payload up %d down %d, curl sent %d and received %d, %d segments retransmitted",
				*e.UpPayload, *e.DownPayload, sent, received, re)
		}
	}
	// Bytes are whole IP packets: payload plus 40 to 60 bytes of IPv4
	// and TCP headers (options: timestamps, SYN options) per packet. A
	// terminated flow's packets include resent segments whose payload
	// its counts hold once: up to one segment more per retransmission,
	// the mobile's up (its kernel's RetransSegs), the terminator's down
	// (its mobile-side netstack's tcp_retransmits). Without one, the
	// bound is as tight as a NAT flow's.
	var reUp, reDown uint64
	if term {
		reUp, reDown = mob1-mob0, term1-term0
		if reUp+reDown > 0 {
			t.Logf("terminated: %d segments resent by the mobile, %d by the terminator toward it: bytes may exceed payload and headers by up to %d up, %d down",
				reUp, reDown, reUp*termMSS, reDown*termMSS)
		}
	}
	for _, d := range []struct {
		name          string
		pkts, by, pay uint64
		resent        uint64
	}{{"up", e.UpPackets, e.UpBytes, *e.UpPayload, reUp}, {"down", e.DownPackets, e.DownBytes, *e.DownPayload, reDown}} {
		if d.pkts < 2 || d.by < d.pay+40*d.pkts || d.by > d.pay+60*d.pkts+d.resent*termMSS {
			t.Errorf("%s: %d packets, %d bytes, %d payload bytes, %d segments resent: want 40..60 header bytes per packet, plus at most %d per resent segment",
				d.name, d.pkts, d.by, d.pay, d.resent, termMSS)
		}
	}
	return recs
}

// termMSS bounds the payload of one segment between the mobile and the
// terminator (IPv4 over a 1500-byte MTU, no options).
const termMSS = 1460

// terminated reports whether service runs in mode terminate on gw.
func terminated(ctx context.Context, t *testing.T, gw *api.Client, service string) bool {
	t.Helper()
	svcs, err := gw.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs.Services {
		if s.Name == service {
			return s.Mode == "terminate"
		}
	}
	t.Fatalf("no service %s on the gateway", service)
	return false
}

// termRetransmits is the segments the terminator's mobile side resent.
func termRetransmits(ctx context.Context, t *testing.T, gw *api.Client) uint64 {
	t.Helper()
	c, err := gw.TCPCounters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := c.Stack[api.SideMobile]["tcp_retransmits"]
	if !ok {
		t.Fatalf("terminator counters without tcp_retransmits: %+v", c.Stack)
	}
	return n
}

func deref(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}
