package pktgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"samepath/perf/internal/nsthread"
	"samepath/perf/xdpprog"
)

// Engines.
const (
	EngineLive  = "live"
	EngineAFXDP = "afxdp"
)

// TxConfig configures a transmit run.
type TxConfig struct {
	Engine   string
	Netns    string // network namespace name or path; "" = current
	Iface    string
	Frame    FrameSpec     // SrcMAC defaults to the interface's address
	Rate     float64       // packets per second over all threads; 0 = full speed
	Duration time.Duration // 0 with Count 0: until ctx ends
	Count    uint64        // frames to send over all threads; 0 = no limit
	Threads  int           // transmit threads, >= 1
	Queues   int           // device queues used: thread i runs on queue i%Queues; >= 1
	CPUs     []int         // CPU for thread i is CPUs[i%len(CPUs)]; empty = not pinned
	Batch    int           // live engine: kernel batch size (1..256); afxdp: descriptors per send
	Interval time.Duration // progress line period; 0 = 1s
	Out      io.Writer     // progress and summary; nil = silent
	// StreamBase numbers the stamp streams: thread i stamps stream
	// StreamBase+i. Runs that share a sink should use disjoint streams.
	// Live engine: StreamBase+Threads <= 128.
	StreamBase uint32
}

// DefaultTxConfig is a 64 B IPv4 UDP single-flow full-speed run with the
// live engine; Iface, DstMAC and addresses still have to be set.
func DefaultTxConfig() TxConfig {
	return TxConfig{
		Engine: EngineLive, Threads: 1, Queues: 1, Batch: 64,
		Frame: FrameSpec{Size: 64, Proto: UDP, SrcAddrs: 1, SrcPort: 1024, SrcPorts: 1, DstPort: 9},
	}
}

// Validate checks the configuration (the frame spec once SrcMAC is known).
func (c *TxConfig) Validate() error {
	switch {
	case c.Engine != EngineLive && c.Engine != EngineAFXDP:
		return fmt.Errorf("tx: engine %q: want live or afxdp", c.Engine)
	case c.Iface == "":
		return errors.New("tx: interface is required")
	case c.Threads < 1 || c.Threads > 64:
		return fmt.Errorf("tx: threads %d out of 1..64", c.Threads)
	case c.Queues < 1 || c.Queues > 256:
		return fmt.Errorf("tx: queues %d out of 1..256", c.Queues)
	case c.Batch < 1 || c.Batch > 256:
		return fmt.Errorf("tx: batch %d out of 1..256", c.Batch)
	case c.Rate < 0:
		return fmt.Errorf("tx: negative rate %v", c.Rate)
	case c.Duration < 0:
		return fmt.Errorf("tx: negative duration %v", c.Duration)
	case c.Engine == EngineLive && int(c.StreamBase)+c.Threads > xdpprog.MaxGenStreams:
		return fmt.Errorf("tx: live engine: stream base %d + %d threads exceeds %d streams", c.StreamBase, c.Threads, xdpprog.MaxGenStreams)
	}
	return nil
}

// TxResult is what the generator sent.
type TxResult struct {
	Elapsed time.Duration
	Packets uint64 // frames handed to the device (program runs for live)
	Bytes   uint64 // frame bytes without FCS
	// PerThread lists frames per thread.
	PerThread []uint64
}

// PPS is the generated packet rate.
func (r TxResult) PPS() float64 { return rate(r.Packets, r.Elapsed) }

// BPS is the generated bit rate counting the FCS.
func (r TxResult) BPS() float64 { return rate((r.Bytes+FCSLen*r.Packets)*8, r.Elapsed) }

// txThread is one transmit loop: it sends up to n frames per call of send
// (n > 0) and returns how many it sent.
type txThread interface {
	send(n int) (int, error)
	// paced reports whether the engine enforces rate and count itself.
	paced() bool
	close() error
}

func distinctCPUs(cpus []int, threads int) bool {
	if len(cpus) < threads {
		return false
	}
	seen := map[int]bool{}
	for _, c := range cpus[:threads] {
		if seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// RunTx generates traffic as configured, printing a progress line per
// interval and a final summary to cfg.Out.
func RunTx(ctx context.Context, cfg TxConfig) (TxResult, error) {
	if err := cfg.Validate(); err != nil {
		return TxResult{}, err
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	var ifindex int
	err := nsthread.Run(cfg.Netns, -1, func() error {
		ifc, err := net.InterfaceByName(cfg.Iface)
		if err != nil {
			return fmt.Errorf("tx interface %s: %w", cfg.Iface, err)
		}
		ifindex = ifc.Index
		if cfg.Frame.SrcMAC == nil {
			cfg.Frame.SrcMAC = ifc.HardwareAddr
		}
		return nil
	})
	if err != nil {
		return TxResult{}, err
	}
	tmpl, gcfg, err := cfg.Frame.Build()
	if err != nil {
		return TxResult{}, err
	}
	if cfg.Engine == EngineLive && !cfg.Frame.Stamped() && cfg.Threads > 1 && !distinctCPUs(cfg.CPUs, cfg.Threads) {
		// Unstamped frames keep their state per CPU: threads must not share one.
		return TxResult{}, fmt.Errorf("tx: %d B frames carry no stamp; several live threads then need distinct -cpus", cfg.Frame.Size)
	}

	quotas := make([]uint64, cfg.Threads)
	if cfg.Count > 0 {
		for i := range quotas {
			quotas[i] = cfg.Count / uint64(cfg.Threads)
			if uint64(i) < cfg.Count%uint64(cfg.Threads) {
				quotas[i]++
			}
		}
	}

	var newThread func(i int) (txThread, error)
	var closeEngine func() error
	var exact func() (uint64, error) // exact total where the engine knows it
	switch cfg.Engine {
	case EngineLive:
		gen, err := xdpprog.LoadGen()
		if err != nil {
			return TxResult{}, err
		}
		exact = gen.Generated
		if err := gen.Configure(gcfg); err != nil {
			gen.Close()
			return TxResult{}, err
		}
		var hold *dispatcherHold
		err = nsthread.Run(cfg.Netns, -1, func() (err error) {
			hold, err = holdDispatcher(gen.Program())
			return err
		})
		if err != nil {
			// Not fatal: the run works without it, only slower.
			hold = nil
			if cfg.Out != nil {
				fmt.Fprintf(cfg.Out, "warning: %v; every call will rewrite the kernel's XDP dispatcher\n", err)
			}
		}
		closeEngine = func() error {
			var err error
			if hold != nil {
				err = nsthread.Run(cfg.Netns, -1, hold.close)
			}
			return errors.Join(err, gen.Close())
		}
		newThread = func(i int) (txThread, error) {
			stream := cfg.StreamBase + uint32(i)
			slots := []uint32{xdpprog.StreamSlot(stream)}
			if !cfg.Frame.Stamped() {
				if len(cfg.CPUs) > 0 {
					slots = []uint32{xdpprog.CPUSlot(cfg.CPUs[i%len(cfg.CPUs)])}
				} else {
					slots = xdpprog.CPUSlots() // one unpinned thread
				}
			}
			sl := xdpprog.Slot{Limit: quotas[i]}
			if cfg.Rate > 0 {
				sl.Interval = uint64(float64(time.Second) * float64(cfg.Threads) / cfg.Rate)
			}
			for _, s := range slots {
				if err := gen.SetSlot(s, sl); err != nil {
					return nil, err
				}
			}
			return &liveThread{gen: gen, prog: gen.Program(), data: cfg.Frame.WithStream(tmpl, stream),
				batch: uint32(cfg.Batch), slots: slots,
				ctx: xdpMD{DataEnd: uint32(len(tmpl)), IngressIfindex: uint32(ifindex), RxQueueIndex: uint32(i % cfg.Queues)}}, nil
		}
	case EngineAFXDP:
		newThread, closeEngine, err = afxdpEngine(cfg, tmpl, gcfg)
		if err != nil {
			return TxResult{}, err
		}
	}
	defer closeEngine()

	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	sent := make([]atomic.Uint64, cfg.Threads)
	errs := make([]error, cfg.Threads)
	var wg sync.WaitGroup
	start := time.Now()
	perThreadRate := cfg.Rate / float64(cfg.Threads)
	for i := range cfg.Threads {
		wg.Add(1)
		cpu := -1
		if len(cfg.CPUs) > 0 {
			cpu = cfg.CPUs[i%len(cfg.CPUs)]
		}
		q := quotas[i]
		go func() {
			defer wg.Done()
			errs[i] = nsthread.Run(cfg.Netns, cpu, func() error {
				t, err := newThread(i)
				if err != nil {
					return err
				}
				defer t.close()
				pps := perThreadRate
				if t.paced() {
					pps = 0
				}
				return txLoop(ctx, t, &sent[i], pps, q, cfg.Batch, start)
			})
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	frameLen := uint64(len(tmpl))
	total := func() uint64 {
		var n uint64
		for i := range sent {
			n += sent[i].Load()
		}
		return n
	}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	prevN, prevT := uint64(0), start
	for running := true; running; {
		select {
		case <-done:
			running = false
		case now := <-tick.C:
			n := total()
			if cfg.Out != nil {
				d := now.Sub(prevT)
				fmt.Fprintf(cfg.Out, "tx %6.1fs %s  %s  total %d\n", now.Sub(start).Seconds(),
					FormatPPS(rate(n-prevN, d)), FormatBPS(rate((n-prevN)*(frameLen+FCSLen)*8, d)), n)
			}
			prevN, prevT = n, now
		}
	}
	r := TxResult{Elapsed: time.Since(start), PerThread: make([]uint64, cfg.Threads)}
	for i := range sent {
		r.PerThread[i] = sent[i].Load()
		r.Packets += r.PerThread[i]
	}
	if exact != nil {
		// The kernel may run the program more often than Repeat asks
		// (restarts after interruptions); the program's own counters are exact.
		if n, err := exact(); err == nil {
			r.Packets = n
		}
	}
	r.Bytes = r.Packets * frameLen
	if err := errors.Join(errs...); err != nil {
		return r, err
	}
	if cfg.Out != nil {
		fmt.Fprintf(cfg.Out, "tx total: %d frames of %d B (%d flows, %s, %s) in %.2fs: %s %s\n",
			r.Packets, cfg.Frame.Size, cfg.Frame.Flows(), cfg.Frame.Proto, family(cfg.Frame),
			r.Elapsed.Seconds(), FormatPPS(r.PPS()), FormatBPS(r.BPS()))
	}
	return r, nil
}

func family(s FrameSpec) string {
	if s.SrcIP.Is6() {
		return "ipv6"
	}
	return "ipv4"
}

// maxPacedBurst bounds a rate-limited call: a veth ring holds 256 frames.
const maxPacedBurst = 256

// maxCall bounds one live-frames call: the kernel ignores signals inside it.
const maxCall = 1 << 18

// txLoop sends until ctx ends or quota (0 = none) is reached. At full speed
// it sends in calls of ~10 ms; with a rate it sends at most batch frames per
// call, paced against the schedule since start (sleeping for long gaps,
// spinning for short ones), so bursts stay within a veth ring (256 frames).
func txLoop(ctx context.Context, t txThread, sent *atomic.Uint64, pps float64, quota uint64, batch int, start time.Time) error {
	chunk := 4096
	if pps > 0 {
		chunk = batch
	}
	var n, base uint64 // frames sent; frames sent when the schedule started
	for ctx.Err() == nil {
		want := chunk
		if pps > 0 {
			due := start.Add(time.Duration(float64(n-base) / pps * float64(time.Second)))
			wait := time.Until(due)
			if wait > 0 {
				if wait > 200*time.Microsecond {
					time.Sleep(wait - 100*time.Microsecond)
				} else {
					runtime.Gosched()
				}
				continue
			}
			// Behind schedule (the thread was descheduled): catch up in
			// calls of at most maxPacedBurst, and forgive debts over 10 ms
			// rather than flood the device with them.
			behind := uint64(-wait.Seconds() * pps)
			if behind > uint64(pps/100) {
				start, base = time.Now(), n
			}
			want = int(min(max(uint64(chunk), behind), maxPacedBurst))
		}
		if quota > 0 {
			if n >= quota {
				return nil
			}
			if !t.paced() {
				want = min(want, int(min(quota-n, uint64(maxCall))))
			}
		}
		t0 := time.Now()
		k, err := t.send(want)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, unix.EINTR) {
				return nil
			}
			return err
		}
		n += uint64(k)
		sent.Store(n)
		if pps == 0 {
			// Aim for ~10 ms per call so progress and cancellation stay prompt.
			if el := time.Since(t0); el < 5*time.Millisecond && chunk < maxCall {
				chunk *= 2
			} else if el > 20*time.Millisecond && chunk > 64 {
				chunk /= 2
			}
		}
	}
	return nil
}

// xdpMD is struct xdp_md, the context of an XDP program run.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

type liveThread struct {
	gen   *xdpprog.Gen
	prog  *ebpf.Program
	data  []byte
	ctx   xdpMD
	batch uint32
	slots []uint32
	sent  uint64
}

// send runs the program n times; with pacing or a limit most runs may
// return XDP_DROP, so it reports the frames its slots counted as sent.
func (l *liveThread) send(n int) (int, error) {
	_, err := l.prog.Run(&ebpf.RunOptions{
		Data: l.data, Context: l.ctx, Repeat: uint32(n),
		Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, BatchSize: l.batch,
	})
	if err != nil {
		return 0, fmt.Errorf("live frames run: %w", err)
	}
	now, err := l.gen.Sent(l.slots)
	if err != nil {
		return 0, err
	}
	d := now - l.sent
	l.sent = now
	return int(d), nil
}

func (l *liveThread) paced() bool { return true }

func (l *liveThread) close() error { return nil }
