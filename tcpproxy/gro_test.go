package tcpproxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	gheader "gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"samepath/dp/header"
)

// seg describes one inbound TCP segment for the GRO tests.
type seg struct {
	v6      bool
	seq     uint32
	ack     uint32
	win     uint16
	flags   gheader.TCPFlags
	opts    []byte
	tos     uint8
	payload []byte
}

// bytes builds the segment with correct checksums.
func (s seg) bytes() []byte {
	tcpLen := gheader.TCPMinimumSize + len(s.opts)
	ipLen := gheader.IPv4MinimumSize
	if s.v6 {
		ipLen = gheader.IPv6MinimumSize
	}
	b := make([]byte, ipLen+tcpLen+len(s.payload))
	src, dst := gsoSrc4, gsoDst4
	if s.v6 {
		src, dst = gsoSrc6, gsoDst6
		gheader.IPv6(b).Encode(&gheader.IPv6Fields{
			TrafficClass: s.tos, PayloadLength: uint16(tcpLen + len(s.payload)), TransportProtocol: gheader.TCPProtocolNumber,
			HopLimit: 64, SrcAddr: src, DstAddr: dst,
		})
	} else {
		ip := gheader.IPv4(b)
		ip.Encode(&gheader.IPv4Fields{
			TOS: s.tos, TotalLength: uint16(len(b)), ID: uint16(s.seq), Flags: gheader.IPv4FlagDontFragment,
			TTL: 64, Protocol: uint8(gheader.TCPProtocolNumber), SrcAddr: src, DstAddr: dst,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	tcp := gheader.TCP(b[ipLen:])
	tcp.Encode(&gheader.TCPFields{
		SrcPort: 80, DstPort: 40000, SeqNum: s.seq, AckNum: s.ack, DataOffset: uint8(tcpLen),
		Flags: s.flags, WindowSize: s.win,
	})
	copy(tcp[gheader.TCPMinimumSize:], s.opts)
	copy(tcp[tcpLen:], s.payload)
	xsum := gheader.PseudoHeaderChecksum(gheader.TCPProtocolNumber, src, dst, uint16(len(tcp)))
	tcp.SetChecksum(^checksum.Checksum(tcp, xsum))
	return b
}

// bulk is n segments of size bytes each from seq, ACK only.
func bulk(v6 bool, seq uint32, n, size int) []seg {
	var out []seg
	for i := range n {
		out = append(out, seg{v6: v6, seq: seq + uint32(i*size), ack: 5, win: 500, flags: gheader.TCPFlagAck,
			opts: timestamps, payload: seqPayload(size + 7)[i%7:][:size]})
	}
	return out
}

// delivered runs pkts through a GRO link's inbound path in one pass and
// returns what netstack got.
func delivered(t *testing.T, pkts [][]byte) ([][]byte, LinkCounters) {
	t.Helper()
	l, err := NewLink("gro", 1500, LinkConfig{InQueue: 256, OutQueue: 1, Batch: 256, GRO: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := l.Inject(pkts); n != len(pkts) {
		t.Fatalf("Inject = %d of %d", n, len(pkts))
	}
	var d sink
	l.Attach(&d) // one pass takes the whole queue
	waitFor(t, "delivery", func() bool { c := l.Counters(); return c.Delivered == c.InPackets })
	l.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pkts, l.Counters()
}

// deliveredNow is delivered without the link's goroutine: one pass of
// deliverGRO on this goroutine (the fuzzer's many runs).
func deliveredNow(t *testing.T, pkts [][]byte) ([][]byte, LinkCounters) {
	t.Helper()
	l, err := NewLink("gro", 1500, LinkConfig{InQueue: 256, OutQueue: 1, Batch: 256, GRO: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n := l.Inject(pkts); n != len(pkts) {
		t.Fatalf("Inject = %d of %d", n, len(pkts))
	}
	batch := make([]*stack.PacketBuffer, len(pkts))
	n := l.in.pop(batch)
	var d sink
	var run groRun
	l.deliverGRO(&d, batch[:n], &run)
	l.ctr.delivered.Add(uint64(n))
	return d.pkts, l.Counters()
}

// verified adds an Ethernet header and holds b to a full checksum
// recomputation.
func verified(b []byte) error {
	f := make([]byte, ethLen+len(b))
	copy(f[ethLen:], b)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	if b[0]>>4 == 6 {
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
	}
	return header.VerifyChecksums(f)
}

// tcpOf returns b's TCP header and payload.
func tcpOf(b []byte) gheader.TCP {
	if b[0]>>4 == 6 {
		return b[gheader.IPv6MinimumSize:]
	}
	return b[gheader.IPv4(b).HeaderLength():]
}

// checkGRO holds out (what netstack got) to in (what the link was given):
// in order, each delivered packet is either an input unchanged or the
// merge of a run of consecutive inputs whose checksums were right: its
// checksums right, its IP length its own, its sequence number the run's
// first, its payload the run's payloads in order, PSH if the run's last
// had it. It returns the number of inputs in each delivered packet.
func checkGRO(t *testing.T, in, out [][]byte) []int {
	t.Helper()
	var runs []int
	i := 0
	for k, p := range out {
		if i == len(in) {
			t.Fatalf("delivered %d: nothing left of the input", k)
		}
		if bytes.Equal(p, in[i]) {
			runs = append(runs, 1)
			i++
			continue
		}
		if err := verified(p); err != nil {
			t.Fatalf("delivered %d (merged): %v", k, err)
		}
		tp := tcpOf(p)
		pay := tp[tp.DataOffset():]
		if tp.SequenceNumber() != tcpOf(in[i]).SequenceNumber() {
			t.Fatalf("delivered %d: seq %d, want %d", k, tp.SequenceNumber(), tcpOf(in[i]).SequenceNumber())
		}
		var want []byte
		j := i
		for ; j < len(in) && len(want) < len(pay); j++ {
			if err := verified(in[j]); err != nil {
				t.Fatalf("delivered %d merges input %d, whose checksum is wrong: %v", k, j, err)
			}
			ti := tcpOf(in[j])
			want = append(want, ti[ti.DataOffset():]...)
		}
		if !bytes.Equal(pay, want) {
			t.Fatalf("delivered %d: %d payload bytes that are not inputs %d..%d", k, len(pay), i, j-1)
		}
		last := tcpOf(in[j-1])
		if tp.Flags() != gheader.TCPFlagAck|last.Flags()&gheader.TCPFlagPsh {
			t.Errorf("delivered %d: flags %v, the run's last had %v", k, tp.Flags(), last.Flags())
		}
		if !bytes.Equal(tp[:4], tcpOf(in[i])[:4]) || !bytes.Equal(tp[8:13], tcpOf(in[i])[8:13]) || !bytes.Equal(tp.Options(), tcpOf(in[i]).Options()) {
			t.Errorf("delivered %d: ports, ack or options differ from the run's first", k)
		}
		runs = append(runs, j-i)
		i = j
	}
	if i != len(in) {
		t.Fatalf("delivered %d of %d inputs", i, len(in))
	}
	return runs
}

func segBytes(segs []seg) [][]byte {
	var out [][]byte
	for _, s := range segs {
		out = append(out, s.bytes())
	}
	return out
}

// GRO merges a run of consecutive segments, IPv4 and IPv6, and keeps
// apart what would change what netstack sees: a gap, another ack,
// window, options, ECN mark or flag (FIN, CWR), a segment larger than
// the first, a bad checksum (delivered alone, unchanged, for netstack to
// drop and count); a shorter segment or PSH ends a run; a run stops at
// 64 KiB.
func TestGRO(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, tc := range []struct {
			name string
			segs func() []seg
			runs []int
		}{
			{"run", func() []seg { return bulk(v6, 1000, 10, 1000) }, []int{10}},
			{"odd sizes", func() []seg { return bulk(v6, 1000, 6, 999) }, []int{6}},
			{"psh ends", func() []seg {
				s := bulk(v6, 1000, 6, 1000)
				s[2].flags |= gheader.TCPFlagPsh
				return s
			}, []int{3, 3}},
			{"short ends", func() []seg {
				s := bulk(v6, 1000, 3, 1000)
				s = append(s, seg{v6: v6, seq: 4000, ack: 5, win: 500, flags: gheader.TCPFlagAck, opts: timestamps, payload: seqPayload(10)})
				return append(s, bulk(v6, 4010, 2, 1000)...)
			}, []int{4, 2}},
			{"larger apart", func() []seg {
				s := bulk(v6, 1000, 2, 500)
				return append(s, bulk(v6, 2000, 2, 1000)...)
			}, []int{2, 2}},
			{"gap", func() []seg {
				s := bulk(v6, 1000, 3, 1000)
				return append(s, bulk(v6, 5000, 3, 1000)...)
			}, []int{3, 3}},
			{"ack window options", func() []seg {
				s := bulk(v6, 1000, 8, 1000)
				ts := append([]byte(nil), timestamps...)
				ts[4]++ // TSval
				for i := range s {
					s[i].ack += uint32(min(i/2, 1))
					s[i].win += uint16(min(i/4, 1))
					if i >= 6 {
						s[i].opts = ts
					}
				}
				return s
			}, []int{2, 2, 2, 2}},
			{"ecn fin cwr", func() []seg {
				s := bulk(v6, 1000, 8, 1000)
				s[2].tos = 3 // CE
				s[4].flags |= gheader.TCPFlagCwr
				s[7].flags |= gheader.TCPFlagFin
				return s
			}, []int{2, 1, 1, 1, 2, 1}},
			{"64k", func() []seg { return bulk(v6, 1000, 70, 1400) }, []int{46, 24}},
			{"pure acks", func() []seg {
				return []seg{{v6: v6, seq: 1, ack: 5, win: 9, flags: gheader.TCPFlagAck}, {v6: v6, seq: 1, ack: 6, win: 9, flags: gheader.TCPFlagAck}}
			}, []int{1, 1}},
		} {
			t.Run(fmt.Sprintf("%s/v6=%v", tc.name, v6), func(t *testing.T) {
				in := segBytes(tc.segs())
				out, c := delivered(t, in)
				runs := checkGRO(t, in, out)
				if fmt.Sprint(runs) != fmt.Sprint(tc.runs) {
					t.Errorf("runs %v, want %v", runs, tc.runs)
				}
				if c.GROMerged != uint64(len(in)-len(out)) || c.Delivered != c.InPackets {
					t.Errorf("merged %d, want %d; delivered %d of %d", c.GROMerged, len(in)-len(out), c.Delivered, c.InPackets)
				}
			})
		}
	}
	t.Run("bad checksum", func(t *testing.T) {
		in := segBytes(bulk(false, 1000, 6, 1000))
		in[2][len(in[2])-1] ^= 1 // payload
		in[4][10] ^= 1           // ip header checksum
		out, _ := delivered(t, in)
		if runs := checkGRO(t, in, out); fmt.Sprint(runs) != "[2 1 1 1 1]" {
			t.Errorf("runs %v, want [2 1 1 1 1]", runs)
		}
		if !bytes.Equal(out[1], in[2]) || !bytes.Equal(out[3], in[4]) {
			t.Errorf("the bad segments were not delivered unchanged")
		}
	})
	t.Run("off", func(t *testing.T) {
		l, err := NewLink("gro", 1500, LinkConfig{InQueue: 16, OutQueue: 1, Batch: 16})
		if err != nil {
			t.Fatal(err)
		}
		in := segBytes(bulk(false, 1000, 5, 1000))
		l.Inject(in)
		var d sink
		l.Attach(&d)
		waitFor(t, "delivery", func() bool { return d.len() == 5 })
		l.Close()
		if c := l.Counters(); c.GROMerged != 0 {
			t.Errorf("GRO off merged %d", c.GROMerged)
		}
	})
}

// FuzzGRO feeds runs of segments with arbitrary damage (bytes flipped,
// lengths cut) through GRO: no input panics, and everything delivered is
// an input unchanged or a right merge of consecutive inputs (checkGRO).
func FuzzGRO(f *testing.F) {
	f.Add(uint8(8), uint16(1000), false, []byte{}, []byte{})
	f.Add(uint8(20), uint16(999), true, []byte{3, 40, 7, 100}, []byte{5})
	f.Add(uint8(5), uint16(1400), false, []byte{0, 9, 1, 33, 2, 47}, []byte{2, 3})
	f.Fuzz(func(t *testing.T, n uint8, size uint16, v6 bool, flips, cuts []byte) {
		n, size = max(1, n%64), max(1, size%1460)
		in := segBytes(bulk(v6, 1000, int(n), int(size)))
		for i := 0; i+1 < len(flips); i += 2 {
			p := in[int(flips[i])%len(in)]
			p[int(flips[i+1])%len(p)] ^= 1 << (flips[i] % 8)
		}
		for _, c := range cuts {
			p := &in[int(c)%len(in)]
			*p = (*p)[:len(*p)-int(c)%len(*p)/2]
		}
		kept := in[:0]
		for _, p := range in {
			if _, ok := ipProto(p); ok {
				kept = append(kept, p) // Inject drops the rest as malformed
			}
		}
		if len(kept) == 0 {
			return
		}
		out, c := deliveredNow(t, kept)
		checkGRO(t, kept, out)
		if c.Delivered != c.InPackets || c.GROMerged != c.InPackets-uint64(len(out)) {
			t.Fatalf("counters %+v, %d delivered", c, len(out))
		}
	})
}
