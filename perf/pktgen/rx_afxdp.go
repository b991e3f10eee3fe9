package pktgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"samepath/perf/internal/nsthread"
	"samepath/ring"
	"samepath/ring/xsk"
	"samepath/ring/xsk/xdpfilter"
)

// Receive modes.
const (
	RxXDP   = "xdp"   // counting XDP program (cheapest; per-CPU stream tracking)
	RxAFXDP = "afxdp" // AF_XDP socket; frames parsed and tracked in Go
)

// afxdpCounters are published once per batch by the receive thread.
type afxdpCounters struct {
	packets, bytes, stamped atomic.Uint64
}

// runRxAFXDP receives on cfg.Iface queue cfg.Queue through ring/xsk with
// the xdpfilter program steering IPv4 and IPv6 frames to the socket, and
// tracks stamps in Go. The receive loop runs on a locked thread in the
// namespace, pinned to cfg.CPU when >= 0; it allocates nothing per frame.
func runRxAFXDP(ctx context.Context, cfg RxConfig) (RxResult, error) {
	var c afxdpCounters
	var tr seqTracker
	ready := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		done <- nsthread.Run(cfg.Netns, cfg.CPU, func() error {
			ifc, err := net.InterfaceByName(cfg.Iface)
			if err != nil {
				ready <- fmt.Errorf("rx interface %s: %w", cfg.Iface, err)
				return nil
			}
			f, err := xdpfilter.Load(xdpfilter.Match{})
			if err != nil {
				ready <- err
				return nil
			}
			defer f.Close()
			if err := f.Attach(ifc.Index, xdpfilter.Native); err != nil {
				ready <- err
				return nil
			}
			s, err := xsk.Open(xsk.DefaultConfig(cfg.Iface, cfg.Queue))
			if err != nil {
				ready <- err
				return nil
			}
			defer s.Close()
			if err := f.Register(s); err != nil {
				ready <- err
				return nil
			}
			ready <- nil
			return rxLoop(ctx, s, &c, &tr)
		})
	}()
	if err := <-ready; err != nil {
		<-done
		return RxResult{}, err
	}
	start := time.Now()
	if cfg.OnReady != nil {
		cfg.OnReady()
	}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var prevP, prevB uint64
	prevT := start
	var loopErr error
	for running := true; running; {
		select {
		case loopErr = <-done:
			running = false
		case now := <-tick.C:
			p, b := c.packets.Load(), c.bytes.Load()
			if cfg.Out != nil {
				d := now.Sub(prevT)
				fmt.Fprintf(cfg.Out, "rx %6.1fs %s  %s\n", now.Sub(start).Seconds(),
					FormatPPS(rate(p-prevP, d)), FormatBPS(rate((b-prevB+FCSLen*(p-prevP))*8, d)))
			}
			prevP, prevB, prevT = p, b, now
		}
	}
	if loopErr != nil {
		return RxResult{}, loopErr
	}
	r := RxResult{Elapsed: time.Since(start), Packets: c.packets.Load(), Bytes: c.bytes.Load(),
		Stamped: c.stamped.Load(), Streams: Summarize(tr.streams())}
	printRxSummary(cfg, r)
	return r, nil
}

func rxLoop(ctx context.Context, s *xsk.Socket, c *afxdpCounters, tr *seqTracker) error {
	descs := make([]ring.Desc, 64)
	u := s.Umem()
	var p, b, st uint64
	for ctx.Err() == nil {
		n, err := s.Recv(descs)
		if err != nil {
			return fmt.Errorf("afxdp rx: %w", err)
		}
		if n == 0 {
			if _, err := s.Wait(10 * time.Millisecond); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("afxdp rx wait: %w", err)
			}
			continue
		}
		for i := range descs[:n] {
			f := u.Bytes(descs[i])
			p++
			b += uint64(len(f))
			if stream, seq, ok := ParseStamp(f); ok {
				st++
				tr.add(stream, seq)
			}
		}
		s.Release(descs[:n])
		c.packets.Store(p)
		c.bytes.Store(b)
		c.stamped.Store(st)
	}
	return nil
}
