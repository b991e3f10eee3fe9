package steer_test

import (
	"testing"

	"github.com/cilium/ebpf"

	"samepath/dp/steer"
	"samepath/testbed/privtest"
)

// BenchmarkProgram reports the program's own cost per frame, measured
// over BPF_PROG_RUN repetitions (no device, no transmission): the
// in-kernel counterpart of dp.LB's ns/packet on memory ports.
//
// Repetitions run on the same buffer, so a rewritten frame would stop
// being ours after the first run. The benchmark therefore steers to a
// "gateway" whose MAC is the LB's own ingress MAC (and sets the next hop to
// the LB's gateway-side MAC): the rewrite leaves the frame addressed to the
// LB and every repetition takes the full path.
func BenchmarkProgram(b *testing.B) {
	privtest.Require(b)
	_, o := loadGolden(b)
	rows := append(goldenRows(),
		row("10.7.0.0/16", down(gwA), up(lbIn)),
		row("2001:db8:7::/48", down(gwA), up(lbIn)))
	if err := o.Sync(rows); err != nil {
		b.Fatal(err)
	}
	if err := o.SetNextHop(lbGw); err != nil {
		b.Fatal(err)
	}
	payload := udp("0123456789abcdef")
	for _, bc := range []struct {
		name string
		side steer.Side
		in   []byte
	}{
		{"up-v4", steer.IngressSide, ether(lbIn, nasMAC, -1, 0x0800, ipv4("10.7.0.9", "198.51.100.7", 17, nil, payload))},
		{"up-v6", steer.IngressSide, ether(lbIn, nasMAC, -1, 0x86dd, ipv6("2001:db8:7::1", "2001:db8:99::1", 17, payload))},
		{"up-v4-vlan", steer.IngressSide, ether(lbIn, nasMAC, 10, 0x0800, ipv4("10.7.0.9", "198.51.100.7", 17, nil, payload))},
		{"down-v4", steer.GatewaySide, ether(lbGw, gwA, -1, 0x0800, ipv4("198.51.100.7", "10.1.2.3", 17, nil, payload))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			before, err := o.Counters()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			ret, err := o.Program(bc.side).Run(&ebpf.RunOptions{Data: bc.in, Repeat: uint32(b.N)})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if steer.Action(ret) != steer.Redirect {
				b.Fatalf("action %v", steer.Action(ret))
			}
			after, err := o.Counters()
			if err != nil {
				b.Fatal(err)
			}
			if tx := after.TxPackets - before.TxPackets; tx < uint64(b.N) {
				b.Fatalf("%d of %d repetitions took the full path", tx, b.N)
			}
		})
	}
}
