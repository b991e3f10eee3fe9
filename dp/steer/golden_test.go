package steer_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"samepath/dp"
	"samepath/dp/steer"
	"samepath/dp/steer/steertest"
	"samepath/nat"
	"samepath/testbed/privtest"
)

var (
	gwA = nat.MAC{0x02, 0, 0, 0, 0xa, 1}
	gwB = nat.MAC{0x02, 0, 0, 0, 0xb, 1}
	gwC = nat.MAC{0x02, 0, 0, 0, 0xc, 1}

	nasMAC   = steertest.PeerMAC // sender on the ingress side
	lbIn     = steertest.IngressMAC
	lbGw     = steertest.GatewayMAC
	nextHop  = steertest.NextHopMAC
	otherMAC = nat.MAC{0x02, 0, 0, 0, 0x99, 0x99}
	bcast    = nat.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func row(p string, gws ...nat.Gateway) nat.T4Row {
	return nat.T4Row{Range: netip.MustParsePrefix(p), Gateways: gws}
}

func up(m nat.MAC) nat.Gateway   { return nat.Gateway{MAC: m, Up: true} }
func down(m nat.MAC) nat.Gateway { return nat.Gateway{MAC: m} }

// goldenRows is the T4 of the golden tests.
func goldenRows() []nat.T4Row {
	eight := make([]nat.Gateway, nat.MaxGateways)
	for i := range eight {
		eight[i] = down(nat.MAC{0x02, 0, 0, 0, 0x80, byte(i)})
	}
	eight[7].Up = true
	return []nat.T4Row{
		row("10.1.0.0/16", up(gwA), up(gwB)),
		row("10.2.0.0/16", down(gwA), up(gwB)),
		row("10.3.0.0/16", down(gwA), down(gwB)),
		row("10.4.0.0/16", eight...),
		row("10.5.5.5/32", up(gwC)),
		row("2001:db8:1::/48", up(gwA), up(gwC)),
		row("2001:db8:2::/48", down(gwA), down(gwB), up(gwC)),
		row("2001:db8:3::/48", down(gwC)),
	}
}

var goldenExclude = []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8:ff::1")}

// Golden is one golden packet: a frame arriving on Side, the verdict and
// output frame wanted (nil Out: the frame must come back unchanged), and
// the counter that must move.
type golden struct {
	name   string
	side   steer.Side
	in     []byte
	act    steer.Action
	out    []byte
	reason dp.Reason // for Drop
}

func goldens() []golden {
	u4 := func(src, dst string) []byte { return ipv4(src, dst, 17, nil, udp("payload")) }
	u6 := func(src, dst string) []byte { return ipv6(src, dst, 17, udp("payload")) }
	upIn := func(vlan int, et uint16, l3 []byte) []byte { return ether(lbIn, nasMAC, vlan, et, l3) }
	dnIn := func(vlan int, et uint16, l3 []byte) []byte { return ether(lbGw, gwB, vlan, et, l3) }
	toGw := func(f []byte, gw nat.MAC) []byte { return rewrite(f, gw, lbGw) }
	toNAS := func(f []byte) []byte { return rewrite(f, nextHop, lbIn) }
	const v4, v6, arp, qinq = 0x0800, 0x86dd, 0x0806, 0x88a8

	var gs []golden
	add := func(g golden) { gs = append(gs, g) }
	fwd := func(name string, in []byte, gw nat.MAC) {
		add(golden{name: name, side: steer.IngressSide, in: in, act: steer.Redirect, out: toGw(in, gw)})
	}
	drop := func(name string, side steer.Side, in []byte, r dp.Reason) {
		add(golden{name: name, side: side, in: in, act: steer.Drop, reason: r})
	}
	pass := func(name string, side steer.Side, in []byte) {
		add(golden{name: name, side: side, in: in, act: steer.Pass})
	}

	// Up direction (R-LB-1).
	fwd("v4 primary", upIn(-1, v4, u4("10.1.2.3", "198.51.100.7")), gwA)
	fwd("v4 primary down: substitute", upIn(-1, v4, u4("10.2.0.9", "198.51.100.7")), gwB)
	fwd("v4 only the 8th gateway up", upIn(-1, v4, u4("10.4.255.255", "198.51.100.7")), nat.MAC{0x02, 0, 0, 0, 0x80, 7})
	fwd("v4 /32 row", upIn(-1, v4, u4("10.5.5.5", "198.51.100.7")), gwC)
	fwd("v4 with options", upIn(-1, v4, ipv4("10.1.0.1", "198.51.100.7", 17, []byte{1, 1, 1, 0}, udp("o"))), gwA)
	fwd("v4 tcp", upIn(-1, v4, ipv4("10.1.0.1", "198.51.100.7", 6, nil, make([]byte, 20))), gwA)
	fwd("v4 vlan tag kept", upIn(100, v4, u4("10.1.2.3", "198.51.100.7")), gwA)
	fwd("v6 primary", upIn(-1, v6, u6("2001:db8:1::5", "2001:db8:99::1")), gwA)
	fwd("v6 two down: second substitute", upIn(-1, v6, u6("2001:db8:2:ffff::1", "2001:db8:99::1")), gwC)
	fwd("v6 vlan tag kept", upIn(7, v6, u6("2001:db8:1::5", "2001:db8:99::1")), gwA)
	fwd("v6 echo request is ours", upIn(-1, v6, ipv6("2001:db8:1::5", "2001:db8:99::1", 58, icmp6(128))), gwA)
	fwd("v6 icmpv6 without type byte is ours", upIn(-1, v6, ipv6("2001:db8:1::5", "2001:db8:99::1", 58, nil)), gwA)
	fwd("v6 ipv4-mapped source matches v4 row", upIn(-1, v6, u6("::ffff:10.2.3.4", "2001:db8:99::1")), gwB)
	fwd("v4 to another host's address", upIn(-1, v4, u4("10.1.2.3", "10.0.0.2")), gwA)
	drop("v4 all gateways down", steer.IngressSide, upIn(-1, v4, u4("10.3.1.1", "198.51.100.7")), dp.ReasonAllDown)
	drop("v6 all gateways down", steer.IngressSide, upIn(-1, v6, u6("2001:db8:3::1", "2001:db8:99::1")), dp.ReasonAllDown)
	drop("v4 no row", steer.IngressSide, upIn(-1, v4, u4("10.200.0.1", "198.51.100.7")), dp.ReasonNoRoute)
	drop("v4 just outside a /32", steer.IngressSide, upIn(-1, v4, u4("10.5.5.6", "198.51.100.7")), dp.ReasonNoRoute)
	drop("v6 no row", steer.IngressSide, upIn(-1, v6, u6("2001:db8:4::1", "2001:db8:99::1")), dp.ReasonNoRoute)
	drop("v6 ipv4-mapped source, no v4 row", steer.IngressSide, upIn(-1, v6, u6("::ffff:10.200.0.1", "2001:db8:99::1")), dp.ReasonNoRoute)
	drop("v4 vlan no row", steer.IngressSide, upIn(5, v4, u4("10.200.0.1", "198.51.100.7")), dp.ReasonNoRoute)

	// Malformed: ours by MAC and EtherType, but the IP header is bad.
	good4 := u4("10.1.2.3", "198.51.100.7")
	bad := func(name string, l3 []byte) {
		drop(name, steer.IngressSide, upIn(-1, v4, l3), dp.ReasonMalformed)
	}
	mod := func(b []byte, f func([]byte)) []byte { b = append([]byte{}, b...); f(b); return b }
	bad("v4 truncated", good4[:19])
	bad("v4 version 6", mod(good4, func(b []byte) { b[0] = 0x65 }))
	bad("v4 ihl 4", mod(good4, func(b []byte) { b[0] = 0x44 }))
	bad("v4 ihl 15 past the end", mod(good4, func(b []byte) { b[0] = 0x4f }))
	drop("v4 vlan truncated", steer.IngressSide, upIn(9, v4, good4[:10]), dp.ReasonMalformed)
	good6 := u6("2001:db8:1::5", "2001:db8:99::1")
	drop("v6 truncated", steer.IngressSide, upIn(-1, v6, good6[:39]), dp.ReasonMalformed)
	drop("v6 version 4", steer.IngressSide, upIn(-1, v6, mod(good6, func(b []byte) { b[0] = 0x40 })), dp.ReasonMalformed)
	drop("down v4 truncated", steer.GatewaySide, dnIn(-1, v4, good4[:12]), dp.ReasonMalformed)

	// Down direction (R-LB-3).
	for _, in := range [][]byte{
		dnIn(-1, v4, u4("198.51.100.7", "10.1.2.3")),
		dnIn(-1, v6, u6("2001:db8:99::1", "2001:db8:1::5")),
		dnIn(300, v4, u4("198.51.100.7", "10.200.0.1")), // no T4 row needed
	} {
		add(golden{name: "down", side: steer.GatewaySide, in: in, act: steer.Redirect, out: toNAS(in)})
	}

	// Not ours: the kernel keeps it (R-LB-5).
	pass("arp request to own mac", steer.IngressSide, upIn(-1, arp, arpRequest(nasMAC, "10.0.0.2", "10.0.0.1")))
	pass("arp broadcast", steer.IngressSide, ether(bcast, nasMAC, -1, arp, arpRequest(nasMAC, "10.0.0.2", "10.0.0.1")))
	pass("v4 ping to host", steer.IngressSide, upIn(-1, v4, ipv4("10.1.2.3", "10.0.0.1", 1, nil, make([]byte, 16))))
	pass("v4 ssh to host from gateway side", steer.GatewaySide, dnIn(-1, v4, ipv4("10.9.0.1", "10.0.0.1", 6, nil, make([]byte, 20))))
	pass("v6 to host", steer.IngressSide, upIn(-1, v6, u6("2001:db8:1::5", "2001:db8:ff::1")))
	pass("v6 vlan to host", steer.IngressSide, upIn(3, v6, u6("2001:db8:1::5", "2001:db8:ff::1")))
	for typ := byte(133); typ <= 137; typ++ {
		pass("nd", steer.IngressSide, upIn(-1, v6, ipv6("fe80::2", "fe80::1", 58, icmp6(typ))))
		pass("nd from gateway side", steer.GatewaySide, dnIn(-1, v6, ipv6("fe80::2", "fe80::1", 58, icmp6(typ))))
	}
	pass("other mac", steer.IngressSide, ether(otherMAC, nasMAC, -1, v4, good4))
	pass("broadcast ipv4", steer.IngressSide, ether(bcast, nasMAC, -1, v4, good4))
	pass("gateway-side mac on ingress side", steer.IngressSide, ether(lbGw, nasMAC, -1, v4, good4))
	pass("ingress-side mac on gateway side", steer.GatewaySide, ether(lbIn, gwB, -1, v4, good4))
	pass("802.1ad outer tag", steer.IngressSide, upIn(-1, qinq, append([]byte{0, 5, 0x08, 0}, good4...)))
	pass("vlan tag with nothing behind it", steer.IngressSide, ether(lbIn, nasMAC, -1, 0x8100, []byte{0, 1}))
	drop("ethernet header only", steer.IngressSide, ether(lbIn, nasMAC, -1, v4, nil), dp.ReasonMalformed)
	return gs
}

// runGolden runs g and checks the verdict, the output frame and that
// exactly the right counters moved.
func runGolden(t *testing.T, o *steer.Offload, g golden) {
	t.Helper()
	before, err := o.Counters()
	if err != nil {
		t.Fatal(err)
	}
	out, act, err := o.Run(g.in, g.side)
	if err != nil {
		t.Fatal(err)
	}
	if act != g.act {
		t.Errorf("action %v, want %v", act, g.act)
	}
	want := g.out
	if want == nil {
		want = g.in
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("output frame (-want +got):\n%s", diff)
	}
	after, err := o.Counters()
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(len(g.in))
	var d steer.Counters
	switch g.act {
	case steer.Pass:
		d.Passed = 1
	case steer.Drop:
		d.RxPackets, d.RxBytes = 1, n
		d.Drops[g.reason] = 1
	default:
		d.RxPackets, d.RxBytes, d.TxPackets, d.TxBytes = 1, n, 1, n
	}
	if diff := cmp.Diff(d, delta(before, after)); diff != "" {
		t.Errorf("counter deltas (-want +got):\n%s", diff)
	}
}

func delta(a, b steer.Counters) steer.Counters {
	d := steer.Counters{
		RxPackets: b.RxPackets - a.RxPackets, RxBytes: b.RxBytes - a.RxBytes,
		TxPackets: b.TxPackets - a.TxPackets, TxBytes: b.TxBytes - a.TxBytes,
		Passed: b.Passed - a.Passed,
	}
	for i := range d.Drops {
		d.Drops[i] = b.Drops[i] - a.Drops[i]
	}
	return d
}

func loadGolden(t testing.TB) (*steertest.Sandbox, *steer.Offload) {
	sb := steertest.New(t)
	cfg := sb.Config()
	cfg.Exclude = goldenExclude
	o := sb.Load(t, cfg)
	if err := o.Sync(goldenRows()); err != nil {
		t.Fatal(err)
	}
	return sb, o
}

func TestGolden(t *testing.T) {
	privtest.Require(t)
	_, o := loadGolden(t)
	for _, g := range goldens() {
		t.Run(g.name, func(t *testing.T) { runGolden(t, o, g) })
	}
}

// TestGoldenThroughT4 drives the offload from a nat.T4 through OnChange:
// gateway state changes and row edits reach the maps, and a rejected
// update changes neither table.
func TestGoldenThroughT4(t *testing.T) {
	privtest.Require(t)
	_, o := loadGolden(t)
	t4, err := nat.NewT4(goldenRows())
	if err != nil {
		t.Fatal(err)
	}
	if err := t4.OnChange(o.Sync); err != nil {
		t.Fatal(err)
	}
	f := ether(lbIn, nasMAC, -1, 0x0800, ipv4("10.1.2.3", "198.51.100.7", 17, nil, udp("x")))
	check := func(act steer.Action, out []byte) {
		t.Helper()
		runGolden(t, o, golden{side: steer.IngressSide, in: f, act: act, out: out, reason: dp.ReasonAllDown})
		if diff := cmp.Diff(t4.Rows(), mustTable(t, o), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
			t.Errorf("maps differ from nat.T4 (-t4 +maps):\n%s", diff)
		}
	}
	check(steer.Redirect, rewrite(f, gwA, lbGw))
	if _, err := t4.SetGatewayState(gwA, false); err != nil {
		t.Fatal(err)
	}
	check(steer.Redirect, rewrite(f, gwB, lbGw))
	if _, err := t4.SetGatewayState(gwB, false); err != nil {
		t.Fatal(err)
	}
	check(steer.Drop, nil)
	if err := t4.Put(row("10.1.0.0/16", up(gwC))); err != nil {
		t.Fatal(err)
	}
	check(steer.Redirect, rewrite(f, gwC, lbGw))
	if err := t4.Put(row("10.1.2.0/24", up(gwA))); err == nil {
		t.Fatal("overlapping row accepted")
	}
	check(steer.Redirect, rewrite(f, gwC, lbGw))
	if _, err := t4.SetGatewayState(gwA, true); err != nil {
		t.Fatal(err)
	}
	check(steer.Redirect, rewrite(f, gwC, lbGw))
	if err := t4.Delete(netip.MustParsePrefix("10.1.0.0/16")); err != nil {
		t.Fatal(err)
	}
	runGolden(t, o, golden{side: steer.IngressSide, in: f, act: steer.Drop, reason: dp.ReasonNoRoute})
}

func mustTable(t *testing.T, o *steer.Offload) []nat.T4Row {
	t.Helper()
	rows, err := o.Table()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestTableRoundTrip(t *testing.T) {
	privtest.Require(t)
	_, o := loadGolden(t)
	t4, err := nat.NewT4(goldenRows())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(t4.Rows(), mustTable(t, o), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := o.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if rows := mustTable(t, o); len(rows) != 0 {
		t.Errorf("empty sync left %d rows", len(rows))
	}
}

func TestNextHop(t *testing.T) {
	privtest.Require(t)
	_, o := loadGolden(t)
	f := ether(lbGw, gwA, -1, 0x0800, ipv4("198.51.100.7", "10.1.2.3", 17, nil, udp("x")))
	if err := o.SetNextHop(nat.MAC{}); err != nil {
		t.Fatal(err)
	}
	runGolden(t, o, golden{side: steer.GatewaySide, in: f, act: steer.Drop, reason: dp.ReasonNoNextHop})
	if err := o.SetNextHop(nat.MAC{}); err != nil {
		t.Fatalf("clearing an unknown next hop: %v", err)
	}
	nh := nat.MAC{0x02, 0, 0, 0, 0x77, 0x77}
	if err := o.SetNextHop(nh); err != nil {
		t.Fatal(err)
	}
	runGolden(t, o, golden{side: steer.GatewaySide, in: f, act: steer.Redirect, out: rewrite(f, nh, lbIn)})
	if err := o.SetNextHop(bcast); err == nil {
		t.Error("broadcast next hop accepted")
	}
}

// TestOneArmed: one interface for both sides, every frame is an up frame
// and leaves with XDP_TX.
func TestOneArmed(t *testing.T) {
	privtest.Require(t)
	sb := steertest.New(t)
	cfg := sb.Config()
	cfg.GatewayIfindex, cfg.GatewayMAC = cfg.IngressIfindex, cfg.IngressMAC
	o := sb.Load(t, cfg)
	if err := o.Sync(goldenRows()); err != nil {
		t.Fatal(err)
	}
	f := ether(lbIn, nasMAC, -1, 0x0800, ipv4("10.2.2.3", "198.51.100.7", 17, nil, udp("x")))
	runGolden(t, o, golden{side: steer.IngressSide, in: f, act: steer.TX, out: rewrite(f, gwB, lbIn)})
}

// TestEgressGone: deleting the gateway-side interface empties its devmap
// slot; frames for it are counted as tx_error drops.
func TestEgressGone(t *testing.T) {
	privtest.Require(t)
	sb, o := loadGolden(t)
	l, err := sb.NS.Netlink().LinkByIndex(sb.GatewayIfindex)
	if err != nil {
		t.Fatal(err)
	}
	// Deleting one end of a veth deletes both.
	if err := sb.NS.Netlink().LinkDel(l); err != nil {
		t.Fatal(err)
	}
	f := ether(lbIn, nasMAC, -1, 0x0800, ipv4("10.1.2.3", "198.51.100.7", 17, nil, udp("x")))
	runGolden(t, o, golden{side: steer.IngressSide, in: f, act: steer.Drop, reason: dp.ReasonTxError})
}
