package dp_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"samepath/dp"
	"samepath/dp/balance"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/neigh"
	"samepath/nat"
	"samepath/ring/memport"
)

// newGWBench is gw_test.go's gateway (same addresses, MACs, session and
// web service: rep 10.30.0.1:80 tcp, connection unit, round robin over a1
// and a2) sized for flows established flows, for benchmarks.
func newGWBench(b *testing.B, flows int) (*dp.Worker, [2]*memport.Port, *nat.PortTable) {
	b.Helper()
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs = []netip.Addr{key4}
	pc.Capacity = 2 * flows
	flowTab, err := nat.NewPortTable(pc)
	if err != nil {
		b.Fatal(err)
	}
	ap := netip.AddrPortFrom
	svcs, err := balance.NewTable([]balance.ServiceConfig{
		{Name: "web", Rep: ap(rep, 80), Proto: 6, Type: balance.ConnectionUnit, Policy: balance.RoundRobin,
			Servers: []balance.Server{{Addr: ap(a1, 8080), Up: true}, {Addr: ap(a2, 8080), Up: true}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	dist, err := balance.NewDist(svcs, pc.Capacity)
	if err != nil {
		b.Fatal(err)
	}
	nb := neigh.New()
	nb.Set(map[[16]byte][6]byte{a1.As16(): a1MAC, a2.As16(): a2MAC})
	g, err := dp.NewGW(dp.GWConfig{Lan: 0, Servers: 1, LanMAC: gwLanMAC, ServerMAC: gwSrvMAC,
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
	w.Poll()
	return w, [2]*memport.Port{lan, srv}, flowTab
}

// BenchmarkGW measures the gateway pipeline on memory ports (ns per
// packet, BENCHMARKS.md "micro"): established TCP flows of one mobile
// through the web service, alternating batches of 32 up packets (T5 up
// lookup, T12 update, NAT to the key port and the chosen server) and 32
// down packets (T5 down lookup, NAT back to the representative address,
// toward the LB), cycling over 1 or 10 000 flows, including the memory
// ports' own copy in and out.
func BenchmarkGW(b *testing.B) {
	for _, size := range []int{64, 1500} {
		for _, flows := range []int{1, 10000} {
			b.Run(fmt.Sprintf("%dB/%dflows", size, flows), func(b *testing.B) {
				w, ports, flowTab := newGWBench(b, flows)
				drain := func([]byte) {}
				sport := func(i int) uint16 { return uint16(10000 + i) }
				// Open every flow with a SYN.
				for i := 0; i < flows; {
					for j := 0; j < 64 && i < flows; j, i = j+1, i+1 {
						ports[0].Inject(dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(sport(i), 80).Flags(header.FlagSYN).Bytes())
					}
					w.Poll()
					for ports[1].Take(drain) {
					}
				}
				ups := make([][]byte, flows)
				downs := make([][]byte, flows)
				for i := range flows {
					k := nat.FlowKey{Src: nat.Addr16From(mob), Dst: nat.Addr16From(rep), SPort: sport(i), DPort: 80, Proto: 6}
					id, ok := flowTab.Up(&k)
					if !ok {
						b.Fatalf("flow %d not opened", i)
					}
					bd := flowTab.Binding(id)
					srv, srvMAC := a1, a1MAC
					if bd.Server == nat.Addr16From(a2) {
						srv, srvMAC = a2, a2MAC
					}
					ups[i] = dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(sport(i), 80).Flags(header.FlagACK).PadTo(size - 4).Bytes()
					downs[i] = dptest.Frame().Eth(srvMAC, gwSrvMAC).IPv4(srv, key4).TCP(bd.SPort, bd.GwPort).Flags(header.FlagACK).PadTo(size - 4).Bytes()
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				pkts, next := 0, 0
				for pkts < b.N {
					for j := 0; j < 32; j++ {
						ports[0].Inject(ups[next])
						ports[1].Inject(downs[next])
						if next++; next == flows {
							next = 0
						}
					}
					n, _ := w.Poll()
					pkts += n
					out := 0
					for ports[0].Take(drain) {
						out++
					}
					for ports[1].Take(drain) {
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
