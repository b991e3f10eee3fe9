package xdpprog

import (
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
)

// Stamp layout, shared with bpf/common.h: magic, stream, seq (little-endian)
// at the start of the L4 payload.
const (
	StampMagic = 0x4e475053
	StampLen   = 16
	// MaxStreams is how many generator streams the sink tracks (by stream id
	// modulo MaxStreams).
	MaxStreams = 256
)

// Generator flags (bpf/gen.c).
const (
	GenIPv6  = 1
	GenTCP   = 2
	GenStamp = 4
)

// GenConfig is the generator's run configuration (struct gen_cfg).
type GenConfig struct {
	Flags  uint32
	NFlows uint32 // NAddr * NPort
	NPort  uint32
	PortLo uint32
	AddrLo uint32 // first source address, low 32 bits, host order
	IPSum  uint32 // folded native-order sum of the IPv4 header, varying fields zero
	L4Sum  uint32 // folded native-order sum of pseudo-header and segment, varying fields zero (stream too)
	// Hdr is the template's bytes up to the L4 payload (Ethernet, IP and
	// L4 headers, at most GenHdrMax), restored in every frame before the
	// varying fields are written: devices under test rewrite recycled
	// frames in place.
	Hdr []byte
}

// GenHdrMax is the longest header the generator restores (GEN_HDR_MAX).
const GenHdrMax = 80

// Generator state slots (struct gen_slot in bpf/gen.c): stamped frames use
// slot StreamSlot(stream), the stream id their template carries; frames too
// small for a stamp use slot CPUSlot(cpu).
const (
	GenSlots   = 256
	genCPUSlot = 128
	// MaxGenStreams bounds the stream ids a generator run may use.
	MaxGenStreams = genCPUSlot
)

// StreamSlot is the state slot of a stamped stream.
func StreamSlot(stream uint32) uint32 { return stream % genCPUSlot }

// CPUSlot is the state slot of unstamped frames generated on cpu.
func CPUSlot(cpu int) uint32 { return genCPUSlot + uint32(cpu)%genCPUSlot }

// CPUSlots lists every per-CPU slot.
func CPUSlots() []uint32 {
	s := make([]uint32, 0, GenSlots-genCPUSlot)
	for i := uint32(genCPUSlot); i < GenSlots; i++ {
		s = append(s, i)
	}
	return s
}

// Slot is one generator state slot.
type Slot struct {
	Seq      uint64 // frames transmitted (next sequence number)
	NextNs   uint64 // pacing: earliest time (CLOCK_MONOTONIC ns) of the next frame
	Interval uint64 // pacing: ns between frames; 0 = full speed
	Limit    uint64 // frames to transmit at most; 0 = no limit
}

// Gen is the loaded generator program.
type Gen struct {
	objs genObjects
}

// LoadGen loads the generator program and its maps.
func LoadGen() (*Gen, error) {
	g := &Gen{}
	if err := loadGenObjects(&g.objs, nil); err != nil {
		return nil, fmt.Errorf("load generator program: %w", verifierErr(err))
	}
	return g, nil
}

// Program is the XDP program to run with BPF_F_TEST_XDP_LIVE_FRAMES.
func (g *Gen) Program() *ebpf.Program { return g.objs.PktgenLive }

// Configure writes the run configuration and resets the sequence counters.
func (g *Gen) Configure(c GenConfig) error {
	if c.NFlows == 0 || c.NPort == 0 {
		return errors.New("generator config: nflows and nport must be >= 1")
	}
	if len(c.Hdr) > GenHdrMax {
		return fmt.Errorf("generator config: header of %d bytes, at most %d", len(c.Hdr), GenHdrMax)
	}
	v := genGenCfg{Flags: c.Flags, Nflows: c.NFlows, Nport: c.NPort, PortLo: c.PortLo,
		AddrLo: c.AddrLo, IpSum: c.IPSum, L4Sum: c.L4Sum}
	copy(v.Hdr[:], c.Hdr)
	if err := g.objs.GenConfig.Put(uint32(0), &v); err != nil {
		return fmt.Errorf("write generator config: %w", err)
	}
	for i := uint32(0); i < GenSlots; i++ {
		if err := g.SetSlot(i, Slot{}); err != nil {
			return err
		}
	}
	return nil
}

// SetSlot writes one state slot; a thread sets its slot before it starts.
func (g *Gen) SetSlot(slot uint32, s Slot) error {
	v := genGenSlot{Seq: s.Seq, NextNs: s.NextNs, Interval: s.Interval, Limit: s.Limit}
	if err := g.objs.GenState.Put(slot, &v); err != nil {
		return fmt.Errorf("write generator slot %d: %w", slot, err)
	}
	return nil
}

// Sent returns the frames transmitted through the given slots.
func (g *Gen) Sent(slots []uint32) (uint64, error) {
	var n uint64
	var v genGenSlot
	for _, s := range slots {
		if err := g.objs.GenState.Lookup(s, &v); err != nil {
			return 0, fmt.Errorf("read generator slot %d: %w", s, err)
		}
		n += v.Seq
	}
	return n, nil
}

// Generated returns the frames transmitted through all slots since Configure.
func (g *Gen) Generated() (uint64, error) {
	var n uint64
	var v genGenSlot
	for s := uint32(0); s < GenSlots; s++ {
		if err := g.objs.GenState.Lookup(s, &v); err != nil {
			return 0, fmt.Errorf("read generator slot %d: %w", s, err)
		}
		n += v.Seq
	}
	return n, nil
}

// Close releases the program and maps.
func (g *Gen) Close() error { return g.objs.Close() }

// SinkTotals are the sink's counters summed over CPUs.
type SinkTotals struct {
	Packets, Bytes, Stamped uint64
}

// StreamStat is one generator stream as seen by the sink on one CPU.
type StreamStat struct {
	First    uint64 // first sequence seen + 1; 0 = none
	Max      uint64
	Received uint64
	Late     uint64
}

// Sink is the loaded counting sink.
type Sink struct {
	objs sinkObjects
}

// LoadSink loads the counting sink; pass makes it return XDP_PASS instead
// of XDP_DROP after counting.
func LoadSink(pass bool) (*Sink, error) {
	spec, err := loadSink()
	if err != nil {
		return nil, fmt.Errorf("load sink spec: %w", err)
	}
	if pass {
		if err := spec.Variables["sink_action"].Set(uint32(2)); err != nil { // XDP_PASS
			return nil, fmt.Errorf("set sink action: %w", err)
		}
	}
	s := &Sink{}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		return nil, fmt.Errorf("load sink program: %w", verifierErr(err))
	}
	return s, nil
}

// Program is the XDP program to attach to the receiving device.
func (s *Sink) Program() *ebpf.Program { return s.objs.PktgenSink }

// Totals sums the per-CPU counters.
func (s *Sink) Totals() (SinkTotals, error) {
	var v []sinkSinkTotals
	if err := s.objs.SinkTotals.Lookup(uint32(0), &v); err != nil {
		return SinkTotals{}, fmt.Errorf("read sink totals: %w", err)
	}
	var t SinkTotals
	for _, c := range v {
		t.Packets += c.Packets
		t.Bytes += c.Bytes
		t.Stamped += c.Stamped
	}
	return t, nil
}

// Streams returns, per stream slot (stream id modulo MaxStreams), the
// per-CPU statistics of the streams seen so far.
func (s *Sink) Streams() (map[uint32][]StreamStat, error) {
	out := map[uint32][]StreamStat{}
	var v []sinkStreamStat
	for id := uint32(0); id < MaxStreams; id++ {
		if err := s.objs.SinkStreams.Lookup(id, &v); err != nil {
			return nil, fmt.Errorf("read sink stream %d: %w", id, err)
		}
		var seen []StreamStat
		for _, c := range v {
			if c.First != 0 {
				seen = append(seen, StreamStat{First: c.First, Max: c.Max, Received: c.Received, Late: c.Late})
			}
		}
		if len(seen) > 0 {
			out[id] = seen
		}
	}
	return out, nil
}

// Reset zeroes all counters.
func (s *Sink) Reset() error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("possible cpus: %w", err)
	}
	if err := s.objs.SinkTotals.Put(uint32(0), make([]sinkSinkTotals, n)); err != nil {
		return fmt.Errorf("reset sink totals: %w", err)
	}
	zero := make([]sinkStreamStat, n)
	for id := uint32(0); id < MaxStreams; id++ {
		if err := s.objs.SinkStreams.Put(id, zero); err != nil {
			return fmt.Errorf("reset sink stream %d: %w", id, err)
		}
	}
	return nil
}

// Close releases the program and maps.
func (s *Sink) Close() error { return s.objs.Close() }

// Fwd holds the kernel-baseline programs for the device under test.
type Fwd struct {
	objs fwdObjects
}

// LoadFwd loads the baseline programs. fwd_redirect rewrites the Ethernet
// destination to dst and source to src and redirects to egressIfindex; pass
// egressIfindex 0 when the redirect program is not used. The devmap resolves
// egressIfindex in the calling thread's network namespace.
func LoadFwd(dst, src net.HardwareAddr, egressIfindex int) (*Fwd, error) {
	spec, err := loadFwd()
	if err != nil {
		return nil, fmt.Errorf("load baseline spec: %w", err)
	}
	for name, mac := range map[string]net.HardwareAddr{"fwd_dst_mac": dst, "fwd_src_mac": src} {
		var b [6]byte
		if mac != nil {
			if len(mac) != 6 {
				return nil, fmt.Errorf("baseline %s: want a 6-byte MAC, got %v", name, mac)
			}
			copy(b[:], mac)
		}
		if err := spec.Variables[name].Set(b); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	f := &Fwd{}
	if err := spec.LoadAndAssign(&f.objs, nil); err != nil {
		return nil, fmt.Errorf("load baseline programs: %w", verifierErr(err))
	}
	if egressIfindex > 0 {
		if err := f.objs.TxPort.Put(uint32(0), uint32(egressIfindex)); err != nil {
			f.objs.Close()
			return nil, fmt.Errorf("set redirect egress ifindex %d: %w", egressIfindex, err)
		}
	}
	return f, nil
}

// Drop returns XDP_DROP for every frame.
func (f *Fwd) Drop() *ebpf.Program { return f.objs.FwdDrop }

// Pass returns XDP_PASS for every frame (gives a veth its NAPI).
func (f *Fwd) Pass() *ebpf.Program { return f.objs.FwdPass }

// Tx swaps the Ethernet addresses and returns XDP_TX.
func (f *Fwd) Tx() *ebpf.Program { return f.objs.FwdTx }

// Redirect rewrites the Ethernet addresses and redirects to the egress device.
func (f *Fwd) Redirect() *ebpf.Program { return f.objs.FwdRedirect }

// Close releases the programs and maps.
func (f *Fwd) Close() error { return f.objs.Close() }

func verifierErr(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("%+v", ve)
	}
	return err
}
