package pktgen

import (
	"encoding/binary"

	"samepath/perf/xdpprog"
)

// ParseStamp finds the generator's stamp in frame f the way the XDP sink
// does (Ethernet, IPv4 with options or IPv6 without extension headers, UDP
// or TCP with options) and returns its stream and sequence. It checks every
// length before reading, never panics, and allocates nothing.
func ParseStamp(f []byte) (stream uint32, seq uint64, ok bool) {
	if len(f) < 14 {
		return 0, 0, false
	}
	var off int
	var proto byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		if len(f) < 14+20 {
			return 0, 0, false
		}
		off = 14 + int(f[14]&0xf)*4
		proto = f[14+9]
	case 0x86dd:
		if len(f) < 14+40 {
			return 0, 0, false
		}
		off = 14 + 40
		proto = f[14+6]
	default:
		return 0, 0, false
	}
	switch proto {
	case 17:
		off += 8
	case 6:
		if len(f) < off+20 {
			return 0, 0, false
		}
		off += int(f[off+12]>>4) * 4
	default:
		return 0, 0, false
	}
	if len(f) < off+xdpprog.StampLen || binary.LittleEndian.Uint32(f[off:]) != xdpprog.StampMagic {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint32(f[off+4:]), binary.LittleEndian.Uint64(f[off+8:]), true
}

// seqTracker follows the stamps of up to xdpprog.MaxStreams streams, as the
// XDP sink does: first and highest sequence, frames received, frames late.
type seqTracker struct {
	st [xdpprog.MaxStreams]xdpprog.StreamStat
}

func (t *seqTracker) add(stream uint32, seq uint64) {
	s := &t.st[stream%xdpprog.MaxStreams]
	s.Received++
	switch {
	case s.First == 0:
		s.First, s.Max = seq+1, seq
	case seq > s.Max:
		s.Max = seq
	default:
		s.Late++
	}
}

// streams returns the tracked streams in the form Summarize takes.
func (t *seqTracker) streams() map[uint32][]xdpprog.StreamStat {
	m := map[uint32][]xdpprog.StreamStat{}
	for i, s := range t.st {
		if s.First != 0 {
			m[uint32(i)] = []xdpprog.StreamStat{s}
		}
	}
	return m
}
