package dp_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/dp"
	"samepath/dp/dptest"
	"samepath/nat"
	"samepath/ring/memport"
)

// The LB under test: port 0 is the ingress side, port 1 the gateway side.
var (
	lbIngressMAC = dptest.MAC("02:00:00:00:01:01")
	lbGatewayMAC = dptest.MAC("02:00:00:00:01:02")
	nasMAC       = dptest.MAC("02:00:00:00:00:0a")
	mobileMAC    = dptest.MAC("02:00:00:00:00:0b") // behind the NAS
	gw1          = dptest.MAC("02:00:00:00:10:01")
	gw2          = dptest.MAC("02:00:00:00:10:02")
	gw3          = dptest.MAC("02:00:00:00:10:03")
)

// lbT4 is the table every golden case runs against:
//
//	10.101.0.0/24   gw1 up,   gw2 up
//	10.102.0.0/24   gw1 down, gw2 up      (primary down: substitute)
//	10.103.0.0/24   gw1 down, gw2 down, gw3 up
//	10.104.0.0/24   gw1 down              (all down)
//	fd00:101::/64   gw1 up
//	fd00:102::/64   gw1 down, gw2 up
func lbT4() []nat.T4Row {
	p := netip.MustParsePrefix
	return []nat.T4Row{
		{Range: p("10.101.0.0/24"), Gateways: []nat.Gateway{{MAC: gw1, Up: true}, {MAC: gw2, Up: true}}},
		{Range: p("10.102.0.0/24"), Gateways: []nat.Gateway{{MAC: gw1}, {MAC: gw2, Up: true}}},
		{Range: p("10.103.0.0/24"), Gateways: []nat.Gateway{{MAC: gw1}, {MAC: gw2}, {MAC: gw3, Up: true}}},
		{Range: p("10.104.0.0/24"), Gateways: []nat.Gateway{{MAC: gw1}}},
		{Range: p("fd00:101::/64"), Gateways: []nat.Gateway{{MAC: gw1, Up: true}}},
		{Range: p("fd00:102::/64"), Gateways: []nat.Gateway{{MAC: gw1}, {MAC: gw2, Up: true}}},
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// upFrame is a frame from the NAS to the LB; down one from a gateway.
func upFrame(src, dst string) *dptest.Builder {
	b := dptest.Frame().Eth(nasMAC, lbIngressMAC)
	if addr(src).Is4() {
		return b.IPv4(addr(src), addr(dst))
	}
	return b.IPv6(addr(src), addr(dst))
}

// lbGoldens are the LB's golden packets (dptest.Golden, the fixture
// type of every pipeline's golden tests and benchmarks).
func lbGoldens() []dptest.Golden {
	var g []dptest.Golden
	steered := func(name string, in func() *dptest.Builder, to [6]byte) {
		g = append(g, dptest.Golden{Name: name, In: in().Bytes(), InPort: 0,
			Want: in().Eth(lbGatewayMAC, to).Bytes(), WantPort: 1})
	}
	dropped := func(name string, in []byte, port int, r dp.Reason) {
		g = append(g, dptest.Golden{Name: name, In: in, InPort: port, WantPort: -1, WantDrop: r})
	}
	steered("v4 udp to primary", func() *dptest.Builder { return upFrame("10.101.0.5", "10.200.0.1").UDP(4000, 53).Payload([]byte("q")) }, gw1)
	steered("v4 tcp syn to primary", func() *dptest.Builder {
		return upFrame("10.101.0.255", "10.200.0.1").TCP(40000, 80).Flags(0x02).Seq(1)
	}, gw1)
	steered("v4 icmp echo", func() *dptest.Builder { return upFrame("10.101.0.0", "10.200.0.1").ICMPEcho(7, 1) }, gw1)
	steered("v4 primary down -> substitute", func() *dptest.Builder { return upFrame("10.102.0.9", "10.200.0.1").UDP(1, 2) }, gw2)
	steered("v4 two down -> second substitute", func() *dptest.Builder { return upFrame("10.103.0.9", "10.200.0.1").UDP(1, 2) }, gw3)
	steered("v4 with ip options", func() *dptest.Builder {
		return upFrame("10.101.0.6", "10.200.0.1").IPOptions([]byte{1, 1, 1, 0}).UDP(1, 2)
	}, gw1)
	steered("v4 fragment", func() *dptest.Builder {
		return upFrame("10.101.0.6", "10.200.0.1").Frag(100, false).Proto(17).Payload(make([]byte, 40))
	}, gw1)
	steered("v4 ttl 1 is not the LB's business", func() *dptest.Builder {
		return upFrame("10.101.0.7", "10.200.0.1").TTL(1).UDP(1, 2)
	}, gw1)
	steered("v4 vlan tagged", func() *dptest.Builder { return upFrame("10.101.0.8", "10.200.0.1").VLAN(100).UDP(1, 2) }, gw1)
	steered("v4 padded minimum frame", func() *dptest.Builder {
		return upFrame("10.101.0.8", "10.200.0.1").UDP(1, 2).PadTo(60)
	}, gw1)
	steered("v6 udp to primary", func() *dptest.Builder { return upFrame("fd00:101::5", "fd00:200::1").UDP(4000, 53) }, gw1)
	steered("v6 tcp primary down -> substitute", func() *dptest.Builder {
		return upFrame("fd00:102::5", "fd00:200::1").TCP(40000, 443).Flags(0x02)
	}, gw2)
	steered("v6 with extension headers", func() *dptest.Builder {
		return upFrame("fd00:101::5", "fd00:200::1").HopByHop([]byte{1, 4, 0, 0, 0, 0}).Fragment(0, true, 9).UDP(1, 2)
	}, gw1)
	steered("v6 icmpv6 echo", func() *dptest.Builder { return upFrame("fd00:101::9", "fd00:200::1").ICMPEcho(1, 1) }, gw1)

	dropped("v4 source in no row", upFrame("10.105.0.1", "10.200.0.1").UDP(1, 2).Bytes(), 0, dp.ReasonNoRoute)
	dropped("v4 just below a row", upFrame("10.100.255.255", "10.200.0.1").UDP(1, 2).Bytes(), 0, dp.ReasonNoRoute)
	dropped("v6 source in no row", upFrame("fd00:103::1", "fd00:200::1").UDP(1, 2).Bytes(), 0, dp.ReasonNoRoute)
	dropped("v4 all gateways down", upFrame("10.104.0.1", "10.200.0.1").UDP(1, 2).Bytes(), 0, dp.ReasonAllDown)
	short := upFrame("10.101.0.5", "10.200.0.1").UDP(1, 2).Bytes()
	dropped("v4 truncated ip header", short[:14+19], 0, dp.ReasonMalformed)
	bad := upFrame("10.101.0.5", "10.200.0.1").UDP(1, 2).Bytes()
	bad[14] = 0x65 // version 6 in an IPv4 frame
	dropped("v4 wrong version", bad, 0, dp.ReasonMalformed)
	ihl := upFrame("10.101.0.5", "10.200.0.1").UDP(1, 2).Bytes()
	ihl[14] = 0x44 // IHL 4 words
	dropped("v4 ihl below 5", ihl, 0, dp.ReasonMalformed)
	long := upFrame("10.101.0.5", "10.200.0.1").UDP(1, 2).Bytes()
	long[14] = 0x4f // IHL 60 bytes, more than the frame holds
	dropped("v4 ihl past the frame", long[:14+40], 0, dp.ReasonMalformed)
	v6 := upFrame("fd00:101::5", "fd00:200::1").UDP(1, 2).Bytes()
	dropped("v6 truncated", v6[:14+39], 0, dp.ReasonMalformed)
	dropped("runt ethernet", []byte{1, 2, 3}, 0, dp.ReasonMalformed)
	dropped("vlan tag cut", upFrame("10.101.0.5", "10.200.0.1").VLAN(5).UDP(1, 2).Bytes()[:16], 0, dp.ReasonMalformed)
	dropped("not ip (arp reaches the pipeline)", dptest.Frame().Eth(nasMAC, lbIngressMAC).
		ARP(1, nasMAC, addr("10.0.1.2"), [6]byte{}, addr("10.0.1.1")).Bytes(), 0, dp.ReasonNotIP)

	down := func() *dptest.Builder {
		return dptest.Frame().Eth(gw1, lbGatewayMAC).IPv4(addr("10.200.0.1"), addr("10.101.0.5")).UDP(53, 4000).Payload([]byte("a"))
	}
	g = append(g, dptest.Golden{Name: "v4 down to the next hop", In: down().Bytes(), InPort: 1,
		Want: down().Eth(lbIngressMAC, nasMAC).Bytes(), WantPort: 0})
	down6 := func() *dptest.Builder {
		return dptest.Frame().Eth(gw2, lbGatewayMAC).IPv6(addr("fd00:200::1"), addr("fd00:999::5")).TCP(80, 1234).Flags(0x12)
	}
	g = append(g, dptest.Golden{Name: "v6 down, any destination", In: down6().Bytes(), InPort: 1,
		Want: down6().Eth(lbIngressMAC, nasMAC).Bytes(), WantPort: 0})
	dropped("down malformed", down().Bytes()[:20], 1, dp.ReasonMalformed)
	return g
}

// newLBWorker returns a worker running the LB over two memory ports.
func newLBWorker(t testing.TB, nextHop nat.MAC) (*dp.Worker, *dp.LB, [2]*memport.Port) {
	t.Helper()
	tab, err := nat.NewT4(lbT4())
	if err != nil {
		t.Fatal(err)
	}
	lb, err := dp.NewLB(dp.LBConfig{Ingress: 0, Gateway: 1, IngressMAC: lbIngressMAC, GatewayMAC: lbGatewayMAC, NextHop: nextHop, T4: tab})
	if err != nil {
		t.Fatal(err)
	}
	return newWorkerFor(t, lb, lb)
}

type memportPort = memport.Port

// newWorkerFor returns a worker running pipe over two memory ports
// sharing one umem.
func newWorkerFor(t testing.TB, lb *dp.LB, pipe dp.Pipeline) (*dp.Worker, *dp.LB, [2]*memport.Port) {
	t.Helper()
	u, err := memport.NewUmem(4096)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := memport.New(memport.DefaultConfig("ingress/q0"), u)
	gw, _ := memport.New(memport.DefaultConfig("gateway/q0"), u)
	w, err := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{in, gw}, pipe)
	if err != nil {
		t.Fatal(err)
	}
	return w, lb, [2]*memport.Port{in, gw}
}

func TestLBGolden(t *testing.T) {
	for _, g := range lbGoldens() {
		t.Run(g.Name, func(t *testing.T) {
			w, _, ports := newLBWorker(t, nasMAC)
			before := w.Counters(g.InPort).Snapshot()
			if !ports[g.InPort].Inject(g.In) {
				t.Fatal("inject failed")
			}
			if n, err := w.Poll(); n != 1 || err != nil {
				t.Fatalf("Poll = %d, %v", n, err)
			}
			outs := [2][][]byte{ports[0].TakeAll(), ports[1].TakeAll()}
			after := w.Counters(g.InPort).Snapshot()
			if g.WantPort < 0 {
				if len(outs[0])+len(outs[1]) != 0 {
					t.Fatalf("dropped packet was sent: %x %x", outs[0], outs[1])
				}
				if d := after.Drops[g.WantDrop] - before.Drops[g.WantDrop]; d != 1 || after.Dropped()-before.Dropped() != 1 {
					t.Errorf("drop counter %s +%d (all drops +%d), want +1", g.WantDrop, d, after.Dropped()-before.Dropped())
				}
				return
			}
			got := outs[g.WantPort]
			if len(got) != 1 || len(outs[1-g.WantPort]) != 0 {
				t.Fatalf("want one frame on port %d, got %d there and %d on the other", g.WantPort, len(got), len(outs[1-g.WantPort]))
			}
			if !bytes.Equal(got[0], g.Want) {
				t.Errorf("output differs: %s", dptest.Diff(g.Want, got[0]))
			}
			if err := dptest.VerifyChecksums(got[0]); err != nil && dptest.VerifyChecksums(g.In) == nil {
				t.Errorf("checksums broken by the LB: %v", err)
			}
			if after.Dropped() != before.Dropped() {
				t.Errorf("drops counted for a forwarded packet")
			}
			if tx := w.Counters(g.WantPort).Snapshot().TxPackets; tx != 1 {
				t.Errorf("tx counter %d, want 1", tx)
			}
		})
	}
}

func TestLBNoNextHop(t *testing.T) {
	w, lb, ports := newLBWorker(t, nat.MAC{})
	in := dptest.Frame().Eth(gw1, lbGatewayMAC).IPv4(addr("10.200.0.1"), addr("10.101.0.5")).UDP(53, 4000).Bytes()
	ports[1].Inject(in)
	w.Poll()
	if got := w.Counters(1).Snapshot().Drops[dp.ReasonNoNextHop]; got != 1 {
		t.Errorf("no_next_hop drops %d, want 1", got)
	}
	lb.SetNextHop(nasMAC)
	if lb.NextHop() != nasMAC {
		t.Errorf("NextHop = %s", lb.NextHop())
	}
	ports[1].Inject(in)
	w.Poll()
	if out := ports[0].TakeAll(); len(out) != 1 || !bytes.Equal(out[0][:6], nasMAC[:]) {
		t.Errorf("after SetNextHop: %x", out)
	}
}

// TestLBFollowsT4Updates changes T4 between batches, as the control API
// does while the worker polls.
func TestLBFollowsT4Updates(t *testing.T) {
	tab, _ := nat.NewT4(lbT4())
	lb, _ := dp.NewLB(dp.LBConfig{Ingress: 0, Gateway: 1, IngressMAC: lbIngressMAC, GatewayMAC: lbGatewayMAC, NextHop: nasMAC, T4: tab})
	u, _ := memport.NewUmem(4096)
	in, _ := memport.New(memport.DefaultConfig("i"), u)
	gw, _ := memport.New(memport.DefaultConfig("g"), u)
	w, _ := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{in, gw}, lb)
	frame := upFrame("10.101.0.5", "10.200.0.1").UDP(1, 2).Bytes()
	for _, step := range []struct {
		mac  nat.MAC
		up   bool
		want [6]byte
	}{{gw1, false, gw2}, {gw2, false, [6]byte{}}, {gw1, true, gw1}} {
		if _, err := tab.SetGatewayState(step.mac, step.up); err != nil {
			t.Fatal(err)
		}
		in.Inject(frame)
		w.Poll()
		out := gw.TakeAll()
		if step.want == ([6]byte{}) {
			if len(out) != 0 {
				t.Errorf("all down: frame sent")
			}
			continue
		}
		if len(out) != 1 || !bytes.Equal(out[0][:6], step.want[:]) {
			t.Errorf("after %s up=%v: got %x, want to %x", step.mac, step.up, out, step.want)
		}
	}
}

func TestLBProcessAllocs(t *testing.T) {
	w, _, ports := newLBWorker(t, nasMAC)
	var frames [][]byte
	for _, g := range lbGoldens() {
		frames = append(frames, g.In)
	}
	drain := func([]byte) {}
	n := testing.AllocsPerRun(100, func() {
		for i, f := range frames {
			ports[i%2].Inject(f)
		}
		w.Poll()
		for ports[0].Take(drain) {
		}
		for ports[1].Take(drain) {
		}
	})
	if n != 0 {
		t.Errorf("LB pipeline allocates %v per round", n)
	}
}

// BenchmarkLB measures the LB pipeline on memory ports (ns per packet,
// BENCHMARKS.md "lb pipeline, memory ports"): batches of 64 up frames
// through parse, T4 lookup and rewrite, including the memory ports' own
// copy in and out.
func BenchmarkLB(b *testing.B) {
	for _, size := range []int{64, 1500} {
		for _, flows := range []int{1, 10000} {
			b.Run(fmt.Sprintf("%dB/%dflows", size, flows), func(b *testing.B) {
				w, _, ports := newLBWorker(b, nasMAC)
				frames := make([][]byte, 0, 64)
				for i := 0; i < 64; i++ {
					f := flows
					src := netip.AddrFrom4([4]byte{10, 101, 0, byte(i % f % 256)})
					frames = append(frames, upFrame(src.String(), "10.200.0.1").UDP(uint16(1024+i%f), 53).PadTo(size-4).Bytes())
				}
				drain := func([]byte) {}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				pkts := 0
				for pkts < b.N {
					for _, f := range frames {
						ports[0].Inject(f)
					}
					n, _ := w.Poll()
					pkts += n
					for ports[1].Take(drain) {
					}
				}
			})
		}
	}
}

// TestLBSteerCounters (issue 18): up packets are counted per T4 row and
// chosen gateway, all-down drops per row, in one batch steered by more
// rows than the pipeline sums in place; down packets and unrouted ones
// are not.
func TestLBSteerCounters(t *testing.T) {
	var rows []nat.T4Row
	for i := range 6 {
		rows = append(rows, nat.T4Row{Range: netip.MustParsePrefix(fmt.Sprintf("10.10%d.0.0/24", i)),
			Gateways: []nat.Gateway{{MAC: nat.MAC{2, 0, 0, 0, 0x10, byte(i + 1)}, Up: i != 5}}})
	}
	tab, err := nat.NewT4(rows)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := dp.NewLB(dp.LBConfig{Ingress: 0, Gateway: 1, IngressMAC: lbIngressMAC, GatewayMAC: lbGatewayMAC, NextHop: nasMAC, T4: tab})
	if err != nil {
		t.Fatal(err)
	}
	w, _, ports := newWorkerFor(t, lb, lb)
	want := map[string]uint64{rows[5].Range.String() + " " + rows[5].Gateways[0].MAC.String(): 0} // down: chosen never
	for round := range 2 {
		for i := range 6 {
			for range i + 1 { // row i gets i+1 packets per round
				src := fmt.Sprintf("10.10%d.0.%d", i, round+1)
				ports[0].Inject(upFrame(src, "10.200.0.1").UDP(1024, 53).Bytes())
				k := rows[i].Range.String() + " " + rows[i].Gateways[0].MAC.String()
				if i == 5 {
					k = rows[i].Range.String() + " all-down"
				}
				want[k]++
			}
		}
		ports[0].Inject(upFrame("10.99.0.1", "10.200.0.1").UDP(1024, 53).Bytes()) // no row
		ports[1].Inject(dptest.Frame().Eth(rows[0].Gateways[0].MAC, lbGatewayMAC).IPv4(addr("10.200.0.1"), addr("10.100.0.1")).UDP(53, 1024).Bytes())
		w.Poll()
		for ports[0].Take(func([]byte) {}) {
		}
		for ports[1].Take(func([]byte) {}) {
		}
	}
	got := map[string]uint64{}
	for _, c := range tab.SteerCounts() {
		gw := "all-down"
		if c.Gateway != (nat.MAC{}) {
			gw = c.Gateway.String()
		}
		got[c.Range.String()+" "+gw] = c.Packets
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("steer counts (-want +got):\n%s", d)
	}
}
