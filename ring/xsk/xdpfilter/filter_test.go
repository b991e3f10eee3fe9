package xdpfilter

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"

	"samepath/ring/xsk"
	"samepath/ring/xsk/internal/nettest"
	"samepath/testbed/privtest"
)

var (
	ourMAC   = [6]byte{2, 0, 0, 0, 0, 1}
	otherMAC = [6]byte{2, 0, 0, 0, 0, 9}
	peerMAC  = [6]byte{2, 0, 0, 0, 0, 2}
	a4       = netip.MustParseAddr
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Match
		ok   bool
	}{
		{"empty", Match{}, true},
		{"full", Match{DstMACs: [][6]byte{ourMAC}, EtherTypes: []uint16{0x0800}, SrcPrefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ExcludeDst: []netip.Addr{a4("::1")}}, true},
		{"length as ethertype", Match{EtherTypes: []uint16{100}}, false},
		{"vlan as ethertype", Match{EtherTypes: []uint16{0x8100}}, false},
		{"zero prefix", Match{DstPrefixes: []netip.Prefix{{}}}, false},
		{"zero addr", Match{ExcludeDst: []netip.Addr{{}}}, false},
		{"too many macs", Match{DstMACs: make([][6]byte, maxMACs+1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.m.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestCompile(t *testing.T) {
	c := compile(Match{
		SrcPrefixes: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8"), netip.MustParsePrefix("2001:db8::1/32")},
		ExcludeDst:  []netip.Addr{a4("192.0.2.1"), a4("2001:db8::1")},
	})
	if c.flags != flagAnyMAC|flagAnyDst {
		t.Errorf("flags = %#x, want any MAC, any dst", c.flags)
	}
	want4 := map[filterLpm4]bool{{Prefixlen: 8, Addr: [4]byte{10, 0, 0, 0}}: true}
	if d := cmp.Diff(want4, c.src4, cmp.AllowUnexported(filterLpm4{})); d != "" {
		t.Errorf("src4 (-want +got):\n%s", d)
	}
	if len(c.src6) != 1 || len(c.dst4)+len(c.dst6) != 0 || !c.excl4[[4]byte{192, 0, 2, 1}] || len(c.excl6) != 1 {
		t.Errorf("compile: %+v", c)
	}
	if d := cmp.Diff(map[uint16]bool{0x0800: true, 0x86dd: true}, c.etherTypes); d != "" {
		t.Errorf("default ethertypes (-want +got):\n%s", d)
	}
}

// golden is one frame and what the filter must do with it.
type golden struct {
	name    string
	frame   []byte
	verdict uint32 // XDP_PASS 2, XDP_REDIRECT 4
	counter string // which counter moves
}

const (
	xdpPass     = 2
	xdpRedirect = 4
)

func goldenFrames() []golden {
	udp4 := func(dst string) []byte {
		return nettest.UDP(a4("198.51.100.7"), a4(dst), 1000, 2000, []byte("hello"))
	}
	udp6 := func(dst string) []byte {
		return nettest.UDP(a4("2001:db8:ff::7"), a4(dst), 1000, 2000, []byte("hello"))
	}
	ip4 := udp4("10.1.2.3")
	badIHL := append([]byte{}, ip4...)
	badIHL[0] = 0x44
	shortIHL := append([]byte{}, ip4[:24]...)
	shortIHL[0] = 0x4f // claims 60 bytes of header
	badV6 := append([]byte{}, udp6("2001:db8::5")...)
	badV6[0] = 0x40
	// Neighbour solicitation behind a hop-by-hop header.
	ns := nettest.ICMPv6(a4("fe80::2"), a4("ff02::1:ff00:5"), 135)
	hbh := append([]byte{}, ns[:40]...)
	hbh[6] = 0 // next header: hop-by-hop
	hbh = append(hbh, 58, 0, 5, 2, 0, 0, 1, 0)
	hbh = append(hbh, ns[40:]...)
	e := func(dst [6]byte, et uint16, p []byte) []byte { return nettest.Ether(dst, peerMAC, 0, et, p) }
	return []golden{
		{"udp4 ours", e(ourMAC, 0x0800, ip4), xdpRedirect, "Redirected"},
		{"udp4 other mac", e(otherMAC, 0x0800, ip4), xdpPass, "NotOurs"},
		{"udp4 broadcast mac", e([6]byte{255, 255, 255, 255, 255, 255}, 0x0800, ip4), xdpPass, "NotOurs"},
		{"udp4 outside prefix", e(ourMAC, 0x0800, udp4("192.0.2.1")), xdpPass, "NotOurs"},
		{"udp4 to host", e(ourMAC, 0x0800, udp4("10.0.0.1")), xdpPass, "Excluded"},
		{"udp4 vlan", nettest.Ether(ourMAC, peerMAC, 7, 0x0800, ip4), xdpRedirect, "Redirected"},
		{"arp", e(ourMAC, 0x0806, nettest.ARPRequest(peerMAC, a4("10.0.0.2"), a4("10.0.0.1"))), xdpPass, "NotOurs"},
		{"udp6 ours", e(ourMAC, 0x86dd, udp6("2001:db8::5")), xdpRedirect, "Redirected"},
		{"udp6 to host", e(ourMAC, 0x86dd, udp6("2001:db8::1")), xdpPass, "Excluded"},
		{"icmp6 echo", e(ourMAC, 0x86dd, nettest.ICMPv6(a4("2001:db8:ff::7"), a4("2001:db8::5"), 128)), xdpRedirect, "Redirected"},
		{"router solicitation", e(ourMAC, 0x86dd, nettest.ICMPv6(a4("2001:db8:ff::7"), a4("2001:db8::5"), 133)), xdpPass, "ND"},
		{"neighbour solicitation", e(ourMAC, 0x86dd, nettest.ICMPv6(a4("2001:db8:ff::7"), a4("2001:db8::5"), 135)), xdpPass, "ND"},
		{"redirect message", e(ourMAC, 0x86dd, nettest.ICMPv6(a4("2001:db8:ff::7"), a4("2001:db8::5"), 137)), xdpPass, "ND"},
		{"ns behind hop-by-hop", e(ourMAC, 0x86dd, hbh), xdpPass, "ND"},
		{"ipv4 no header", e(ourMAC, 0x0800, nil), xdpPass, "Malformed"},
		{"ipv4 ihl 4", e(ourMAC, 0x0800, badIHL), xdpPass, "Malformed"},
		{"ipv4 truncated options", e(ourMAC, 0x0800, shortIHL), xdpPass, "Malformed"},
		{"ipv6 wrong version", e(ourMAC, 0x86dd, badV6), xdpPass, "Malformed"},
		{"vlan truncated", append(append(append([]byte{}, ourMAC[:]...), peerMAC[:]...), 0x81, 0x00, 0), xdpPass, "Malformed"},
	}
}

func goldenMatch() Match {
	return Match{
		DstMACs:     [][6]byte{ourMAC},
		DstPrefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		ExcludeDst:  []netip.Addr{a4("10.0.0.1"), a4("2001:db8::1")},
	}
}

// progEnv loads a filter and binds an AF_XDP socket to lo in a fresh
// namespace, registered on lo's queue 0: BPF_PROG_RUN runs as if the
// frame arrived on the loopback device, so a matching frame gets a real
// XDP_REDIRECT verdict.
func progEnv(t *testing.T, m Match) (*Filter, *nettest.NS) {
	t.Helper()
	privtest.Require(t)
	ns := nettest.NewNS(t, privtest.Name("xf", "p"))
	f, err := Load(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var s *xsk.Socket
	if err := ns.Do(func() error {
		cfg := xsk.DefaultConfig("lo", 0)
		cfg.RxSize, cfg.TxSize, cfg.FillSize, cfg.CompSize = 64, 64, 64, 64
		var err error
		s, err = xsk.Open(cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := f.Register(s); err != nil {
		t.Fatal(err)
	}
	return f, ns
}

func runGolden(t *testing.T, f *Filter, ns *nettest.NS, cases []golden) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, err := f.Counters()
			if err != nil {
				t.Fatal(err)
			}
			var ret uint32
			if err := ns.Do(func() error {
				var err error
				ret, err = f.Program().Run(&ebpf.RunOptions{Data: tc.frame})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if ret != tc.verdict {
				t.Errorf("verdict %d, want %d", ret, tc.verdict)
			}
			after, err := f.Counters()
			if err != nil {
				t.Fatal(err)
			}
			want := before
			wantDelta(&want, tc.counter)
			if d := cmp.Diff(want, after); d != "" {
				t.Errorf("counters (-want +got):\n%s", d)
			}
		})
	}
}

func wantDelta(c *Counters, name string) {
	switch name {
	case "Redirected":
		c.Redirected++
	case "NoSocket":
		c.NoSocket++
	case "NotOurs":
		c.NotOurs++
	case "Excluded":
		c.Excluded++
	case "ND":
		c.ND++
	case "Malformed":
		c.Malformed++
	default:
		panic("unknown counter " + name)
	}
}

func TestGoldenVerdicts(t *testing.T) {
	f, ns := progEnv(t, goldenMatch())
	runGolden(t, f, ns, goldenFrames())
}

func TestSetMatch(t *testing.T) {
	f, ns := progEnv(t, goldenMatch())
	eth := func(p []byte) []byte { return nettest.Ether(ourMAC, peerMAC, 0, 0x0800, p) }
	to := func(src, dst string) []byte { return eth(nettest.UDP(a4(src), a4(dst), 1, 2, nil)) }

	// Narrow to one source prefix and a new destination prefix.
	m := Match{
		SrcPrefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		DstPrefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		EtherTypes:  []uint16{0x0800},
	}
	if err := f.SetMatch(m); err != nil {
		t.Fatal(err)
	}
	runGolden(t, f, ns, []golden{
		{"new prefix", to("198.51.100.7", "192.0.2.1"), xdpRedirect, "Redirected"},
		{"old prefix", to("198.51.100.7", "10.1.2.3"), xdpPass, "NotOurs"},
		{"wrong source", to("203.0.113.1", "192.0.2.1"), xdpPass, "NotOurs"},
		{"old exclude gone", to("198.51.100.7", "192.0.2.1"), xdpRedirect, "Redirected"},
		{"any mac now", nettest.Ether(otherMAC, peerMAC, 0, 0x0800, nettest.UDP(a4("198.51.100.7"), a4("192.0.2.1"), 1, 2, nil)), xdpRedirect, "Redirected"},
		{"ipv6 dropped from ethertypes", nettest.Ether(ourMAC, peerMAC, 0, 0x86dd, nettest.UDP(a4("2001:db8::7"), a4("2001:db8::5"), 1, 2, nil)), xdpPass, "NotOurs"},
	})
	// No stale entries are left in the maps.
	for _, c := range []struct {
		m    *ebpf.Map
		want int
	}{{f.objs.DstMacs, 0}, {f.objs.Dst4, 1}, {f.objs.Dst6, 0}, {f.objs.Src4, 1}, {f.objs.Excl4, 0}, {f.objs.Excl6, 0}, {f.objs.EtherTypes, 1}} {
		n := 0
		var k = make([]byte, c.m.KeySize())
		var v uint8
		it := c.m.Iterate()
		for it.Next(&k, &v) {
			n++
		}
		if it.Err() != nil || n != c.want {
			t.Errorf("map %v holds %d keys (err %v), want %d", c.m, n, it.Err(), c.want)
		}
	}
	// Back to "everything IP is ours".
	if err := f.SetMatch(Match{}); err != nil {
		t.Fatal(err)
	}
	runGolden(t, f, ns, []golden{
		{"anything ip", to("203.0.113.1", "10.1.2.3"), xdpRedirect, "Redirected"},
		{"arp still passes", nettest.Ether(ourMAC, peerMAC, 0, 0x0806, nettest.ARPRequest(peerMAC, a4("10.0.0.2"), a4("10.0.0.1"))), xdpPass, "NotOurs"},
		// Without prefixes a bad IP header is the dataplane's to count.
		{"bad ipv4 to the dataplane", nettest.Ether(ourMAC, peerMAC, 0, 0x0800, []byte{0x44, 0, 0, 20}), xdpRedirect, "Redirected"},
		{"bad ipv6 to the dataplane", nettest.Ether(ourMAC, peerMAC, 0, 0x86dd, []byte{0x60, 0}), xdpRedirect, "Redirected"},
		{"truncated vlan still passes", append(append(append([]byte{}, ourMAC[:]...), peerMAC[:]...), 0x81, 0x00, 0), xdpPass, "Malformed"},
	})
	if d := cmp.Diff(Match{}, f.Match()); d != "" {
		t.Errorf("Match() (-want +got):\n%s", d)
	}
}

func TestNoSocketPasses(t *testing.T) {
	privtest.Require(t)
	ns := nettest.NewNS(t, privtest.Name("xf", "n"))
	f, err := Load(Match{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frame := nettest.Ether(ourMAC, peerMAC, 0, 0x0800, nettest.UDP(a4("10.0.0.2"), a4("10.0.0.3"), 1, 2, nil))
	runGolden(t, f, ns, []golden{{"no socket", frame, xdpPass, "NoSocket"}})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := f.Counters(); err == nil {
		t.Error("Counters after Close succeeded")
	}
}
