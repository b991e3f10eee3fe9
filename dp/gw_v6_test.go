package dp_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"samepath/dp"
	"samepath/dp/acct"
	"samepath/dp/balance"
	"samepath/dp/dptest"
	"samepath/dp/header"
)

// The IPv6 subscriber of issue 15: a delegated /64 (Framed-IPv6-Prefix)
// whose every host is the one session (dp.Session.Prefix), reaching IPv6
// server groups through port-key NAT.
//
//	bob, IMEI-9, session 9: fd00:102::/64 (hosts h6a, h6b) --- lb1 --- gw --- a16 fd00:20::11, a26 fd00:20::12
//	representative fd00:30::1: web6 :80 connection, dns6 :53 packet (the golden rig),
//	  login6 :8443 and login6b :8444 login unit, svc6 :7000 and svc6b :7001 service unit,
//	  tls6 :443 connection; fd00:30::2: vid6 :443 (service type video, which IMEI-9 may not use)
var (
	pfx6     = addr("fd00:102::")
	h6a, h6b = addr("fd00:102::a"), addr("fd00:102::b:c")
	outside6 = addr("fd00:103::a")
	rep6b    = addr("fd00:30::2")
	bob      = dp.Session{ID: 9, Name: "s9", AcctSessionID: "acct-9", UserID: "bob", DeviceID: "IMEI-9", Prefix: true}
)

func newGW6(t *testing.T, authz *dp.Authz, prod *acct.Producer) *gwRig {
	t.Helper()
	r := newGWConfig(t, 65535, func(c *dp.GWConfig) { c.Authz, c.Acct, c.AcctInterim = authz, prod, time.Hour })
	ap := netip.AddrPortFrom
	pair := func(port uint16) []balance.Server {
		return []balance.Server{{Addr: ap(a16, port), Up: true}, {Addr: ap(a26, port), Up: true}}
	}
	for _, c := range []balance.ServiceConfig{
		{Name: "login6", Rep: ap(rep6, 8443), Proto: 6, Type: balance.LoginUnit, Policy: balance.RoundRobin, Servers: pair(8443)},
		{Name: "login6b", Rep: ap(rep6, 8444), Proto: 6, Type: balance.LoginUnit, Policy: balance.RoundRobin, Servers: pair(8444)},
		{Name: "svc6", Rep: ap(rep6, 7000), Proto: 6, Type: balance.ServiceUnit, Policy: balance.RoundRobin, Servers: pair(7000)},
		{Name: "svc6b", Rep: ap(rep6, 7001), Proto: 6, Type: balance.ServiceUnit, Policy: balance.RoundRobin, Servers: pair(7001)},
		{Name: "tls6", Rep: ap(rep6, 443), Proto: 6, Type: balance.ConnectionUnit, Policy: balance.RoundRobin, ServiceType: "web", Servers: pair(443)},
		{Name: "vid6", Rep: ap(rep6b, 443), Proto: 6, Type: balance.ConnectionUnit, Policy: balance.RoundRobin, ServiceType: "video", Servers: pair(443)},
		{Name: "vid6u", Rep: ap(rep6b, 53), Proto: 17, Type: balance.PacketUnit, Policy: balance.RoundRobin, ServiceType: "video", Servers: pair(53)},
	} {
		if _, err := r.svcs.Put(c); err != nil {
			t.Fatal(err)
		}
	}
	s := bob
	s.IP = pfx6.As16()
	r.gw.Apply(dp.SessionEvent{Session: s})
	r.w.Poll()
	return r
}

func syn6(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(src, dst).TCP(sport, dport).Flags(header.FlagSYN).Seq(100).Bytes()
}

// server6 sends f up and returns the server it went to.
func (r *gwRig) server6(f []byte) netip.Addr {
	r.t.Helper()
	out, p, drop := r.send(0, f)
	if p != 1 {
		r.t.Fatalf("up packet: port %d drop %v", p, drop)
	}
	var hp header.Parsed
	header.Parse(out, &hp)
	return hp.IPv6(out).DstAddr()
}

// TestGWIPv6PrefixSessionTypes: every host of bob's /64 is bob (R-GW-7:
// the gate is the prefix); port-key NAT rewrites it to the IPv6 key
// address and back to the very host; the four user session types of
// FIG. 33 hold for it as one subscriber across its hosts.
func TestGWIPv6PrefixSessionTypes(t *testing.T) {
	r := newGW6(t, nil, nil)

	// Connection unit (web6): NAT both ways, to the host that sent.
	out, p, drop := r.send(0, syn6(h6a, 40000, rep6, 80))
	if p != 1 {
		t.Fatalf("SYN from a host of the prefix: drop %v", drop)
	}
	b := r.binding(6, h6a, rep6, 40000, 80)
	if b.Session != bob.ID || b.GwAddr.Addr() != key6 {
		t.Fatalf("binding %+v", b)
	}
	if want := dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv6(key6, a16).TCP(b.GwPort, 80).Flags(header.FlagSYN).Seq(100).Bytes(); !bytes.Equal(out, want) {
		t.Fatalf("SYN out: %s", dptest.Diff(want, out))
	}
	r.mustForward(1, dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv6(a16, key6).TCP(80, b.GwPort).Flags(header.FlagSYN|header.FlagACK).Seq(7).Ack(101).Bytes(), 0,
		dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6, h6a).TCP(80, 40000).Flags(header.FlagSYN|header.FlagACK).Seq(7).Ack(101).Bytes())
	// Address- and port-dependent filtering: another source to the key port is refused.
	r.mustDrop(1, dptest.Frame().Eth(a2MAC, gwSrvMAC).IPv6(a26, key6).TCP(80, b.GwPort).Flags(header.FlagACK).Bytes(), dp.ReasonFiltered)
	if s := r.server6(syn6(h6b, 40001, rep6, 80)); s != a26 {
		t.Errorf("second connection (other host) to %v, want a26 (round robin)", s)
	}
	// Outside the prefix, and the prefix's neighbour: no session.
	r.mustDrop(0, syn6(outside6, 40002, rep6, 80), dp.ReasonNoSession)

	// Packet unit (dns6): each datagram anew.
	var pk []netip.Addr
	for range 4 {
		pk = append(pk, r.server6(dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(h6a, rep6).UDP(5353, 53).Payload([]byte("q")).Bytes()))
	}
	if pk[0] == pk[1] || pk[0] != pk[2] || pk[1] != pk[3] {
		t.Errorf("packet unit datagrams went to %v, want alternating", pk)
	}

	// Login unit: one server per service from login to logout, for
	// every host of the subscriber and across its other services.
	l1 := r.server6(syn6(h6a, 41000, rep6, 8443))
	lb := r.server6(syn6(h6a, 41001, rep6, 8444))
	r.server6(syn6(h6b, 41002, rep6, 7000)) // another service between
	for i, src := range []netip.Addr{h6b, h6a, h6b} {
		if s := r.server6(syn6(src, uint16(41010+i), rep6, 8443)); s != l1 {
			t.Errorf("login6 connection %d from %v went to %v, want %v", i, src, s, l1)
		}
	}
	if s := r.server6(syn6(h6b, 41020, rep6, 8444)); s != lb {
		t.Errorf("login6b went to %v, want %v", s, lb)
	}

	// Service unit: kept while bob uses svc6, released when he uses another.
	s1 := r.server6(syn6(h6a, 42000, rep6, 7000)) // svc6's record from the SYN above
	if s2 := r.server6(syn6(h6b, 42001, rep6, 7000)); s2 != s1 {
		t.Errorf("svc6 again went to %v, want %v", s2, s1)
	}
	r.server6(syn6(h6a, 42002, rep6, 7001)) // svc6b: svc6 is released
	if s3 := r.server6(syn6(h6a, 42003, rep6, 7000)); s3 == s1 {
		t.Errorf("svc6 after svc6b went to %v again, want a new round-robin choice", s3)
	}

	// The session ends: every flow of every host goes, the gate closes.
	s := bob
	s.IP = pfx6.As16()
	n := r.flows.Len()
	r.gw.Apply(dp.SessionEvent{End: true, Session: s})
	r.w.Poll()
	if left := r.flows.Len(); left != 0 { // the rig's other sessions opened none
		t.Errorf("%d of %d flows left after bob's end", left, n)
	}
	r.mustDrop(0, syn6(h6a, 43000, rep6, 80), dp.ReasonNoSession)
}

// TestGWIPv6ICMP: ICMPv6 echo to the representative address is
// balanced and answered from it; a server's ICMPv6 errors reach the
// host with the inner packet translated back; the host's own errors
// about down packets reach the server.
func TestGWIPv6ICMP(t *testing.T) {
	r := newGW6(t, nil, nil)
	echo := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(h6b, rep6).ICMPEcho(33, 1).Payload([]byte("ping")).Bytes()
	out, p, drop := r.send(0, echo)
	if p != 1 {
		t.Fatalf("echo: drop %v", drop)
	}
	b := r.binding(header.ProtoICMPv6, h6b, rep6, 33, 0)
	srv := b.Server.Addr()
	mac := map[netip.Addr][6]byte{a16: a1MAC, a26: a2MAC}[srv]
	if want := dptest.Frame().Eth(gwSrvMAC, mac).IPv6(key6, srv).ICMPEcho(b.GwPort, 1).Payload([]byte("ping")).Bytes(); !bytes.Equal(out, want) {
		t.Fatalf("echo out: %s", dptest.Diff(want, out))
	}
	r.mustForward(1, dptest.Frame().Eth(mac, gwSrvMAC).IPv6(srv, key6).ICMPEchoReply(b.GwPort, 1).Payload([]byte("ping")).Bytes(), 0,
		dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6, h6b).ICMPEchoReply(33, 1).Payload([]byte("ping")).Bytes())

	// UDP to dns6, then the server's port unreachable and packet too big.
	orig := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(h6a, rep6).UDP(6000, 53).Payload([]byte("x")).Bytes()
	r.send(0, orig)
	bu := r.binding(17, h6a, rep6, 6000, 53)
	server := bu.Server.Addr()
	smac := map[netip.Addr][6]byte{a16: a1MAC, a26: a2MAC}[server]
	sent := dptest.Frame().Eth(gwSrvMAC, smac).IPv6(key6, server).UDP(bu.GwPort, 53).Payload([]byte("x")).Bytes()
	for _, e := range []struct {
		typ, code uint8
		mtu       uint32
	}{{1, 4, 0}, {2, 0, 1400}} {
		r.mustForward(1, dptest.Frame().Eth(smac, gwSrvMAC).IPv6(server, key6).ICMPError(e.typ, e.code, e.mtu, dptest.IP(sent)).Bytes(), 0,
			dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6, h6a).ICMPError(e.typ, e.code, e.mtu, dptest.IP(orig)).Bytes())
	}
	// The host's own error about a down datagram goes to the server.
	down := dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6, h6a).UDP(53, 6000).Payload([]byte("y")).Bytes()
	srvView := dptest.Frame().Eth(smac, gwSrvMAC).IPv6(server, key6).UDP(53, bu.GwPort).Payload([]byte("y")).Bytes()
	r.mustForward(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(h6a, rep6).ICMPError(1, 4, 0, dptest.IP(down)).Bytes(), 1,
		dptest.Frame().Eth(gwSrvMAC, smac).IPv6(key6, server).ICMPError(1, 4, 0, dptest.IP(srvView)).Bytes())
	// An error about a flow that is not bob's, from outside the prefix: no session.
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(outside6, rep6).ICMPEcho(1, 1).Bytes(), dp.ReasonNoSession)
}

// TestGWIPv6AuthzAndAccounting: T8/T9 see bob (his device) from any host
// of his prefix: web allowed, video refused with a RST or an ICMPv6
// administratively prohibited; the accounting records of his IPv6 flows
// name bob, his device, his Acct-Session-Id and service, with the HTTP
// URL and the TLS SNI (R-AUTH-1, R-ACCT-1).
func TestGWIPv6AuthzAndAccounting(t *testing.T) {
	authz, err := dp.NewAuthz(
		[]dp.T9Row{{Rep: rep6, ServiceType: "web"}, {Rep: rep6b, ServiceType: "video"}},
		[]dp.T8Row{{Device: "IMEI-9", ServiceType: "web", Allowed: true}, {Device: "IMEI-9", ServiceType: "video", Allowed: false},
			{Device: "IMEI-1", ServiceType: "web", Allowed: true}})
	if err != nil {
		t.Fatal(err)
	}
	log, prod, path := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
	r := newGW6(t, authz, prod)

	// Refused: TCP gets a RST answering the SYN, UDP an ICMPv6 1/1.
	syn := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(h6b, rep6b).TCP(40001, 443).Flags(header.FlagSYN).Seq(1000).Bytes()
	r.mustForward(0, syn, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6b, h6b).TTL(64).TCP(443, 40001).
		Flags(header.FlagRST|header.FlagACK).Ack(1001).Window(0).Bytes())
	q := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(h6a, rep6b).UDP(5000, 53).Payload([]byte("q")).Bytes()
	r.mustForward(0, q, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6b, h6a).TTL(64).ICMPError(1, 1, 0, dptest.IP(q)).Bytes())
	if den := authz.Denied(); den["video"] != 2 {
		t.Errorf("denied per service type %v, want video 2", den)
	}

	// Allowed: an HTTP request from h6a, a TLS hello from h6b.
	flow := func(src netip.Addr, sport, dport uint16, req []byte) {
		t.Helper()
		r.send(0, syn6(src, sport, rep6, dport))
		b := r.binding(6, src, rep6, sport, dport)
		mac := map[netip.Addr][6]byte{a16: a1MAC, a26: a2MAC}[b.Server.Addr()]
		r.send(1, dptest.Frame().Eth(mac, gwSrvMAC).IPv6(b.Server.Addr(), key6).TCP(b.SPort, b.GwPort).Flags(header.FlagSYN|header.FlagACK).Seq(7).Ack(101).Bytes())
		r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(src, rep6).TCP(sport, dport).Flags(header.FlagACK|header.FlagPSH).Seq(101).Ack(8).Payload(req).Bytes())
	}
	flow(h6a, 41000, 80, []byte("GET /six HTTP/1.1\r\nHost: v6.example\r\n\r\n"))
	flow(h6b, 41001, 443, tlsHello(t, "sni6.example"))
	s := bob
	s.IP = pfx6.As16()
	r.gw.Apply(dp.SessionEvent{End: true, Session: s})
	r.w.Poll()
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _, err := acct.Query(path, acct.Filter{User: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]acct.Entry{}
	for _, e := range entries {
		if e.Kind == "final" {
			got[e.Service] = e
		}
	}
	for svc, attr := range map[string]string{"web6": "v6.example/six", "tls6": "sni6.example"} {
		e, ok := got[svc]
		if !ok {
			t.Errorf("no final record of %s in %+v", svc, entries)
			continue
		}
		if e.User != "bob" || e.Device != "IMEI-9" || e.AcctSessionID != "acct-9" || e.URL+e.SNI != attr || e.UpPackets != 2 || e.DownPackets != 1 {
			t.Errorf("%s record %+v, want bob's with url or sni %q", svc, e, attr)
		}
	}
	if len(got) != 2 {
		t.Errorf("final records %v, want web6 and tls6 only (refused flows are not accounted)", got)
	}
}

// tlsHello is the ClientHello record crypto/tls sends for name (X25519
// only, so it fits one segment).
func tlsHello(t *testing.T, name string) []byte {
	t.Helper()
	c, s := net.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tls.Client(c, &tls.Config{ServerName: name, CurvePreferences: []tls.CurveID{tls.X25519}}).Handshake() // fails once s closes
	}()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(s, hdr); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 5+(int(hdr[3])<<8|int(hdr[4])))
	copy(rec, hdr)
	if _, err := io.ReadFull(s, rec[5:]); err != nil {
		t.Fatal(err)
	}
	s.Close()
	wg.Wait()
	c.Close()
	return rec
}

// TestGWDualStackOneSubscriber: a dual-stack session is one T3 copy per
// address under one id (as samepathd applies it): its IPv4 and IPv6
// flows are authorized and accounted as the same subscriber, and the end
// at one address takes the flows of both families.
func TestGWDualStackOneSubscriber(t *testing.T) {
	authz, err := dp.NewAuthz([]dp.T9Row{{Rep: rep, ServiceType: "web"}, {Rep: rep6, ServiceType: "web"}, {Rep: rep6b, ServiceType: "video"}, {Rep: other, ServiceType: "video"}},
		[]dp.T8Row{{Device: "IMEI-D", ServiceType: "web", Allowed: true}})
	if err != nil {
		t.Fatal(err)
	}
	log, prod, path := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
	r := newGW6(t, authz, prod)
	v4 := addr("10.101.0.77")
	dual := dp.Session{ID: 12, Name: "sd", AcctSessionID: "acct-d", UserID: "dana", DeviceID: "IMEI-D"}
	d4, d6 := dual, dual
	d4.IP = v4.As16()
	d6.IP, d6.Prefix = addr("fd00:104::").As16(), true
	r.gw.Apply(dp.SessionEvent{Session: d4})
	r.gw.Apply(dp.SessionEvent{Session: d6})
	r.w.Poll()
	h := addr("fd00:104::99")
	if _, p, drop := r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(v4, rep).TCP(40000, 80).Flags(header.FlagSYN).Bytes()); p != 1 {
		t.Fatalf("v4 SYN: drop %v", drop)
	}
	if _, p, drop := r.send(0, syn6(h, 40000, rep6, 80)); p != 1 {
		t.Fatalf("v6 SYN: drop %v", drop)
	}
	// Refused alike in both families: video is not in dana's order.
	before := r.w.Counters(0).Snapshot().Drops[dp.ReasonDenied]
	r.send(0, syn6(h, 40001, rep6b, 443))
	r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(v4, other).TCP(40001, 443).Flags(header.FlagSYN).Bytes())
	if d := r.w.Counters(0).Snapshot().Drops[dp.ReasonDenied] - before; d != 2 {
		t.Errorf("video in both families: denied +%d, want 2", d)
	}
	if b4, b6 := r.binding(6, v4, rep, 40000, 80), r.binding(6, h, rep6, 40000, 80); b4.Session != dual.ID || b6.Session != dual.ID {
		t.Fatalf("sessions of the flows: v4 %d v6 %d, want %d", b4.Session, b6.Session, dual.ID)
	}
	r.gw.Apply(dp.SessionEvent{End: true, Session: d4})
	r.w.Poll()
	if n := r.flows.Len(); n != 0 {
		t.Errorf("%d flows after the end at the IPv4 address, want none of either family", n)
	}
	r.gw.Apply(dp.SessionEvent{End: true, Session: d6})
	r.w.Poll()
	r.mustDrop(0, syn6(h, 40002, rep6, 80), dp.ReasonNoSession)
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _, err := acct.Query(path, acct.Filter{User: "dana"})
	if err != nil {
		t.Fatal(err)
	}
	fams := map[bool]bool{}
	for _, e := range entries {
		if e.Kind != "final" {
			continue
		}
		if e.Device != "IMEI-D" || e.AcctSessionID != "acct-d" {
			t.Errorf("record %+v does not name dana's device and session", e)
		}
		fams[netip.MustParseAddrPort(e.Rep).Addr().Is4()] = true
	}
	if !fams[true] || !fams[false] {
		t.Errorf("final records %+v, want dana's in both families", entries)
	}
}
