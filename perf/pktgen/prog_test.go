package pktgen

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"golang.org/x/sys/unix"

	"github.com/cilium/ebpf"

	"samepath/perf/xdpprog"
	"samepath/testbed/privtest"
)

// runOnce runs prog once on in (no live frames) and returns its verdict and
// the frame it left.
func runOnce(t *testing.T, prog *ebpf.Program, in []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+256)
	ret, err := prog.Run(&ebpf.RunOptions{Data: in, DataOut: out, Repeat: 1})
	if err != nil {
		t.Fatalf("run program: %v", err)
	}
	return ret, out[:len(in)]
}

const xdpTX = 3

// The generator program rewrites every varying field and both checksums;
// checked against a plain network-order checksum on every flow boundary.
func TestGenProgram(t *testing.T) {
	privtest.Require(t)
	g, err := xdpprog.LoadGen()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for name, s := range specs() {
		t.Run(name, func(t *testing.T) {
			pinTest(t)
			tmpl, cfg, err := s.Build()
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Configure(cfg); err != nil {
				t.Fatal(err)
			}
			// Feed each output back in, as live frames recycle buffers: the
			// program must not depend on the previous contents.
			frame := s.WithStream(tmpl, 77)
			for seq := uint64(0); seq < 250; seq++ {
				ret, out := runOnce(t, g.Program(), frame)
				if ret != xdpTX {
					t.Fatalf("seq %d: verdict %d, want XDP_TX", seq, ret)
				}
				src, port, stream, gotSeq, stamped := checkFrame(t, out)
				flow := int(seq) % s.Flows()
				wantSrc := low32(s.SrcIP) + uint32(flow/s.SrcPorts)
				wantPort := s.SrcPort + uint16(flow%s.SrcPorts)
				if src != wantSrc || port != wantPort {
					t.Fatalf("seq %d: src %#x port %d, want %#x %d", seq, src, port, wantSrc, wantPort)
				}
				if stamped != s.Stamped() {
					t.Fatalf("seq %d: stamped %v, want %v", seq, stamped, s.Stamped())
				}
				if stamped && (gotSeq != seq || stream != 77) {
					t.Fatalf("stamp: stream %d seq %d, want seq %d", stream, gotSeq, seq)
				}
				if !bytes.Equal(out[:14], tmpl[:14]) {
					t.Fatalf("seq %d: Ethernet header % x, want the template's % x", seq, out[:14], tmpl[:14])
				}
				// A device under test rewrites the recycled frame in
				// place (steered MACs, TTL, destination): the next run
				// must restore the template's header.
				frame = out
				for i := range 12 {
					frame[i] ^= 0x5a
				}
				frame[14+7]--                 // IPv6 hop limit / IPv4 identification
				frame[14+8]--                 // IPv4 TTL / IPv6 source
				frame[len(cfg.Hdr)-3] ^= 0xff // L4 header
			}
			total, err := g.Generated()
			if err != nil {
				t.Fatal(err)
			}
			if total != 250 {
				t.Fatalf("generated %d, want 250", total)
			}
		})
	}
}

// The sink counts all frames and derives loss and late arrivals from stamps.
func TestSinkProgram(t *testing.T) {
	privtest.Require(t)
	g, err := xdpprog.LoadGen()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	sink, err := xdpprog.LoadSink(false)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	for name, s := range specs() {
		t.Run(name, func(t *testing.T) {
			pinTest(t)
			tmpl, cfg, err := s.Build()
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Configure(cfg); err != nil {
				t.Fatal(err)
			}
			if err := sink.Reset(); err != nil {
				t.Fatal(err)
			}
			var frames [][]byte
			in := s.WithStream(tmpl, 3)
			for range 10 {
				_, out := runOnce(t, g.Program(), in)
				frames = append(frames, out)
			}
			// Deliver 0 1 2 4 3 5 7 9: 2 lost (6, 8), 1 late (3).
			for _, i := range []int{0, 1, 2, 4, 3, 5, 7, 9} {
				if ret, _ := runOnce(t, sink.Program(), frames[i]); ret != 1 {
					t.Fatalf("sink verdict %d, want XDP_DROP", ret)
				}
			}
			runOnce(t, sink.Program(), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}) // runt, counted only
			tot, err := sink.Totals()
			if err != nil {
				t.Fatal(err)
			}
			wantStamped := uint64(0)
			if s.Stamped() {
				wantStamped = 8
			}
			if tot.Packets != 9 || tot.Stamped != wantStamped || tot.Bytes != uint64(8*len(tmpl)+14) {
				t.Fatalf("totals %+v", tot)
			}
			st, err := sink.Streams()
			if err != nil {
				t.Fatal(err)
			}
			sum := Summarize(st)
			if !s.Stamped() {
				if sum.Streams != 0 {
					t.Fatalf("unstamped frames produced streams: %+v", sum)
				}
				return
			}
			want := StreamSummary{Streams: 1, Expected: 10, Received: 8, Lost: 2, Late: 1}
			if sum != want {
				t.Fatalf("summary %+v, want %+v", sum, want)
			}
		})
	}
}

// pinTest keeps the test goroutine on one OS thread on CPU 0 until the test
// ends: the generator's sequence counters are per CPU.
func pinTest(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	})
}

// A slot's limit stops transmission and its interval paces it: runs that
// are early or over the limit drop the frame and leave the sequence alone.
func TestGenSlotLimitAndPacing(t *testing.T) {
	privtest.Require(t)
	g, err := xdpprog.LoadGen()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s := specs()["v4udp64"]
	tmpl, cfg, err := s.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	in := s.WithStream(tmpl, 5)
	slot := []uint32{xdpprog.StreamSlot(5)}
	if err := g.SetSlot(slot[0], xdpprog.Slot{Limit: 3}); err != nil {
		t.Fatal(err)
	}
	var verdicts []uint32
	for range 5 {
		ret, _ := runOnce(t, g.Program(), in)
		verdicts = append(verdicts, ret)
	}
	if d := cmp.Diff([]uint32{xdpTX, xdpTX, xdpTX, 1, 1}, verdicts); d != "" {
		t.Errorf("verdicts with limit 3 (-want +got):\n%s", d)
	}
	// An hour between frames: the first goes, the next ones wait.
	if err := g.SetSlot(slot[0], xdpprog.Slot{Interval: uint64(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	verdicts = verdicts[:0]
	for range 3 {
		ret, _ := runOnce(t, g.Program(), in)
		verdicts = append(verdicts, ret)
	}
	if d := cmp.Diff([]uint32{xdpTX, 1, 1}, verdicts); d != "" {
		t.Errorf("verdicts when paced (-want +got):\n%s", d)
	}
	if n, err := g.Sent(slot); err != nil || n != 1 {
		t.Errorf("sent %d (%v), want 1", n, err)
	}
}
