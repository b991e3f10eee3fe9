package dp_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"samepath/dp"
	"samepath/dp/acct"
	"samepath/dp/balance"
	"samepath/tcpproxy"
)

// TestGWTerminateV6ToV4 (issue 15, R-TCP-3): a terminate-mode service
// whose representative address is IPv6 and whose servers are IPv4. The
// mobile's netstack connection is IPv6 (mob6 -> rep6:81), the
// terminator's own to the server IPv4 from its IPv4 address; the body
// arrives byte for byte, and the one T5 record and its T10 record name
// the subscriber of the mobile's IPv6 address (the same session as its
// IPv4 one) and the IPv6 representative.
func TestGWTerminateV6ToV4(t *testing.T) {
	log, prod, path := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
	rig := newTermRigInterim(t, true, prod, 0, nil)
	ap := netip.AddrPortFrom
	if _, err := rig.svcs.Put(balance.ServiceConfig{Name: "webt64", Rep: ap(rep6, 81), Proto: 6, Mode: balance.TerminateMode,
		Servers: []balance.Server{{Addr: ap(a1, 8080), Up: true}, {Addr: ap(a2, 8080), Up: true}}}); err != nil {
		t.Fatal(err)
	}
	s6 := testSession
	s6.IP = mob6.As16()
	rig.gw.Apply(dp.SessionEvent{Session: s6})
	rig.w.Poll()
	r := wireRig(t, rig, 0, mob, mob6)

	req := []byte("GET /v6 HTTP/1.1\r\nHost: term6.example\r\n\r\n")
	body := make([]byte, 200_000)
	for i := range body {
		body[i] = byte(i*13 + i>>7)
	}
	remote := make(chan netip.AddrPort, 1)
	r.listen(func(c net.Conn) {
		defer c.Close()
		if _, err := readRequest(c); err != nil {
			t.Errorf("server read: %v", err)
			return
		}
		remote <- netip.MustParseAddrPort(c.RemoteAddr().String())
		c.Write(body)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gonet.DialTCPWithBind(ctx, r.client, fa(mob6, 0), fa(rep6, 81), ipv6.ProtocolNumber)
	if err != nil {
		t.Fatalf("dial [%v]:81: %v", rep6, err)
	}
	exchange(t, c, req, body)
	if s := <-remote; s.Addr() != termAddr || s.Port() < termPorts[0] || s.Port() > termPorts[1] {
		t.Errorf("server connection from %v, want %v ports %v", s, termAddr, termPorts)
	}
	r.waitFor("the flow record ends", func() bool { return r.gw.Stats().FlowsEnded.Load() == 1 })
	r.stop()
	if tc := r.term.Counters(); tc.Conn[tcpproxy.CtrSpliced] != 1 || tc.Conn[tcpproxy.CtrEndFIN] != 1 {
		t.Errorf("terminator counters %v", tc.Conn)
	}
	if n := r.gw.Stats().Term.Flows.Load(); n != 1 {
		t.Errorf("terminated flows %d, want 1", n)
	}
	if d := r.w.Counters(0).Snapshot().Dropped() + r.w.Counters(1).Snapshot().Dropped(); d != 0 {
		t.Errorf("drops %v %v", r.w.Counters(0).Snapshot().Drops, r.w.Counters(1).Snapshot().Drops)
	}
	final := closeFinal(t, log, path)
	want := ap(rep6, 81).String()
	if final.Service != "webt64" || final.Rep != want || final.URL != "term6.example/v6" || final.Cause != "tcp-close" {
		t.Errorf("record %+v, want service webt64 rep %s", final, want)
	}
	if final.UpPayload == nil || *final.UpPayload != uint64(len(req)) || *final.DownPayload != uint64(len(body)) {
		t.Errorf("payload up %v down %v, want %d %d", final.UpPayload, final.DownPayload, len(req), len(body))
	}
}
