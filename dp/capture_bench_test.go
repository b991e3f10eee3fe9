package dp_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"samepath/dp"
	"samepath/dp/capture"
)

// udpPort53 is `tcpdump -ddd -y EN10MB 'udp port 53'` (tcpdump 4.99.3):
// a filter BenchmarkGWCapture's TCP frames run through to the end
// without matching.
const udpPort53 = "20\n40 0 0 12\n21 0 6 34525\n48 0 0 20\n21 0 15 17\n40 0 0 54\n21 12 0 53\n40 0 0 56\n21 10 11 53\n" +
	"21 0 10 2048\n48 0 0 23\n21 0 8 17\n40 0 0 20\n69 6 0 8191\n177 0 0 14\n72 0 0 14\n21 2 0 53\n72 0 0 16\n21 0 1 53\n6 0 0 262144\n6 0 0 0\n"

// capMode is a gateway's capture in BenchmarkGWCapture.
type capMode int

const (
	capOff     capMode = iota // no capture armed
	capNoMatch                // armed, a BPF filter no frame matches
	capAll                    // armed, no filter: every frame taken
)

func (m capMode) String() string { return [...]string{"off", "nomatch", "all"}[m] }

// BenchmarkGWCapture measures what an armed capture (dp/capture,
// `samepathctl capture`) costs the gateway's worker, ns per packet
// (BENCHMARKS.md "micro"): BenchmarkGWAccounting's rig without
// accounting (established TCP flows, batches of 32 up and 32 down
// packets, memory ports' copies included) with no capture armed (off:
// one atomic load per batch), armed with a 20-instruction BPF program
// (tcpdump's 'udp port 53') that every frame runs through without a
// match (nomatch), and armed without a filter (all): every frame copied
// before and after the pipeline into the tap's ring, which the
// session's goroutine drains every millisecond and writes as pcapng to
// io.Discard; frames the ring has no room for while it waits are
// counted lost (lost/pkt), which costs the worker the match only (the
// writer keeps up with far fewer frames a second than the worker
// forwards: a capture of everything at full rate loses most). The
// allocations all reports are the session goroutine's, writing pcapng;
// the worker makes none (TestWorkerCaptureAllocs).
//
// BenchmarkTap in dp/capture measures the tap's own cost per frame with
// the ring drained in step (nothing lost, nothing written).
//
// paired runs the three in the same loop, alternating chunks of 16
// rounds, and reports each one's ns/pkt and the ratios to off (this
// machine is shared and noisy: the ratios are the figures to read).
func BenchmarkGWCapture(b *testing.B) {
	for _, size := range []int{64, 1500} {
		prefix := fmt.Sprintf("%dB/1flows/", size)
		for _, m := range []capMode{capOff, capNoMatch, capAll} {
			b.Run(prefix+m.String(), func(b *testing.B) {
				r := newCapRig(b, size, m)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				pkts := 0
				for pkts < b.N {
					pkts += r.round()
				}
				b.StopTimer()
				r.report(b, pkts)
			})
		}
		b.Run(prefix+"paired", func(b *testing.B) {
			rigs := [3]*capRig{newCapRig(b, size, capOff), newCapRig(b, size, capNoMatch), newCapRig(b, size, capAll)}
			var took [3]time.Duration
			var pkts [3]int
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for pkts[0]+pkts[1]+pkts[2] < b.N {
				for i, r := range rigs {
					t0 := time.Now() // per chunk of 16 rounds (1024 packets), not per packet
					for range 16 {
						pkts[i] += r.round()
					}
					took[i] += time.Since(t0)
				}
			}
			b.StopTimer()
			var ns [3]float64
			for i := range ns {
				ns[i] = float64(took[i].Nanoseconds()) / float64(pkts[i])
			}
			b.ReportMetric(ns[0], "off-ns/pkt")
			b.ReportMetric(ns[1], "nomatch-ns/pkt")
			b.ReportMetric(ns[2], "all-ns/pkt")
			b.ReportMetric(ns[1]/ns[0], "nomatch/off")
			b.ReportMetric(ns[2]/ns[0], "all/off")
			rigs[2].report(b, pkts[2])
		})
	}
}

// capRig is an acctRig (accounting off) with a capture armed unless off.
type capRig struct {
	*acctRig
	mode capMode
	stop func() capture.Stats
}

func newCapRig(b *testing.B, size int, mode capMode) *capRig {
	b.Helper()
	r := &capRig{acctRig: newAcctRig(b, size, 1, acctOff), mode: mode}
	if mode == capOff {
		return r
	}
	cfg := capture.DefaultConfig()
	cfg.Count, cfg.Duration = capture.MaxCount, time.Hour
	cfg.Ring, cfg.DrainInterval = 1024, time.Millisecond
	if mode == capNoMatch {
		prog, err := capture.ParseBPF(udpPort53)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Filter.BPF = prog
	}
	var names []string
	for _, p := range r.w.Ports() {
		names = append(names, p.Name())
	}
	cfg.Workers = [][]string{names}
	cfg.Reason = func(x uint8) string { return dp.Reason(x).String() }
	s, err := capture.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var st capture.Stats
	armed := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		st, err = s.Run(ctx, []capture.Armer{armNotify{r.w, armed}}, io.Discard, nil)
	}()
	<-armed
	var once sync.Once
	r.stop = func() capture.Stats {
		once.Do(func() {
			cancel()
			wg.Wait()
			if err != nil {
				b.Error(err)
			}
		})
		return st
	}
	b.Cleanup(func() { r.stop() })
	return r
}

// report adds, for a rig taking every frame, the frames written and lost
// per packet.
func (r *capRig) report(b *testing.B, pkts int) {
	if r.mode != capAll || pkts == 0 {
		return
	}
	st := r.stop()
	b.ReportMetric(float64(st.Frames)/float64(pkts), "written/pkt")
	b.ReportMetric(float64(st.Lost)/float64(pkts), "lost/pkt")
}
