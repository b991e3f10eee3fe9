package xlat_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"samepath/dp"
	"samepath/dp/balance"
	"samepath/dp/header"
	"samepath/dp/neigh"
	"samepath/dp/rewrite"
	"samepath/dp/xlat"
	"samepath/nat"
	"samepath/ring/memport"
)

// The NAT64 cases that need state (or the translator's own answers) run
// through the gateway: dp.GW with a translator on two memory ports, its
// LAN side the Jool IPv6 side (the "mobiles" 2001:db8::5 and
// 2001:db8:1::5, without AAA), its server side the IPv4 side (the peer
// 192.0.2.5, which also routes 203.0.113.0/24), key ports on 192.0.2.2 in
// the range of Jool's pool4. Every NAT64 case runs in upstream order on
// one gateway, as upstream runs them on one Jool instance; the cases
// TestJool replays through TranslateWith are sent too (for the state they
// leave, as upstream's run does) but counted there, not here. A case's
// config profile is applied through the translator's Runtime before it
// runs (the MTUs and zeroize-traffic-class of nat64-*), as samepathctl
// would at run time.
//
// Key ports: the gateway maps every flow to a key port of its own
// (address- and port-dependent mapping, ports drawn at random, RFC 6056
// section 3), where Jool's static BIB keeps a fixed one (2000, 1000, ...).
// The harness translates between the two, and only for the IPv4 side's
// ports of a flow whose IPv6 end has a static BIB entry: sends from the
// IPv4 side naming Jool's port are sent to the flow's key port, and the
// gateway's packets on the IPv4 side have the key port replaced by
// Jool's (checksums adjusted by dp/rewrite) before the comparison. A
// case whose packets needed that is a deviation: its line in
// testdata/deviations.txt must say "key-port:", and it must match byte
// for byte after the mapping (otherwise it fails).

var (
	jgLanMAC = [6]byte{2, 0, 0, 0, 0x64, 1}
	jgSrvMAC = [6]byte{2, 0, 0, 0, 0x64, 2}
	jgN6MAC  = [6]byte{2, 0, 0, 0, 0x66, 5}
	jgN4MAC  = [6]byte{2, 0, 0, 0, 0x44, 5}
)

// joolGW is the gateway under replay.
type joolGW struct {
	t      *testing.T
	gw     *dp.GW
	w      *dp.Worker
	lan    *memport.Port
	srv    *memport.Port
	flows  *nat.PortTable
	rt     *xlat.Runtime
	key4   nat.Addr16
	bib    []joolBIB
	config string
	mapped bool   // the case in hand needed a key port mapping
	bad    string // what the mapping found wrong in the case in hand
}

func newJoolGW(t *testing.T, jc *joolConfig, name string) *joolGW {
	t.Helper()
	key4 := netip.MustParsePrefix(jc.Side4.Addresses[0]).Addr()
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs = []netip.Addr{key4}
	pc.PortMin, pc.PortMax = 1, 3000 // Jool's pool4 range
	pc.Capacity = 256
	flows, err := nat.NewPortTable(pc)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := balance.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	dist, err := balance.NewDist(svcs, 256)
	if err != nil {
		t.Fatal(err)
	}
	nb := neigh.New()
	// The IPv4 peer, and the hosts it routes for (translator_routes).
	nb.Set(map[[16]byte][6]byte{
		netip.MustParseAddr("192.0.2.5").As16():    jgN4MAC,
		netip.MustParseAddr("203.0.113.6").As16():  jgN4MAC,
		netip.MustParseAddr("203.0.113.24").As16(): jgN4MAC,
	})
	tr, err := xlat.New(jc.xlat())
	if err != nil {
		t.Fatal(err)
	}
	g, err := dp.NewGW(dp.GWConfig{Lan: 0, Servers: 1, LanMAC: jgLanMAC, ServerMAC: jgSrvMAC,
		Flows: flows, Services: svcs, Dist: dist, Neighbors: nb, LBCacheSize: 64, ExpireBudget: 64, Xlat: tr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	u, _ := memport.NewUmem(4096)
	lan, _ := memport.New(memport.DefaultConfig("lan"), u)
	srv, _ := memport.New(memport.DefaultConfig("srv"), u)
	w, err := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{lan, srv}, g)
	if err != nil {
		t.Fatal(err)
	}
	w.Poll() // hands the ports their first free frames
	return &joolGW{t: t, gw: g, w: w, lan: lan, srv: srv, flows: flows, rt: tr.Runtime(),
		key4: nat.Addr16From(key4), bib: jc.StaticBIB, config: name}
}

// use applies config profile name through the translator's Runtime.
func (j *joolGW) use(name string, jc *joolConfig) {
	if name == j.config {
		return
	}
	if err := j.rt.Set(jc.xlat()); err != nil {
		j.t.Fatalf("config %s: %v", name, err)
	}
	j.config = name
}

func protoName(p uint8) string {
	switch p {
	case header.ProtoTCP:
		return "tcp"
	case header.ProtoUDP:
		return "udp"
	}
	return "icmp"
}

// joolPort is Jool's IPv4 port for the flow of binding b: its static BIB
// entry's, if the flow's IPv6 end has one.
func (j *joolGW) joolPort(b *nat.Binding) (uint16, bool) {
	for _, e := range j.bib {
		if e.Protocol == protoName(b.Flow.Proto) && nat.Addr16From(netip.MustParseAddr(e.IPv6)) == b.Flow.Src && e.Port6 == b.Flow.SPort {
			return e.Port4, true
		}
	}
	return 0, false
}

// flowProto is the binding protocol of an IPv4 packet's protocol.
func flowProto(p uint8) uint8 {
	if p == header.ProtoICMPv4 {
		return header.ProtoICMPv6 // the flows are the IPv6 mobiles'
	}
	return p
}

// toKey finds the flow whose Jool port is port toward remote:rport and
// returns its key port.
func (j *joolGW) toKey(proto uint8, port uint16, remote nat.Addr16, rport uint16) (uint16, bool) {
	var key uint16
	found := false
	j.flows.Snapshot(func(b nat.Binding) bool {
		if b.Flow.Proto != flowProto(proto) || b.Server != remote || (proto != header.ProtoICMPv4 && b.SPort != rport) {
			return true
		}
		if p, ok := j.joolPort(&b); ok && p == port {
			key, found = b.GwPort, true
			return false
		}
		return true
	})
	return key, found
}

// fromKey returns Jool's port for key port key of protocol proto.
func (j *joolGW) fromKey(proto uint8, key uint16) (uint16, bool) {
	id, ok := j.flows.Down(j.key4, key, proto)
	if !ok {
		return 0, false
	}
	return j.joolPort(j.flows.Binding(id))
}

// mapSend rewrites an IPv4 frame to send so that Jool's port on the
// gateway's address is the flow's key port.
func (j *joolGW) mapSend(f []byte) {
	var d header.Decoded
	if header.Decode(f, &d) != header.OK || d.IPVersion != 4 {
		return
	}
	switch tu := d.Tuple; d.Kind {
	case header.KindFlow:
		if tu.Dst != j.key4 {
			return
		}
		if k, ok := j.toKey(d.Proto, tu.DPort, tu.Src, tu.SPort); ok && k != tu.DPort {
			tu.DPort = k
			rewrite.Flow(f, &d, &tu)
			j.mapped = true
		}
	case header.KindICMPError:
		q := d.Quote.Tuple
		if q.Src != j.key4 {
			return
		}
		if k, ok := j.toKey(q.Proto, q.SPort, q.Dst, q.DPort); ok && k != q.SPort {
			q.SPort = k
			rewrite.ICMPError(f, &d, tu.Src, tu.Dst, &q)
			j.mapped = true
		}
	}
}

// mapOut rewrites an IPv4 frame the gateway sent so that the key port
// reads as Jool's port.
func (j *joolGW) mapOut(f []byte) {
	var d header.Decoded
	if header.Decode(f, &d) != header.OK || d.IPVersion != 4 {
		return
	}
	switch tu := d.Tuple; d.Kind {
	case header.KindFlow:
		if tu.Src != j.key4 {
			return
		}
		if p, ok := j.fromKey(d.Proto, tu.SPort); ok {
			j.mapped = true
			tu.SPort = p
			rewrite.Flow(f, &d, &tu)
		}
	case header.KindICMPError:
		q := d.Quote.Tuple
		if q.Dst != j.key4 {
			return
		}
		if p, ok := j.fromKey(q.Proto, q.DPort); ok {
			// ICMPError recomputes the ICMP checksum: hold the
			// gateway's to a full computation first, or the mapping
			// would hide a wrong one.
			if err := header.VerifyChecksums(f); err != nil {
				j.bad = fmt.Sprintf("the gateway's ICMP error before the key port mapping: %v", err)
			}
			j.mapped = true
			q.DPort = p
			rewrite.ICMPError(f, &d, tu.Src, tu.Dst, &q)
		}
	}
}

// inject sends one raw layer-3 packet into the side from ("ipv4" or
// "ipv6"; an IPv4 one with Jool's ports mapped to the gateway's when
// mapPorts) and returns the frames the gateway sent out of each side, as
// sent.
func (j *joolGW) inject(ip []byte, from string, mapPorts bool) (out4, out6 [][]byte) {
	f := ethFrame(ip)
	port := j.lan
	if from == "ipv4" {
		copy(f[0:6], jgSrvMAC[:])
		copy(f[6:12], jgN4MAC[:])
		if mapPorts {
			j.mapSend(f)
		}
		port = j.srv
	} else {
		copy(f[0:6], jgLanMAC[:])
		copy(f[6:12], jgN6MAC[:])
	}
	if !port.Inject(f) {
		j.t.Fatal("inject failed")
	}
	j.w.Poll()
	return j.srv.TakeAll(), j.lan.TakeAll()
}

// routerError is what the IPv4 peer of upstream's network (forwarding
// on, no route to 203.0.113.0/24) answers a translated packet with:
// ICMPv4 3/0 from its address, quoting the packet whole (it is shorter
// than the 576 bytes an ICMPv4 error may hold).
func routerError(quoted []byte) []byte {
	n := 20 + 8 + len(quoted)
	b := make([]byte, n)
	b[0], b[8], b[9] = 0x45, 64, header.ProtoICMPv4
	b[2], b[3] = byte(n>>8), byte(n)
	copy(b[12:16], []byte{192, 0, 2, 5})
	copy(b[16:20], []byte{192, 0, 2, 2})
	cs := ^header.Checksum(b[:20], 0)
	b[10], b[11] = byte(cs>>8), byte(cs)
	b[20], b[21] = header.ICMPv4DstUnreachable, 0
	copy(b[28:], quoted)
	cs = ^header.Checksum(b[20:], 0)
	b[22], b[23] = byte(cs>>8), byte(cs)
	return b
}

// run replays case c and returns "" or what went wrong.
func (j *joolGW) run(dir string, c *joolCase, jc *joolConfig) string {
	j.use(c.Config, jc)
	j.mapped, j.bad = false, ""
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			j.t.Fatal(err)
		}
		return b
	}
	for _, p := range c.PreSend {
		j.inject(read(p.Packet), p.From, true)
	}
	from := "ipv6"
	if strings.HasPrefix(c.Direction, "4") {
		from = "ipv4"
	}
	before := j.counters()
	out4, out6 := j.inject(read(c.Send), from, true)
	if strings.HasPrefix(c.ID, "nat64/misc/issue132/") {
		// The IPv4 peer has no route for the translated packet: its
		// ICMPv4 error comes back (upstream's network does this; here
		// the harness does), quoting the packet as the gateway sent it.
		if len(out4) != 1 {
			return fmt.Sprintf("gateway sent %d IPv4 packets for the peer to answer, want 1", len(out4))
		}
		out4, out6 = j.inject(routerError(out4[0][header.EthernetLen:]), "ipv4", false)
	}
	frames := out6
	if strings.HasSuffix(c.Direction, "4") {
		frames = out4
		for _, f := range frames {
			j.mapOut(f)
		}
	}
	if j.bad != "" {
		return j.bad
	}
	var got [][]byte
	for _, f := range frames {
		got = append(got, f[header.EthernetLen:])
	}
	return matchJool(j.t, dir, c, got, fmt.Sprintf("gateway (drops %v)", j.drops(before)))
}

// counters reads both ports' counters.
func (j *joolGW) counters() [2]dp.Snapshot {
	return [2]dp.Snapshot{j.w.Counters(0).Snapshot(), j.w.Counters(1).Snapshot()}
}

// drops lists the drops since before.
func (j *joolGW) drops(before [2]dp.Snapshot) string {
	var s []string
	now := j.counters()
	for p := range now {
		for r, n := range now[p].Drops {
			if n -= before[p].Drops[r]; n > 0 {
				s = append(s, fmt.Sprintf("port%d:%v=%d", p, dp.Reason(r), n))
			}
		}
	}
	return strings.Join(s, " ")
}
