package capture

import (
	"fmt"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// tcpPort80 is `tcpdump -ddd -y EN10MB 'tcp port 80'` (tcpdump 4.99.3).
const tcpPort80 = "20\n40 0 0 12\n21 0 6 34525\n48 0 0 20\n21 0 15 6\n40 0 0 54\n21 12 0 80\n40 0 0 56\n21 10 11 80\n" +
	"21 0 10 2048\n48 0 0 23\n21 0 8 6\n40 0 0 20\n69 6 0 8191\n177 0 0 14\n72 0 0 14\n21 2 0 80\n72 0 0 16\n21 0 1 80\n6 0 0 262144\n6 0 0 0\n"

// benchFrame is an Ethernet/IPv4/TCP frame of size bytes to dport.
func benchFrame(b *testing.B, size int, dport layers.TCPPort) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 101, 0, 5}, DstIP: net.IP{10, 30, 0, 1}}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: dport, ACK: true, Window: 65535}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	payload := gopacket.Payload(make([]byte, size-14-20-20))
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, payload); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkTap measures what an armed tap costs a worker per frame
// (BENCHMARKS.md "micro"; BenchmarkGWCapture in dp is the same through
// the whole gateway): batches of 64 frames through Begin, Before, After
// and Commit as dp.Worker calls them, the ring drained after each batch
// without writing (the session's goroutine does that, off the worker).
//
//	nomatch: a 20-instruction BPF program (tcpdump's 'tcp port 80') run
//	         on every frame, none to port 80: the filter's cost alone
//	bpf:     the same program, every frame to port 80: filter + the frame
//	         copied before and after the pipeline
//	tuple:   a 5-tuple instead of BPF (header.Decode + compare), matching
//	all:     no filter, every frame copied
//	full:    every frame matches, the ring is full: counted lost
func BenchmarkTap(b *testing.B) {
	bpf80, err := ParseBPF(tcpPort80)
	if err != nil {
		b.Fatal(err)
	}
	tuple, _ := ParseTuple("tcp * *:80")
	for _, size := range []int{64, 1500} {
		for _, tc := range []struct {
			name  string
			f     Filter
			dport layers.TCPPort
			full  bool
		}{
			{"nomatch", Filter{BPF: bpf80}, 443, false},
			{"bpf", Filter{BPF: bpf80}, 80, false},
			{"tuple", Filter{Tuple: &tuple}, 80, false},
			{"all", Filter{}, 80, false},
			{"full", Filter{}, 80, true},
		} {
			b.Run(fmt.Sprintf("%dB/%s", size, tc.name), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.Filter, cfg.Count, cfg.Ring, cfg.Workers = tc.f, MaxCount, 64, [][]string{{"lan/q0", "srv/q0"}}
				s, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				s.remaining.Store(1 << 62) // never reached
				tap := s.Tap(0)
				frame := benchFrame(b, size, tc.dport)
				frames := make([][]byte, 64)
				for i := range frames {
					frames[i] = frame
				}
				discard := func(*record) error { return nil }
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for n := 0; n < b.N; n += len(frames) {
					if tap.Begin(0) {
						for i, f := range frames {
							tap.Before(i, f)
						}
						for k := range tap.Pending() {
							tap.After(k, 1, 0, frames[tap.Index(k)])
						}
						tap.Commit()
					}
					if !tc.full {
						tap.drain(discard)
					}
				}
				b.StopTimer()
				if tc.full && b.N > len(frames) && tap.Lost(0) == 0 {
					b.Error("nothing lost: the ring was not full")
				}
				if !tc.full && tap.Lost(0) != 0 {
					b.Errorf("%d lost: the ring filled", tap.Lost(0))
				}
			})
		}
	}
}
