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
// own copy in and out is included.
func BenchmarkGWXlat(b *testing.B) {
	const flows = 1000
	for _, size := range []int{64, 1500} {
		for _, v6 := range []bool{false, true} {
			name := "v4"
			if v6 {
				name = "nat64"
			}
			b.Run(fmt.Sprintf("%dB/%dflows/%s", size, flows, name), func(b *testing.B) {
				w, ports := newGWXlatBench(b, flows)
				drain := func([]byte) {}
				payload := make([]byte, size-4-14-20-8)
				ups := make([][]byte, flows)
				for i := range flows {
					f := dptest.Frame().Eth(lb1MAC, gwLanMAC)
					if v6 {
						f = f.IPv6(mob6, nat64(rep))
					} else {
						f = f.IPv4(mob, rep)
					}
					ups[i] = f.UDP(uint16(10000+i), 9).Payload(payload).Bytes()
				}
				// Open every flow.
				for i := 0; i < flows; {
					for j := 0; j < 64 && i < flows; j, i = j+1, i+1 {
						ports[0].Inject(ups[i])
					}
					w.Poll()
					for ports[1].Take(drain) {
					}
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				pkts, next := 0, 0
				for pkts < b.N {
					for j := 0; j < 32; j++ {
						ports[0].Inject(ups[next])
						if next++; next == flows {
							next = 0
						}
					}
					n, _ := w.Poll()
					pkts += n
					out := 0
					for ports[1].Take(func(f []byte) {
						if len(f) != size-4 {
							b.Fatalf("frame of %d B out, want %d", len(f), size-4)
						}
					}) {
						out++
					}
					if out != n {
						b.Fatalf("%d packets in, %d out: the gateway dropped some", n, out)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(pkts)/time.Since(start).Seconds()/1e6, "Mpps")
			})
		}
	}
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
