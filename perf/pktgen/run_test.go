package pktgen

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

// pair makes namespaces gen and sink joined by veth g0 <-> s0, both up.
func pair(t *testing.T) (gen, sink string) {
	t.Helper()
	gen, sink = privtest.Name("pgg", ""), privtest.Name("pgs", "")
	for _, ns := range []string{gen, sink} {
		if err := topo.CreateNetns(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := topo.DeleteNetns(ns); err != nil {
				t.Error(err)
			}
		})
	}
	g, err := topo.Open(gen)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s, err := topo.Open(sink)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := topo.Veth(g, "g0", macA, s, "s0", macB); err != nil {
		t.Fatal(err)
	}
	if err := g.Up("g0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Up("s0"); err != nil {
		t.Fatal(err)
	}
	return gen, sink
}

// Every frame the live engine sends reaches the sink with its stamp, in order.
func TestLiveToSink(t *testing.T) {
	privtest.Require(t)
	gen, sinkNS := pair(t)
	sink, err := OpenSink(sinkNS, "s0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	cases := map[string]func(c *TxConfig){
		"v4 udp 64 B 1000 flows": func(c *TxConfig) { c.Frame.SrcPorts = 1000 },
		"v4 tcp 1500 B rate-limited": func(c *TxConfig) {
			c.Frame.Proto, c.Frame.Size, c.Rate = TCP, 1500, 200000
		},
		"v6 udp 128 B two threads": func(c *TxConfig) {
			c.Frame.SrcIP, c.Frame.DstIP = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
			c.Frame.Size, c.Threads, c.Frame.SrcAddrs = 128, 2, 50
		},
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			if err := sink.Reset(); err != nil {
				t.Fatal(err)
			}
			cfg := DefaultTxConfig()
			cfg.Netns, cfg.Iface, cfg.Count = gen, "g0", 20000
			cfg.Frame.DstMAC = macB
			cfg.Frame.SrcIP, cfg.Frame.DstIP = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.1.0.1")
			cfg.CPUs = []int{0}
			// Below the veth ring size per call, so nothing is dropped for
			// lack of room while the sink's NAPI catches up.
			cfg.Rate = 1e5
			mut(&cfg)
			r, err := RunTx(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Packets < cfg.Count {
				t.Fatalf("sent %d, want >= %d", r.Packets, cfg.Count)
			}
			snap, err := sink.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			st := snap.Streams
			if st.Received != r.Packets || st.Lost != 0 || st.Late != 0 || st.Expected != r.Packets {
				t.Fatalf("sent %d, sink streams %+v", r.Packets, st)
			}
			if snap.Stamped != r.Packets || snap.Packets < r.Packets {
				t.Fatalf("sent %d, sink totals %+v", r.Packets, snap.SinkTotals)
			}
		})
	}
}

// The AF_XDP engine delivers every frame, stamped and in order.
func TestAFXDPToSink(t *testing.T) {
	privtest.Require(t)
	gen, sinkNS := pair(t)
	sink, err := OpenSink(sinkNS, "s0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	cfg := DefaultTxConfig()
	cfg.Engine = EngineAFXDP
	cfg.Netns, cfg.Iface, cfg.Count, cfg.Rate = gen, "g0", 20000, 1e5
	cfg.Frame.DstMAC, cfg.Frame.SrcPorts, cfg.Frame.Size = macB, 300, 1500
	cfg.Frame.SrcIP, cfg.Frame.DstIP = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.1.0.1")
	cfg.StreamBase = 5
	r, err := RunTx(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Packets != cfg.Count {
		t.Fatalf("sent %d, want %d", r.Packets, cfg.Count)
	}
	snap, err := sink.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := StreamSummary{Streams: 1, Expected: cfg.Count, Received: cfg.Count}
	if snap.Streams != want {
		t.Fatalf("sink streams %+v, want %+v", snap.Streams, want)
	}
}

// The AF_XDP receive mode sees every stamped frame in order.
func TestLiveToAFXDPRx(t *testing.T) {
	privtest.Require(t)
	gen, sinkNS := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	type rxDone struct {
		r   RxResult
		err error
	}
	done := make(chan rxDone, 1)
	go func() {
		r, err := RunRx(ctx, RxConfig{Mode: RxAFXDP, Netns: sinkNS, Iface: "s0", CPU: -1, OnReady: func() { close(ready) }})
		done <- rxDone{r, err}
	}()
	select {
	case <-ready:
	case d := <-done:
		t.Fatalf("rx ended before it was ready: %v", d.err)
	}
	cfg := DefaultTxConfig()
	cfg.Netns, cfg.Iface, cfg.Count, cfg.Rate = gen, "g0", 20000, 1e5
	cfg.Frame.DstMAC, cfg.Frame.SrcPorts = macB, 1000
	cfg.Frame.SrcIP, cfg.Frame.DstIP = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.1.0.1")
	r, err := RunTx(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Give the last frames a moment to arrive; a shortfall shows in the
	// comparison below, which asserts counts, not time.
	time.Sleep(time.Second)
	cancel()
	d := <-done
	if d.err != nil {
		t.Fatal(d.err)
	}
	want := StreamSummary{Streams: 1, Expected: r.Packets, Received: r.Packets}
	if d.r.Streams != want {
		t.Fatalf("afxdp rx streams %+v, want %+v", d.r.Streams, want)
	}
}
