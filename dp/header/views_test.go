package header_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/dp/dptest"
	"samepath/dp/header"
)

func mustParse(t testing.TB, f []byte) header.Parsed {
	t.Helper()
	var p header.Parsed
	if v := header.Parse(f, &p); v != header.OK {
		t.Fatalf("Parse = %v", v)
	}
	return p
}

func TestViewsAccessors(t *testing.T) {
	type fields struct {
		EthDst, EthSrc [6]byte
		EthType        uint16
		Src, Dst       netip.Addr
		TTL            uint8
		Proto          uint8
		ID             uint16
		DF             bool
		SPort, DPort   uint16
		Seq, Ack       uint32
		Flags          uint8
		Window         uint16
		DataOff        int
		UDPLen         uint16
		ICMPType       uint8
		ICMPCode       uint8
		Ident, ICMPSeq uint16
		Payload        string
		ChecksumsOK    bool
	}
	get := func(t *testing.T, f []byte) fields {
		p := mustParse(t, f)
		e := p.Ethernet(f)
		r := fields{EthDst: e.Dst(), EthSrc: e.Src(), EthType: e.Type(), Proto: p.Proto, ChecksumsOK: true}
		ph := p.PseudoHeaderChecksum(f)
		switch p.IPVersion {
		case 4:
			h := p.IPv4(f)
			r.Src, r.Dst, r.TTL, r.ID = h.SrcAddr(), h.DstAddr(), h.TTL(), h.ID()
			r.DF = h.Flags()&2 != 0
			r.ChecksumsOK = h.IsChecksumValid() && h.CalculateChecksum() == h.Checksum()
			if h.Protocol() != p.Proto {
				t.Errorf("Protocol() = %d, Parsed.Proto %d", h.Protocol(), p.Proto)
			}
		case 6:
			h := p.IPv6(f)
			r.Src, r.Dst, r.TTL = h.SrcAddr(), h.DstAddr(), h.HopLimit()
		}
		switch p.Proto {
		case header.ProtoTCP:
			tc := p.TCP(f)
			r.SPort, r.DPort, r.Seq, r.Ack, r.Flags, r.Window, r.DataOff = tc.SrcPort(), tc.DstPort(), tc.Seq(), tc.Ack(), tc.Flags(), tc.Window(), tc.DataOffset()
			r.Payload = string(tc.Payload())
			r.ChecksumsOK = r.ChecksumsOK && tc.IsChecksumValid(ph) && tc.CalculateChecksum(ph) == tc.Checksum()
		case header.ProtoUDP:
			u := p.UDP(f)
			r.SPort, r.DPort, r.UDPLen, r.Payload = u.SrcPort(), u.DstPort(), u.Length(), string(u.Payload())
			r.ChecksumsOK = r.ChecksumsOK && u.IsChecksumValid(ph, p.IPVersion == 6) && u.CalculateChecksum(ph) == u.Checksum()
		case header.ProtoICMPv4:
			m := p.ICMPv4(f)
			r.ICMPType, r.ICMPCode, r.Ident, r.ICMPSeq, r.Payload = m.Type(), m.Code(), m.Ident(), m.Seq(), string(m.Payload())
			r.ChecksumsOK = r.ChecksumsOK && m.IsChecksumValid() && m.CalculateChecksum() == m.Checksum()
		case header.ProtoICMPv6:
			m := p.ICMPv6(f)
			r.ICMPType, r.ICMPCode, r.Ident, r.ICMPSeq, r.Payload = m.Type(), m.Code(), m.Ident(), m.Seq(), string(m.Payload())
			r.ChecksumsOK = r.ChecksumsOK && m.IsChecksumValid(ph) && m.CalculateChecksum(ph) == m.Checksum()
		}
		return r
	}
	tests := []struct {
		name  string
		frame []byte
		want  fields
	}{
		{"tcp4", eth().IPv4(ip4A, ip4B).TTL(17).ID(0x1234).DF().TCP(40000, 80).Flags(header.FlagSYN | header.FlagECE | header.FlagCWR).Seq(0xdeadbeef).Ack(7).Window(1024).TCPOptions([]byte{1, 1, 1, 1}).Payload([]byte("GET /")).Bytes(),
			fields{EthDst: macB, EthSrc: macA, EthType: 0x0800, Src: ip4A, Dst: ip4B, TTL: 17, Proto: 6, ID: 0x1234, DF: true, SPort: 40000, DPort: 80, Seq: 0xdeadbeef, Ack: 7, Flags: 0xc2, Window: 1024, DataOff: 24, Payload: "GET /", ChecksumsOK: true}},
		{"udp6 vlan", eth().VLAN(5).IPv6(ip6A, ip6B).TTL(3).UDP(53, 5353).Payload([]byte("q")).PadTo(80).Bytes(),
			fields{EthDst: macB, EthSrc: macA, EthType: 0x8100, Src: ip6A, Dst: ip6B, TTL: 3, Proto: 17, SPort: 53, DPort: 5353, UDPLen: 9, Payload: "q", ChecksumsOK: true}},
		{"icmp4 echo", eth().IPv4(ip4B, ip4A).ICMPEchoReply(0xbeef, 9).Payload([]byte("ping")).Bytes(),
			fields{EthDst: macB, EthSrc: macA, EthType: 0x0800, Src: ip4B, Dst: ip4A, TTL: 64, Proto: 1, ICMPType: 0, Ident: 0xbeef, ICMPSeq: 9, Payload: "ping", ChecksumsOK: true}},
		{"icmp6 echo", eth().IPv6(ip6B, ip6A).ICMPEcho(1, 2).Payload([]byte("x")).Bytes(),
			fields{EthDst: macB, EthSrc: macA, EthType: 0x86dd, Src: ip6B, Dst: ip6A, TTL: 64, Proto: 58, ICMPType: 128, Ident: 1, ICMPSeq: 2, Payload: "x", ChecksumsOK: true}},
		{"tcp4 bad checksum", eth().IPv4(ip4A, ip4B).TCP(1, 2).L4Checksum(0x1234).Bytes(),
			fields{EthDst: macB, EthSrc: macA, EthType: 0x0800, Src: ip4A, Dst: ip4B, TTL: 64, Proto: 6, SPort: 1, DPort: 2, Window: 65535, DataOff: 20, ChecksumsOK: false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, get(t, tc.frame), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("views (-want +got):\n%s", d)
			}
		})
	}
}

func TestARPView(t *testing.T) {
	f := eth().ARP(header.ARPReply, macA, ip4A, macB, ip4B).Bytes()
	p := mustParse(t, f)
	a := p.ARP(f)
	got := []any{a.Op(), a.SenderMAC(), a.SenderAddr(), a.TargetMAC(), a.TargetAddr()}
	want := []any{uint16(header.ARPReply), macA, ip4A, macB, ip4B}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("ARP view (-want +got):\n%s", d)
	}
}

func TestICMPErrorEmbedded(t *testing.T) {
	inner := dptest.IP(eth().IPv4(ip4A, ip4B).UDP(1000, 53).Bytes())
	f := eth().IPv4(ip4B, ip4A).ICMPError(header.ICMPv4DstUnreachable, header.ICMPv4AdminProhibited, 0, inner).Bytes()
	p := mustParse(t, f)
	m := p.ICMPv4(f)
	if !m.IsError() || m.Code() != 13 {
		t.Fatalf("IsError %v code %d, want true 13", m.IsError(), m.Code())
	}
	if d := cmp.Diff(inner, m.Embedded()); d != "" {
		t.Errorf("embedded packet (-want +got):\n%s", d)
	}
	echo := eth().IPv6(ip6A, ip6B).ICMPEcho(1, 1).Payload([]byte("abc")).Bytes()
	p6 := mustParse(t, echo)
	if e := p6.ICMPv6(echo).Embedded(); e != nil {
		t.Errorf("echo request Embedded() = %x, want nil", e)
	}
	tooBig := eth().IPv6(ip6B, ip6A).ICMPError(header.ICMPv6PacketTooBig, 0, 1280, dptest.IP(echo)).Bytes()
	p6 = mustParse(t, tooBig)
	if m := p6.ICMPv6(tooBig); m.MTU() != 1280 || string(m.Embedded()) != string(dptest.IP(echo)) {
		t.Errorf("packet too big: MTU %d embedded %x", m.MTU(), m.Embedded())
	}
}

// nat44 rewrites source address and port of a parsed IPv4 TCP/UDP frame the
// way the gateway does, with incremental checksum updates only.
func nat44(f []byte, p *header.Parsed, src [4]byte, port uint16) {
	h := p.IPv4(f)
	old := h.Src()
	h.SetSrcWithChecksumUpdate(src)
	switch p.Proto {
	case header.ProtoTCP:
		tc := p.TCP(f)
		tc.UpdateChecksumAddr(old[:], src[:])
		tc.SetSrcPortWithChecksumUpdate(port)
	case header.ProtoUDP:
		u := p.UDP(f)
		u.UpdateChecksumAddr(old[:], src[:])
		u.SetSrcPortWithChecksumUpdate(port)
	case header.ProtoICMPv4:
		p.ICMPv4(f).SetIdentWithChecksumUpdate(port)
	}
}

// TestRewriteVsRecompute applies random NAT rewrites with incremental
// checksum updates and compares every checksum with a full recomputation.
func TestRewriteVsRecompute(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 3000; i++ {
		pl := make([]byte, r.IntN(64))
		for j := range pl {
			pl[j] = byte(r.Uint32())
		}
		s4 := netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), 1, 2})
		s6 := netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(r.Uint32())})
		var f []byte
		switch i % 6 {
		case 0:
			f = eth().IPv4(s4, ip4B).TTL(uint8(r.Uint32())).TCP(uint16(r.Uint32()), 80).Seq(r.Uint32()).Payload(pl).Bytes()
		case 1:
			f = eth().IPv4(s4, ip4B).UDP(uint16(r.Uint32()), 53).Payload(pl).Bytes()
		case 2:
			f = eth().IPv4(s4, ip4B).ICMPEcho(uint16(r.Uint32()), 1).Payload(pl).Bytes()
		case 3:
			f = eth().IPv6(s6, ip6B).TCP(uint16(r.Uint32()), 80).Payload(pl).Bytes()
		case 4:
			f = eth().IPv6(s6, ip6B).UDP(uint16(r.Uint32()), 53).Payload(pl).Bytes()
		case 5:
			f = eth().IPv6(s6, ip6B).ICMPEcho(uint16(r.Uint32()), 1).Payload(pl).Bytes()
		}
		p := mustParse(t, f)
		port := uint16(r.Uint32())
		if r.IntN(8) == 0 {
			port = []uint16{0, 0xffff}[r.IntN(2)]
		}
		if p.IPVersion == 4 {
			nat44(f, &p, [4]byte{byte(r.Uint32()), 0, byte(r.Uint32()), 9}, port)
			h := p.IPv4(f)
			if h.DecTTL(); !h.IsChecksumValid() {
				t.Fatalf("case %d: IPv4 checksum %#04x after rewrite, recomputed %#04x", i, h.Checksum(), h.CalculateChecksum())
			}
		} else {
			h := p.IPv6(f)
			old, nw := h.Src(), [16]byte{0xfd, 0, 14: byte(r.Uint32()), 15: byte(r.Uint32())}
			h.SetSrc(nw)
			switch p.Proto {
			case header.ProtoTCP:
				p.TCP(f).UpdateChecksumAddr(old[:], nw[:])
				p.TCP(f).SetSrcPortWithChecksumUpdate(port)
			case header.ProtoUDP:
				p.UDP(f).UpdateChecksumAddr(old[:], nw[:])
				p.UDP(f).SetSrcPortWithChecksumUpdate(port)
			case header.ProtoICMPv6:
				p.ICMPv6(f).UpdateChecksumAddr(old[:], nw[:])
				p.ICMPv6(f).SetIdentWithChecksumUpdate(port)
			}
		}
		if err := dptest.VerifyChecksums(f); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		// Bit for bit: the stored value is what a full computation writes.
		ph := p.PseudoHeaderChecksum(f)
		var stored, full uint16
		switch p.Proto {
		case header.ProtoTCP:
			stored, full = p.TCP(f).Checksum(), p.TCP(f).CalculateChecksum(ph)
		case header.ProtoUDP:
			stored, full = p.UDP(f).Checksum(), p.UDP(f).CalculateChecksum(ph)
		case header.ProtoICMPv4:
			stored, full = p.ICMPv4(f).Checksum(), p.ICMPv4(f).CalculateChecksum()
		case header.ProtoICMPv6:
			stored, full = p.ICMPv6(f).Checksum(), p.ICMPv6(f).CalculateChecksum(ph)
		}
		if stored != full {
			t.Fatalf("case %d proto %d: incremental checksum %#04x, full %#04x", i, p.Proto, stored, full)
		}
	}
}

// TestUDPZeroChecksumRule: a zero UDP checksum (none, IPv4) stays zero
// through updates, and an update whose arithmetic gives 0 stores 0xFFFF.
func TestUDPZeroChecksumRule(t *testing.T) {
	f := eth().IPv4(ip4A, ip4B).UDP(1000, 53).NoUDPChecksum().Payload([]byte("data")).Bytes()
	p := mustParse(t, f)
	nat44(f, &p, [4]byte{1, 2, 3, 4}, 4242)
	if c := p.UDP(f).Checksum(); c != 0 {
		t.Errorf("no-checksum datagram got checksum %#04x after rewrite, want 0", c)
	}

	f = eth().IPv4(ip4A, ip4B).UDP(1000, 53).Payload([]byte("data")).Bytes()
	p = mustParse(t, f)
	u := p.UDP(f)
	// Pick the port that makes the ones' complement sum 0xFFFF, i.e. the
	// computed checksum 0: ~C + ~P + P' = 0xFFFF.
	s := uint32(^u.Checksum()) + uint32(^u.SrcPort())
	s = s>>16 + s&0xffff
	port := uint16(0xffff - s)
	u.SetSrcPortWithChecksumUpdate(port)
	if u.SrcPort() != port || u.Checksum() != 0xffff {
		t.Fatalf("port %#04x checksum %#04x, want port %#04x checksum 0xffff", u.SrcPort(), u.Checksum(), port)
	}
	ph := p.PseudoHeaderChecksum(f)
	if !u.IsChecksumValid(ph, false) || u.CalculateChecksum(ph) != 0xffff {
		t.Errorf("checksum 0xffff: valid %v, CalculateChecksum %#04x (want true, 0xffff)", u.IsChecksumValid(ph, false), u.CalculateChecksum(ph))
	}
	if header.UDP(make([]byte, 8)).IsChecksumValid(0, true) {
		t.Error("zero UDP checksum accepted over IPv6")
	}
}

func TestDecTTL(t *testing.T) {
	f := eth().IPv4(ip4A, ip4B).TTL(1).UDP(1, 2).Bytes()
	p := mustParse(t, f)
	h := p.IPv4(f)
	if got := h.DecTTL(); got != 0 || !h.IsChecksumValid() {
		t.Fatalf("DecTTL from 1 = %d (valid %v), want 0 and valid", got, h.IsChecksumValid())
	}
	if got := h.DecTTL(); got != 0 || h.TTL() != 0 || !h.IsChecksumValid() {
		t.Fatalf("DecTTL from 0 = %d, TTL %d, want 0 unchanged", got, h.TTL())
	}
	h.SetTTLWithChecksumUpdate(200)
	if h.TTL() != 200 || !h.IsChecksumValid() {
		t.Fatalf("SetTTLWithChecksumUpdate: TTL %d valid %v", h.TTL(), h.IsChecksumValid())
	}
}

func TestSettersRoundTrip(t *testing.T) {
	f := eth().IPv4(ip4A, ip4B).TCP(1, 2).Bytes()
	p := mustParse(t, f)
	e, h, tc := p.Ethernet(f), p.IPv4(f), p.TCP(f)
	e.SetDst(macA)
	e.SetSrc(macB)
	h.SetDstWithChecksumUpdate(ip4A.As4())
	h.SetSrc(ip4B.As4())
	h.SetChecksum(h.CalculateChecksum())
	tc.SetDstPortWithChecksumUpdate(9)
	tc.SetSeq(5)
	tc.SetAck(6)
	tc.SetFlags(header.FlagFIN | header.FlagACK)
	tc.SetWindow(77)
	tc.SetChecksum(tc.CalculateChecksum(p.PseudoHeaderChecksum(f)))
	want := eth().Eth(macB, macA).IPv4(ip4B, ip4A).TCP(1, 9).Seq(5).Ack(6).Flags(header.FlagFIN | header.FlagACK).Window(77).Bytes()
	if d := dptest.Diff(want, f); d != "" {
		t.Errorf("after setters: %s", d)
	}
	f6 := eth().IPv6(ip6A, ip6B).UDP(1, 2).Bytes()
	p6 := mustParse(t, f6)
	h6 := p6.IPv6(f6)
	h6.SetSrc(ip6B.As16())
	h6.SetDst(ip6A.As16())
	h6.SetHopLimit(9)
	u := p6.UDP(f6)
	u.SetDstPort(3)
	u.SetSrcPort(4)
	u.SetChecksum(u.CalculateChecksum(p6.PseudoHeaderChecksum(f6)))
	if d := dptest.Diff(eth().IPv6(ip6B, ip6A).TTL(9).UDP(4, 3).Bytes(), f6); d != "" {
		t.Errorf("after IPv6 setters: %s", d)
	}
}

func TestViewsAllocs(t *testing.T) {
	f4 := eth().IPv4(ip4A, ip4B).TCP(1, 2).Payload(make([]byte, 100)).Bytes()
	u4 := eth().IPv4(ip4A, ip4B).UDP(1, 2).Payload(make([]byte, 100)).Bytes()
	i4 := eth().IPv4(ip4A, ip4B).ICMPEcho(1, 2).Bytes()
	f6 := eth().IPv6(ip6A, ip6B).TCP(1, 2).Bytes()
	i6 := eth().IPv6(ip6A, ip6B).ICMPEcho(1, 2).Bytes()
	p4, pu, pi, p6, pi6 := mustParse(t, f4), mustParse(t, u4), mustParse(t, i4), mustParse(t, f6), mustParse(t, i6)
	src4, src16 := [4]byte{9, 9, 9, 9}, [16]byte{1: 1}
	var sink uint64
	ops := map[string]func(){
		"ethernet": func() {
			e := p4.Ethernet(f4)
			e.SetDst(e.Src())
			e.SetSrc(e.Dst())
		},
		"ipv4 read": func() {
			h := p4.IPv4(f4)
			a, b := h.SrcAddr(), h.DstAddr()
			sink += uint64(a.BitLen()+b.BitLen()) + uint64(h.TTL()) + uint64(h.ID())
			if h.IsChecksumValid() {
				sink++
			}
		},
		"ipv4 nat": func() {
			h := p4.IPv4(f4)
			h.SetSrcWithChecksumUpdate(src4)
			h.SetDstWithChecksumUpdate(src4)
			h.DecTTL()
			h.SetTTLWithChecksumUpdate(64)
			sink += uint64(h.CalculateChecksum())
		},
		"tcp": func() {
			tc := p4.TCP(f4)
			tc.SetSrcPortWithChecksumUpdate(7)
			tc.SetDstPortWithChecksumUpdate(8)
			tc.UpdateChecksumAddr(src4[:], src4[:])
			sink += uint64(tc.CalculateChecksum(p4.PseudoHeaderChecksum(f4))) + uint64(len(tc.Payload()))
		},
		"udp": func() {
			u := pu.UDP(u4)
			u.SetSrcPortWithChecksumUpdate(7)
			u.SetDstPortWithChecksumUpdate(8)
			u.UpdateChecksumAddr(src4[:], src4[:])
			sink += uint64(u.CalculateChecksum(pu.PseudoHeaderChecksum(u4))) + uint64(len(u.Payload()))
		},
		"icmp": func() {
			pi.ICMPv4(i4).SetIdentWithChecksumUpdate(3)
			m := pi6.ICMPv6(i6)
			m.SetIdentWithChecksumUpdate(3)
			m.UpdateChecksumAddr(src16[:], src16[:])
			sink += uint64(len(m.Embedded()))
		},
		"ipv6": func() {
			h := p6.IPv6(f6)
			h.SetSrc(src16)
			h.SetDst(h.Src())
			h.SetHopLimit(3)
			a := h.SrcAddr()
			sink += uint64(a.BitLen())
		},
	}
	for name, op := range ops {
		if n := testing.AllocsPerRun(100, op); n != 0 {
			t.Errorf("%s: %v allocations per run", name, n)
		}
	}
	_ = sink
}

func BenchmarkRewriteNAT44TCP(b *testing.B) {
	f := eth().IPv4(ip4A, ip4B).TCP(1000, 80).Payload(make([]byte, 1400)).Bytes()
	var p header.Parsed
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		header.Parse(f, &p)
		nat44(f, &p, [4]byte{10, 9, byte(i), 1}, uint16(i))
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.ReportAllocs()
	b.SetBytes(1500)
	for b.Loop() {
		header.Checksum(buf, 0)
	}
}
