package nat

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testTable(t testing.TB, mut func(*PortTableConfig)) *PortTable {
	t.Helper()
	cfg := DefaultPortTableConfig()
	cfg.GwAddrs = []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	cfg.Capacity = 1024
	cfg.PortMin, cfg.PortMax = 20000, 29999
	if mut != nil {
		mut(&cfg)
	}
	tab, err := NewPortTable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func udpKey(src string, sport uint16, dst string, dport uint16) FlowKey {
	return MakeFlowKey(ProtoUDP, netip.AddrPortFrom(netip.MustParseAddr(src), sport), netip.AddrPortFrom(netip.MustParseAddr(dst), dport))
}

func sec(s float64) int64 { return int64(s * float64(time.Second)) }

func TestAddr16(t *testing.T) {
	for _, s := range []string{"192.0.2.1", "0.0.0.0", "2001:db8::1", "::ffff:0:1", "::"} {
		a := netip.MustParseAddr(s)
		got := Addr16From(a)
		if got.Addr() != a.Unmap() {
			t.Errorf("Addr16From(%s).Addr() = %s", s, got.Addr())
		}
		if got.Is4() != a.Unmap().Is4() {
			t.Errorf("Addr16From(%s).Is4() = %v", s, got.Is4())
		}
	}
	if Addr16V4([4]byte{192, 0, 2, 1}) != Addr16From(netip.MustParseAddr("192.0.2.1")) {
		t.Error("Addr16V4 differs from Addr16From")
	}
	k := udpKey("10.0.0.1", 1, "192.0.2.9", 53)
	k2 := k
	if hashKey(&k, 1) != hashKey(&k2, 1) || hashKey(&k, 1) == hashKey(&k, 2) {
		t.Error("hash not deterministic per seed, or ignores the seed")
	}
	k2.SPort = 2
	if hashKey(&k, 1) == hashKey(&k2, 1) {
		t.Error("hash ignores the source port")
	}
}

func TestPortTableConfigValidate(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		name string
		mut  func(*PortTableConfig)
		want string // "" = valid
	}{
		{"ok", func(c *PortTableConfig) {}, ""},
		{"no address", func(c *PortTableConfig) { c.GwAddrs = nil }, "no gateway address"},
		{"duplicate", func(c *PortTableConfig) { c.GwAddrs = []netip.Addr{v4, netip.AddrFrom16(v4.As16())} }, "listed twice"},
		{"unspecified", func(c *PortTableConfig) { c.GwAddrs = []netip.Addr{netip.IPv4Unspecified()} }, "not a unicast"},
		{"zone", func(c *PortTableConfig) { c.GwAddrs = []netip.Addr{v6.WithZone("eth0")} }, "not a unicast"},
		{"invalid", func(c *PortTableConfig) { c.GwAddrs = []netip.Addr{{}} }, "not a unicast"},
		{"port 0", func(c *PortTableConfig) { c.PortMin = 0 }, "port range"},
		{"min > max", func(c *PortTableConfig) { c.PortMin, c.PortMax = 2000, 1999 }, "port range"},
		{"one port", func(c *PortTableConfig) { c.PortMin, c.PortMax = 2000, 2000 }, ""},
		{"capacity 0", func(c *PortTableConfig) { c.Capacity = 0 }, "capacity"},
		{"capacity huge", func(c *PortTableConfig) { c.Capacity = MaxCapacity + 1 }, "capacity"},
		{"negative delay", func(c *PortTableConfig) { c.PortReuseDelay = -1 }, "reuse delay"},
		{"zero delay", func(c *PortTableConfig) { c.PortReuseDelay = 0 }, ""},
		{"zero timeout", func(c *PortTableConfig) { c.Timeouts.TCPClosed = 0 }, "tcp closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultPortTableConfig()
			c.GwAddrs = []netip.Addr{v4, v6}
			c.Capacity = 16
			tc.mut(&c)
			err := c.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			if _, nerr := NewPortTable(c); (nerr == nil) != (err == nil) {
				t.Fatalf("NewPortTable error %v disagrees with Validate %v", nerr, err)
			}
		})
	}
}

func TestDefaultTimeoutsAreRFCFloors(t *testing.T) {
	d := DefaultTimeouts()
	for _, tc := range []struct {
		name      string
		got, want time.Duration
	}{
		{"UDP (RFC 4787 REQ-5)", d.UDP, 2 * time.Minute},
		{"ICMP (RFC 5508 REQ-1)", d.ICMP, time.Minute},
		{"TCP established (RFC 5382 REQ-5)", d.TCPEstablished, 124 * time.Minute},
		{"TCP transitory (RFC 5382 REQ-5)", d.TCPTransitory, 4 * time.Minute},
		{"TCP closed after RST (RFC 7857 2.2)", d.TCPClosed, 4 * time.Minute},
	} {
		if tc.got < tc.want {
			t.Errorf("%s: %v, below %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestTCPStateNext(t *testing.T) {
	const (
		up   = true
		down = false
	)
	type seg struct {
		up    bool
		flags uint8
		want  TCPState
	}
	for _, tc := range []struct {
		name string
		segs []seg
	}{
		{"handshake and close by the mobile", []seg{
			{up, FlagSYN, TCPSynSent},
			{up, FlagSYN, TCPSynSent}, // retransmitted SYN
			{down, FlagSYN | FlagACK, TCPSynRecv},
			{down, FlagSYN | FlagACK, TCPSynRecv},
			{up, FlagACK, TCPEstablished},
			{down, FlagACK, TCPEstablished},
			{up, FlagFIN | FlagACK, TCPFinUp},
			{up, FlagFIN | FlagACK, TCPFinUp}, // retransmitted FIN
			{down, FlagACK, TCPFinUp},
			{down, FlagFIN | FlagACK, TCPTimeWait},
			{up, FlagACK, TCPTimeWait},
			{down, FlagFIN | FlagACK, TCPTimeWait},
		}},
		{"close by the server", []seg{
			{up, FlagSYN, TCPSynSent},
			{down, FlagSYN | FlagACK, TCPSynRecv},
			{up, FlagACK, TCPEstablished},
			{down, FlagFIN | FlagACK, TCPFinDown},
			{down, FlagFIN | FlagACK, TCPFinDown},
			{up, FlagFIN | FlagACK, TCPTimeWait},
		}},
		{"RST, any time", []seg{
			{up, FlagSYN, TCPSynSent},
			{down, FlagRST | FlagACK, TCPClosed},
		}},
		{"RST then traffic: the connection lives on (RFC 7857 2.2)", []seg{
			{up, FlagSYN, TCPSynSent},
			{down, FlagSYN | FlagACK, TCPSynRecv},
			{up, FlagACK, TCPEstablished},
			{up, FlagRST, TCPClosed},
			{down, FlagACK, TCPEstablished},
			{up, FlagRST, TCPClosed},
			{up, FlagFIN | FlagACK, TCPFinUp},
		}},
		{"new SYN on the same 5-tuple after close", []seg{
			{up, FlagSYN, TCPSynSent},
			{down, FlagSYN | FlagACK, TCPSynRecv},
			{up, FlagFIN | FlagACK, TCPFinUp},
			{down, FlagFIN | FlagACK, TCPTimeWait},
			{up, FlagSYN, TCPSynSent},
			{up, FlagRST, TCPClosed},
			{up, FlagSYN, TCPSynSent},
		}},
		{"no SYN seen: transitory until a SYN", []seg{
			{up, FlagACK, TCPNone},
			{down, FlagSYN | FlagACK, TCPNone},
			{up, FlagSYN, TCPSynSent},
		}},
		{"SYN in established changes nothing", []seg{
			{up, FlagSYN, TCPSynSent},
			{down, FlagSYN | FlagACK, TCPSynRecv},
			{up, FlagACK, TCPEstablished},
			{up, FlagSYN, TCPEstablished},
			{down, FlagSYN | FlagACK, TCPEstablished},
		}},
		{"SYN-ACK without ACK flag completes nothing", []seg{
			{up, FlagSYN, TCPSynSent},
			{down, FlagSYN, TCPSynRecv}, // simultaneous open
			{up, 0, TCPSynRecv},
			{up, FlagACK, TCPEstablished},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := TCPNone
			for i, g := range tc.segs {
				s = s.Next(g.up, g.flags)
				if s != g.want {
					t.Fatalf("segment %d (up %v flags %#x): state %v, want %v", i, g.up, g.flags, s, g.want)
				}
			}
		})
	}
}

// TestTCPTimeouts drives bindings through Touch and checks that Expire
// keeps each until exactly its state's timeout and removes it then,
// with the right cause.
func TestTCPTimeouts(t *testing.T) {
	to := DefaultTimeouts()
	type seg struct {
		up    bool
		flags uint8
	}
	syn, synack, ack := seg{true, FlagSYN}, seg{false, FlagSYN | FlagACK}, seg{true, FlagACK}
	for _, tc := range []struct {
		name  string
		proto uint8
		segs  []seg
		idle  time.Duration
		cause Cause
	}{
		{"udp", ProtoUDP, []seg{{true, 0}, {false, 0}}, to.UDP, IdleTimeout},
		{"icmp echo", ProtoICMP, []seg{{true, 0}}, to.ICMP, IdleTimeout},
		{"tcp syn only", ProtoTCP, []seg{syn}, to.TCPTransitory, IdleTimeout},
		{"tcp syn-recv", ProtoTCP, []seg{syn, synack}, to.TCPTransitory, IdleTimeout},
		{"tcp established", ProtoTCP, []seg{syn, synack, ack}, to.TCPEstablished, IdleTimeout},
		{"tcp half closed", ProtoTCP, []seg{syn, synack, ack, {true, FlagFIN | FlagACK}}, to.TCPTransitory, IdleTimeout},
		{"tcp closed both ways", ProtoTCP, []seg{syn, synack, ack, {true, FlagFIN | FlagACK}, {false, FlagFIN | FlagACK}, ack}, to.TCPTimeWait, TCPClose},
		{"tcp reset", ProtoTCP, []seg{syn, {false, FlagRST | FlagACK}}, to.TCPClosed, TCPReset},
		{"tcp no syn", ProtoTCP, []seg{ack}, to.TCPTransitory, IdleTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := testTable(t, nil)
			k := udpKey("10.0.0.1", 5000, "198.51.100.1", 443)
			k.Proto = tc.proto
			if tc.proto == ProtoICMP {
				k.DPort = 0
			}
			now := sec(1000)
			id, err := tab.Create(&k, k.Dst, k.DPort, 0, 0, now)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range tc.segs {
				now += sec(1)
				tab.Touch(id, g.up, 60, g.flags, now)
			}
			var causes []Cause
			end := func(b *Binding, c Cause) { causes = append(causes, c) }
			if n := tab.Expire(now+int64(tc.idle)-1, 10, end); n != 0 {
				t.Fatalf("expired after %v idle, before its timeout %v", tc.idle-1, tc.idle)
			}
			if n := tab.Expire(now+int64(tc.idle), 10, end); n != 1 || tab.Len() != 0 {
				t.Fatalf("Expire at the timeout removed %d, Len %d", n, tab.Len())
			}
			if !slices.Equal(causes, []Cause{tc.cause}) {
				t.Fatalf("causes %v, want %v", causes, tc.cause)
			}
			if got := tab.Stats().Removed[tc.cause]; got != 1 {
				t.Fatalf("Stats().Removed[%v] = %d, want 1", tc.cause, got)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	tab := testTable(t, func(c *PortTableConfig) {
		c.GwAddrs = c.GwAddrs[:1] // IPv4 only
		c.Capacity = 2
	})
	k := udpKey("10.0.0.1", 5000, "198.51.100.1", 53)
	srv6 := Addr16From(netip.MustParseAddr("2001:db8:1::1"))
	if _, err := tab.Create(&k, srv6, 53, 0, 0, 0); !errors.Is(err, ErrFamily) {
		t.Errorf("IPv6 server with IPv4 addresses only: %v, want ErrFamily", err)
	}
	sctp := k
	sctp.Proto = 132
	if _, err := tab.Create(&sctp, k.Dst, 53, 0, 0, 0); !errors.Is(err, ErrProto) {
		t.Errorf("SCTP: %v, want ErrProto", err)
	}
	if _, err := tab.Create(&k, k.Dst, 53, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Create(&k, k.Dst, 53, 0, 0, 0); !errors.Is(err, ErrExists) {
		t.Errorf("same flow twice: %v, want ErrExists", err)
	}
	k2 := k
	k2.SPort++
	if _, err := tab.Create(&k2, k.Dst, 53, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	k2.SPort++
	if _, err := tab.Create(&k2, k.Dst, 53, 0, 0, 0); !errors.Is(err, ErrFull) {
		t.Errorf("over capacity: %v, want ErrFull", err)
	}
	if s := tab.Stats(); s.Full != 1 || s.Created != 2 || s.Live != 2 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestExhaustion fills a 4-port range, checks that the next flow gets
// ErrExhausted (counted), that other protocols have their own ports,
// that freed ports rest for the reuse delay and then serve again.
func TestExhaustion(t *testing.T) {
	const delay = 30 * time.Second
	tab := testTable(t, func(c *PortTableConfig) {
		c.GwAddrs = c.GwAddrs[:1]
		c.PortMin, c.PortMax = 2000, 2003
		c.PortReuseDelay = delay
	})
	now := sec(10)
	var ids []uint32
	ports := map[uint16]bool{}
	for i := range 4 {
		k := udpKey("10.0.0.1", uint16(5000+i), "198.51.100.1", 53)
		id, err := tab.Create(&k, k.Dst, 53, 0, 0, now)
		if err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
		ids = append(ids, id)
		ports[tab.Binding(id).GwPort] = true
	}
	if len(ports) != 4 {
		t.Fatalf("4 flows got ports %v", ports)
	}
	k := udpKey("10.0.0.1", 6000, "198.51.100.1", 53)
	if _, err := tab.Create(&k, k.Dst, 53, 0, 0, now); !errors.Is(err, ErrExhausted) {
		t.Fatalf("5th flow: %v, want ErrExhausted", err)
	}
	tcp := k
	tcp.Proto = ProtoTCP
	if _, err := tab.Create(&tcp, k.Dst, 53, 0, 0, now); err != nil {
		t.Fatalf("TCP has its own ports: %v", err)
	}
	// Two flows end; their ports rest.
	freed := map[uint16]bool{tab.Binding(ids[0]).GwPort: true, tab.Binding(ids[1]).GwPort: true}
	tab.Delete(ids[0], Released)
	now += sec(5)
	tab.Touch(ids[2], true, 100, 0, now)
	tab.Delete(ids[1], Admin)
	for _, at := range []int64{now, sec(10) + int64(delay) - 1} {
		if _, err := tab.Create(&k, k.Dst, 53, 0, 0, at); !errors.Is(err, ErrExhausted) {
			t.Fatalf("at %v, a resting port was handed out: %v", time.Duration(at), err)
		}
	}
	if got := tab.Stats().Exhausted; got != 3 {
		t.Fatalf("Stats().Exhausted = %d, want 3", got)
	}
	// The first port is back after the delay, the second 5 s later.
	id, err := tab.Create(&k, k.Dst, 53, 0, 0, sec(10)+int64(delay))
	if err != nil {
		t.Fatalf("after the reuse delay: %v", err)
	}
	if p := tab.Binding(id).GwPort; !freed[p] {
		t.Fatalf("got port %d, want one of the freed %v", p, freed)
	}
	k.SPort++
	if _, err := tab.Create(&k, k.Dst, 53, 0, 0, sec(15)+int64(delay)-1); !errors.Is(err, ErrExhausted) {
		t.Fatalf("second freed port before its delay: %v", err)
	}
	if _, err := tab.Create(&k, k.Dst, 53, 0, 0, sec(15)+int64(delay)); err != nil {
		t.Fatalf("second freed port after its delay: %v", err)
	}
}

// TestAddressPools checks that a mobile's flows stay on one gateway
// address (paired pooling), that mobiles spread over the addresses, and
// that a full address passes flows to the next one.
func TestAddressPools(t *testing.T) {
	var gws []netip.Addr
	for i := range 4 {
		gws = append(gws, netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)}))
	}
	tab := testTable(t, func(c *PortTableConfig) {
		c.GwAddrs = gws
		c.PortMin, c.PortMax = 3000, 3099
		c.Capacity = 4096
	})
	used := map[Addr16]int{}
	for m := range 64 {
		src := netip.AddrFrom4([4]byte{10, 0, 1, byte(m)}).String()
		var first Addr16
		for p := range 3 {
			k := udpKey(src, uint16(4000+p), "198.51.100.1", 53)
			id, err := tab.Create(&k, k.Dst, 53, 0, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := tab.Binding(id)
			if p == 0 {
				first = b.GwAddr
				used[first]++
			} else if b.GwAddr != first {
				t.Fatalf("mobile %s: flows on %s and %s", src, first, b.GwAddr)
			}
		}
	}
	if len(used) < 3 {
		t.Fatalf("64 mobiles used only %d of 4 addresses: %v", len(used), used)
	}
	// One mobile takes all 400 UDP ports of the 4 addresses.
	tab2 := testTable(t, func(c *PortTableConfig) {
		c.GwAddrs = gws
		c.PortMin, c.PortMax = 3000, 3099
		c.Capacity = 4096
	})
	perAddr := map[Addr16]int{}
	for p := range 400 {
		k := udpKey("10.0.0.1", uint16(1000+p), "198.51.100.1", 53)
		id, err := tab2.Create(&k, k.Dst, 53, 0, 0, 0)
		if err != nil {
			t.Fatalf("flow %d of 400: %v", p, err)
		}
		perAddr[tab2.Binding(id).GwAddr]++
	}
	for a, n := range perAddr {
		if n != 100 {
			t.Errorf("address %s carries %d flows, want 100", a, n)
		}
	}
	k := udpKey("10.0.0.1", 9999, "198.51.100.1", 53)
	if _, err := tab2.Create(&k, k.Dst, 53, 0, 0, 0); !errors.Is(err, ErrExhausted) {
		t.Fatalf("401st flow: %v", err)
	}
}

func TestLookups(t *testing.T) {
	tab := testTable(t, nil)
	k := udpKey("10.0.0.1", 5000, "198.51.100.1", 53)
	server := Addr16From(netip.MustParseAddr("203.0.113.7"))
	id, err := tab.Create(&k, server, 5353, 42, 7, sec(1))
	if err != nil {
		t.Fatal(err)
	}
	b := *tab.Binding(id)
	want := Binding{
		Flow: k, GwAddr: Addr16From(netip.MustParseAddr("192.0.2.1")), GwPort: b.GwPort,
		Server: server, SPort: 5353, Session: 42, Service: 7, Created: sec(1), LastSeen: sec(1),
	}
	if b != want {
		t.Fatalf("Binding = %+v, want %+v", b, want)
	}
	if got, ok := tab.Up(&k); !ok || got != id {
		t.Fatalf("Up = %d, %v", got, ok)
	}
	miss := k
	miss.DPort = 54
	if _, ok := tab.Up(&miss); ok {
		t.Fatal("Up found another destination port")
	}
	if got, ok := tab.Down(b.GwAddr, b.GwPort, ProtoUDP); !ok || got != id {
		t.Fatalf("Down = %d, %v", got, ok)
	}
	for _, tc := range []struct {
		name  string
		gw    Addr16
		port  uint16
		proto uint8
	}{
		{"tcp", b.GwAddr, b.GwPort, ProtoTCP},
		{"icmp", b.GwAddr, b.GwPort, ProtoICMP},
		{"other address", Addr16From(netip.MustParseAddr("2001:db8::1")), b.GwPort, ProtoUDP},
		{"not ours", server, b.GwPort, ProtoUDP},
		{"below range", b.GwAddr, 19999, ProtoUDP},
		{"above range", b.GwAddr, 30000, ProtoUDP},
		{"other port", b.GwAddr, b.GwPort ^ 1, ProtoUDP},
		{"gre", b.GwAddr, b.GwPort, 47},
	} {
		if _, ok := tab.Down(tc.gw, tc.port, tc.proto); ok {
			t.Errorf("Down(%s): found", tc.name)
		}
	}
	if _, ok := tab.DownFrom(b.GwAddr, b.GwPort, ProtoUDP, server, 5353); !ok {
		t.Error("DownFrom the server failed")
	}
	if _, ok := tab.DownFrom(b.GwAddr, b.GwPort, ProtoUDP, k.Dst, 5353); ok {
		t.Error("DownFrom another address succeeded")
	}
	if tab.Binding(uint32(tab.Capacity())) != nil || tab.Binding(id+1) != nil {
		t.Error("Binding of a bad or free id is not nil")
	}
	if tab.Delete(id+1, Admin) || !tab.Delete(id, Admin) || tab.Delete(id, Admin) {
		t.Error("Delete results wrong")
	}
	if _, ok := tab.Up(&k); ok {
		t.Error("Up after Delete")
	}
	tab.Touch(uint32(tab.Capacity())+5, true, 1, 0, 0) // out of range: ignored
}

// UpHashed with UpHash's hash answers as Up does, and TouchUp, given
// hashes of present and absent keys, changes nothing.
func TestUpHashedAndTouchUp(t *testing.T) {
	tab := testTable(t, nil)
	server := Addr16From(netip.MustParseAddr("203.0.113.7"))
	var keys []FlowKey
	var hs []uint32
	for i := range 300 {
		k := udpKey("10.0.0.1", uint16(1000+i), "198.51.100.1", 53)
		keys = append(keys, k)
		hs = append(hs, tab.UpHash(&k))
		if i%3 == 2 {
			continue // every third key stays absent
		}
		if _, err := tab.Create(&k, server, 53, 1, 0, sec(1)); err != nil {
			t.Fatal(err)
		}
	}
	before := tab.Len()
	tab.TouchUp(hs)
	tab.TouchUp(nil)
	if tab.Len() != before {
		t.Fatalf("TouchUp changed the table: %d bindings, had %d", tab.Len(), before)
	}
	for i := range keys {
		id, ok := tab.Up(&keys[i])
		hid, hok := tab.UpHashed(&keys[i], hs[i])
		if ok != (i%3 != 2) || hid != id || hok != ok {
			t.Fatalf("key %d: Up = %d %v, UpHashed = %d %v", i, id, ok, hid, hok)
		}
	}
}

// TestReclaimMillions churns flows through every way a binding ends
// (close, reset, idle, delete, session end) and checks that the table
// returns to empty with every port free.
func TestReclaimMillions(t *testing.T) {
	total := 1_000_000
	switch {
	case raceEnabled:
		total = 20_000
	case testing.Short():
		total = 100_000
	}
	tab := testTable(t, func(c *PortTableConfig) {
		c.GwAddrs = append(c.GwAddrs, netip.MustParseAddr("192.0.2.2"))
		c.Capacity = 8192
	})
	r := rand.New(rand.NewPCG(1, 2))
	now := int64(0)
	created := 0
	var k FlowKey
	k.Dst = Addr16From(netip.MustParseAddr("198.51.100.1"))
	k.DPort = 443
	srv6 := Addr16From(netip.MustParseAddr("2001:db8:1::1"))
	ended := 0
	onEnd := func(*Binding, Cause) { ended++ }
	for created < total {
		now += int64(time.Millisecond)
		// A burst of new flows.
		for range 8 {
			k.Src = Addr16V4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
			k.SPort = uint16(r.Uint32())
			k.Proto = []uint8{ProtoTCP, ProtoUDP, ProtoICMP}[r.IntN(3)]
			server := k.Dst
			if r.IntN(4) == 0 {
				server = srv6
			}
			id, err := tab.Create(&k, server, 443, uint64(1+r.IntN(1000)), 0, now)
			if err != nil {
				continue // ErrExists, ErrFull or ErrExhausted: counted, fine here
			}
			created++
			switch r.IntN(6) {
			case 0: // closes
				tab.Touch(id, true, 60, FlagSYN, now)
				tab.Touch(id, false, 60, FlagSYN|FlagACK, now)
				tab.Touch(id, true, 60, FlagFIN|FlagACK, now)
				tab.Touch(id, false, 60, FlagFIN|FlagACK, now)
			case 1: // resets
				tab.Touch(id, false, 60, FlagRST, now)
			case 2: // released at once
				tab.Delete(id, Released)
			default: // idles out
				tab.Touch(id, true, 60, FlagSYN, now)
			}
		}
		if r.IntN(50) == 0 {
			tab.DeleteSession(uint64(1+r.IntN(1000)), now, onEnd)
		}
		tab.Expire(now, 64, onEnd)
		if r.IntN(300) == 0 {
			now += int64(5 * time.Minute) // idle flows and closes expire en masse
		}
	}
	s := tab.Stats()
	t.Logf("created %d, stats %+v", created, s)
	now += int64(3 * time.Hour)
	tab.Expire(now, 2*tab.Capacity(), onEnd)
	tab.Expire(now, 2*tab.Capacity(), onEnd)
	s = tab.Stats()
	var rm uint64
	for _, n := range s.Removed {
		rm += n
	}
	if s.Live != 0 || s.Created != uint64(created) || rm != s.Created || uint64(ended)+s.Removed[Released] != rm {
		t.Fatalf("after reclaiming: %+v, onEnd saw %d", s, ended)
	}
	assertEmpty(t, tab, now+int64(tab.delay))
}

// TestSnapshotConcurrent runs readers against an owner that churns, and
// checks every copy is consistent. Bindings are made so that a torn copy
// shows: Session and Service derive from the flow, and bytes are a
// fixed multiple of packets. Run it with -race.
func TestSnapshotConcurrent(t *testing.T) {
	rounds := 3000
	if testing.Short() {
		rounds = 600
	}
	tab := testTable(t, func(c *PortTableConfig) { c.Capacity = 512 })
	gw := map[Addr16]bool{tab.gw[0]: true, tab.gw[1]: true}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var seen atomic.Int64
	errs := make(chan string, 8)
	report := func(e string, b Binding) {
		select {
		case errs <- e + ": " + fmt.Sprintf("%+v", b):
		default:
		}
	}
	check := func(b Binding) bool {
		sess := uint64(b.Flow.SPort)<<8 | uint64(b.Flow.Src[15])
		switch {
		case b.Session != sess || b.Service != uint32(b.Flow.SPort)+1:
			report("torn identity", b)
		case b.UpBytes != 100*b.UpPackets || b.DownBytes != 60*b.DownPackets:
			report("torn counters", b)
		case !gw[b.GwAddr] || b.GwPort < 20000 || b.GwPort > 29999 || b.Server != b.Flow.Dst || b.LastSeen < b.Created:
			report("bad fields", b)
		default:
			seen.Add(1)
			return true
		}
		return false
	}
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				tab.Snapshot(check)
				_ = tab.Stats()
			}
		})
	}
	r := rand.New(rand.NewPCG(3, 4))
	now := int64(0)
	var k FlowKey
	k.Dst = Addr16From(netip.MustParseAddr("198.51.100.1"))
	k.Proto = ProtoUDP
	ids := make([]uint32, 0, 512)
	for range rounds {
		now += int64(time.Second)
		for range 16 {
			k.Src = Addr16V4([4]byte{10, 0, 0, byte(r.IntN(8))})
			k.SPort = uint16(r.IntN(4096))
			if id, err := tab.Create(&k, k.Dst, 53, uint64(k.SPort)<<8|uint64(k.Src[15]), uint32(k.SPort)+1, now); err == nil {
				ids = append(ids, id)
			}
		}
		for range 64 {
			if len(ids) > 0 {
				id := ids[r.IntN(len(ids))]
				if r.IntN(2) == 0 {
					tab.Touch(id, true, 100, 0, now)
				} else {
					tab.Touch(id, false, 60, 0, now)
				}
			}
		}
		for range 12 {
			if len(ids) > 0 {
				i := r.IntN(len(ids))
				tab.Delete(ids[i], Admin)
				ids[i] = ids[len(ids)-1]
				ids = ids[:len(ids)-1]
			}
		}
		tab.Expire(now, 32, nil)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if seen.Load() == 0 {
		t.Fatal("readers saw no binding")
	}
	// Quiet now: one full pass in the next republish period publishes
	// everything, and a snapshot equals the owner's view.
	tab.Expire(now+1<<30, 2*tab.Capacity(), nil)
	tab.Expire(now+1<<30, 2*tab.Capacity(), nil)
	want := map[FlowKey]Binding{}
	for _, id := range ids {
		want[tab.Binding(id).Flow] = *tab.Binding(id)
	}
	got := map[FlowKey]Binding{}
	tab.Snapshot(func(b Binding) bool { got[b.Flow] = b; return true })
	if len(got) != len(want) || len(want) != tab.Len() {
		t.Fatalf("snapshot %d bindings, owner %d, Len %d", len(got), len(want), tab.Len())
	}
	for f, b := range want {
		if got[f] != b {
			t.Fatalf("snapshot %+v, owner %+v", got[f], b)
		}
	}
	t.Logf("readers checked %d copies", seen.Load())
}

// TestSnapshotState: a TCP state change is published at once, without
// waiting for the expiry sweep, while counters wait for it.
func TestSnapshotState(t *testing.T) {
	tab := testTable(t, nil)
	k := udpKey("10.0.0.1", 5000, "198.51.100.1", 443)
	k.Proto = ProtoTCP
	now := sec(1000)
	id, err := tab.Create(&k, k.Dst, k.DPort, 0, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	snap := func() Binding {
		var got []Binding
		tab.Snapshot(func(b Binding) bool { got = append(got, b); return true })
		if len(got) != 1 {
			t.Fatalf("snapshot holds %d bindings, want 1", len(got))
		}
		return got[0]
	}
	for _, s := range []struct {
		up    bool
		flags uint8
	}{{true, FlagSYN}, {false, FlagSYN | FlagACK}, {true, FlagACK}, {true, FlagACK}} {
		now += sec(0.001)
		want := tab.Binding(id).State.Next(s.up, s.flags)
		tab.Touch(id, s.up, 60, s.flags, now)
		if got := snap().State; got != want {
			t.Fatalf("after flags %#x: snapshot state %v, want %v", s.flags, got, want)
		}
	}
	if b := snap(); b.State.String() != "established" {
		t.Fatalf("state %v after the handshake, want established", b.State)
	}
	// The fourth segment changed no state: its counters wait for a sweep
	// in the next republish period.
	if b := snap(); b.UpPackets+b.DownPackets == 4 {
		t.Fatalf("counters %d+%d published per packet", b.UpPackets, b.DownPackets)
	}
	tab.Expire(now+1<<30, 10, nil)
	if b := snap(); b.UpPackets != 3 || b.DownPackets != 1 {
		t.Fatalf("after a sweep: up %d down %d packets, want 3 and 1", b.UpPackets, b.DownPackets)
	}
}

// TestDeleteAll: every binding ends once, with the cause given, and the
// table is empty and reusable afterwards.
func TestDeleteAll(t *testing.T) {
	tab := testTable(t, nil)
	now := sec(10)
	const n = 300
	for i := range n {
		k := udpKey("10.0.0.1", uint16(1000+i), "198.51.100.1", 53)
		if _, err := tab.Create(&k, k.Dst, k.DPort, uint64(1+i%3), 0, now); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint16]int{}
	got := tab.DeleteAll(now, Shutdown, func(b *Binding, c Cause) {
		if c != Shutdown {
			t.Errorf("cause %v, want shutdown", c)
		}
		seen[b.Flow.SPort]++
	})
	if got != n || len(seen) != n || tab.Len() != 0 {
		t.Fatalf("DeleteAll removed %d (%d distinct), Len %d; want %d, 0", got, len(seen), tab.Len(), n)
	}
	if st := tab.Stats(); st.Removed[Shutdown] != n {
		t.Fatalf("Removed[shutdown] = %d, want %d", st.Removed[Shutdown], n)
	}
	if tab.DeleteSession(1, now, nil) != 0 {
		t.Fatal("a session kept bindings after DeleteAll")
	}
	tab.Snapshot(func(b Binding) bool { t.Fatalf("snapshot holds %+v", b); return false })
	k := udpKey("10.0.0.1", 1000, "198.51.100.1", 53)
	if _, err := tab.Create(&k, k.Dst, k.DPort, 1, 0, now); err != nil {
		t.Fatalf("create after DeleteAll: %v", err)
	}
}

func TestSplitPorts(t *testing.T) {
	got, err := SplitPorts(1024, 65535, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]uint16{{1024, 22527}, {22528, 44031}, {44032, 65535}}
	if !slices.Equal(got, want) {
		t.Fatalf("SplitPorts = %v, want %v", got, want)
	}
	for _, bad := range [][3]int{{0, 10, 1}, {10, 9, 1}, {10, 11, 3}, {10, 20, 0}} {
		if _, err := SplitPorts(uint16(bad[0]), uint16(bad[1]), bad[2]); err == nil {
			t.Errorf("SplitPorts%v: no error", bad)
		}
	}
}

// TestEachOfSession: the walk visits exactly the bindings of one session,
// before and after some of them end, and none for session 0 or an
// unknown session.
func TestEachOfSession(t *testing.T) {
	tab := testTable(t, nil)
	want := map[uint64]map[uint32]bool{1: {}, 2: {}, 0: {}}
	for i := range 30 {
		s := uint64(i % 3)
		k := udpKey("10.0.0.1", uint16(1000+i), "198.51.100.1", 53)
		id, err := tab.Create(&k, k.Dst, k.DPort, s, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		want[s][id] = true
	}
	check := func(when string) {
		t.Helper()
		for s, ids := range want {
			got := map[uint32]bool{}
			tab.EachOfSession(s, func(id uint32) { got[id] = true })
			if s == 0 {
				if len(got) != 0 {
					t.Errorf("%s: session 0 walked %d bindings", when, len(got))
				}
				continue
			}
			if !maps.Equal(got, ids) {
				t.Errorf("%s: session %d walked %v, want %v", when, s, got, ids)
			}
		}
		tab.EachOfSession(99, func(id uint32) { t.Errorf("%s: unknown session walked %d", when, id) })
	}
	check("after creation")
	n := 0
	for id := range want[1] {
		if n++; n > 4 {
			break
		}
		tab.Delete(id, Admin)
		delete(want[1], id)
	}
	check("after some ended")
}

// TestSetServer: a binding moved to another server is seen with it at
// once, by the owner and by Snapshot, its key and counters unchanged; a
// server of the other family, or a free slot, is refused.
func TestSetServer(t *testing.T) {
	tab := testTable(t, nil)
	k := MakeFlowKey(ProtoTCP, netip.MustParseAddrPort("10.0.0.1:1000"), netip.MustParseAddrPort("198.51.100.1:80"))
	a := Addr16From(netip.MustParseAddr("198.51.100.7"))
	b := Addr16From(netip.MustParseAddr("198.51.100.8"))
	id, err := tab.Create(&k, a, 8080, 5, 1, sec(1))
	if err != nil {
		t.Fatal(err)
	}
	tab.Touch(id, true, 60, FlagSYN, sec(2))
	before := *tab.Binding(id)
	if !tab.SetServer(id, b, 8081) {
		t.Fatal("SetServer of a live binding refused")
	}
	want := before
	want.Server, want.SPort = b, 8081
	if got := *tab.Binding(id); got != want {
		t.Errorf("Binding after SetServer: %+v, want %+v", got, want)
	}
	var snap []Binding
	tab.Snapshot(func(b Binding) bool { snap = append(snap, b); return true })
	if len(snap) != 1 || snap[0] != want {
		t.Errorf("Snapshot after SetServer: %+v, want [%+v]", snap, want)
	}
	if got, ok := tab.DownFrom(before.GwAddr, before.GwPort, ProtoTCP, b, 8081); !ok || got != id {
		t.Errorf("DownFrom the new server: %d, %v", got, ok)
	}
	if _, ok := tab.DownFrom(before.GwAddr, before.GwPort, ProtoTCP, a, 8080); ok {
		t.Error("DownFrom the old server still matches")
	}
	if tab.SetServer(id, Addr16From(netip.MustParseAddr("2001:db8:1::1")), 80) {
		t.Error("SetServer to the other family accepted")
	}
	if tab.SetServer(id+1, a, 80) || tab.SetServer(uint32(tab.Capacity()), a, 80) {
		t.Error("SetServer of a free or out-of-range slot accepted")
	}
	if got := *tab.Binding(id); got != want {
		t.Errorf("a refused SetServer changed the binding: %+v", got)
	}
}
