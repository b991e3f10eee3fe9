package dp_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"samepath/dp"
	"samepath/dp/balance"
	"samepath/dp/dptest"
	"samepath/dp/neigh"
	"samepath/dp/xlat"
	"samepath/nat"
	"samepath/ring/memport"
)

// BenchmarkGWXlat measures NAT64 on the gateway's up path on memory
// ports (ns per packet; the quiet counterpart of `make perf` xlat): UDP
// datagrams of established flows through one service (rep 10.30.0.1:9 ->
// a1:9, connection unit), cycling over 1 000 flows, from an IPv4 mobile
// to the representative address (v4) and from an IPv6 mobile to its RFC
// 6052 address 64:ff9b::a1e:1 (nat64), on the same gateway with the
// translator on. Sizes name the IPv4 frame the gateway sends in both; the
// IPv6 frames carry the same payload in 20 bytes more. The memory ports'
// own copy in and out is included. paired alternates chunks of 16 rounds
// of both on the one gateway and reports each one's ns/pkt and the ratio
// nat64/v4, measured under the same load (the figure to read on a shared
// machine).
func BenchmarkGWXlat(b *testing.B) {
	const flows = 1000
	for _, size := range []int{64, 1500} {
		prefix := fmt.Sprintf("%dB/%dflows/", size, flows)
		for _, v6 := range []bool{false, true} {
			name := "v4"
			if v6 {
				name = "nat64"
			}
			b.Run(prefix+name, func(b *testing.B) {
				r := newXlatRig(b, size, flows)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				pkts := 0
				for pkts < b.N {
					pkts += r.round(v6)
				}
				b.StopTimer()
				b.ReportMetric(float64(pkts)/time.Since(start).Seconds()/1e6, "Mpps")
			})
		}
		b.Run(prefix+"paired", func(b *testing.B) {
			r := newXlatRig(b, size, flows)
			var took [2]time.Duration
			var pkts [2]int
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for pkts[0]+pkts[1] < b.N {
				for i, v6 := range []bool{false, true} {
					t0 := time.Now() // per chunk of 16 rounds (512 packets), not per packet
					for range 16 {
						pkts[i] += r.round(v6)
					}
					took[i] += time.Since(t0)
				}
			}
			b.StopTimer()
			var ns [2]float64
			for i := range ns {
				ns[i] = float64(took[i].Nanoseconds()) / float64(pkts[i])
			}
			b.ReportMetric(ns[0], "v4-ns/pkt")
			b.ReportMetric(ns[1], "nat64-ns/pkt")
			b.ReportMetric(ns[1]/ns[0], "nat64/v4")
		})
	}
}

// xlatRig is a gateway with both mobiles' flows open and their frames.
type xlatRig struct {
	b       *testing.B
	w       *dp.Worker
	ports   [2]*memport.Port
	size    int
	up      [2][][]byte // [0] IPv4, [1] IPv6 frames, one per flow
	next    [2]int
	checkFn func([]byte)
}

func newXlatRig(b *testing.B, size, flows int) *xlatRig {
	b.Helper()
	w, ports := newGWXlatBench(b, flows)
	r := &xlatRig{b: b, w: w, ports: ports, size: size}
	r.checkFn = func(f []byte) {
		if len(f) != r.size-4 {
			r.b.Fatalf("frame of %d B out, want %d", len(f), r.size-4)
		}
	}
	payload := make([]byte, size-4-14-20-8)
	for k, v6 := range []bool{false, true} {
		r.up[k] = make([][]byte, flows)
		for i := range flows {
			f := dptest.Frame().Eth(lb1MAC, gwLanMAC)
			if v6 {
				f = f.IPv6(mob6, nat64(rep))
			} else {
				f = f.IPv4(mob, rep)
			}
			r.up[k][i] = f.UDP(uint16(10000+i), 9).Payload(payload).Bytes()
		}
		// Open every flow.
		for i := 0; i < flows; {
			for j := 0; j < 64 && i < flows; j, i = j+1, i+1 {
				ports[0].Inject(r.up[k][i])
			}
			w.Poll()
			for ports[1].Take(func([]byte) {}) {
			}
		}
	}
	return r
}

// round sends 32 up packets of the IPv4 or the IPv6 mobile through one
// poll, checks that all of them came out at the IPv4 size, and returns
// how many went through.
func (r *xlatRig) round(v6 bool) int {
	k := 0
	if v6 {
		k = 1
	}
	for j := 0; j < 32; j++ {
		r.ports[0].Inject(r.up[k][r.next[k]])
		if r.next[k]++; r.next[k] == len(r.up[k]) {
			r.next[k] = 0
		}
	}
	n, _ := r.w.Poll()
	out := 0
	for r.ports[1].Take(r.checkFn) {
		out++
	}
	if out != n {
		r.b.Fatalf("%d packets in, %d out: the gateway dropped some", n, out)
	}
	return n
}

// newGWXlatBench is newGWBench's gateway with a translator and one UDP
// service, the IPv4 and IPv6 mobiles' sessions started.
func newGWXlatBench(b *testing.B, flows int) (*dp.Worker, [2]*memport.Port) {
	b.Helper()
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs = []netip.Addr{key4, key6}
	pc.Capacity = 4 * flows
	flowTab, err := nat.NewPortTable(pc)
	if err != nil {
		b.Fatal(err)
	}
	ap := netip.AddrPortFrom
	svcs, err := balance.NewTable([]balance.ServiceConfig{
		{Name: "udp", Rep: ap(rep, 9), Proto: 17, Type: balance.ConnectionUnit, Policy: balance.RoundRobin,
			Servers: []balance.Server{{Addr: ap(a1, 9), Up: true}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	dist, err := balance.NewDist(svcs, pc.Capacity)
	if err != nil {
		b.Fatal(err)
	}
	xc := xlat.DefaultConfig()
	xc.IPv4Address, xc.IPv6Address = key4, key6
	tr, err := xlat.New(xc)
	if err != nil {
		b.Fatal(err)
	}
	nb := neigh.New()
	nb.Set(map[[16]byte][6]byte{a1.As16(): a1MAC})
	g, err := dp.NewGW(dp.GWConfig{Lan: 0, Servers: 1, LanMAC: gwLanMAC, ServerMAC: gwSrvMAC, Xlat: tr,
		Flows: flowTab, Services: svcs, Dist: dist, Neighbors: nb, RequireSession: true, LBCacheSize: 1024, ExpireBudget: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	u, _ := memport.NewUmem(4096)
	lan, _ := memport.New(memport.DefaultConfig("lan/q0"), u)
	srv, _ := memport.New(memport.DefaultConfig("srv/q0"), u)
	w, err := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{lan, srv}, g)
	if err != nil {
		b.Fatal(err)
	}
	s := testSession
	s.IP = mob.As16()
	g.Apply(dp.SessionEvent{Session: s})
	s6 := testSession
	s6.ID, s6.IP = 8, mob6.As16()
	g.Apply(dp.SessionEvent{Session: s6})
	w.Poll()
	return w, [2]*memport.Port{lan, srv}
}
