package pktgen

import (
	"encoding/binary"

	"samepath/perf/xdpprog"
)

// stamper rewrites the varying fields of a copy of the template in Go, the
// way bpf/gen.c does in the kernel, for engines that write frames from user
// space. It allocates nothing.
type stamper struct {
	cfg                                    xdpprog.GenConfig
	stream                                 uint32
	saddr, ipcsum, l4, l4csum, pay, paylen int
	udp, stamp                             bool
}

func newStamper(cfg xdpprog.GenConfig, frameLen int, stream uint32) stamper {
	s := stamper{cfg: cfg, stream: stream, udp: cfg.Flags&xdpprog.GenTCP == 0}
	switch cfg.Flags & (xdpprog.GenIPv6 | xdpprog.GenTCP) {
	case 0:
		s.saddr, s.ipcsum, s.l4, s.l4csum, s.pay = 26, 24, 34, 40, 42
	case xdpprog.GenTCP:
		s.saddr, s.ipcsum, s.l4, s.l4csum, s.pay = 26, 24, 34, 50, 54
	case xdpprog.GenIPv6:
		s.saddr, s.ipcsum, s.l4, s.l4csum, s.pay = 34, 0, 54, 60, 62
	default:
		s.saddr, s.ipcsum, s.l4, s.l4csum, s.pay = 34, 0, 54, 70, 74
	}
	s.stamp = cfg.Flags&xdpprog.GenStamp != 0 && frameLen >= s.pay+xdpprog.StampLen
	return s
}

// write rewrites frame f (a copy of the template) for sequence seq.
func (s *stamper) write(f []byte, seq uint64) {
	idx := uint32(seq) % s.cfg.NFlows
	addr := s.cfg.AddrLo + idx/s.cfg.NPort
	port := uint16(s.cfg.PortLo + idx%s.cfg.NPort)
	sa := f[s.saddr : s.saddr+4]
	binary.BigEndian.PutUint32(sa, addr)
	binary.BigEndian.PutUint16(f[s.l4:], port)
	addrSum := uint32(binary.LittleEndian.Uint16(sa)) + uint32(binary.LittleEndian.Uint16(sa[2:]))
	v := addrSum + uint32(binary.LittleEndian.Uint16(f[s.l4:]))
	if s.stamp {
		st := f[s.pay : s.pay+xdpprog.StampLen]
		binary.LittleEndian.PutUint32(st[0:], xdpprog.StampMagic)
		binary.LittleEndian.PutUint32(st[4:], s.stream)
		binary.LittleEndian.PutUint64(st[8:], seq)
		v += sumLE(st[4:16])
	}
	if s.ipcsum != 0 {
		binary.LittleEndian.PutUint16(f[s.ipcsum:], ^uint16(fold(s.cfg.IPSum+addrSum)))
	}
	c := ^uint16(fold(s.cfg.L4Sum + v))
	if s.udp && c == 0 {
		c = 0xffff
	}
	binary.LittleEndian.PutUint16(f[s.l4csum:], c)
}
