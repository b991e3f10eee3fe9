package tcpproxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	gheader "gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"samepath/dp/header"
)

// gsoSpec describes a GSO packet as netstack's TCP sender writes one on a
// link with host GSO: IP and TCP headers for the whole payload, the TCP
// checksum field holding only the pseudo header's sum.
type gsoSpec struct {
	v6      bool
	mss     int
	payload []byte
	chunks  int // payload views (the payload is split into this many, unevenly)
	flags   gheader.TCPFlags
	opts    []byte // TCP options (a multiple of 4 bytes)
	ipOpts  []byte // IPv4 options (a multiple of 4 bytes)
	id      uint16
	seq     uint32
}

var (
	gsoSrc4 = tcpip.AddrFrom4([4]byte{198, 51, 100, 80})
	gsoDst4 = tcpip.AddrFrom4([4]byte{10, 0, 0, 2})
	gsoSrc6 = tcpip.AddrFrom16([16]byte{0x64, 0xff, 0x9b, 15: 1})
	gsoDst6 = tcpip.AddrFrom16([16]byte{0xfd, 15: 2})
)

// timestamps is a TCP timestamp option padded with two NOPs.
var timestamps = []byte{1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}

func (s gsoSpec) build() *stack.PacketBuffer {
	var buf buffer.Buffer
	rest := s.payload
	for i := max(s.chunks, 1); i > 0; i-- {
		k := len(rest) / i
		if i > 1 && k > 1 {
			k = k*2/3 + 1 // uneven: views end mid-segment
		}
		if k > 0 {
			buf.Append(buffer.NewViewWithData(rest[:k]))
		}
		rest = rest[k:]
	}
	if len(rest) > 0 {
		buf.Append(buffer.NewViewWithData(rest))
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: maxGSOHeader, Payload: buf})
	tcpLen := gheader.TCPMinimumSize + len(s.opts)
	tcp := gheader.TCP(pkt.TransportHeader().Push(tcpLen))
	tcp.Encode(&gheader.TCPFields{
		SrcPort: 80, DstPort: 40000, SeqNum: s.seq, AckNum: 7777, DataOffset: uint8(tcpLen),
		Flags: s.flags, WindowSize: 1000,
	})
	copy(tcp[gheader.TCPMinimumSize:], s.opts)
	total := tcpLen + len(s.payload)
	src, dst := gsoSrc4, gsoDst4
	typ := stack.GSOTCPv4
	if s.v6 {
		src, dst, typ = gsoSrc6, gsoDst6, stack.GSOTCPv6
		ip := gheader.IPv6(pkt.NetworkHeader().Push(gheader.IPv6MinimumSize))
		ip.Encode(&gheader.IPv6Fields{
			PayloadLength: uint16(total), TransportProtocol: gheader.TCPProtocolNumber,
			HopLimit: 64, SrcAddr: src, DstAddr: dst,
		})
	} else {
		ihl := gheader.IPv4MinimumSize + len(s.ipOpts)
		ip := gheader.IPv4(pkt.NetworkHeader().Push(ihl))
		ip.Encode(&gheader.IPv4Fields{
			TotalLength: uint16(ihl + total), ID: s.id, Flags: gheader.IPv4FlagDontFragment,
			TTL: 64, Protocol: uint8(gheader.TCPProtocolNumber), SrcAddr: src, DstAddr: dst,
		})
		ip.SetHeaderLength(uint8(ihl))
		copy(ip[gheader.IPv4MinimumSize:], s.ipOpts)
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	// What netstack leaves with NeedsCsum: the pseudo header's sum.
	tcp.SetChecksum(gheader.PseudoHeaderChecksum(gheader.TCPProtocolNumber, src, dst, uint16(total)))
	pkt.NetworkProtocolNumber = gheader.IPv4ProtocolNumber
	if s.v6 {
		pkt.NetworkProtocolNumber = gheader.IPv6ProtocolNumber
	}
	pkt.TransportProtocolNumber = gheader.TCPProtocolNumber
	pkt.GSOOptions = stack.GSO{Type: typ, NeedsCsum: true, CsumOffset: gheader.TCPChecksumOffset, MSS: uint16(s.mss), MaxSize: stack.GVisorGSOMaxSize}
	return pkt
}

// writeGSO writes pkts to l as netstack would.
func writeGSO(t *testing.T, l *Link, pkts ...*stack.PacketBuffer) {
	t.Helper()
	var list stack.PacketBufferList
	for _, p := range pkts {
		list.PushBack(p)
	}
	defer list.DecRef()
	if n, err := l.WritePackets(list); n != len(pkts) || err != nil {
		t.Fatalf("WritePackets = %d, %v; want %d", n, err, len(pkts))
	}
}

// readFrames reads everything l holds, batch frames per Read, as Ethernet
// frames (the harness's wire does the same).
func readFrames(l *Link, batch, bufSize int) [][]byte {
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
	}
	sizes := make([]int, batch)
	var out [][]byte
	for {
		n := l.Read(bufs, sizes, ethLen)
		if n == 0 {
			return out
		}
		for i := range n {
			f := append([]byte(nil), bufs[i][:ethLen+sizes[i]]...)
			binary.BigEndian.PutUint16(f[12:], 0x0800)
			if f[ethLen]>>4 == 6 {
				binary.BigEndian.PutUint16(f[12:], 0x86dd)
			}
			out = append(out, f)
		}
	}
}

// checkSegments holds frames to what cutting s's packet must give: every
// checksum right by a full recomputation, each frame within mtu, IP
// lengths and IPv4 IDs per segment, sequence numbers advancing by the
// payload before, CWR on the first only, FIN and PSH on the last only,
// the other flags, ack, window and options on all, and the payload whole
// and in order.
func checkSegments(t *testing.T, s gsoSpec, mtu int, frames [][]byte) {
	t.Helper()
	mss := min(s.mss, mtu-s.hdrLen())
	want := gsoSegments(len(s.payload), mss)
	if len(frames) != want {
		t.Fatalf("%d frames, want %d", len(frames), want)
	}
	var got []byte
	for i, f := range frames {
		if err := header.VerifyChecksums(f); err != nil {
			t.Errorf("segment %d: %v", i, err)
		}
		var p header.Parsed
		if v := header.Parse(f, &p); v != header.OK || p.Proto != header.ProtoTCP {
			t.Fatalf("segment %d: parse %v proto %d", i, v, p.Proto)
		}
		ip := f[ethLen:]
		if len(ip) > mtu {
			t.Errorf("segment %d: %d bytes, mtu %d", i, len(ip), mtu)
		}
		if s.v6 {
			if got := int(gheader.IPv6(ip).PayloadLength()); got != len(ip)-gheader.IPv6MinimumSize {
				t.Errorf("segment %d: ipv6 payload length %d, want %d", i, got, len(ip)-gheader.IPv6MinimumSize)
			}
		} else {
			h := gheader.IPv4(ip)
			if int(h.TotalLength()) != len(ip) || h.ID() != s.id+uint16(i) || h.Flags() != gheader.IPv4FlagDontFragment ||
				!bytes.Equal(h[gheader.IPv4MinimumSize:h.HeaderLength()], s.ipOpts) {
				t.Errorf("segment %d: ipv4 total length %d (frame %d) id %d (want %d) flags %d options %x", i, h.TotalLength(), len(ip), h.ID(), s.id+uint16(i), h.Flags(), h[gheader.IPv4MinimumSize:h.HeaderLength()])
			}
		}
		tcp := gheader.TCP(f[p.L4Off:])
		pay := tcp[tcp.DataOffset():]
		if tcp.SequenceNumber() != s.seq+uint32(len(got)) {
			t.Errorf("segment %d: seq %d, want %d", i, tcp.SequenceNumber(), s.seq+uint32(len(got)))
		}
		wantFlags := s.flags
		if i != 0 {
			wantFlags &^= gheader.TCPFlagCwr
		}
		if i != len(frames)-1 {
			wantFlags &^= gheader.TCPFlagFin | gheader.TCPFlagPsh
			if len(pay) != mss {
				t.Errorf("segment %d: %d payload bytes, want the mss %d", i, len(pay), mss)
			}
		}
		if tcp.Flags() != wantFlags {
			t.Errorf("segment %d: flags %v, want %v", i, tcp.Flags(), wantFlags)
		}
		if tcp.AckNumber() != 7777 || tcp.WindowSize() != 1000 || tcp.SourcePort() != 80 || tcp.DestinationPort() != 40000 {
			t.Errorf("segment %d: ack %d window %d ports %d>%d", i, tcp.AckNumber(), tcp.WindowSize(), tcp.SourcePort(), tcp.DestinationPort())
		}
		if !bytes.Equal(tcp.Options(), s.opts) {
			t.Errorf("segment %d: options %x, want %x", i, tcp.Options(), s.opts)
		}
		got = append(got, pay...)
	}
	if !bytes.Equal(got, s.payload) {
		t.Errorf("payload: %d bytes differ from the %d written", len(got), len(s.payload))
	}
}

func (s gsoSpec) hdrLen() int {
	ip := gheader.IPv4MinimumSize + len(s.ipOpts)
	if s.v6 {
		ip = gheader.IPv6MinimumSize
	}
	return ip + gheader.TCPMinimumSize + len(s.opts)
}

func seqPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// The segmenter's boundary cases, IPv4 and IPv6: a payload of exactly
// k MSS, one byte over, one byte under, less than one MSS, none (a pure
// ACK, whose checksum netstack also left to the link), FIN, PSH and CWR
// on a GSO packet, options (timestamps) on every segment, IPv4 options,
// payload views ending mid-segment, and an MSS larger than the MTU
// leaves room for (cut at the MTU).
func TestGSOSegments(t *testing.T) {
	const mss, mtu = 1000, 1500
	for _, v6 := range []bool{false, true} {
		for _, tc := range []struct {
			name string
			s    gsoSpec
			mtu  int
		}{
			{"exact", gsoSpec{mss: mss, payload: seqPayload(5 * mss), flags: gheader.TCPFlagAck}, mtu},
			{"one over", gsoSpec{mss: mss, payload: seqPayload(5*mss + 1), flags: gheader.TCPFlagAck}, mtu},
			{"one under", gsoSpec{mss: mss, payload: seqPayload(5*mss - 1), flags: gheader.TCPFlagAck}, mtu},
			{"under one mss", gsoSpec{mss: mss, payload: seqPayload(mss - 3), flags: gheader.TCPFlagAck | gheader.TCPFlagPsh}, mtu},
			{"pure ack", gsoSpec{mss: mss, flags: gheader.TCPFlagAck, opts: timestamps}, mtu},
			{"fin psh cwr ece", gsoSpec{mss: mss, payload: seqPayload(3*mss + 17),
				flags: gheader.TCPFlagAck | gheader.TCPFlagPsh | gheader.TCPFlagFin | gheader.TCPFlagCwr | gheader.TCPFlagEce}, mtu},
			{"timestamps", gsoSpec{mss: mss - len(timestamps), payload: seqPayload(4 * mss), flags: gheader.TCPFlagAck, opts: timestamps, id: 0xfffe, seq: 0xffffff00}, mtu},
			{"views", gsoSpec{mss: mss, payload: seqPayload(7*mss + 333), chunks: 9, flags: gheader.TCPFlagAck | gheader.TCPFlagPsh}, mtu},
			{"ip options", gsoSpec{mss: mss, payload: seqPayload(2*mss + 5), flags: gheader.TCPFlagAck, ipOpts: []byte{1, 1, 1, 0}}, mtu},
			{"mss over mtu", gsoSpec{mss: 1460, payload: seqPayload(4000), flags: gheader.TCPFlagAck, opts: timestamps}, 1280},
			{"max", gsoSpec{mss: 1448, payload: seqPayload(65536 - 160 - 1), chunks: 3, flags: gheader.TCPFlagAck, opts: timestamps}, mtu},
		} {
			if v6 && len(tc.s.ipOpts) > 0 {
				continue
			}
			tc.s.v6 = v6
			t.Run(fmt.Sprintf("%s/v6=%v", tc.name, v6), func(t *testing.T) {
				l, err := NewLink("test", uint32(tc.mtu), DefaultLinkConfig())
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				writeGSO(t, l, tc.s.build())
				frames := readFrames(l, 7, ethLen+tc.mtu)
				checkSegments(t, tc.s, tc.mtu, frames)
				c := l.Counters()
				k := uint64(len(frames))
				if c.OutPackets != k || c.ReadPackets != k || c.OutTooBig+c.OutMalformed+c.OutFull != 0 || l.Pending() != 0 {
					t.Errorf("counters %+v pending %d, want %d frames out and read", c, l.Pending(), k)
				}
				if gso := uint64(0); k > 1 {
					gso = 1
					if c.GSOPackets != gso || c.GSOFrames != k {
						t.Errorf("gso packets %d frames %d, want 1 and %d", c.GSOPackets, c.GSOFrames, k)
					}
				}
			})
		}
	}
}

// Read's contract with GSO packets: bufs running out stop it between two
// segments and the next Read goes on; Pending counts frames; a buffer too
// small drops one segment (OutTooBig), taking one of the call's bufs; the
// frames of a packet cut halfway when the link closes count as OutClosed;
// every frame is in one counter.
func TestGSORead(t *testing.T) {
	l, err := NewLink("test", 1500, DefaultLinkConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := gsoSpec{mss: 1000, payload: seqPayload(10_500), flags: gheader.TCPFlagAck | gheader.TCPFlagPsh}
	small := synPacket([4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 1}, 1, 2)
	writeGSO(t, l, s.build(), stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(small)}), s.build())
	if p := l.Pending(); p != 11+1+11 {
		t.Fatalf("pending %d, want 23 frames", p)
	}
	bufs := make([][]byte, 4)
	for i := range bufs {
		bufs[i] = make([]byte, 1514)
	}
	sizes := make([]int, 4)
	var frames [][]byte
	read := func(want int) {
		t.Helper()
		n := l.Read(bufs, sizes, ethLen)
		if n != want {
			t.Fatalf("Read = %d, want %d", n, want)
		}
		for i := range n {
			f := append([]byte(nil), bufs[i][:ethLen+sizes[i]]...)
			binary.BigEndian.PutUint16(f[12:], 0x0800)
			frames = append(frames, f)
		}
	}
	read(4)
	read(4)
	if p := l.Pending(); p != 23-8 {
		t.Errorf("pending %d after 8 read, want 15", p)
	}
	read(4) // the first packet's last three, then the SYN
	if got := frames[len(frames)-1]; ethLen+len(small) != len(got) {
		t.Fatalf("frame 11 is %d bytes, want the %d-byte SYN", len(got), len(small))
	}
	checkSegments(t, s, 1500, frames[:11])
	// A too-small last buffer: the segment it gets is dropped and the
	// call still takes four.
	bufs[3] = make([]byte, 100)
	frames = frames[:0]
	read(3)
	bufs[3] = make([]byte, 1514)
	read(4)
	c := l.Counters()
	if c.OutTooBig != 1 || c.ReadPackets != 11+1+3+4 || l.Pending() != 23-12-8 {
		t.Errorf("too big %d read %d pending %d, want 1, 19, 3", c.OutTooBig, c.ReadPackets, l.Pending())
	}
	l.Close()
	c = l.Counters()
	if c.OutClosed != 3 || c.OutPackets != c.ReadPackets+c.OutTooBig+c.OutClosed {
		t.Errorf("closed %d (want 3): out %d != read %d + too big %d + closed %d", c.OutClosed, c.OutPackets, c.ReadPackets, c.OutTooBig, c.OutClosed)
	}
	if l.Read(bufs, sizes, ethLen) != 0 {
		t.Errorf("Read after Close returned frames")
	}
}

// A GSO packet counts as its frames against OutQueue: one that does not
// fit is refused whole (OutFull, in frames), one larger than the whole
// queue is taken only into an empty one.
func TestGSOQueue(t *testing.T) {
	l, err := NewLink("test", 1500, LinkConfig{InQueue: 1, OutQueue: 8, Batch: 1, GSOMaxSize: 65536})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	five := gsoSpec{mss: 1000, payload: seqPayload(4500), flags: gheader.TCPFlagAck}
	writeGSO(t, l, five.build())
	var list stack.PacketBufferList
	list.PushBack(five.build())
	if n, _ := l.WritePackets(list); n != 0 {
		t.Errorf("a 5-frame packet into 3 free frames: taken")
	}
	list.DecRef()
	if c := l.Counters(); c.OutPackets != 5 || c.OutFull != 5 {
		t.Errorf("out %d full %d, want 5 and 5", c.OutPackets, c.OutFull)
	}
	if got := len(readFrames(l, 8, 1514)); got != 5 {
		t.Fatalf("read %d frames, want 5", got)
	}
	big := gsoSpec{mss: 1000, payload: seqPayload(20_000), flags: gheader.TCPFlagAck}
	writeGSO(t, l, big.build())
	checkSegments(t, big, 1500, readFrames(l, 8, 1514))
}

// What the segmenter cannot cut (not TCP, IPv6 extension headers, no
// MSS) is dropped and counted as OutMalformed, in frames, without a
// panic; the link goes on.
func TestGSOMalformed(t *testing.T) {
	l, err := NewLink("test", 1500, DefaultLinkConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := gsoSpec{mss: 1000, payload: seqPayload(2500), flags: gheader.TCPFlagAck}
	udp := s.build()
	udp.NetworkHeader().Slice()[9] = 17 // the protocol
	noMSS := s.build()
	noMSS.GSOOptions.MSS = 0
	ext := gsoSpec{v6: true, mss: 1000, payload: seqPayload(2500), flags: gheader.TCPFlagAck}.build()
	gheader.IPv6(ext.NetworkHeader().Slice()).SetNextHeader(0)
	writeGSO(t, l, udp, noMSS, ext, s.build())
	frames := readFrames(l, 4, 1514)
	checkSegments(t, s, 1500, frames)
	if c := l.Counters(); c.OutMalformed != 3+1+3 || c.OutPackets != c.ReadPackets+c.OutMalformed {
		t.Errorf("malformed %d, want 7; out %d read %d", c.OutMalformed, c.OutPackets, c.ReadPackets)
	}
}

// Cutting a GSO packet allocates nothing.
func TestGSOAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	l, err := NewLink("test", 1500, DefaultLinkConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := gsoSpec{mss: 1448, payload: seqPayload(30_000), chunks: 4, flags: gheader.TCPFlagAck, opts: timestamps}
	var list stack.PacketBufferList
	list.PushBack(s.build())
	defer list.DecRef()
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 1514)
	}
	sizes := make([]int, 8)
	if allocs := testing.AllocsPerRun(200, func() {
		l.WritePackets(list)
		for l.Read(bufs, sizes, ethLen) > 0 {
		}
	}); allocs != 0 {
		t.Errorf("WritePackets and Read of a GSO packet allocate %v", allocs)
	}
}

// FuzzGSO cuts arbitrary headers and payloads at arbitrary MSS through a
// link: no input panics, every frame Read returns fits the MTU, and what
// the segmenter takes comes out as segments with right checksums whose
// payloads add up to the packet's.
func FuzzGSO(f *testing.F) {
	for _, s := range []gsoSpec{
		{mss: 1000, payload: seqPayload(3001), flags: gheader.TCPFlagAck | gheader.TCPFlagFin, opts: timestamps},
		{v6: true, mss: 536, payload: seqPayload(2000), flags: gheader.TCPFlagAck | gheader.TCPFlagCwr},
		{mss: 1, payload: seqPayload(40), flags: gheader.TCPFlagAck, ipOpts: []byte{1, 1, 1, 1}},
	} {
		p := s.build()
		f.Add(p.NetworkHeader().Slice(), p.TransportHeader().Slice(), s.payload, uint16(s.mss), s.v6, uint16(1500))
		p.DecRef()
	}
	f.Fuzz(func(t *testing.T, ip, tcp, payload []byte, mss uint16, v6 bool, mtu uint16) {
		if len(ip) > 200 || len(tcp) > 200 || len(payload) > 70_000 {
			return
		}
		mtu = max(mtu, 41)
		l, err := NewLink("fuzz", uint32(mtu), DefaultLinkConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: 400, Payload: buffer.MakeWithData(payload)})
		copy(pkt.TransportHeader().Push(len(tcp)), tcp)
		copy(pkt.NetworkHeader().Push(len(ip)), ip)
		pkt.GSOOptions = stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, MSS: mss}
		if v6 {
			pkt.GSOOptions.Type = stack.GSOTCPv6
		}
		var list stack.PacketBufferList
		list.PushBack(pkt)
		n, _ := l.WritePackets(list)
		list.DecRef()
		frames := readFrames(l, 16, ethLen+int(mtu))
		c := l.Counters()
		if c.OutPackets != c.ReadPackets+c.OutMalformed+c.OutTooBig {
			t.Fatalf("counters do not add up: %+v", c)
		}
		if n == 0 || c.OutMalformed > 0 {
			return
		}
		var got []byte
		for i, fr := range frames {
			if len(fr)-ethLen > int(mtu) {
				t.Fatalf("frame %d: %d bytes over mtu %d", i, len(fr)-ethLen, mtu)
			}
			var p header.Parsed
			if v := header.Parse(fr, &p); v != header.OK || p.Proto != header.ProtoTCP {
				t.Fatalf("frame %d does not parse as TCP: %v", i, v)
			}
			if err := header.VerifyChecksums(fr); err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			th := gheader.TCP(fr[p.L4Off:])
			got = append(got, th[th.DataOffset():]...)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("payload of %d bytes came out as %d", len(payload), len(got))
		}
	})
}
