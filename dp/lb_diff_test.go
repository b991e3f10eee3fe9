package dp_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"samepath/dp"
	"samepath/dp/dptest"
	"samepath/dp/steer"
	"samepath/nat"
	"samepath/ring/xsk"
	"samepath/ring/xsk/xdpfilter"
	"samepath/testbed/privtest"
)

// outcome is what happens to a frame on one path.
type outcome struct {
	kernel bool      // left to the kernel (XDP_PASS)
	drop   dp.Reason // dropped, and why (ReasonNone if not dropped)
	port   int       // egress: 0 ingress side, 1 gateway side; -1 none
	frame  []byte    // the frame as transmitted
}

func (o outcome) String() string {
	switch {
	case o.kernel:
		return "kernel"
	case o.drop != dp.ReasonNone:
		return "drop " + o.drop.String()
	}
	return fmt.Sprintf("out port %d", o.port)
}

// TestLBDifferential runs every golden frame, plus frames the kernel must
// keep, through both LB paths and requires identical outcomes and output
// frames:
//
//	AF_XDP path: the XDP filter (ring/xsk/xdpfilter) then, for frames it
//	hands to the socket, the Go pipeline (dp.LB);
//	offload:     the steering XDP program (dp/steer) alone.
//
// Both programs run through BPF_PROG_RUN on interfaces of a fresh network
// namespace; no frame is sent.
func TestLBDifferential(t *testing.T) {
	privtest.Require(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // also moves this thread into it
	if err != nil {
		t.Fatal(err)
	}
	defer func() { netns.Set(orig); ns.Close() }()

	mk := func(name, peer string, mac [6]byte) *netlink.Veth {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac[:]}, PeerName: peer}
		if err := netlink.LinkAdd(v); err != nil {
			t.Fatalf("add veth %s: %v", name, err)
		}
		for _, n := range []string{name, peer} {
			l, _ := netlink.LinkByName(n)
			if err := netlink.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
		l, _ := netlink.LinkByName(name)
		return &netlink.Veth{LinkAttrs: *l.Attrs()}
	}
	in := mk("in", "in-peer", lbIngressMAC)
	gw := mk("lan", "lan-peer", lbGatewayMAC)
	local := []netip.Addr{addr("10.0.1.1"), addr("10.9.0.11"), addr("fd00:9::11")}

	// AF_XDP path.
	f, err := xdpfilter.Load(xdpfilter.Match{DstMACs: [][6]byte{lbIngressMAC, lbGatewayMAC}, ExcludeDst: local})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var socks [2]*xsk.Socket
	for i, name := range []string{"in", "lan"} {
		s, err := xsk.Open(xsk.DefaultConfig(name, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := f.Register(s); err != nil {
			t.Fatal(err)
		}
		socks[i] = s
	}
	ifindex := [2]int{in.Index, gw.Index}

	// Offload path.
	o, err := steer.Load(steer.Config{IngressIfindex: in.Index, GatewayIfindex: gw.Index,
		IngressMAC: lbIngressMAC, GatewayMAC: lbGatewayMAC, NextHopMAC: nasMAC, Exclude: local})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	tab, err := nat.NewT4(lbT4())
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.OnChange(o.Sync); err != nil {
		t.Fatal(err)
	}

	viaAFXDP := func(frame []byte, port int) outcome {
		before, _ := f.Counters()
		// The filter reads the receiving interface from the context.
		_, err := f.Program().Run(&ebpf.RunOptions{Data: frame, Context: xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex[port])}})
		if err != nil {
			t.Fatalf("run filter: %v", err)
		}
		after, _ := f.Counters()
		if after.Redirected == before.Redirected && after.NoSocket == before.NoSocket {
			return outcome{kernel: true, port: -1}
		}
		w, _, ports := newLBWorkerT4(t, tab)
		ports[port].Inject(frame)
		w.Poll()
		for p := 0; p < 2; p++ {
			if out := ports[p].TakeAll(); len(out) > 0 {
				return outcome{port: p, frame: out[0]}
			}
		}
		s := w.Counters(port).Snapshot()
		for r, n := range s.Drops {
			if n > 0 {
				return outcome{drop: dp.Reason(r), port: -1}
			}
		}
		t.Fatalf("go pipeline neither sent nor dropped")
		return outcome{}
	}
	viaOffload := func(frame []byte, port int) outcome {
		side := steer.IngressSide
		if port == 1 {
			side = steer.GatewaySide
		}
		before, _ := o.Counters()
		out, act, err := o.Run(frame, side)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := o.Counters()
		switch act {
		case steer.Pass:
			return outcome{kernel: true, port: -1}
		case steer.Drop:
			for r := range after.Drops {
				if after.Drops[r] != before.Drops[r] {
					return outcome{drop: dp.Reason(r), port: -1}
				}
			}
			t.Fatalf("offload dropped without counting")
		case steer.Redirect, steer.TX:
			return outcome{port: 1 - port, frame: out[:len(frame)]}
		}
		t.Fatalf("offload action %v", act)
		return outcome{}
	}

	type tc struct {
		name  string
		frame []byte
		port  int
	}
	var cases []tc
	for _, g := range lbGoldens() {
		cases = append(cases, tc{g.Name, g.In, g.InPort})
	}
	other := dptest.MAC("02:00:00:00:99:99")
	cases = append(cases,
		tc{"arp request for the lb", dptest.Frame().Eth(nasMAC, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}).
			ARP(1, nasMAC, addr("10.0.1.2"), [6]byte{}, addr("10.0.1.1")).Bytes(), 0},
		tc{"ping to the lb's own address", upFrame("10.101.0.5", "10.0.1.1").ICMPEcho(1, 1).Bytes(), 0},
		tc{"ping to the lb's lan address", dptest.Frame().Eth(gw1, lbGatewayMAC).IPv4(addr("10.9.0.1"), addr("10.9.0.11")).ICMPEcho(1, 1).Bytes(), 1},
		tc{"v6 to the lb's own address", dptest.Frame().Eth(gw1, lbGatewayMAC).IPv6(addr("fd00:9::1"), addr("fd00:9::11")).UDP(1, 2).Bytes(), 1},
		tc{"frame for another mac", dptest.Frame().Eth(nasMAC, other).IPv4(addr("10.101.0.5"), addr("10.200.0.1")).UDP(1, 2).Bytes(), 0},
		tc{"neighbor solicitation", dptest.Frame().Eth(nasMAC, lbIngressMAC).IPv6(addr("fe80::1"), addr("fe80::2")).ICMP(135, 0, 0).Payload(make([]byte, 16)).Bytes(), 0},
	)
	for _, c := range cases {
		if len(c.frame) < 14 {
			continue // no XDP program ever sees a frame shorter than an Ethernet header
		}
		// No t.Run: subtests run on other OS threads, outside the
		// namespace this thread is in.
		a := viaAFXDP(c.frame, c.port)
		b := viaOffload(c.frame, c.port)
		if a.String() != b.String() {
			t.Errorf("%s: AF_XDP path: %s, offload: %s", c.name, a, b)
			continue
		}
		if !bytes.Equal(a.frame, b.frame) {
			t.Errorf("%s: output frames differ: %s", c.name, dptest.Diff(a.frame, b.frame))
		}
	}
}

// xdpMD is struct xdp_md, the context BPF_PROG_RUN passes to XDP programs.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

func newLBWorkerT4(t testing.TB, tab *nat.T4) (*dp.Worker, *dp.LB, [2]*memportPort) {
	t.Helper()
	lb, err := dp.NewLB(dp.LBConfig{Ingress: 0, Gateway: 1, IngressMAC: lbIngressMAC, GatewayMAC: lbGatewayMAC, NextHop: nasMAC, T4: tab})
	if err != nil {
		t.Fatal(err)
	}
	return newWorkerFor(t, lb, lb)
}
