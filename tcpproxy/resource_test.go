package tcpproxy

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// echo serves every accepted connection: read to EOF, write it back, close.
func (e *env) echo() (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case sc := <-e.accepted:
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer sc.c.Close()
					b, err := readAll(sc.c)
					if err == nil {
						sc.c.Write(b)
					}
				}()
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// shortConns makes n connections, workers at a time: write a few bytes,
// half-close, read the echo, close.
func (e *env) shortConns(n, workers int) error {
	errs := make(chan error, workers)
	next := make(chan int)
	go func() {
		for i := range n {
			next <- i
		}
		close(next)
	}()
	for w := range workers {
		go func() {
			src := []netip.Addr{client1, client2}[w%2]
			for i := range next {
				if err := e.oneShort(src, i); err != nil {
					errs <- err
					for range next {
					}
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (e *env) oneShort(src netip.Addr, i int) error {
	c, _, err := e.dial(src, repAddr)
	if err != nil {
		return fmt.Errorf("conn %d: %w", i, err)
	}
	defer c.Close()
	msg := fmt.Appendf(nil, "hello %d", i)
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("conn %d write: %w", i, err)
	}
	c.CloseWrite()
	got, err := readAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		return fmt.Errorf("conn %d read %q, %v; want %q", i, got, err, msg)
	}
	return nil
}

// settle waits until no connection and no TCP endpoint (TIME-WAIT
// included) is left anywhere, then collects garbage.
func (e *env) settle(t testing.TB) {
	t.Helper()
	waitFor(t, "connections and endpoints to go", func() bool {
		c := e.term.Counters()
		return c.Active == 0 && c.Stack[Mobile].TCPEndpoints == 0 && c.Stack[Server].TCPEndpoints == 0 &&
			len(e.client.stack.RegisteredEndpoints()) == 0 && len(e.server.stack.RegisteredEndpoints()) <= 1 // the listener
	})
	runtime.GC()
	runtime.GC()
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// 10 000 short connections leave no goroutine and no heap behind.
func TestNoLeak10000(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 1000
	}
	e := newEnv(t, testConfig())
	e.untrack = true
	stop := e.echo()
	defer stop()
	// Warm up pools and maps, then measure.
	if err := e.shortConns(500, 8); err != nil {
		t.Fatal(err)
	}
	e.settle(t)
	g0, h0 := runtime.NumGoroutine(), heapInUse()
	if err := e.shortConns(n, 8); err != nil {
		t.Fatal(err)
	}
	e.settle(t)
	// Goroutines that have done their work may still be on their way
	// out (a connection's ends after OnClose): a leaked one never goes.
	deadline := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	g1, h1 := runtime.NumGoroutine(), heapInUse()
	// A leak of one small object per connection would show as n times its
	// size; allow 100 bytes a connection of noise (pools, map growth),
	// measured again after a pause if over (a leak does not go away).
	for i := 0; i < 3 && h1 > h0 && h1-h0 > uint64(100*n); i++ {
		time.Sleep(200 * time.Millisecond)
		runtime.GC()
		h1 = heapInUse()
	}
	t.Logf("%d connections: goroutines %d -> %d, heap %d -> %d bytes", n, g0, g1, h0, h1)
	if g1 > g0 {
		t.Errorf("goroutines %d -> %d after %d connections", g0, g1, n)
	}
	if h1 > h0 && h1-h0 > uint64(100*n) {
		t.Errorf("heap grew %d bytes after %d connections (%d per connection)", h1-h0, n, (h1-h0)/uint64(n))
	}
	ctr := e.term.Counters()
	if got := ctr.Conn[CtrEndFIN]; got != uint64(n+500) {
		t.Errorf("end_fin %d, want %d", got, n+500)
	}
	for s, lc := range ctr.Link {
		if lc.InFull+lc.InMalformed+lc.InClosed+lc.OutFull+lc.OutClosed+lc.OutTooBig+lc.OutMalformed != 0 {
			t.Errorf("%v link dropped or refused packets: %+v", Side(s), lc)
		}
	}
}

// Through queues of 4 packets a transfer still completes byte for byte:
// backpressure and full queues cost retransmissions, never silent loss,
// and every packet is in a counter.
func TestTinyQueues(t *testing.T) {
	cfg := testConfig()
	cfg.MobileLink = LinkConfig{InQueue: 4, OutQueue: 4, Batch: 2}
	cfg.ServerLink = LinkConfig{InQueue: 4, OutQueue: 4, Batch: 2}
	e := newEnv(t, cfg)
	up, down := payload(300_000, 5), payload(600_000, 6)
	c, _ := e.mustDial(client1, repAddr)
	go c.Write(up)
	sc := e.nextAccepted()
	go sc.c.Write(down)
	if got, err := readN(sc.c, len(up)); err != nil || !bytes.Equal(got, up) {
		t.Fatalf("server got %d bytes, %v", len(got), err)
	}
	if got, err := readN(c, len(down)); err != nil || !bytes.Equal(got, down) {
		t.Fatalf("client got %d bytes, %v", len(got), err)
	}
	c.Close()
	sc.c.Close()
	e.nextClosed()
	waitFor(t, "queues to drain", func() bool {
		return e.term.Link(Mobile).Pending() == 0 && e.term.Link(Server).Pending() == 0 && e.client.link.Pending() == 0 && e.server.link.Pending() == 0
	})
	ctr := e.term.Counters()
	mf, _ := e.mw.counts()
	sf, _ := e.sw.counts()
	full := uint64(0)
	for s, lc := range ctr.Link {
		full += lc.InFull + lc.OutFull
		// Everything queued in reached netstack; everything netstack
		// queued out was read.
		if lc.InPackets != lc.Delivered || lc.OutPackets != lc.ReadPackets+lc.OutTooBig+lc.OutMalformed {
			t.Errorf("%v link: in %d delivered %d, out %d read %d too big %d malformed %d", Side(s), lc.InPackets, lc.Delivered, lc.OutPackets, lc.ReadPackets, lc.OutTooBig, lc.OutMalformed)
		}
		if lc.InMalformed+lc.InClosed+lc.OutClosed+lc.OutTooBig+lc.OutMalformed != 0 {
			t.Errorf("%v link dropped packets: %+v", Side(s), lc)
		}
	}
	// The wires retry what Inject refuses, so each frame one side emitted
	// was accepted by the other exactly once.
	if got := ctr.Link[Mobile].InPackets; got != uint64(mf[0]) {
		t.Errorf("mobile link accepted %d packets, the client emitted %d", got, mf[0])
	}
	if got := ctr.Link[Server].InPackets; got != uint64(sf[1]) {
		t.Errorf("server link accepted %d packets, the server emitted %d", got, sf[1])
	}
	if full == 0 {
		t.Errorf("no queue ever filled: the test did not exercise backpressure")
	}
	t.Logf("mobile link %+v", ctr.Link[Mobile])
	t.Logf("server link %+v", ctr.Link[Server])
}

// idleBytes opens n idle connections (one byte each way, then nothing)
// and returns heap plus goroutine stack bytes per connection. through
// says whether they go through the terminator or straight from the client
// netstack to the server's.
func idleBytes(tb testing.TB, n int, through bool) float64 {
	cfg := testConfig()
	cfg.MaxConnsPerSession = n
	e := newEnv(tb, cfg)
	e.untrack = true
	rep := repAddr
	if !through {
		// Rewire: client straight to server, terminator left idle.
		e.mw.close()
		e.sw.close()
		e.mw = newWire(tb, e.client.link, e.server.link)
		e.sw = newWire(tb, e.term.Link(Mobile), e.term.Link(Server))
		rep = srvAddr
	}
	mem := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc + m.StackInuse
	}
	conns := make([]*gonet.TCPConn, 0, n)
	scs := make([]*srvConn, 0, n)
	m0 := mem()
	for i := range n {
		c, _, err := e.dial(client1, rep)
		if err != nil {
			tb.Fatalf("conn %d: %v", i, err)
		}
		c.Write([]byte("x"))
		sc := <-e.accepted
		readN(sc.c, 1)
		sc.c.Write([]byte("y"))
		readN(c, 1)
		conns, scs = append(conns, c), append(scs, sc)
	}
	time.Sleep(100 * time.Millisecond) // let delayed work (ACKs, timers) run
	m1 := mem()
	for i := range conns {
		conns[i].Close()
		scs[i].c.Close()
	}
	e.settle(tb)
	e.close()
	if m1 < m0 {
		return 0
	}
	return float64(m1-m0) / float64(n)
}

// BenchmarkIdleConnMemory reports the memory an idle terminated
// connection costs: through the terminator, straight between the same two
// test netstacks, and the difference, which is the terminator's share
// (its two endpoints, the connection's goroutine and state). BENCHMARKS.md.
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 1000
	var through, direct float64
	for b.Loop() {
		through = idleBytes(b, n, true)
		direct = idleBytes(b, n, false)
	}
	b.ReportMetric(through, "B/conn-through")
	b.ReportMetric(direct, "B/conn-direct")
	b.ReportMetric(through-direct, "B/conn-terminator")
}

// The terminator's share of an idle connection's memory, logged for the
// record; it fails only if nothing was measured.
func TestIdleConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("measures memory of 300 connections")
	}
	through := idleBytes(t, 300, true)
	direct := idleBytes(t, 300, false)
	t.Logf("idle connection: %.0f B through the terminator, %.0f B direct, %.0f B the terminator's share", through, direct, through-direct)
	if through <= direct {
		t.Errorf("through %.0f B <= direct %.0f B: the measurement saw nothing", through, direct)
	}
}

// BenchmarkSpliceDownload moves 1 MiB per iteration from the server
// netstack through the terminator to the client netstack, all in memory:
// the figure includes the two test netstacks' own work, so it bounds the
// terminator's throughput from below. BENCHMARKS.md.
func BenchmarkSpliceDownload(b *testing.B) {
	e := newEnv(b, testConfig())
	c, _ := e.mustDial(client1, repAddr)
	c.Write([]byte("x"))
	sc := e.nextAccepted()
	readN(sc.c, 1)
	chunk := payload(1<<20, 7)
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		go sc.c.Write(chunk)
		for got := 0; got < len(chunk); {
			n, err := c.Read(buf)
			if err != nil {
				b.Fatalf("read: %v", err)
			}
			got += n
		}
	}
}
