package l2fwd

import (
	"context"
	"errors"
	"fmt"
	"net"

	"samepath/dp"
	"samepath/ring/xsk"
	"samepath/ring/xsk/xdpfilter"
)

// Config says what to forward where.
type Config struct {
	In, Out string  // receive on In (queue 0), send on Out
	DstMAC  [6]byte // next hop behind Out; the source becomes Out's MAC
	// BackDstMAC, if set, forwards the other way too: frames to Out's MAC
	// received on Out leave on In to this MAC, with In's MAC as source,
	// so that both directions of a connection (a TCP download and its
	// ACKs) cross the forwarder. Zero: one way only, Out stays the
	// kernel's (a packet generator's sink needs no more).
	BackDstMAC [6]byte
	CPU        int // pin the worker here; -1 leaves it unpinned
	// Frames, FrameSize, RingSize and Batch size the UMEM, the rings and
	// the poll round, as samepathd's xsk settings do.
	Frames, FrameSize, RingSize, Batch int
}

// DefaultConfig returns samepathd's default xsk sizes (16384 frames of
// 2048 B, rings of 2048, batches of 64) and no pinning.
func DefaultConfig(in, out string, dst [6]byte) Config {
	return Config{In: in, Out: out, DstMAC: dst, CPU: -1, Frames: 16384, FrameSize: 2048, RingSize: 2048, Batch: 64}
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.In == "" || c.Out == "":
		return errors.New("l2fwd: need both interfaces")
	case c.In == c.Out:
		return fmt.Errorf("l2fwd: in and out are both %s", c.In)
	case c.DstMAC == [6]byte{}:
		return errors.New("l2fwd: no destination MAC")
	case c.RingSize <= 0 || c.RingSize&(c.RingSize-1) != 0:
		return fmt.Errorf("l2fwd: ring size %d: want a power of two", c.RingSize)
	case c.Frames < 4*c.RingSize:
		return fmt.Errorf("l2fwd: %d frames: want at least 4*ring size (%d)", c.Frames, 4*c.RingSize)
	case c.Batch <= 0 || c.Batch > c.RingSize:
		return fmt.Errorf("l2fwd: batch %d: want 1..ring size", c.Batch)
	}
	return nil
}

// Counters are what a run moved.
type Counters struct {
	Rx, Tx  uint64
	Dropped uint64 // by the engine (no room on the TX ring, frames from Out)
}

// Run forwards until ctx ends and returns the counters. Errors in setting
// up come back with zero counters, before any frame moved.
func Run(ctx context.Context, cfg Config) (Counters, error) {
	if err := cfg.Validate(); err != nil {
		return Counters{}, err
	}
	in, err := net.InterfaceByName(cfg.In)
	if err != nil {
		return Counters{}, fmt.Errorf("l2fwd: interface %s: %w", cfg.In, err)
	}
	out, err := net.InterfaceByName(cfg.Out)
	if err != nil {
		return Counters{}, fmt.Errorf("l2fwd: interface %s: %w", cfg.Out, err)
	}
	if len(in.HardwareAddr) != 6 || len(out.HardwareAddr) != 6 {
		return Counters{}, errors.New("l2fwd: both interfaces need an Ethernet address")
	}
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	// The filter hands the forwarder only frames to In's MAC (and Out's,
	// both ways); the rest (ARP for the host, other hosts' frames) stay
	// with the kernel.
	both := cfg.BackDstMAC != [6]byte{}
	macs := [][6]byte{[6]byte(in.HardwareAddr)}
	if both {
		macs = append(macs, [6]byte(out.HardwareAddr))
	}
	f, err := xdpfilter.Load(xdpfilter.Match{DstMACs: macs})
	if err != nil {
		return Counters{}, err
	}
	closers = append(closers, f.Close)
	u, err := xsk.NewUmem(xsk.UmemConfig{Frames: cfg.Frames, FrameSize: uint32(cfg.FrameSize)})
	if err != nil {
		return Counters{}, err
	}
	closers = append(closers, u.Close)
	// Sockets as samepathd opens them (default: no busy polling).
	socks, err := xsk.NewShared(u, []string{in.Name, out.Name}, 0, cfg.RingSize, false)
	if err != nil {
		return Counters{}, err
	}
	var ports []dp.Port
	for _, s := range socks {
		closers = append(closers, s.Close)
		ports = append(ports, s)
	}
	if err := f.Register(socks[0]); err != nil {
		return Counters{}, err
	}
	if both {
		if err := f.Register(socks[1]); err != nil {
			return Counters{}, err
		}
	}
	wc := dp.DefaultWorkerConfig()
	wc.Batch, wc.CPU = cfg.Batch, cfg.CPU
	p := &Pipeline{Dst: cfg.DstMAC, Src: [6]byte(out.HardwareAddr)}
	if both {
		p.BackDst, p.BackSrc = cfg.BackDstMAC, [6]byte(in.HardwareAddr)
	}
	w, err := dp.NewWorker(wc, ports, p)
	if err != nil {
		return Counters{}, err
	}
	if err := f.Attach(in.Index, xdpfilter.Native); err != nil {
		return Counters{}, err
	}
	if both {
		if err := f.Attach(out.Index, xdpfilter.Native); err != nil {
			return Counters{}, err
		}
	}
	closers = append(closers, f.Close) // detach before the sockets close
	err = w.Run(ctx)
	var c Counters
	for i := range ports {
		pc := w.Counters(i)
		c.Rx += pc.RxPackets.Load()
		c.Tx += pc.TxPackets.Load()
		for r := range dp.NumReasons {
			c.Dropped += pc.Drops[r].Load()
		}
	}
	return c, err
}

// Pipeline is the forwarder's whole work: frames from port 0 go to port 1
// with destination Dst and source Src; frames from port 1 go back to port
// 0 with destination BackDst and source BackSrc if BackDst is set, and
// are dropped if not.
type Pipeline struct{ Dst, Src, BackDst, BackSrc [6]byte }

// Process implements dp.Pipeline.
func (p *Pipeline) Process(in int, pkts []dp.Packet) {
	for i := range pkts {
		pk := &pkts[i]
		switch {
		case in != 0 && (in != 1 || p.BackDst == [6]byte{}):
			pk.Drop = dp.ReasonUnsupported
		case len(pk.Data) < 14:
			pk.Drop = dp.ReasonMalformed
		case in == 0:
			copy(pk.Data[0:6], p.Dst[:])
			copy(pk.Data[6:12], p.Src[:])
			pk.Out = 1
		default:
			copy(pk.Data[0:6], p.BackDst[:])
			copy(pk.Data[6:12], p.BackSrc[:])
			pk.Out = 0
		}
	}
}
