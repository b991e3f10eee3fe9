package pktgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/cilium/ebpf/link"

	"samepath/perf/internal/nsthread"
	"samepath/perf/xdpprog"
)

// StreamSummary aggregates the sink's per-stream sequence tracking.
type StreamSummary struct {
	Streams  int    // generator streams seen
	Expected uint64 // sum over streams of (highest - first + 1)
	Received uint64 // stamped frames received
	Lost     uint64 // Expected - Received, per stream, floored at 0
	Late     uint64 // frames that arrived below a higher sequence already seen
}

// Summarize folds per-CPU stream statistics (from xdpprog.Sink.Streams) into
// totals. A stream split over several CPUs is merged by first/highest
// sequence; its Late count is then only per CPU.
func Summarize(m map[uint32][]xdpprog.StreamStat) StreamSummary {
	var s StreamSummary
	for _, per := range m {
		first, hi, rcvd, late := ^uint64(0), uint64(0), uint64(0), uint64(0)
		for _, c := range per {
			first = min(first, c.First-1)
			hi = max(hi, c.Max)
			rcvd += c.Received
			late += c.Late
		}
		if rcvd == 0 {
			continue
		}
		s.Streams++
		exp := hi - first + 1
		s.Expected += exp
		s.Received += rcvd
		s.Late += late
		if exp > rcvd {
			s.Lost += exp - rcvd
		}
	}
	return s
}

// Sink is the XDP counting sink attached to one device (native mode).
type Sink struct {
	prog  *xdpprog.Sink
	link  link.Link
	Iface string
	Netns string
}

// SinkSnapshot is the sink's counters at one instant.
type SinkSnapshot struct {
	At time.Time
	xdpprog.SinkTotals
	Streams StreamSummary
}

// OpenSink loads the counting sink and attaches it in native (driver) mode
// to iface in network namespace netns ("" = current). With pass, frames go
// on to the stack after counting; otherwise they are dropped.
func OpenSink(netns, iface string, pass bool) (*Sink, error) {
	p, err := xdpprog.LoadSink(pass)
	if err != nil {
		return nil, err
	}
	s := &Sink{prog: p, Iface: iface, Netns: netns}
	err = nsthread.Run(netns, -1, func() error {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return fmt.Errorf("sink interface %s: %w", iface, err)
		}
		s.link, err = link.AttachXDP(link.XDPOptions{Program: p.Program(), Interface: ifc.Index, Flags: link.XDPDriverMode})
		if err != nil {
			return fmt.Errorf("attach sink to %s in native mode: %w", iface, err)
		}
		return nil
	})
	if err != nil {
		p.Close()
		return nil, err
	}
	return s, nil
}

// Snapshot reads the counters; the stream walk reads MaxStreams map entries.
func (s *Sink) Snapshot() (SinkSnapshot, error) {
	t, err := s.prog.Totals()
	if err != nil {
		return SinkSnapshot{}, err
	}
	at := time.Now()
	st, err := s.prog.Streams()
	if err != nil {
		return SinkSnapshot{}, err
	}
	return SinkSnapshot{At: at, SinkTotals: t, Streams: Summarize(st)}, nil
}

// Totals reads only the packet and byte counters (cheap).
func (s *Sink) Totals() (xdpprog.SinkTotals, error) { return s.prog.Totals() }

// Reset zeroes the counters.
func (s *Sink) Reset() error { return s.prog.Reset() }

// Close detaches and unloads the sink.
func (s *Sink) Close() error {
	var errs []error
	if s.link != nil {
		errs = append(errs, s.link.Close())
	}
	errs = append(errs, s.prog.Close())
	return errors.Join(errs...)
}

// RxConfig configures `pktgen rx`.
type RxConfig struct {
	Mode     string // RxXDP (default) or RxAFXDP
	Netns    string
	Iface    string
	Queue    int           // AF_XDP: the queue to bind
	CPU      int           // AF_XDP: CPU for the receive thread; < 0 = not pinned
	Duration time.Duration // 0: until ctx ends
	Pass     bool          // XDP: let frames continue to the stack after counting
	Interval time.Duration // progress line period; 0 = 1s
	Out      io.Writer     // progress and summary; nil = silent
	OnReady  func()        // called once the sink is attached and counting
}

// RxResult is what the sink saw over the run.
type RxResult struct {
	Elapsed time.Duration
	Packets uint64
	Bytes   uint64 // bytes of frame data (without FCS)
	Stamped uint64
	Streams StreamSummary
}

// PPS is the received packet rate.
func (r RxResult) PPS() float64 { return rate(r.Packets, r.Elapsed) }

// BPS is the received bit rate counting the 4-byte FCS of each frame.
func (r RxResult) BPS() float64 { return rate((r.Bytes+FCSLen*r.Packets)*8, r.Elapsed) }

func rate(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// RunRx attaches the sink, prints a line per interval and a summary.
func RunRx(ctx context.Context, cfg RxConfig) (RxResult, error) {
	if cfg.Iface == "" {
		return RxResult{}, errors.New("rx: interface is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	switch cfg.Mode {
	case "", RxXDP:
	case RxAFXDP:
		return runRxAFXDP(ctx, cfg)
	default:
		return RxResult{}, fmt.Errorf("rx: mode %q: want xdp or afxdp", cfg.Mode)
	}
	s, err := OpenSink(cfg.Netns, cfg.Iface, cfg.Pass)
	if err != nil {
		return RxResult{}, err
	}
	defer s.Close()
	start, err := s.Snapshot()
	if err != nil {
		return RxResult{}, err
	}
	if cfg.OnReady != nil {
		cfg.OnReady()
	}
	prev := start
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		now, err := s.Snapshot()
		if err != nil {
			return RxResult{}, err
		}
		if cfg.Out != nil && !done {
			d := now.At.Sub(prev.At)
			fmt.Fprintf(cfg.Out, "rx %6.1fs %s  %s  lost %d late %d\n", now.At.Sub(start.At).Seconds(),
				FormatPPS(rate(now.Packets-prev.Packets, d)),
				FormatBPS(rate((now.Bytes-prev.Bytes+FCSLen*(now.Packets-prev.Packets))*8, d)),
				now.Streams.Lost, now.Streams.Late)
		}
		prev = now
	}
	r := RxResult{Elapsed: prev.At.Sub(start.At), Packets: prev.Packets - start.Packets,
		Bytes: prev.Bytes - start.Bytes, Stamped: prev.Stamped - start.Stamped, Streams: prev.Streams}
	printRxSummary(cfg, r)
	return r, nil
}

func printRxSummary(cfg RxConfig, r RxResult) {
	if cfg.Out == nil {
		return
	}
	fmt.Fprintf(cfg.Out, "rx total: %d frames %d bytes in %.2fs: %s %s; streams %d, expected %d, received %d, lost %d (%.3f%%), late %d\n",
		r.Packets, r.Bytes, r.Elapsed.Seconds(), FormatPPS(r.PPS()), FormatBPS(r.BPS()),
		r.Streams.Streams, r.Streams.Expected, r.Streams.Received, r.Streams.Lost,
		pct(r.Streams.Lost, r.Streams.Expected), r.Streams.Late)
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// FormatPPS prints a packet rate in Mpps.
func FormatPPS(v float64) string { return fmt.Sprintf("%8.3f Mpps", v/1e6) }

// FormatBPS prints a bit rate in Gbit/s.
func FormatBPS(v float64) string { return fmt.Sprintf("%7.3f Gbit/s", v/1e9) }
