package tcpproxy

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	gheader "gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
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

// A full inbound queue makes Inject take fewer packets and count the rest;
// nothing is dropped without a counter, and what was queued reaches
// netstack once the link is attached.
func TestLinkInjectBackpressure(t *testing.T) {
	l, err := NewLink("test", 1500, LinkConfig{InQueue: 4, OutQueue: 4, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	pkt := synPacket([4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 1}, 1234, 80)
	batch := [][]byte{{0x45, 0}, pkt, pkt, pkt, pkt, pkt, pkt}
	// Not attached: nothing drains the queue.
	if n := l.Inject(batch); n != 5 {
		t.Fatalf("Inject took %d, want 5 (1 malformed + 4 queued)", n)
	}
	if n := l.Inject(batch[5:]); n != 0 {
		t.Fatalf("Inject on a full queue took %d, want 0", n)
	}
	want := LinkCounters{InPackets: 4, InBytes: uint64(4 * len(pkt)), InFull: 2 + 2, InMalformed: 1}
	if diff := cmp.Diff(want, l.Counters()); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}

	// Attached: the queued packets reach netstack (which answers each
	// SYN to a closed port with a RST), and the queue takes more.
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	defer s.Destroy()
	if err := s.CreateNIC(1, l); err != nil {
		t.Fatal(err)
	}
	s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFrom4([4]byte{10, 0, 0, 1}).WithPrefix()}, stack.AddressProperties{})
	s.SetRouteTable([]tcpip.Route{{Destination: gheader.IPv4EmptySubnet, NIC: 1}})
	waitFor(t, "delivery", func() bool { return l.Counters().Delivered == 4 })
	if got := s.Stats().TCP.ChecksumErrors.Value(); got != 0 {
		t.Errorf("netstack checksum errors %d, want 0", got)
	}
	waitFor(t, "RSTs", func() bool { return l.Pending() == 4 })
	// The outbound queue (4) is now full: the next RSTs are refused and
	// counted, not lost silently.
	if n := l.Inject(batch[5:]); n != 2 {
		t.Fatalf("Inject after drain took %d, want 2", n)
	}
	waitFor(t, "delivery", func() bool { return l.Counters().Delivered == 6 })
	waitFor(t, "OutFull", func() bool { return l.Counters().OutFull == 2 })

	// Read: a buffer too small for a packet drops it, counted.
	small := [][]byte{make([]byte, 10)}
	sizes := make([]int, 4)
	if n := l.Read(small, sizes, 0); n != 0 {
		t.Errorf("Read into a 10-byte buffer = %d, want 0", n)
	}
	bufs := [][]byte{make([]byte, 1514), make([]byte, 1514), make([]byte, 1514), make([]byte, 1514)}
	n := l.Read(bufs, sizes, 14)
	if n != 3 {
		t.Fatalf("Read = %d, want 3", n)
	}
	for i := range n {
		got := bufs[i][14 : 14+sizes[i]]
		if sizes[i] != 40 || gheader.IPv4(got).Protocol() != uint8(tcp.ProtocolNumber) || !gheader.TCP(got[20:]).Flags().Contains(gheader.TCPFlagRst) {
			t.Errorf("packet %d: %x, want a 40-byte RST", i, got)
		}
	}
	c := l.Counters()
	if c.OutPackets != 4 || c.OutFull != 2 || c.OutTooBig != 1 || c.ReadPackets != 3 || c.ReadBytes != 120 {
		t.Errorf("out counters %+v", c)
	}

	// Close drops (and counts) what is still queued and all later input.
	l.Inject(batch[5:6])
	s.Destroy()
	c = l.Counters()
	if got := c.InClosed + c.Delivered; got != 7 {
		t.Errorf("after Close: delivered %d + dropped at close %d, want 7", c.Delivered, c.InClosed)
	}
	if n := l.Inject(batch[1:3]); n != 2 || l.Counters().InClosed != c.InClosed+2 {
		t.Errorf("Inject after Close took %d (counted %d), want both taken and counted", n, l.Counters().InClosed-c.InClosed)
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
