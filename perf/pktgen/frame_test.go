package pktgen

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"samepath/perf/xdpprog"
)

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
)

func specs() map[string]FrameSpec {
	base := FrameSpec{Size: 64, Proto: UDP, SrcMAC: macA, DstMAC: macB,
		SrcIP: netip.MustParseAddr("10.1.0.1"), DstIP: netip.MustParseAddr("10.2.0.1"),
		SrcAddrs: 100, SrcPort: 1024, SrcPorts: 100, DstPort: 9}
	v4tcp := base
	v4tcp.Proto, v4tcp.Size = TCP, 1500
	v6udp := base
	v6udp.SrcIP, v6udp.DstIP, v6udp.Size = netip.MustParseAddr("fd00::1:1:fff0"), netip.MustParseAddr("fd00::2:1"), 99
	v6tcp := v6udp
	v6tcp.Proto, v6tcp.Size = TCP, 1518
	small := base
	small.Proto = TCP // 64 B IPv4 TCP: no room for the stamp
	return map[string]FrameSpec{"v4udp64": base, "v4tcp1500": v4tcp, "v6udp99": v6udp, "v6tcp1518": v6tcp, "v4tcp64-nostamp": small}
}

// checkFrame verifies f with a plain network-order checksum and returns
// (source low 32 bits, source port, stamp stream, stamp seq, stamped).
func checkFrame(t *testing.T, f []byte) (uint32, uint16, uint32, uint64, bool) {
	t.Helper()
	var l3, l4 []byte
	v6 := binary.BigEndian.Uint16(f[12:]) == 0x86dd
	if v6 {
		l3, l4 = f[14:54], f[54:]
	} else {
		l3, l4 = f[14:34], f[34:]
		if c := Checksum(l3, 0); c != 0 {
			t.Fatalf("IPv4 header checksum does not verify (residue %#x)", c)
		}
	}
	proto := l3[9]
	if v6 {
		proto = l3[6]
	}
	if c := Checksum(l4, PseudoSum(l3, v6, proto, len(l4))); c != 0 {
		t.Fatalf("L4 checksum does not verify (residue %#x)", c)
	}
	src := binary.BigEndian.Uint32(l3[12:])
	if v6 {
		src = binary.BigEndian.Uint32(l3[20:])
	}
	pay := l4[8:]
	if proto == 6 {
		pay = l4[20:]
	}
	stamped := len(pay) >= xdpprog.StampLen && binary.LittleEndian.Uint32(pay) == xdpprog.StampMagic
	var stream uint32
	var seq uint64
	if stamped {
		stream = binary.LittleEndian.Uint32(pay[4:])
		seq = binary.LittleEndian.Uint64(pay[8:])
	}
	return src, binary.BigEndian.Uint16(l4), stream, seq, stamped
}

func TestBuildTemplate(t *testing.T) {
	for name, s := range specs() {
		t.Run(name, func(t *testing.T) {
			f, cfg, err := s.Build()
			if err != nil {
				t.Fatal(err)
			}
			if len(f) != s.Size-FCSLen {
				t.Fatalf("len %d, want %d", len(f), s.Size-FCSLen)
			}
			src, port, _, seq, stamped := checkFrame(t, f)
			if src != low32(s.SrcIP) || port != s.SrcPort || seq != 0 {
				t.Fatalf("template flow: src %#x port %d seq %d", src, port, seq)
			}
			if stamped != s.Stamped() || (cfg.Flags&xdpprog.GenStamp != 0) != stamped {
				t.Fatalf("stamped %v, spec says %v, flags %#x", stamped, s.Stamped(), cfg.Flags)
			}
			if cfg.NFlows != 10000 || cfg.NPort != 100 {
				t.Fatalf("flows %d ports %d", cfg.NFlows, cfg.NPort)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := specs()["v4udp64"]
	bad := map[string]func(s *FrameSpec){
		"proto":     func(s *FrameSpec) { s.Proto = "sctp" },
		"mac":       func(s *FrameSpec) { s.DstMAC = nil },
		"family":    func(s *FrameSpec) { s.DstIP = netip.MustParseAddr("fd00::1") },
		"too small": func(s *FrameSpec) { s.Size = 50 },
		"v6 64": func(s *FrameSpec) {
			s.SrcIP, s.DstIP = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
			s.Proto = TCP
		},
		"ports wrap":  func(s *FrameSpec) { s.SrcPort = 65000; s.SrcPorts = 1000 },
		"addrs wrap":  func(s *FrameSpec) { s.SrcIP = netip.MustParseAddr("255.255.255.250") },
		"zero ports":  func(s *FrameSpec) { s.SrcPorts = 0 },
		"huge frames": func(s *FrameSpec) { s.Size = 20000 },
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("good spec: %v", err)
	}
	for name, mut := range bad {
		s := good
		mut(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, _, err := s.Build(); err == nil {
			t.Errorf("%s: Build accepted it", name)
		}
	}
}
