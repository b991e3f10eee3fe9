package dptest_test

// Kernel acceptance: frames built by dptest are sent over a veth pair into a
// namespace whose Linux stack must accept them; its answers are compared
// field by field (Diff) with frames the builder makes for the same answer,
// so the builder's lengths and checksums are checked against the kernel's.
//
//	ns "a"                         ns "b"
//	+-------------------+  veth    +------------------------------+
//	| va (no address)   |----------| vb 10.200.0.2/24 fd00:200::2 |
//	| AF_PACKET socket  |          | UDP :7777, TCP :8080         |
//	+-------------------+          +------------------------------+
//	02:00:00:00:01:01               02:00:00:00:01:02

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

var (
	kmacA = dptest.MAC("02:00:00:00:01:01")
	kmacB = dptest.MAC("02:00:00:00:01:02")
	k4A   = netip.MustParseAddr("10.200.0.1")
	k4B   = netip.MustParseAddr("10.200.0.2")
	k6A   = netip.MustParseAddr("fd00:200::1")
	k6B   = netip.MustParseAddr("fd00:200::2")
)

type kernelBed struct {
	fd     int // AF_PACKET socket on va in ns a
	nsB    string
	udp4   net.PacketConn
	udp6   net.PacketConn
	tcpLis []net.Listener
}

func newKernelBed(t *testing.T) *kernelBed {
	privtest.Require(t)
	nsA, nsB := privtest.Name("dpta", ""), privtest.Name("dptb", "")
	for _, ns := range []string{nsA, nsB} {
		if err := topo.CreateNetns(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := topo.DeleteNetns(ns); err != nil {
				t.Errorf("delete netns: %v", err)
			}
		})
	}
	a, err := topo.Open(nsA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	b, err := topo.Open(nsB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := topo.Veth(a, "va", kmacA[:], b, "vb", kmacB[:]); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.AddrReplace("vb", netip.PrefixFrom(k4B, 24)))
	must(b.AddrReplace("vb", netip.PrefixFrom(k6B, 64)))
	must(a.Up("va"))
	must(b.Up("vb"))
	// Complete checksums on what vb sends, so replies read on va carry
	// final checksums rather than offload partial sums.
	must(topo.SetTxChecksum(nsB, "vb", false))
	vb, err := b.Link("vb")
	must(err)
	for _, ip := range []netip.Addr{k4A, k6A} {
		must(b.H.NeighAdd(&netlink.Neigh{LinkIndex: vb.Attrs().Index, State: netlink.NUD_PERMANENT,
			IP: net.IP(ip.AsSlice()), HardwareAddr: net.HardwareAddr(kmacA[:])}))
	}

	kb := &kernelBed{fd: -1, nsB: nsB}
	must(topo.Do(nsA, func() error {
		ifi, err := net.InterfaceByName("va")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		kb.fd = fd
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	}))
	t.Cleanup(func() { unix.Close(kb.fd) })
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	must(unix.SetsockoptTimeval(kb.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))

	kb.udp4, err = topo.ListenPacket(nsB, "udp4", "10.200.0.2:7777")
	must(err)
	t.Cleanup(func() { kb.udp4.Close() })
	kb.udp6, err = topo.ListenPacket(nsB, "udp6", "[fd00:200::2]:7777")
	must(err)
	t.Cleanup(func() { kb.udp6.Close() })
	for _, addr := range []string{"10.200.0.2:8080", "[fd00:200::2]:8080"} {
		l, err := topo.Listen(nsB, "tcp", addr)
		must(err)
		t.Cleanup(func() { l.Close() })
		kb.tcpLis = append(kb.tcpLis, l)
	}
	return kb
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (kb *kernelBed) send(t *testing.T, f []byte) {
	t.Helper()
	if _, err := unix.Write(kb.fd, f); err != nil {
		t.Fatalf("send frame: %v", err)
	}
}

// await reads frames arriving on va until match accepts one. The deadline
// only bounds a failing test; nothing asserts on how long it takes.
func (kb *kernelBed) await(t *testing.T, what string, match func(f []byte, p *header.Parsed) bool) []byte {
	t.Helper()
	buf := make([]byte, 9000)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n, _, err := unix.Recvfrom(kb.fd, buf, 0)
		if err != nil {
			continue // EAGAIN on the receive timeout
		}
		f := buf[:n]
		var p header.Parsed
		if header.Parse(f, &p) == header.OK && header.Ethernet(f).Src() == kmacB && match(f, &p) {
			return append([]byte(nil), f...)
		}
	}
	t.Fatalf("no %s arrived", what)
	return nil
}

func readUDP(t *testing.T, c net.PacketConn) (string, netip.AddrPort) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2000)
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no datagram reached the socket: %v", err)
	}
	return string(buf[:n]), from.(*net.UDPAddr).AddrPort()
}

func TestKernelAcceptsBuiltFrames(t *testing.T) {
	kb := newKernelBed(t)
	k := func() *dptest.Builder { return dptest.Frame().Eth(kmacA, kmacB) }

	t.Run("udp4", func(t *testing.T) {
		// A corrupt datagram first: the kernel must drop it, so the first
		// one read is the good one (this also shows the kernel checks).
		kb.send(t, k().IPv4(k4A, k4B).UDP(5555, 7777).Payload([]byte("corrupt")).L4Checksum(0x1234).Bytes())
		kb.send(t, k().IPv4(k4A, k4B).ID(9).UDP(5555, 7777).Payload([]byte("hello v4")).PadTo(60).Bytes())
		got, from := readUDP(t, kb.udp4)
		if got != "hello v4" || from != netip.AddrPortFrom(k4A, 5555) {
			t.Errorf("got %q from %v, want %q from %v:5555", got, from, "hello v4", k4A)
		}
	})
	t.Run("udp4 no checksum", func(t *testing.T) {
		kb.send(t, k().IPv4(k4A, k4B).UDP(5556, 7777).NoUDPChecksum().Payload([]byte("none")).Bytes())
		if got, _ := readUDP(t, kb.udp4); got != "none" {
			t.Errorf("got %q, want %q", got, "none")
		}
	})
	t.Run("udp6 hop-by-hop", func(t *testing.T) {
		kb.send(t, k().IPv6(k6A, k6B).UDP(5555, 7777).Payload([]byte("corrupt")).L4Checksum(0x4321).Bytes())
		kb.send(t, k().IPv6(k6A, k6B).HopByHop(nil).DstOpts([]byte{1, 3, 0, 0, 0}).UDP(5555, 7777).Payload([]byte("hello v6 odd")).Bytes())
		got, from := readUDP(t, kb.udp6)
		if got != "hello v6 odd" || from != netip.AddrPortFrom(k6A, 5555) {
			t.Errorf("got %q from %v", got, from)
		}
	})
	t.Run("icmp4 echo", func(t *testing.T) {
		kb.send(t, k().IPv4(k4A, k4B).ID(77).ICMPEcho(0x4242, 1).Payload([]byte("ping payload!")).Bytes())
		got := kb.await(t, "echo reply", func(f []byte, p *header.Parsed) bool {
			return p.Proto == header.ProtoICMPv4 && p.ICMPv4(f).Type() == header.ICMPv4EchoReply && p.ICMPv4(f).Ident() == 0x4242
		})
		var p header.Parsed
		header.Parse(got, &p)
		h := p.IPv4(got)
		want := dptest.Frame().Eth(kmacB, kmacA).IPv4(k4B, k4A).TOS(h.TOS()).ID(h.ID())
		if h.Flags()&2 != 0 {
			want.DF()
		}
		w := want.ICMPEchoReply(0x4242, 1).Payload([]byte("ping payload!")).Bytes()
		if d := dptest.Diff(w, got); d != "" {
			t.Errorf("kernel reply vs builder: %s", d)
		}
	})
	t.Run("icmp6 echo", func(t *testing.T) {
		kb.send(t, k().IPv6(k6A, k6B).ICMPEcho(0x4343, 2).Payload([]byte("ping6")).Bytes())
		got := kb.await(t, "echo6 reply", func(f []byte, p *header.Parsed) bool {
			return p.Proto == header.ProtoICMPv6 && p.ICMPv6(f).Type() == header.ICMPv6EchoReply && p.ICMPv6(f).Ident() == 0x4343
		})
		var p header.Parsed
		header.Parse(got, &p)
		h := p.IPv6(got)
		w := dptest.Frame().Eth(kmacB, kmacA).IPv6(k6B, k6A).TOS(h.TrafficClass()).FlowLabel(h.FlowLabel()).
			ICMPEchoReply(0x4343, 2).Payload([]byte("ping6")).Bytes()
		if d := dptest.Diff(w, got); d != "" {
			t.Errorf("kernel reply vs builder: %s", d)
		}
	})
	t.Run("icmp4 port unreachable", func(t *testing.T) {
		sent := k().IPv4(k4A, k4B).ID(5).UDP(5557, 9).Payload([]byte("to a closed port")).Bytes()
		kb.send(t, sent)
		got := kb.await(t, "port unreachable", func(f []byte, p *header.Parsed) bool {
			return p.Proto == header.ProtoICMPv4 && p.ICMPv4(f).Type() == header.ICMPv4DstUnreachable
		})
		var p header.Parsed
		header.Parse(got, &p)
		h := p.IPv4(got)
		want := dptest.Frame().Eth(kmacB, kmacA).IPv4(k4B, k4A).TOS(h.TOS()).ID(h.ID())
		if h.Flags()&2 != 0 {
			want.DF()
		}
		w := want.ICMPError(header.ICMPv4DstUnreachable, header.ICMPv4PortUnreachable, 0, dptest.IP(sent)).Bytes()
		if d := dptest.Diff(w, got); d != "" {
			t.Errorf("kernel ICMP error vs builder: %s", d)
		}
	})
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
	}{{"tcp4 syn", k4A, k4B}, {"tcp6 syn", k6A, k6B}} {
		t.Run(tc.name, func(t *testing.T) {
			b := k()
			if tc.src.Is4() {
				b.IPv4(tc.src, tc.dst)
			} else {
				b.IPv6(tc.src, tc.dst)
			}
			mss := []byte{2, 4, 0x05, 0x00} // MSS 1280
			kb.send(t, b.TCP(40001, 8080).Flags(header.FlagSYN).Seq(1000).Window(8192).TCPOptions(mss).Bytes())
			got := kb.await(t, "SYN-ACK", func(f []byte, p *header.Parsed) bool {
				return p.Proto == header.ProtoTCP && p.TCP(f).DstPort() == 40001
			})
			var p header.Parsed
			header.Parse(got, &p)
			tcp := p.TCP(got)
			if tcp.Flags() != header.FlagSYN|header.FlagACK || tcp.Ack() != 1001 {
				t.Errorf("reply flags %#x ack %d, want SYN|ACK ack 1001", tcp.Flags(), tcp.Ack())
			}
			if err := dptest.VerifyChecksums(got); err != nil {
				t.Errorf("kernel SYN-ACK: %v", err)
			}
			// Answer the SYN-ACK with a RST so the listener's queue is left clean.
			rb := k()
			if tc.src.Is4() {
				rb.IPv4(tc.src, tc.dst)
			} else {
				rb.IPv6(tc.src, tc.dst)
			}
			kb.send(t, rb.TCP(40001, 8080).Flags(header.FlagRST).Seq(1001).Window(0).Bytes())
		})
	}
	t.Run("arp", func(t *testing.T) {
		kb.send(t, k().Eth(kmacA, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}).ARP(header.ARPRequest, kmacA, k4A, [6]byte{}, k4B).PadTo(60).Bytes())
		got := kb.await(t, "ARP reply", func(f []byte, p *header.Parsed) bool {
			return p.EtherType == header.EtherTypeARP && p.ARP(f).Op() == header.ARPReply
		})
		w := dptest.Frame().Eth(kmacB, kmacA).ARP(header.ARPReply, kmacB, k4B, kmacA, k4A).Bytes()
		if d := dptest.Diff(w, got); d != "" {
			t.Errorf("kernel ARP reply vs builder: %s", d)
		}
	})
}
