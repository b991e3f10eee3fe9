package tcpproxy

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	gheader "gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// synPacket builds an IPv4 TCP SYN from src to dst with correct checksums.
func synPacket(src, dst [4]byte, sport, dport uint16) []byte {
	b := make([]byte, gheader.IPv4MinimumSize+gheader.TCPMinimumSize)
	ip := gheader.IPv4(b)
	ip.Encode(&gheader.IPv4Fields{
		TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(tcp.ProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(src), DstAddr: tcpip.AddrFrom4(dst),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	th := gheader.TCP(b[gheader.IPv4MinimumSize:])
	th.Encode(&gheader.TCPFields{SrcPort: sport, DstPort: dport, SeqNum: 1000, DataOffset: gheader.TCPMinimumSize, Flags: gheader.TCPFlagSyn, WindowSize: 65535})
	xsum := gheader.PseudoHeaderChecksum(tcp.ProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(th)))
	th.SetChecksum(^checksum.Checksum(th, xsum))
	return b
}

// sink is a stack.NetworkDispatcher that keeps what the link delivers
// (netstack itself would need addresses and routes before the link
// attaches, which it does at NIC creation).
type sink struct {
	mu   sync.Mutex
	pkts [][]byte
}

func (s *sink) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	b := make([]byte, pkt.Size())
	copyPacket(b, pkt)
	s.mu.Lock()
	s.pkts = append(s.pkts, b)
	s.mu.Unlock()
}

func (*sink) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pkts)
}

// A full inbound queue makes Inject take fewer packets and count the rest;
// nothing is dropped without a counter, and what was queued is delivered
// once the link is attached.
func TestLinkInjectBackpressure(t *testing.T) {
	l, err := NewLink("test", 1500, LinkConfig{InQueue: 4, OutQueue: 4, Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	for i := range 6 {
		pkts = append(pkts, synPacket([4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 1}, 1234+uint16(i), 80))
	}
	batch := append([][]byte{{0x45, 0}}, pkts...)
	// Not attached: nothing drains the queue.
	if n := l.Inject(batch); n != 5 {
		t.Fatalf("Inject took %d, want 5 (1 malformed + 4 queued)", n)
	}
	if n := l.Inject(batch[5:]); n != 0 {
		t.Fatalf("Inject on a full queue took %d, want 0", n)
	}
	want := LinkCounters{InPackets: 4, InBytes: uint64(4 * len(pkts[0])), InFull: 2 + 2, InMalformed: 1}
	if diff := cmp.Diff(want, l.Counters()); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	// The caller's buffers are free after Inject: scribbling on them
	// changes nothing queued.
	saved := append([]byte(nil), pkts[0]...)
	pkts[0][0] = 0

	var d sink
	l.Attach(&d)
	waitFor(t, "delivery", func() bool { return d.len() == 4 })
	pkts[0] = saved
	if n := l.Inject(batch[5:]); n != 2 {
		t.Fatalf("Inject after the drain took %d, want 2", n)
	}
	waitFor(t, "delivery", func() bool { return d.len() == 6 })
	d.mu.Lock()
	if diff := cmp.Diff(pkts, d.pkts); diff != "" {
		t.Errorf("delivered packets (-want +got):\n%s", diff)
	}
	d.mu.Unlock()
	if c := l.Counters(); c.Delivered != 6 || c.InPackets != 6 {
		t.Errorf("delivered %d of %d queued, want 6 of 6", c.Delivered, c.InPackets)
	}

	// Close: later input is taken and counted as dropped.
	l.Close()
	if n := l.Inject(pkts[:2]); n != 2 || l.Counters().InClosed != 2 {
		t.Errorf("Inject after Close took %d (counted %d), want both taken and counted", n, l.Counters().InClosed)
	}
	if l.IsAttached() {
		t.Errorf("attached after Close")
	}
}

// Netstack's outbound packets beyond the queue are refused and counted
// (OutFull), not lost silently; Read drops and counts a packet that does
// not fit the caller's buffer.
func TestLinkOutFull(t *testing.T) {
	s, err := newSide(Server, Wired(), LinkConfig{InQueue: 16, OutQueue: 2, Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.stack.Destroy()
	if err := s.addAddress(netip.MustParseAddr("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	var in [][]byte
	for i := range 5 {
		in = append(in, synPacket([4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 1}, 2000+uint16(i), 80))
	}
	l := s.link
	// Netstack answers each SYN to a closed port with a RST: 2 fit.
	if n := l.Inject(in); n != 5 {
		t.Fatalf("Inject = %d", n)
	}
	waitFor(t, "the RSTs", func() bool { c := l.Counters(); return c.OutPackets+c.OutFull == 5 })
	if c := l.Counters(); c.OutPackets != 2 || c.OutFull != 3 {
		t.Errorf("out %d full %d, want 2 and 3", c.OutPackets, c.OutFull)
	}
	sizes := make([]int, 2)
	if n := l.Read([][]byte{make([]byte, 10)}, sizes, 0); n != 0 {
		t.Errorf("Read into a 10-byte buffer = %d, want 0", n)
	}
	bufs := [][]byte{make([]byte, 1514), make([]byte, 1514)}
	if n := l.Read(bufs, sizes, 14); n != 1 {
		t.Fatalf("Read = %d, want 1", n)
	}
	got := bufs[0][14 : 14+sizes[0]]
	if sizes[0] != 40 || !gheader.TCP(got[20:]).Flags().Contains(gheader.TCPFlagRst) {
		t.Errorf("read %x, want a 40-byte RST", got)
	}
	if c := l.Counters(); c.OutTooBig != 1 || c.ReadPackets != 1 || c.ReadBytes != 40 {
		t.Errorf("too big %d read %d (%d bytes), want 1, 1 (40)", c.OutTooBig, c.ReadPackets, c.ReadBytes)
	}
}

// WritePackets takes what fits and counts the rest; Read returns the bytes
// netstack wrote, at the offset asked.
func TestLinkWritePackets(t *testing.T) {
	l, err := NewLink("test", 1500, LinkConfig{InQueue: 1, OutQueue: 2, Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	notified := 0
	l.SetNotify(func() { notified++ })
	var list stack.PacketBufferList
	var want [][]byte
	for i := range 5 {
		b := bytes.Repeat([]byte{byte(i)}, 100+i)
		want = append(want, b)
		list.PushBack(stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)}))
	}
	n, terr := l.WritePackets(list)
	if n != 2 || terr != nil {
		t.Fatalf("WritePackets = %d, %v; want 2, nil", n, terr)
	}
	if _, terr := l.WritePackets(list); terr == nil {
		t.Errorf("WritePackets on a full queue: no error")
	}
	list.DecRef()
	if c := l.Counters(); c.OutPackets != 2 || c.OutFull != 3+5 || notified != 1 {
		t.Errorf("OutPackets %d OutFull %d notified %d, want 2, 8, 1", c.OutPackets, c.OutFull, notified)
	}
	bufs := [][]byte{make([]byte, 300), make([]byte, 300), make([]byte, 300)}
	sizes := make([]int, 3)
	if n := l.Read(bufs, sizes, 20); n != 2 {
		t.Fatalf("Read = %d, want 2", n)
	}
	for i := range 2 {
		if got := bufs[i][20 : 20+sizes[i]]; !bytes.Equal(got, want[i]) {
			t.Errorf("packet %d = %x, want %x", i, got, want[i])
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { l.Read(bufs, sizes, 20) }); allocs != 0 && !raceEnabled {
		t.Errorf("Read on an empty queue allocates %v", allocs)
	}
	l.Close()
}

func TestLinkConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		field string
		cfg   LinkConfig
	}{
		{"in_queue", LinkConfig{InQueue: 0, OutQueue: 1, Batch: 1}},
		{"out_queue", LinkConfig{InQueue: 1, OutQueue: 0, Batch: 1}},
		{"batch", LinkConfig{InQueue: 1, OutQueue: 1, Batch: 0}},
		{"gso_max_size", LinkConfig{InQueue: 1, OutQueue: 1, Batch: 1, GSOMaxSize: 100}},
		{"gso_max_size", LinkConfig{InQueue: 1, OutQueue: 1, Batch: 1, GSOMaxSize: 1 << 17}},
	} {
		if _, err := NewLink("x", 1500, tc.cfg); err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.field)) {
			t.Errorf("%s: NewLink error %v, want one naming it", tc.field, err)
		}
	}
}

// The per-packet path allocates nothing once netstack's pools are warm:
// Inject and the inbound queue, WritePackets and Read.
func TestLinkAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	l, err := NewLink("test", 1500, LinkConfig{InQueue: 4, OutQueue: 4, Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	in := [][]byte{synPacket([4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 1}, 1234, 80)}
	dst := make([]*stack.PacketBuffer, 1)
	if allocs := testing.AllocsPerRun(1000, func() {
		l.Inject(in)
		l.in.pop(dst)
		dst[0].DecRef()
	}); allocs != 0 {
		t.Errorf("Inject allocates %v per packet", allocs)
	}
	var list stack.PacketBufferList
	list.PushBack(stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(in[0])}))
	defer list.DecRef()
	bufs, sizes := [][]byte{make([]byte, 1514)}, []int{0}
	if allocs := testing.AllocsPerRun(1000, func() {
		l.WritePackets(list)
		l.Read(bufs, sizes, 14)
	}); allocs != 0 {
		t.Errorf("WritePackets and Read allocate %v per packet", allocs)
	}
}
