package dp_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"samepath/dp"
	"samepath/dp/acct"
	"samepath/dp/balance"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/neigh"
	"samepath/dp/xlat"
	"samepath/nat"
	"samepath/ring/memport"
)

// The gateway under test: port 0 faces the LBs (LAN1), port 1 the servers
// (LAN2).
//
//	mobile 10.101.0.5 / fd00:101::5 --- lb1, lb2 --- gw --- a1 10.20.0.11, a2 10.20.0.12
//	representative 10.30.0.1 (web :80 tcp connection rr, dns :53 udp packet rr), fd00:30::1 (web6, dns6; dns64 :5353 to the v4 servers)
//	key-port addresses 10.20.0.101, fd00:20::101
var (
	gwLanMAC = dptest.MAC("02:00:00:00:20:01")
	gwSrvMAC = dptest.MAC("02:00:00:00:20:02")
	lb1MAC   = dptest.MAC("02:00:00:00:01:02")
	lb2MAC   = dptest.MAC("02:00:00:00:02:02")
	a1MAC    = dptest.MAC("02:00:00:00:30:11")
	a2MAC    = dptest.MAC("02:00:00:00:30:12")
	xMAC     = dptest.MAC("02:00:00:00:30:50")

	mob, mob6   = addr("10.101.0.5"), addr("fd00:101::5")
	rep, rep6   = addr("10.30.0.1"), addr("fd00:30::1")
	a1, a2      = addr("10.20.0.11"), addr("10.20.0.12")
	a16, a26    = addr("fd00:20::11"), addr("fd00:20::12")
	other       = addr("10.20.0.50")
	key4, key6  = addr("10.20.0.101"), addr("fd00:20::101")
	stranger    = addr("10.101.0.99")
	testSession = dp.Session{ID: 7, Name: "s7", AcctSessionID: "5f3a0001", UserID: "alice", DeviceID: "IMEI-1"}
)

type gwRig struct {
	t     *testing.T
	gw    *dp.GW
	w     *dp.Worker
	ports [2]*memport.Port
	flows *nat.PortTable
	svcs  *balance.Table
	now   int64
}

func newGW(t *testing.T, portMax uint16) *gwRig {
	return newGWAuthz(t, portMax, nil)
}

func newGWAuthz(t *testing.T, portMax uint16, authz *dp.Authz) *gwRig {
	return newGWFull(t, portMax, authz, nil, 0)
}

func newGWFull(t *testing.T, portMax uint16, authz *dp.Authz, prod *acct.Producer, interim time.Duration) *gwRig {
	t.Helper()
	return newGWWith(t, portMax, authz, prod, interim, nil)
}

func newGWWith(t *testing.T, portMax uint16, authz *dp.Authz, prod *acct.Producer, interim time.Duration, tr *xlat.Translator) *gwRig {
	t.Helper()
	return newGWConfig(t, portMax, func(c *dp.GWConfig) { c.Authz, c.Acct, c.AcctInterim, c.Xlat = authz, prod, interim, tr })
}

// newGWConfig is the golden rig with mut applied to the pipeline's config.
func newGWConfig(t *testing.T, portMax uint16, mut func(*dp.GWConfig)) *gwRig {
	t.Helper()
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs = []netip.Addr{key4, key6}
	pc.PortMin, pc.PortMax = 1024, portMax
	pc.Capacity = 1024
	pc.PortReuseDelay = time.Second
	flows, err := nat.NewPortTable(pc)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom
	svcs, err := balance.NewTable([]balance.ServiceConfig{
		{Name: "web", Rep: ap(rep, 80), Proto: 6, Type: balance.ConnectionUnit, Policy: balance.RoundRobin, ServiceType: "web",
			Servers: []balance.Server{{Addr: ap(a1, 8080), Up: true}, {Addr: ap(a2, 8080), Up: true}}},
		{Name: "dns", Rep: ap(rep, 53), Proto: 17, Type: balance.PacketUnit, Policy: balance.RoundRobin,
			Servers: []balance.Server{{Addr: ap(a1, 53), Up: true}, {Addr: ap(a2, 53), Up: true}}},
		{Name: "web6", Rep: ap(rep6, 80), Proto: 6, Type: balance.ConnectionUnit, Policy: balance.RoundRobin,
			Servers: []balance.Server{{Addr: ap(a16, 80), Up: true}, {Addr: ap(a26, 80), Up: true}}},
		{Name: "dns6", Rep: ap(rep6, 53), Proto: 17, Type: balance.PacketUnit, Policy: balance.RoundRobin,
			Servers: []balance.Server{{Addr: ap(a16, 53), Up: true}, {Addr: ap(a26, 53), Up: true}}},
		{Name: "dns64", Rep: ap(rep6, 5353), Proto: 17, Type: balance.ConnectionUnit, Policy: balance.RoundRobin,
			Servers: []balance.Server{{Addr: ap(a1, 53), Up: true}, {Addr: ap(a2, 53), Up: true}}},
		{Name: "dead", Rep: ap(rep, 99), Proto: 6, Policy: balance.RoundRobin,
			Servers: []balance.Server{{Addr: ap(a1, 99), Up: false}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dist, err := balance.NewDist(svcs, 1024)
	if err != nil {
		t.Fatal(err)
	}
	nb := neigh.New()
	nb.Set(map[[16]byte][6]byte{a1.As16(): a1MAC, a2.As16(): a2MAC, a16.As16(): a1MAC, a26.As16(): a2MAC, other.As16(): xMAC})
	gc := dp.GWConfig{Lan: 0, Servers: 1, LanMAC: gwLanMAC, ServerMAC: gwSrvMAC,
		Flows: flows, Services: svcs, Dist: dist, Neighbors: nb, RequireSession: true, LBCacheSize: 1024, ExpireBudget: 64}
	mut(&gc)
	g, err := dp.NewGW(gc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	u, _ := memport.NewUmem(4096)
	lan, _ := memport.New(memport.DefaultConfig("lan/q0"), u)
	srv, _ := memport.New(memport.DefaultConfig("srv/q0"), u)
	w, err := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{lan, srv}, g)
	if err != nil {
		t.Fatal(err)
	}
	r := &gwRig{t: t, gw: g, w: w, ports: [2]*memport.Port{lan, srv}, flows: flows, svcs: svcs}
	s := testSession
	s.IP = mob.As16()
	g.Apply(dp.SessionEvent{Session: s})
	s6 := testSession
	s6.ID, s6.IP = 8, mob6.As16()
	g.Apply(dp.SessionEvent{Session: s6})
	w.Poll() // the worker applies the events on its next round
	return r
}

// send runs one frame through the gateway and returns the frame it sent
// and the port, or -1 and the drop reason.
func (r *gwRig) send(port int, f []byte) ([]byte, int, dp.Reason) {
	r.t.Helper()
	before := r.w.Counters(port).Snapshot()
	if !r.ports[port].Inject(f) {
		r.t.Fatal("inject failed")
	}
	r.w.Poll()
	for p := 0; p < 2; p++ {
		if out := r.ports[p].TakeAll(); len(out) > 0 {
			if len(out) != 1 {
				r.t.Fatalf("%d frames out", len(out))
			}
			return out[0], p, dp.ReasonNone
		}
	}
	after := r.w.Counters(port).Snapshot()
	for i := range after.Drops {
		if after.Drops[i] != before.Drops[i] {
			return nil, -1, dp.Reason(i)
		}
	}
	r.t.Fatal("packet neither sent nor dropped")
	return nil, 0, 0
}

func (r *gwRig) mustForward(port int, f []byte, wantPort int, want []byte) {
	r.t.Helper()
	out, p, drop := r.send(port, f)
	if p != wantPort {
		r.t.Fatalf("out port %d (drop %v), want %d", p, drop, wantPort)
	}
	if !bytes.Equal(out, want) {
		r.t.Errorf("output differs: %s", dptest.Diff(want, out))
	}
}

func (r *gwRig) mustDrop(port int, f []byte, want dp.Reason) {
	r.t.Helper()
	if _, p, drop := r.send(port, f); p != -1 || drop != want {
		r.t.Errorf("got port %d drop %v, want drop %v", p, drop, want)
	}
}

// binding returns the record of the flow the mobile opened.
func (r *gwRig) binding(proto uint8, src, dst netip.Addr, sport, dport uint16) nat.Binding {
	r.t.Helper()
	k := nat.FlowKey{Src: nat.Addr16From(src), Dst: nat.Addr16From(dst), SPort: sport, DPort: dport, Proto: proto}
	id, ok := r.flows.Up(&k)
	if !ok {
		r.t.Fatalf("no binding for %v", k)
	}
	return *r.flows.Binding(id)
}

func TestGWTCPConnection(t *testing.T) {
	r := newGW(t, 65535)
	syn := func(from [6]byte, sport uint16) []byte {
		return dptest.Frame().Eth(from, gwLanMAC).IPv4(mob, rep).TTL(63).TCP(sport, 80).Flags(header.FlagSYN).Seq(100).Bytes()
	}
	in := syn(lb1MAC, 40000)
	out, p, drop := r.send(0, in)
	if p != 1 {
		t.Fatalf("SYN: port %d drop %v", p, drop)
	}
	b := r.binding(6, mob, rep, 40000, 80)
	if b.GwAddr != nat.Addr16From(key4) || b.Server != nat.Addr16From(a1) || b.SPort != 8080 || b.Session != testSession.ID {
		t.Fatalf("binding %+v", b)
	}
	want := dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv4(key4, a1).TTL(63).TCP(b.GwPort, 8080).Flags(header.FlagSYN).Seq(100).Bytes()
	if !bytes.Equal(out, want) {
		t.Errorf("SYN out: %s", dptest.Diff(want, out))
	}
	// Round robin: the next connection goes to a2.
	r.send(0, syn(lb1MAC, 40001))
	if b2 := r.binding(6, mob, rep, 40001, 80); b2.Server != nat.Addr16From(a2) {
		t.Errorf("second connection went to %v, want a2", b2.Server)
	}
	// The SYN-ACK comes back from a1 to the key port; it leaves toward lb1.
	synack := func() *dptest.Builder {
		return dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TTL(64).TCP(8080, b.GwPort).Flags(header.FlagSYN | header.FlagACK).Seq(5000).Ack(101)
	}
	r.mustForward(1, synack().Bytes(), 0,
		dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(rep, mob).TTL(64).TCP(80, 40000).Flags(header.FlagSYN|header.FlagACK).Seq(5000).Ack(101).Bytes())
	// The mobile moves: its next up packet comes through lb2 (T12), and
	// the down packets follow it there (R-GW-4).
	ack := dptest.Frame().Eth(lb2MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK).Seq(101).Ack(5001).Bytes()
	if _, p, _ := r.send(0, ack); p != 1 {
		t.Fatal("ACK via lb2 not forwarded")
	}
	out, p, _ = r.send(1, synack().Bytes())
	if p != 0 || !bytes.Equal(out[:6], lb2MAC[:]) {
		t.Errorf("after the move, down packet went to %x on port %d, want lb2", out[:6], p)
	}
	if bb := r.binding(6, mob, rep, 40000, 80); bb.UpPackets != 2 || bb.DownPackets != 2 {
		t.Errorf("flow counters up %d down %d, want 2 and 2", bb.UpPackets, bb.DownPackets)
	}
}

func TestGWDrops(t *testing.T) {
	r := newGW(t, 65535)
	// No session for the source: S124.
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(stranger, rep).TCP(1, 80).Flags(header.FlagSYN).Bytes(), dp.ReasonNoSession)
	// A TCP segment other than SYN opens nothing.
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(1, 80).Flags(header.FlagACK).Bytes(), dp.ReasonNoFlow)
	// A down packet to a key port nobody holds.
	r.mustDrop(1, dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TCP(8080, 5555).Flags(header.FlagACK).Bytes(), dp.ReasonNoFlow)
	// Every server of the service down.
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(1, 99).Flags(header.FlagSYN).Bytes(), dp.ReasonNoServer)
	// Not IP, malformed, a non-first fragment.
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).ARP(1, lb1MAC, mob, [6]byte{}, rep).Bytes(), dp.ReasonNotIP)
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).UDP(1, 2).Bytes()[:30], dp.ReasonMalformed)
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).Frag(20, false).Proto(17).Payload(make([]byte, 16)).Bytes(), dp.ReasonUnsupported)
	// Unknown next hop for an unbalanced destination.
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, addr("10.20.0.77")).UDP(5, 6).Bytes(), dp.ReasonNoNextHop)
}

// TestGWUnbalanced: a destination that is no representative address is
// NATed (source only) and forwarded as addressed (R-GW-3).
func TestGWUnbalanced(t *testing.T) {
	r := newGW(t, 65535)
	in := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, other).UDP(5000, 9999).Payload([]byte("hi")).Bytes()
	out, p, _ := r.send(0, in)
	b := r.binding(17, mob, other, 5000, 9999)
	want := dptest.Frame().Eth(gwSrvMAC, xMAC).IPv4(key4, other).UDP(b.GwPort, 9999).Payload([]byte("hi")).Bytes()
	if p != 1 || !bytes.Equal(out, want) {
		t.Fatalf("port %d: %s", p, dptest.Diff(want, out))
	}
	r.mustForward(1, dptest.Frame().Eth(xMAC, gwSrvMAC).IPv4(other, key4).UDP(9999, b.GwPort).Payload([]byte("ok")).Bytes(), 0,
		dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(other, mob).UDP(9999, 5000).Payload([]byte("ok")).Bytes())
}

// TestGWPacketUnit: every datagram of a packet-unit service is balanced
// anew, and the answers come back from the representative address.
func TestGWPacketUnit(t *testing.T) {
	r := newGW(t, 65535)
	q := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).UDP(3333, 53).Payload([]byte("q")).Bytes()
	var servers []string
	for i := 0; i < 4; i++ {
		out, p, drop := r.send(0, q)
		if p != 1 {
			t.Fatalf("datagram %d: drop %v", i, drop)
		}
		var hp header.Parsed
		header.Parse(out, &hp)
		servers = append(servers, hp.IPv4(out).DstAddr().String())
		b := r.binding(17, mob, rep, 3333, 53)
		// The answer, from whichever server got the query.
		ans := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(hp.IPv4(out).DstAddr(), key4).UDP(53, b.GwPort).Payload([]byte("a")).Bytes()
		r.mustForward(1, ans, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(rep, mob).UDP(53, 3333).Payload([]byte("a")).Bytes())
	}
	want := []string{"10.20.0.11", "10.20.0.12", "10.20.0.11", "10.20.0.12"}
	for i := range want {
		if servers[i] != want[i] {
			t.Fatalf("datagrams went to %v, want alternating %v", servers, want)
		}
	}
}

func TestGWICMP(t *testing.T) {
	r := newGW(t, 65535)
	// Echo through an unbalanced destination.
	echo := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, other).ICMPEcho(77, 1).Payload([]byte("ping")).Bytes()
	out, p, _ := r.send(0, echo)
	b := r.binding(1, mob, other, 77, 0)
	if want := dptest.Frame().Eth(gwSrvMAC, xMAC).IPv4(key4, other).ICMPEcho(b.GwPort, 1).Payload([]byte("ping")).Bytes(); p != 1 || !bytes.Equal(out, want) {
		t.Fatalf("echo: port %d %s", p, dptest.Diff(want, out))
	}
	r.mustForward(1, dptest.Frame().Eth(xMAC, gwSrvMAC).IPv4(other, key4).ICMPEchoReply(b.GwPort, 1).Payload([]byte("ping")).Bytes(), 0,
		dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(other, mob).ICMPEchoReply(77, 1).Payload([]byte("ping")).Bytes())

	// A UDP flow to the web server's address, then a port unreachable
	// from the server: the mobile gets it about its own packet, from the
	// representative address.
	udp := func(src, dst netip.Addr, sp, dport uint16) []byte {
		return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(src, dst).UDP(sp, dport).Payload([]byte("x")).Bytes()
	}
	r.send(0, udp(mob, rep, 6000, 53))
	bu := r.binding(17, mob, rep, 6000, 53)
	server := bu.Server.Addr()
	sent := dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv4(key4, server).UDP(bu.GwPort, 53).Payload([]byte("x")).Bytes()
	unreach := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(server, key4).ICMPError(3, 3, 0, dptest.IP(sent)).Bytes()
	orig := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).UDP(6000, 53).Payload([]byte("x")).Bytes()
	r.mustForward(1, unreach, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(rep, mob).ICMPError(3, 3, 0, dptest.IP(orig)).Bytes())

	// The mobile's own ICMP error about a down packet goes to the server.
	down := dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(rep, mob).UDP(53, 6000).Payload([]byte("y")).Bytes()
	mobErr := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).ICMPError(3, 3, 0, dptest.IP(down)).Bytes()
	srvView := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(server, key4).UDP(53, bu.GwPort).Payload([]byte("y")).Bytes()
	r.mustForward(0, mobErr, 1, dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv4(key4, server).ICMPError(3, 3, 0, dptest.IP(srvView)).Bytes())
}

// TestGWEchoToRepresentative: an echo to a representative address goes to
// an actual server of a service there, balanced per echo flow (R-GW-1:
// destination rewritten, identifier as the key), and the reply comes back
// from the representative address with the mobile's identifier.
func TestGWEchoToRepresentative(t *testing.T) {
	r := newGW(t, 65535)
	var servers []netip.Addr
	for _, id := range []uint16{77, 78} {
		echo := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).ICMPEcho(id, 1).Payload([]byte("ping")).Bytes()
		out, p, drop := r.send(0, echo)
		if p != 1 {
			t.Fatalf("echo %d: drop %v", id, drop)
		}
		b := r.binding(1, mob, rep, id, 0)
		server := b.Server.Addr()
		if server != a1 && server != a2 {
			t.Fatalf("echo %d: bound to %v, want a server of web", id, server)
		}
		mac := map[netip.Addr][6]byte{a1: a1MAC, a2: a2MAC}[server]
		want := dptest.Frame().Eth(gwSrvMAC, mac).IPv4(key4, server).ICMPEcho(b.GwPort, 1).Payload([]byte("ping")).Bytes()
		if !bytes.Equal(out, want) {
			t.Fatalf("echo %d: %s", id, dptest.Diff(want, out))
		}
		if b.Service == 0 {
			t.Errorf("echo %d: no service recorded", id)
		} else if name, _, _ := r.svcs.Labels(b.Service - 1); name != "web" {
			t.Errorf("echo %d: service %q, want web (the first at %v with a server up)", id, name, rep)
		}
		r.mustForward(1, dptest.Frame().Eth(mac, gwSrvMAC).IPv4(server, key4).ICMPEchoReply(b.GwPort, 1).Payload([]byte("ping")).Bytes(), 0,
			dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(rep, mob).ICMPEchoReply(id, 1).Payload([]byte("ping")).Bytes())
		servers = append(servers, server)
	}
	if servers[0] == servers[1] {
		t.Errorf("two echo flows both went to %v, want round robin over web's servers", servers[0])
	}

	// IPv6: the echo goes to web6's servers.
	echo6 := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6).ICMPEcho(9, 1).Bytes()
	out, p, drop := r.send(0, echo6)
	if p != 1 {
		t.Fatalf("v6 echo: drop %v", drop)
	}
	b := r.binding(header.ProtoICMPv6, mob6, rep6, 9, 0)
	if s := b.Server.Addr(); s != a16 && s != a26 {
		t.Fatalf("v6 echo bound to %v, want a server of web6", s)
	}
	var hp header.Parsed
	header.Parse(out, &hp)
	if got := hp.IPv6(out).DstAddr(); got != b.Server.Addr() {
		t.Errorf("v6 echo sent to %v, bound to %v", got, b.Server.Addr())
	}

	// Every service at the address down: the echo is dropped, counted as
	// no server (as a TCP or UDP flow to such a service is).
	for _, a := range []netip.Addr{a1, a2} {
		if err := r.svcs.SetServerState("web", netip.AddrPortFrom(a, 8080), false); err != nil {
			t.Fatal(err)
		}
		if err := r.svcs.SetServerState("dns", netip.AddrPortFrom(a, 53), false); err != nil {
			t.Fatal(err)
		}
	}
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).ICMPEcho(79, 1).Bytes(), dp.ReasonNoServer)
}

func TestGWIPv6(t *testing.T) {
	r := newGW(t, 65535)
	in := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6).TCP(50000, 80).Flags(header.FlagSYN).Bytes()
	out, p, drop := r.send(0, in)
	if p != 1 {
		t.Fatalf("v6 SYN: drop %v", drop)
	}
	b := r.binding(6, mob6, rep6, 50000, 80)
	want := dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv6(key6, a16).TCP(b.GwPort, 80).Flags(header.FlagSYN).Bytes()
	if !bytes.Equal(out, want) {
		t.Errorf("v6 SYN out: %s", dptest.Diff(want, out))
	}
	r.mustForward(1, dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv6(a16, key6).TCP(80, b.GwPort).Flags(header.FlagSYN|header.FlagACK).Bytes(), 0,
		dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6, mob6).TCP(80, 50000).Flags(header.FlagSYN|header.FlagACK).Bytes())
}

// TestGWExhaustion: with two key ports, the third connection is refused
// with a RST (UDP: ICMP administratively prohibited), counted, and flows
// open again once ports are free.
func TestGWExhaustion(t *testing.T) {
	r := newGW(t, 1025)
	syn := func(sport uint16) []byte {
		return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(sport, 80).Flags(header.FlagSYN).Seq(9).Bytes()
	}
	for sp := uint16(1); sp <= 2; sp++ {
		if _, p, drop := r.send(0, syn(sp)); p != 1 {
			t.Fatalf("flow %d: drop %v", sp, drop)
		}
	}
	before := r.w.Counters(0).Snapshot()
	r.mustForward(0, syn(3), 0,
		dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(rep, mob).DF().ID(0).TTL(64).TCP(80, 3).Flags(header.FlagRST|header.FlagACK).Ack(10).Window(0).Bytes())
	if d := r.w.Counters(0).Snapshot().Drops[dp.ReasonPortExhausted] - before.Drops[dp.ReasonPortExhausted]; d != 1 {
		// The refused packet is counted, and its frame became the RST.
		t.Errorf("port_exhausted drops +%d, want +1", d)
	}
	if n := r.gw.Stats().Exhausted.Load(); n != 1 {
		t.Errorf("exhausted counter %d, want 1", n)
	}
	q := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, other).UDP(7, 7).Payload([]byte("z")).Bytes()
	// UDP has its own key space: two ports free there.
	r.send(0, q)
	r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, other).UDP(8, 7).Bytes())
	q3 := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, other).UDP(9, 7).Payload([]byte("z")).Bytes()
	r.mustForward(0, q3, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(other, mob).DF().ID(0).TTL(64).ICMPError(3, 13, 0, dptest.IP(q3)).Bytes())
	// The session ends: every record goes, ports rest, then serve again.
	s := testSession
	s.IP = mob.As16()
	r.gw.Apply(dp.SessionEvent{End: true, Session: s})
	r.w.Poll()
	if n := r.flows.Len(); n != 0 {
		t.Fatalf("%d flows left after the session ended", n)
	}
	r.mustDrop(0, syn(4), dp.ReasonNoSession)
	r.gw.Apply(dp.SessionEvent{Session: s})
	time.Sleep(1100 * time.Millisecond) // the ports' reuse delay
	if _, p, drop := r.send(0, syn(5)); p != 1 {
		t.Errorf("after ports rested: drop %v", drop)
	}
}

func TestGWProcessAllocs(t *testing.T) {
	r := newGW(t, 65535)
	up := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagSYN).Bytes()
	r.send(0, up)
	b := r.binding(6, mob, rep, 40000, 80)
	upAck := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK).Bytes()
	down := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TCP(8080, b.GwPort).Flags(header.FlagACK).Bytes()
	drain := func([]byte) {}
	n := testing.AllocsPerRun(200, func() {
		r.ports[0].Inject(upAck)
		r.ports[1].Inject(down)
		r.w.Poll()
		for r.ports[0].Take(drain) {
		}
		for r.ports[1].Take(drain) {
		}
	})
	if n != 0 {
		t.Errorf("gateway allocates %v per round", n)
	}
}

// TestGWAuthorization: T9 names the service types of destinations, T8 the
// device's allowed ones. A refused TCP flow gets a RST the mobile's stack
// accepts (right seq/ack), a refused UDP flow an ICMP administratively
// prohibited (v4 and v6); nothing reaches a server; allowed flows are
// unchanged (R-AUTH-1, FIG. 25).
func TestGWAuthorization(t *testing.T) {
	authz, err := dp.NewAuthz(
		[]dp.T9Row{{Rep: rep, ServiceType: "web"}, {Rep: other, ServiceType: "video"}, {Rep: rep6, ServiceType: "video"}},
		[]dp.T8Row{{Device: "IMEI-1", ServiceType: "web", Allowed: true}, {Device: "IMEI-1", ServiceType: "video", Allowed: false}})
	if err != nil {
		t.Fatal(err)
	}
	r := newGWAuthz(t, 65535, authz)
	// Allowed: web.
	if _, p, drop := r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagSYN).Bytes()); p != 1 {
		t.Fatalf("allowed flow: drop %v", drop)
	}
	// Denied TCP: RST back toward the LB with seq/ack answering the SYN.
	syn := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, other).TCP(40001, 443).Flags(header.FlagSYN).Seq(1000).Payload([]byte("ab")).Bytes()
	before := r.w.Counters(0).Snapshot()
	r.mustForward(0, syn, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(other, mob).DF().ID(0).TTL(64).TCP(443, 40001).
		Flags(header.FlagRST|header.FlagACK).Ack(1003).Window(0).Bytes())
	// Denied UDP over IPv6: ICMPv6 administratively prohibited.
	q6 := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6).UDP(5000, 53).Payload([]byte("q")).Bytes()
	r.mustForward(0, q6, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6, mob6).TTL(64).ICMPError(1, 1, 0, dptest.IP(q6)).Bytes())
	// Denied UDP over IPv4.
	q4 := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, other).UDP(5000, 53).Payload([]byte("q")).Bytes()
	r.mustForward(0, q4, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(other, mob).DF().ID(0).TTL(64).ICMPError(3, 13, 0, dptest.IP(q4)).Bytes())
	if d := r.w.Counters(0).Snapshot().Drops[dp.ReasonDenied] - before.Drops[dp.ReasonDenied]; d != 3 {
		t.Errorf("denied drops +%d, want 3", d)
	}
	if den := authz.Denied(); den["video"] != 3 || den["web"] != 0 {
		t.Errorf("denied per service type %v", den)
	}
	if n := r.flows.Len(); n != 1 {
		t.Errorf("%d NAT records, want only the allowed one", n)
	}
	// Not controlled by T9: unchanged behaviour.
	if _, p, drop := r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, addr("10.20.0.11")).UDP(1, 2).Bytes()); p != 1 {
		t.Errorf("uncontrolled destination: drop %v", drop)
	}
	// Replacing T8 takes effect for the next flow.
	if err := authz.Replace([]dp.T9Row{{Rep: other, ServiceType: "video"}}, []dp.T8Row{{Device: "IMEI-1", ServiceType: "video", Allowed: true}}); err != nil {
		t.Fatal(err)
	}
	if _, p, drop := r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, other).TCP(40002, 443).Flags(header.FlagSYN).Bytes()); p != 1 {
		t.Errorf("after the order changed: drop %v", drop)
	}
}

// TestGWAccounting: a served flow produces interim records while it lasts
// and a final T10 record when it ends, naming the subscriber (user and
// device from T3), the service and its type instead of raw addresses,
// carrying the HTTP host/path seen in the first request, and counting
// packets, bytes and payload bytes both ways (R-ACCT-1, FIG. 28-29).
func TestGWAccounting(t *testing.T) {
	log, prod, path := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
	r := newGWFull(t, 65535, nil, prod, time.Millisecond)
	req := []byte("GET /videos/42?q=1 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: curl/8\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	up := func(flags uint8, pl []byte) []byte {
		return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(41000, 80).Flags(flags).Payload(pl).Bytes()
	}
	r.send(0, up(header.FlagSYN, nil))
	b := r.binding(6, mob, rep, 41000, 80)
	down := func(flags uint8, pl []byte) []byte {
		return dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(b.Server.Addr(), key4).TCP(8080, b.GwPort).Flags(flags).Payload(pl).Bytes()
	}
	var upBytes, downBytes int
	for _, f := range [][]byte{up(header.FlagACK, nil), up(header.FlagACK|header.FlagPSH, req)} {
		r.send(0, f)
		upBytes += len(f) - 14
	}
	for _, f := range [][]byte{down(header.FlagSYN|header.FlagACK, nil), down(header.FlagACK|header.FlagPSH, resp)} {
		r.send(1, f)
		downBytes += len(f) - 14
	}
	upBytes += len(up(header.FlagSYN, nil)) - 14
	time.Sleep(5 * time.Millisecond) // past the interim interval
	for i := 0; i < 3000; i++ {
		r.w.Poll() // interim sweep over the table's slots
	}
	// The session ends: the record is final.
	s := testSession
	s.IP = mob.As16()
	r.gw.Apply(dp.SessionEvent{End: true, Session: s})
	r.w.Poll()
	entries := closeEntries(t, log, path)
	var final *acct.Entry
	interims := 0
	for i := range entries {
		switch entries[i].Kind {
		case "final":
			final = &entries[i]
		case "interim":
			interims++
		}
	}
	if final == nil || interims == 0 {
		t.Fatalf("want interim and final records, got %+v", entries)
	}
	// The poll loop re-reads the wall clock every 1024 rounds; a flow's
	// records still carry one start time.
	for i := range entries {
		if !entries[i].Start.Equal(final.Start) {
			t.Errorf("%s record starts %v, the final one %v", entries[i].Kind, entries[i].Start, final.Start)
		}
	}
	e := final
	if e.User != "alice" || e.Device != "IMEI-1" || e.Service != "web" || e.ServiceType != "web" || e.Cause != "session-end" {
		t.Errorf("record names %+v", e)
	}
	// Issue 18: every record carries the session's RADIUS Acct-Session-Id.
	for i := range entries {
		if entries[i].AcctSessionID != "5f3a0001" {
			t.Errorf("%s record: acct_session_id %q, want 5f3a0001", entries[i].Kind, entries[i].AcctSessionID)
		}
	}
	if e.URL != "shop.example/videos/42?q=1" {
		t.Errorf("url %q", e.URL)
	}
	if e.Rep != "10.30.0.1:80" || e.Server != netip.AddrPortFrom(b.Server.Addr(), 8080).String() || e.Proto != "tcp" {
		t.Errorf("rep %s server %s proto %s", e.Rep, e.Server, e.Proto)
	}
	if e.UpPackets != 3 || e.DownPackets != 2 || e.UpBytes != uint64(upBytes) || e.DownBytes != uint64(downBytes) {
		t.Errorf("counters up %d/%d down %d/%d, want 3/%d 2/%d", e.UpPackets, e.UpBytes, e.DownPackets, e.DownBytes, upBytes, downBytes)
	}
	if e.UpPayload == nil || *e.UpPayload != uint64(len(req)) || *e.DownPayload != uint64(len(resp)) {
		t.Errorf("payload up %v down %v, want %d %d", e.UpPayload, e.DownPayload, len(req), len(resp))
	}
	if !e.End.After(e.Start) || time.Since(e.End) > time.Minute {
		t.Errorf("times %v .. %v", e.Start, e.End)
	}
}

// TestGWEndAll: a gateway that stops ends its open flows with a final
// record each (cause shutdown), so the usage since the last interim is
// not lost, and leaves an empty table.
func TestGWEndAll(t *testing.T) {
	// A two-record ring: EndAll waits for the writer rather than losing records.
	log, prod, path := openAcct(t, func(c *acct.Config) { c.RingSize = 2 })
	r := newGWFull(t, 65535, nil, prod, time.Hour)
	const n = 8
	for i := range n {
		r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(uint16(42000+i), 80).Flags(header.FlagSYN).Bytes())
	}
	if got := r.flows.Len(); got != n {
		t.Fatalf("%d flows open, want %d", got, n)
	}
	if got := r.gw.EndAll(5 * time.Second); got != n {
		t.Fatalf("EndAll ended %d flows, want %d", got, n)
	}
	if r.flows.Len() != 0 {
		t.Fatalf("%d flows left", r.flows.Len())
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if st := log.Stats(); st.Lost != 0 {
		t.Fatalf("%d records lost", st.Lost)
	}
	entries, _, err := acct.Query(path, acct.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Fatalf("%d records, want %d", len(entries), n)
	}
	for _, e := range entries {
		if e.Kind != "final" || e.Cause != "shutdown" || e.User != "alice" || e.UpPackets != 1 {
			t.Errorf("record %+v, want a final shutdown record of alice's SYN", e)
		}
	}
	if got := r.gw.Stats().FlowsEnded.Load(); got != n {
		t.Errorf("FlowsEnded %d, want %d", got, n)
	}
}

// openAcct opens an accounting log in a temporary directory, with mut
// applied to its default config, and registers one producer.
func openAcct(t *testing.T, mut func(*acct.Config)) (*acct.Log, *acct.Producer, string) {
	t.Helper()
	path := t.TempDir() + "/acct.log"
	cfg := acct.DefaultConfig(path)
	mut(&cfg)
	log, err := acct.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := log.Register()
	if err != nil {
		t.Fatal(err)
	}
	return log, prod, path
}

// closeEntries closes log and returns alice's records in the log at path.
func closeEntries(t *testing.T, log *acct.Log, path string) []acct.Entry {
	t.Helper()
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _, err := acct.Query(path, acct.Filter{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// closeFinal is closeEntries' last final record, failing t when there is
// none.
func closeFinal(t *testing.T, log *acct.Log, path string) acct.Entry {
	t.Helper()
	entries := closeEntries(t, log, path)
	var final *acct.Entry
	for i := range entries {
		if entries[i].Kind == "final" {
			final = &entries[i]
		}
	}
	if final == nil {
		t.Fatalf("no final record in %+v", entries)
	}
	return *final
}

// TestGWBatch: whole batches, as AF_XDP delivers them, come out as
// single packets do: a batch of new
// connections (with a malformed frame and a stray ACK among them) opens
// one flow per SYN, and the batch of their SYN-ACKs goes back to the
// mobile's ports, each on its own flow.
func TestGWBatch(t *testing.T) {
	r := newGW(t, 65535)
	const n = 40
	for i := range n {
		f := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(uint16(41000+i), 80).Flags(header.FlagSYN).Seq(100).Bytes()
		if !r.ports[0].Inject(f) {
			t.Fatal("inject")
		}
		if i == n/2 {
			r.ports[0].Inject([]byte{1, 2, 3})
			r.ports[0].Inject(dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(9, 80).Flags(header.FlagACK).Bytes())
		}
	}
	r.w.Poll()
	ups := r.ports[1].TakeAll()
	if len(ups) != n || r.flows.Len() != n {
		t.Fatalf("%d SYNs out, %d flows; want %d", len(ups), r.flows.Len(), n)
	}
	if s := r.w.Counters(0).Snapshot(); s.Drops[dp.ReasonMalformed] != 1 || s.Drops[dp.ReasonNoFlow] != 1 {
		t.Fatalf("drops %v", s.Drops)
	}
	for i := range n {
		b := r.binding(6, mob, rep, uint16(41000+i), 80)
		srvMAC := a1MAC
		if b.Server == nat.Addr16From(a2) {
			srvMAC = a2MAC
		}
		f := dptest.Frame().Eth(srvMAC, gwSrvMAC).IPv4(b.Server.Addr(), key4).TCP(b.SPort, b.GwPort).Flags(header.FlagSYN | header.FlagACK).Seq(7).Ack(101).Bytes()
		if !r.ports[1].Inject(f) {
			t.Fatal("inject")
		}
	}
	r.w.Poll()
	downs := r.ports[0].TakeAll()
	if len(downs) != n {
		t.Fatalf("%d SYN-ACKs out, want %d", len(downs), n)
	}
	for i, f := range downs {
		want := dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(rep, mob).TCP(80, uint16(41000+i)).Flags(header.FlagSYN | header.FlagACK).Seq(7).Ack(101).Bytes()
		if !bytes.Equal(f, want) {
			t.Fatalf("SYN-ACK %d: %s", i, dptest.Diff(want, f))
		}
	}
}

// TestGWBatchCreatesAndFinds: the gateway hashes a batch's up packets
// before it processes any, but a flow that one packet of the batch opens
// is found by the later packets of the same batch: a SYN and its ACK, and
// three datagrams of one UDP flow, arrive together with an IPv6 SYN, a
// truncated frame and ARP between them, and every packet is handled as if
// it had come alone.
func TestGWBatchCreatesAndFinds(t *testing.T) {
	r := newGW(t, 65535)
	eth := func() *dptest.Builder { return dptest.Frame().Eth(lb1MAC, gwLanMAC) }
	udp := func(i int) []byte { return eth().IPv4(mob, other).UDP(5000, 7).Payload([]byte{byte(i)}).Bytes() }
	in := [][]byte{
		eth().IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagSYN).Seq(100).Bytes(),
		udp(0),
		eth().IPv4(mob, rep).UDP(1, 2).Bytes()[:30], // truncated
		eth().IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK).Seq(101).Ack(8).Bytes(),
		udp(1),
		eth().ARP(1, lb1MAC, mob, [6]byte{}, rep).Bytes(),
		eth().IPv6(mob6, rep6).TCP(40001, 80).Flags(header.FlagSYN).Bytes(),
		udp(2),
	}
	for _, f := range in {
		if !r.ports[0].Inject(f) {
			t.Fatal("inject")
		}
	}
	r.w.Poll()
	out := r.ports[1].TakeAll()
	if len(out) != 6 || r.flows.Len() != 3 {
		t.Fatalf("%d packets out, %d flows; want 6 and 3 (tcp, udp, tcp6)", len(out), r.flows.Len())
	}
	if s := r.w.Counters(0).Snapshot(); s.Drops[dp.ReasonMalformed] != 1 || s.Drops[dp.ReasonNotIP] != 1 || s.Drops[dp.ReasonNoFlow] != 0 {
		t.Fatalf("drops %v: want one malformed, one not_ip, no no_flow (the ACK finds the SYN's flow)", s.Drops)
	}
	tcp := r.binding(6, mob, rep, 40000, 80)
	u := r.binding(17, mob, other, 5000, 7)
	tcp6 := r.binding(6, mob6, rep6, 40001, 80)
	want := [][]byte{
		dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv4(key4, a1).TCP(tcp.GwPort, 8080).Flags(header.FlagSYN).Seq(100).Bytes(),
		dptest.Frame().Eth(gwSrvMAC, xMAC).IPv4(key4, other).UDP(u.GwPort, 7).Payload([]byte{0}).Bytes(),
		dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv4(key4, a1).TCP(tcp.GwPort, 8080).Flags(header.FlagACK).Seq(101).Ack(8).Bytes(),
		dptest.Frame().Eth(gwSrvMAC, xMAC).IPv4(key4, other).UDP(u.GwPort, 7).Payload([]byte{1}).Bytes(),
		dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv6(key6, a16).TCP(tcp6.GwPort, 80).Flags(header.FlagSYN).Bytes(),
		dptest.Frame().Eth(gwSrvMAC, xMAC).IPv4(key4, other).UDP(u.GwPort, 7).Payload([]byte{2}).Bytes(),
	}
	for i := range want {
		if !bytes.Equal(out[i], want[i]) {
			t.Errorf("packet %d: %s", i, dptest.Diff(want[i], out[i]))
		}
	}
}

// TestGWSessionEndStopsFlows: packets of an established flow are carried
// without a T3 lookup, so this checks the invariant that allows it: when
// the session ends, its flows go with it and their next packets are
// dropped as having no session (R-GW-7, S124), in both directions.
func TestGWSessionEndStopsFlows(t *testing.T) {
	r := newGW(t, 65535)
	up := func(flags uint8) []byte {
		return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(flags).Bytes()
	}
	if _, p, drop := r.send(0, up(header.FlagSYN)); p != 1 {
		t.Fatalf("SYN: drop %v", drop)
	}
	b := r.binding(6, mob, rep, 40000, 80)
	if _, p, drop := r.send(0, up(header.FlagACK)); p != 1 {
		t.Fatalf("ACK on the flow: drop %v", drop)
	}
	s := testSession
	s.IP = mob.As16()
	r.gw.Apply(dp.SessionEvent{End: true, Session: s})
	r.w.Poll()
	r.mustDrop(0, up(header.FlagACK), dp.ReasonNoSession)
	r.mustDrop(1, dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(b.Server.Addr(), key4).TCP(b.SPort, b.GwPort).Flags(header.FlagACK).Bytes(), dp.ReasonNoFlow)
}
