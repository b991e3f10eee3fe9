package dp

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"samepath/dp/capture"
	"samepath/dp/internal/osutil"
	"samepath/ring"
)

// Pipeline decides the fate of received packets. Process is called by the
// worker goroutine with a batch received on port in; for each packet it
// sets Out (an index into the worker's ports) or Drop, and may rewrite the
// frame in place. To change the frame's length a pipeline writes into Room
// and sets Desc.Len; Data is not read back.
type Pipeline interface {
	Process(in int, pkts []Packet)
}

// Ticker is implemented by pipelines with periodic work (flow expiry,
// control events from other goroutines). The worker calls Tick on its own
// goroutine once per poll round, before receiving, with a monotonic clock
// in nanoseconds since the worker was made; pipelines keep the value as
// their clock for the round instead of reading the time per packet.
type Ticker interface {
	Tick(now int64)
}

// Originator is implemented by pipelines that send frames of their own
// besides the ones they receive (the gateway's TCP terminator, whose
// netstacks write segments nobody received). The pipeline model stays
// the same: the worker owns the frames. After each round's received
// batches it asks, for every port out, Pending(out): how many frames the
// pipeline has for out. If any, it takes up to that many (at most a
// batch) free frames from the port's Umem and calls Originate(out, pkts)
// with pkts[i].Room the whole free frame (Desc.Addr set, Desc.Len 0,
// Data nil, Out -1). Originate writes frames into pkts[:n] (each into
// Room, with Desc.Len, and Out or Drop set as Process would) and returns
// n; the frames past n go back to the Umem. The n frames are then
// handled exactly as processed packets are: sent on Out (copied if Out
// has another Umem), or dropped and counted on port out's counters under
// their Drop reason, and counted as Originated there. A shortage of
// free frames takes fewer frames; the rest stay with the pipeline for
// the next round, so nothing is lost uncounted. Originated frames count
// as work for the poll loop (no back-off to blocking waits while there
// are some); an idle worker blocked in Port.Wait sees new ones after at
// most MaxWait.
type Originator interface {
	Pending(out int) int
	Originate(out int, pkts []Packet) int
}

// WorkerConfig configures one poll-mode worker.
type WorkerConfig struct {
	// Batch is the most packets taken from one port per round.
	Batch int
	// CPU to pin the worker's OS thread to; -1 leaves it unpinned.
	CPU int
	// IdleRounds is how many empty rounds the worker busy-polls before it
	// starts blocking in Port.Wait.
	IdleRounds int
	// MaxWait caps the blocking wait; the wait doubles from MinWait up to it
	// while the worker stays idle. It bounds the extra latency of the first
	// packet after an idle period on ports other than the one waited on.
	MinWait, MaxWait time.Duration
	// OnPanic, if set, is told of every batch whose pipeline panicked,
	// on the worker's goroutine (see runPipeline); it should log and
	// return quickly. The daemon logs the frames in hex, rate-limited.
	OnPanic func(PanicReport)
}

// DefaultWorkerConfig returns batches of 64, no pinning, 2048 busy rounds,
// then waits from 20 µs up to 1 ms.
func DefaultWorkerConfig() WorkerConfig {
	return WorkerConfig{Batch: 64, CPU: -1, IdleRounds: 2048, MinWait: 20 * time.Microsecond, MaxWait: time.Millisecond}
}

// Validate checks the config.
func (c WorkerConfig) Validate() error {
	switch {
	case c.Batch <= 0 || c.Batch > 4096:
		return fmt.Errorf("worker batch %d: want 1..4096", c.Batch)
	case c.CPU < -1 || c.CPU >= runtime.NumCPU():
		return fmt.Errorf("worker cpu %d: this machine has cpus 0..%d", c.CPU, runtime.NumCPU()-1)
	case c.IdleRounds < 0:
		return fmt.Errorf("worker idle rounds %d < 0", c.IdleRounds)
	case c.MinWait <= 0 || c.MaxWait < c.MinWait:
		return fmt.Errorf("worker waits %v..%v: want 0 < min <= max", c.MinWait, c.MaxWait)
	}
	return nil
}

// Worker polls a set of ports and runs one pipeline over what they
// receive. It owns its ports, their frames and its counters; it is run by
// exactly one goroutine (Run, or Poll from a test or benchmark).
type Worker struct {
	cfg      WorkerConfig
	ports    []Port
	pipe     Pipeline
	counters []Counters // one per port

	descs []ring.Desc
	pkts  []Packet
	out   [][]ring.Desc // per egress port, this round
	drop  []ring.Desc   // frames to release, this round
	sent  bool

	ticker Ticker     // pipe, if it has periodic work
	orig   Originator // pipe, if it makes frames of its own
	epoch  time.Time

	tap atomic.Pointer[capture.Tap] // an armed capture, or nil (SetTap)
	rt  RuntimeCounters             // show-runtime figures (runtime.go)

	touched byte // keeps process's header pre-touch from being optimized away
}

// NewWorker makes a worker for ports running pipe.
func NewWorker(cfg WorkerConfig, ports []Port, pipe Pipeline) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(ports) == 0 {
		return nil, errors.New("worker: no ports")
	}
	w := &Worker{
		cfg:      cfg,
		ports:    ports,
		pipe:     pipe,
		counters: make([]Counters, len(ports)),
		descs:    make([]ring.Desc, cfg.Batch),
		pkts:     make([]Packet, cfg.Batch),
		out:      make([][]ring.Desc, len(ports)),
		drop:     make([]ring.Desc, 0, cfg.Batch),
	}
	for i := range w.out {
		w.out[i] = make([]ring.Desc, 0, cfg.Batch)
	}
	w.ticker, _ = pipe.(Ticker)
	w.orig, _ = pipe.(Originator)
	w.epoch = time.Now()
	return w, nil
}

// SetTap arms a capture on the worker (t from a capture.Session) or,
// with nil, disarms it. Safe from any goroutine; the worker sees it from
// its next batch. Unarmed, the worker pays one atomic load per batch.
func (w *Worker) SetTap(t *capture.Tap) { w.tap.Store(t) }

// Ports returns the worker's ports.
func (w *Worker) Ports() []Port { return w.ports }

// Counters returns the counters of port i. Safe to read from any goroutine.
func (w *Worker) Counters(i int) *Counters { return &w.counters[i] }

// Run polls until ctx is done. It locks its goroutine to an OS thread and
// pins the thread to the configured CPU. It busy-polls while traffic flows
// and backs off to blocking waits when idle, so an idle worker does not
// hold a core.
func (w *Worker) Run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if w.cfg.CPU >= 0 {
		if err := osutil.PinThread(w.cfg.CPU); err != nil {
			return err
		}
	}
	idle := 0
	wait := w.cfg.MinWait
	next := 0
	for {
		n, err := w.Poll()
		if err != nil {
			return err
		}
		if n > 0 {
			idle = 0
			wait = w.cfg.MinWait
			continue
		}
		idle++
		if idle < w.cfg.IdleRounds {
			if idle&63 == 0 && ctx.Err() != nil {
				return nil
			}
			// Let the process's other goroutines (the TCP terminator's
			// netstack and splices, which feed this worker) run: with
			// one P (GOMAXPROCS=1) a spinning worker would hold it until
			// preempted, 10 ms later.
			runtime.Gosched()
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		// Idle: reclaim completions, then block on one port at a time,
		// rotating, with a growing timeout.
		w.flush()
		t0 := time.Since(w.epoch)
		if _, err := w.ports[next].Wait(wait); err != nil {
			return fmt.Errorf("wait on %s: %w", w.ports[next].Name(), err)
		}
		w.rt.Waits.Add(1)
		w.rt.WaitNs.Add(uint64(max(time.Since(w.epoch)-t0, 0)))
		next = (next + 1) % len(w.ports)
		if wait < w.cfg.MaxWait {
			wait = min(2*wait, w.cfg.MaxWait)
		}
	}
}

// Poll runs one round over every port and returns how many packets it
// received. Zero allocations.
func (w *Worker) Poll() (int, error) {
	// The round's start for RuntimeCounters.BusyNs: Tick's clock read
	// when there is a Ticker, else read at the first batch, so that an
	// empty round reads the clock no more than before.
	start := int64(-1)
	if w.ticker != nil {
		start = int64(time.Since(w.epoch))
		w.ticker.Tick(start)
	}
	total, batches := 0, 0
	for in, p := range w.ports {
		n, err := p.Recv(w.descs)
		if err != nil {
			return total, fmt.Errorf("recv on %s: %w", p.Name(), err)
		}
		c := &w.counters[in]
		c.Polls.Add(1)
		if n == 0 {
			c.IdlePolls.Add(1)
			continue
		}
		if start < 0 {
			start = int64(time.Since(w.epoch))
		}
		total += n
		batches++
		w.process(in, n)
	}
	if w.orig != nil {
		for o := range w.ports {
			total += w.originate(o)
		}
	}
	if w.sent {
		w.flush()
	}
	if total > 0 {
		w.rt.busy(batches, start, w.epoch)
	}
	return total, nil
}

// Flush kicks every port's pending transmissions and reclaims completed
// frames. Poll does this after rounds that sent; Run also when idle.
func (w *Worker) Flush() { w.flush() }

func (w *Worker) flush() {
	for _, p := range w.ports {
		// A failed kick is retried on the next flush; the frames stay on
		// the TX ring, so nothing is lost silently.
		_ = p.Flush()
	}
	w.sent = false
}

func (w *Worker) process(in int, n int) {
	src := w.ports[in]
	umem := src.Umem()
	c := &w.counters[in]
	var bytes uint64
	pkts := w.pkts[:n]
	var touch byte
	for i := range pkts {
		d := w.descs[i]
		bytes += uint64(d.Len)
		data := umem.Bytes(d)
		pkts[i] = Packet{Desc: d, Data: data, Room: umem.Room(d), Out: -1}
		// Touch the headers' cache lines of the whole batch before any is
		// parsed: the kernel wrote them on another core, and independent
		// loads let the CPU fetch them in parallel instead of one miss
		// per packet inside the pipeline (measured: header parsing was
		// ~19% of the gateway's core in gw-nat).
		if len(data) > 0 {
			touch ^= data[0]
			if len(data) > 64 {
				touch ^= data[64]
			}
		}
	}
	w.touched ^= touch
	c.RxPackets.Add(uint64(n))
	c.RxBytes.Add(bytes)

	tap := w.tap.Load()
	if tap != nil {
		tapBefore(tap, in, pkts)
	}
	w.runPipeline(in, pkts)
	if tap != nil {
		tapAfter(tap, umem, pkts)
	}
	w.dispatch(src, umem, c, pkts)
}

// originate takes port o's frames from the Originator (see there) and
// returns how many it took.
func (w *Worker) originate(o int) int {
	n := min(w.orig.Pending(o), len(w.pkts))
	if n <= 0 {
		return 0
	}
	p := w.ports[o]
	umem := p.Umem()
	pkts := w.pkts[:0]
	for range n {
		a, ok := umem.Alloc()
		if !ok {
			break // the rest waits with the pipeline for the next round
		}
		pkts = append(pkts, Packet{Desc: ring.Desc{Addr: a}, Room: umem.Frame(a), Out: -1})
	}
	if len(pkts) == 0 {
		return 0
	}
	m := w.originateSafe(o, pkts)
	for i := m; i < len(pkts); i++ {
		umem.Free(pkts[i].Desc.Addr)
	}
	if m == 0 {
		return 0
	}
	pkts = pkts[:m]
	for i := range pkts {
		pkts[i].Data = pkts[i].Room[:pkts[i].Desc.Len]
	}
	c := &w.counters[o]
	c.Originated.Add(uint64(m))
	w.dispatch(p, umem, c, pkts)
	return m
}

// originateSafe runs Originate; a panic in it is recovered as in
// runPipeline: every frame it was given is dropped as ReasonPanic.
func (w *Worker) originateSafe(o int, pkts []Packet) (n int) {
	defer w.recoverOrigin(o, pkts, &n)
	return min(max(w.orig.Originate(o, pkts), 0), len(pkts))
}

func (w *Worker) recoverOrigin(o int, pkts []Packet, n *int) {
	if v := recover(); v != nil {
		w.panicked(o, pkts, v)
		*n = len(pkts)
	}
}

// dispatch sends or drops a processed batch whose frames are in umem,
// the memory of port src, counting on c.
func (w *Worker) dispatch(src Port, umem *ring.Umem, c *Counters, pkts []Packet) {
	w.drop = w.drop[:0]
	for i := range pkts {
		pk := &pkts[i]
		if pk.Out >= 0 && pk.Drop != ReasonNone {
			// The packet was refused and its frame now carries the
			// pipeline's reply: count the refusal, send the reply.
			c.Drops[pk.Drop].Add(1)
		}
		if pk.Out == Consumed && pk.Drop == ReasonNone {
			c.Consumed.Add(1)
			w.drop = append(w.drop, pk.Desc)
			continue
		}
		if pk.Out < 0 || pk.Out >= len(w.ports) {
			r := pk.Drop
			if r == ReasonNone {
				r = ReasonUnsupported
			}
			c.Drops[r].Add(1)
			w.drop = append(w.drop, pk.Desc)
			continue
		}
		dst := w.ports[pk.Out]
		if dst.Umem() != umem {
			// Different frame memory: copy into a frame of the egress
			// port's umem.
			w.copyTo(pk, umem, dst, c)
			w.drop = append(w.drop, pk.Desc)
			continue
		}
		w.out[pk.Out] = append(w.out[pk.Out], pk.Desc)
	}
	if len(w.drop) > 0 {
		src.Release(w.drop)
	}
	for o := range w.out {
		if len(w.out[o]) > 0 {
			w.send(o)
		}
	}
}

// tapBefore offers an armed capture the batch as received; tapAfter the
// pipeline's verdicts and the frames as they leave it (dp/capture).
func tapBefore(t *capture.Tap, in int, pkts []Packet) {
	if !t.Begin(in) {
		return
	}
	for i := range pkts {
		t.Before(i, pkts[i].Data)
	}
}

func tapAfter(t *capture.Tap, umem *ring.Umem, pkts []Packet) {
	for k, n := 0, t.Pending(); k < n; k++ {
		pk := &pkts[t.Index(k)]
		t.After(k, pk.Out, uint8(pk.Drop), umem.Bytes(pk.Desc))
	}
	t.Commit()
}

// runPipeline runs the pipeline over a batch. A panic in it is a bug
// (nothing from the wire may cause one), but it must not end the worker
// and every subscriber's traffic with it: the batch is recovered as a
// whole, each of its frames is dropped and counted as ReasonPanic, the
// event is counted (Counters.Panics) and reported to OnPanic with the
// frames as they are (possibly half rewritten) and the stack, and the
// worker goes on with the next batch. One deferred call per batch, none
// per packet.
func (w *Worker) runPipeline(in int, pkts []Packet) {
	defer w.recoverBatch(in, pkts)
	w.pipe.Process(in, pkts)
}

func (w *Worker) recoverBatch(in int, pkts []Packet) {
	if v := recover(); v != nil {
		w.panicked(in, pkts, v)
	}
}

func (w *Worker) panicked(in int, pkts []Packet, v any) {
	for i := range pkts {
		pkts[i].Out, pkts[i].Drop = -1, ReasonPanic
	}
	w.counters[in].Panics.Add(1)
	if w.cfg.OnPanic != nil {
		frames := make([][]byte, len(pkts))
		for i := range pkts {
			frames[i] = pkts[i].Data
		}
		w.cfg.OnPanic(PanicReport{Port: w.ports[in].Name(), Value: v, Stack: debug.Stack(), Frames: frames})
	}
}

// PanicReport describes a batch whose pipeline panicked. Frames alias
// the batch's UMEM frames: valid only during the OnPanic call.
type PanicReport struct {
	Port   string
	Value  any
	Stack  []byte
	Frames [][]byte
}

// copyTo copies pk from memory src into a new frame of dst's umem and
// queues it on w.out.
func (w *Worker) copyTo(pk *Packet, src *ring.Umem, dst Port, c *Counters) bool {
	du := dst.Umem()
	if pk.Desc.Len > du.FrameSize() {
		c.Drops[ReasonTooBig].Add(1)
		return false
	}
	a, ok := du.Alloc()
	if !ok {
		c.Drops[ReasonNoFrame].Add(1)
		return false
	}
	nb := copy(du.Frame(a), src.Bytes(pk.Desc))
	w.out[pk.Out] = append(w.out[pk.Out], ring.Desc{Addr: a, Len: uint32(nb)})
	return true
}

// send transmits this round's frames for port o. Frames the port does not
// accept are counted on it and released.
func (w *Worker) send(o int) {
	p := w.ports[o]
	q := w.out[o]
	c := &w.counters[o]
	n, err := p.Send(q)
	if err != nil {
		c.Drops[ReasonTxError].Add(uint64(len(q) - n))
		n = max(n, 0)
	} else if n < len(q) {
		c.Drops[ReasonTxFull].Add(uint64(len(q) - n))
	}
	var bytes uint64
	for _, d := range q[:n] {
		bytes += uint64(d.Len)
	}
	c.TxPackets.Add(uint64(n))
	c.TxBytes.Add(bytes)
	if n < len(q) {
		p.Release(q[n:])
	}
	w.out[o] = q[:0]
	w.sent = true
}
