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
	CPU     int     // pin the worker here; -1 leaves it unpinned
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
	// The filter hands the forwarder only frames to In's MAC; the rest
	// (ARP for the host, other hosts' frames) stay with the kernel.
	f, err := xdpfilter.Load(xdpfilter.Match{DstMACs: [][6]byte{[6]byte(in.HardwareAddr)}})
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
	wc := dp.DefaultWorkerConfig()
	wc.Batch, wc.CPU = cfg.Batch, cfg.CPU
	w, err := dp.NewWorker(wc, ports, &Pipeline{Dst: cfg.DstMAC, Src: [6]byte(out.HardwareAddr)})
	if err != nil {
		return Counters{}, err
	}
	if err := f.Attach(in.Index, xdpfilter.Native); err != nil {
		return Counters{}, err
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
// with destination Dst and source Src; anything else is dropped.
type Pipeline struct{ Dst, Src [6]byte }

// Process implements dp.Pipeline.
func (p *Pipeline) Process(in int, pkts []dp.Packet) {
	for i := range pkts {
		pk := &pkts[i]
		switch {
		case in != 0:
			pk.Drop = dp.ReasonUnsupported
		case len(pk.Data) < 14:
			pk.Drop = dp.ReasonMalformed
		default:
			copy(pk.Data[0:6], p.Dst[:])
			copy(pk.Data[6:12], p.Src[:])
			pk.Out = 1
		}
	}
}
