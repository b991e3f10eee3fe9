package pktgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"samepath/perf/xdpprog"
)

// FCSLen is the Ethernet frame check sequence, counted in frame sizes (as
// RFC 2544 and DPDK pktgen do) but not carried in the buffers: a "64 B"
// frame is 60 bytes of data.
const FCSLen = 4

// Protocols.
const (
	UDP = "udp"
	TCP = "tcp"
)

// FrameSpec describes the frames to generate. Source addresses and ports
// cycle through SrcAddrs x SrcPorts flows: flow i has port SrcPort +
// i%SrcPorts and address SrcIP + i/SrcPorts (incrementing the low 32 bits).
type FrameSpec struct {
	Size     int // frame size in bytes including the 4-byte FCS
	Proto    string
	SrcMAC   net.HardwareAddr
	DstMAC   net.HardwareAddr
	SrcIP    netip.Addr // first source address; IPv4 or IPv6 (DstIP must match)
	DstIP    netip.Addr
	SrcAddrs int    // number of source addresses, >= 1
	SrcPort  uint16 // first source port
	SrcPorts int    // number of source ports, >= 1
	DstPort  uint16
}

// Flows is the number of distinct flows the spec cycles through.
func (s *FrameSpec) Flows() int { return s.SrcAddrs * s.SrcPorts }

func (s *FrameSpec) hdrLen() int {
	n := 14 + 20
	if s.SrcIP.Is6() {
		n = 14 + 40
	}
	if s.Proto == TCP {
		return n + 20
	}
	return n + 8
}

// MinSize is the smallest frame size (with FCS) the spec's headers fit in;
// MinStampedSize also fits the sequence stamp.
func (s *FrameSpec) MinSize() int        { return max(s.hdrLen()+FCSLen, 64) }
func (s *FrameSpec) MinStampedSize() int { return max(s.hdrLen()+xdpprog.StampLen+FCSLen, 64) }

// Validate checks the spec.
func (s *FrameSpec) Validate() error {
	switch {
	case s.Proto != UDP && s.Proto != TCP:
		return fmt.Errorf("frame: protocol %q: want udp or tcp", s.Proto)
	case len(s.SrcMAC) != 6 || len(s.DstMAC) != 6:
		return errors.New("frame: source and destination MAC must be 6 bytes")
	case !s.SrcIP.IsValid() || !s.DstIP.IsValid():
		return errors.New("frame: source and destination IP are required")
	case s.SrcIP.Is4() != s.DstIP.Is4():
		return fmt.Errorf("frame: source %s and destination %s are different families", s.SrcIP, s.DstIP)
	case s.SrcAddrs < 1 || s.SrcPorts < 1:
		return errors.New("frame: address and port counts must be >= 1")
	case s.SrcPorts > 65536 || int(s.SrcPort)+s.SrcPorts > 65536:
		return fmt.Errorf("frame: ports %d+%d run past 65535", s.SrcPort, s.SrcPorts)
	case uint64(s.SrcAddrs)*uint64(s.SrcPorts) > 1<<31:
		return errors.New("frame: more than 2^31 flows")
	case s.Size < s.MinSize():
		return fmt.Errorf("frame: size %d below the %d bytes the headers need", s.Size, s.MinSize())
	case s.Size > 9000+18:
		return fmt.Errorf("frame: size %d above 9018", s.Size)
	}
	lo := low32(s.SrcIP)
	if uint64(lo)+uint64(s.SrcAddrs) > 1<<32 {
		return fmt.Errorf("frame: %d addresses from %s wrap the low 32 bits", s.SrcAddrs, s.SrcIP)
	}
	return nil
}

func low32(a netip.Addr) uint32 {
	b := a.As16()
	return binary.BigEndian.Uint32(b[12:])
}

// Stamped reports whether frames of this spec carry the sequence stamp.
func (s *FrameSpec) Stamped() bool { return s.Size >= s.MinStampedSize() }

// StampOffset is the offset of the stamp (the L4 payload) in a frame.
func (s *FrameSpec) StampOffset() int { return s.hdrLen() }

// WithStream returns a copy of template tmpl (from Build) whose stamp
// carries stream id stream. The generator program reads the stream from
// the frame and rewrites sequence and checksums, so the copy's checksums
// are left as they were.
func (s *FrameSpec) WithStream(tmpl []byte, stream uint32) []byte {
	f := bytes.Clone(tmpl)
	if s.Stamped() {
		binary.LittleEndian.PutUint32(f[s.StampOffset()+4:], stream)
	}
	return f
}

// Build returns the template frame (without FCS) and the generator program
// configuration for it. The template carries the first flow's source address
// and port, sequence 0 and valid checksums, so it is a valid frame as is.
func (s *FrameSpec) Build() ([]byte, xdpprog.GenConfig, error) {
	if err := s.Validate(); err != nil {
		return nil, xdpprog.GenConfig{}, err
	}
	f := make([]byte, s.Size-FCSLen)
	copy(f[0:6], s.DstMAC)
	copy(f[6:12], s.SrcMAC)
	v6 := s.SrcIP.Is6()
	var l3, l4 []byte
	l4proto := byte(17)
	if s.Proto == TCP {
		l4proto = 6
	}
	if v6 {
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
		l3 = f[14:54]
		l4 = f[54:]
		l3[0] = 0x60
		binary.BigEndian.PutUint16(l3[4:], uint16(len(l4)))
		l3[6] = l4proto
		l3[7] = 64
		src, dst := s.SrcIP.As16(), s.DstIP.As16()
		copy(l3[8:24], src[:])
		copy(l3[24:40], dst[:])
	} else {
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		l3 = f[14:34]
		l4 = f[34:]
		l3[0] = 0x45
		binary.BigEndian.PutUint16(l3[2:], uint16(len(l3)+len(l4)))
		binary.BigEndian.PutUint16(l3[6:], 0x4000) // DF
		l3[8] = 64
		l3[9] = l4proto
		src, dst := s.SrcIP.As4(), s.DstIP.As4()
		copy(l3[12:16], src[:])
		copy(l3[16:20], dst[:])
	}
	binary.BigEndian.PutUint16(l4[0:], s.SrcPort)
	binary.BigEndian.PutUint16(l4[2:], s.DstPort)
	var payload []byte
	if s.Proto == TCP {
		l4[12] = 5 << 4
		l4[13] = 0x10 // ACK
		binary.BigEndian.PutUint16(l4[14:], 65535)
		payload = l4[20:]
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		payload = l4[8:]
	}
	for i := range payload {
		payload[i] = byte(i)
	}
	cfg := xdpprog.GenConfig{
		NFlows: uint32(s.Flows()), NPort: uint32(s.SrcPorts),
		PortLo: uint32(s.SrcPort), AddrLo: low32(s.SrcIP),
	}
	if v6 {
		cfg.Flags |= xdpprog.GenIPv6
	}
	if s.Proto == TCP {
		cfg.Flags |= xdpprog.GenTCP
	}
	if s.Stamped() {
		cfg.Flags |= xdpprog.GenStamp
		binary.LittleEndian.PutUint32(payload[0:], xdpprog.StampMagic)
		clear(payload[4:xdpprog.StampLen])
	}

	// Sums the program starts from: the varying fields (low 32 bits of the
	// source address, source port, stamp stream and sequence) are zero here.
	// Sums are of native (little-endian) 16-bit loads, as the program makes.
	saddr := l3[12:16] // IPv4 source
	if v6 {
		saddr = l3[20:24] // low 32 bits of the IPv6 source
	}
	var keepAddr [4]byte
	copy(keepAddr[:], saddr)
	keepPort := [2]byte{l4[0], l4[1]}
	clear(saddr)
	clear(l4[0:2])
	if !v6 {
		cfg.IPSum = fold(sumLE(l3))
	}
	cfg.L4Sum = fold(pseudoSumLE(l3, v6, l4proto, len(l4)) + sumLE(l4))
	copy(saddr, keepAddr[:])
	copy(l4[0:2], keepPort[:])

	// Checksums of the template itself (flow 0, sequence 0).
	if !v6 {
		binary.BigEndian.PutUint16(l3[10:], Checksum(l3, 0))
	}
	csumOff := 6
	if s.Proto == TCP {
		csumOff = 16
	}
	c := Checksum(l4, PseudoSum(l3, v6, l4proto, len(l4)))
	if c == 0 && s.Proto == UDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[csumOff:], c)
	cfg.Hdr = bytes.Clone(f[:len(f)-len(payload)])
	return f, cfg, nil
}

func sumLE(b []byte) uint32 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(binary.LittleEndian.Uint16(b))
		b = b[2:]
		if s >= 1<<31 {
			s = fold(s)
		}
	}
	if len(b) == 1 {
		s += uint32(b[0])
	}
	return s
}

func pseudoSumLE(l3 []byte, v6 bool, proto byte, l4len int) uint32 {
	var ph [40]byte
	var n int
	if v6 {
		copy(ph[0:32], l3[8:40])
		binary.BigEndian.PutUint32(ph[32:], uint32(l4len))
		ph[39] = proto
		n = 40
	} else {
		copy(ph[0:8], l3[12:20])
		ph[9] = proto
		binary.BigEndian.PutUint16(ph[10:], uint16(l4len))
		n = 12
	}
	return sumLE(ph[:n])
}

func fold(s uint32) uint32 {
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	return s
}

// PseudoSum is the RFC 1071 sum (network order) of the IPv4 or IPv6
// pseudo-header for an L4 segment of l4len bytes behind header l3.
func PseudoSum(l3 []byte, v6 bool, proto byte, l4len int) uint32 {
	var s uint32
	if v6 {
		for i := 8; i < 40; i += 2 {
			s += uint32(binary.BigEndian.Uint16(l3[i:]))
		}
		s += uint32(l4len>>16) + uint32(l4len&0xffff)
	} else {
		for i := 12; i < 20; i += 2 {
			s += uint32(binary.BigEndian.Uint16(l3[i:]))
		}
		s += uint32(l4len)
	}
	return s + uint32(proto)
}

// Checksum is the plain RFC 1071 Internet checksum of b plus initial sum
// init, computed in network byte order; over data that includes a correct
// checksum it returns 0.
func Checksum(b []byte, init uint32) uint16 {
	s := uint64(init)
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s>>16 != 0 {
		s = (s & 0xffff) + (s >> 16)
	}
	return ^uint16(s)
}
