package tcpproxy

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// LinkConfig sizes one side's link endpoint.
type LinkConfig struct {
	// InQueue is how many inbound packets may wait for netstack. Inject
	// accepts no more than fit (backpressure): the caller keeps the rest.
	InQueue int
	// OutQueue is how many packets netstack may have waiting for Read.
	// Netstack's writes beyond it are refused and counted as OutFull
	// (TCP retransmits them, like a full NIC queue). It counts frames
	// (IP packets of at most the MTU): a GSO packet counts as the
	// segments it becomes, and one larger than the whole queue is taken
	// only into an empty queue.
	OutQueue int
	// Batch is how many inbound packets the link's goroutine hands to
	// netstack per pass.
	Batch int
	// GSOMaxSize, if not 0, is the largest TCP packet netstack may write
	// for the link to cut into MTU-sized segments itself (segmentation
	// offload done by the link, gso.go); 0: netstack writes only
	// MTU-sized packets. 4096 to 65536.
	GSOMaxSize uint32
	// GRO merges runs of consecutive inbound TCP segments of one
	// connection within a pass into one segment for netstack (receive
	// offload done by the link, gro.go).
	GRO bool
}

// DefaultLinkConfig holds 4096 packets each way (about 6 MB of 1500-byte
// frames at most), delivers 64 per pass with GRO and takes GSO packets of
// up to 64 KiB.
func DefaultLinkConfig() LinkConfig {
	return LinkConfig{InQueue: 4096, OutQueue: 4096, Batch: 64, GSOMaxSize: stack.GVisorGSOMaxSize, GRO: true}
}

// minGSOMaxSize is the smallest GSOMaxSize: netstack's TCP sender sizes
// its segments as GSOMaxSize less the largest headers (160 bytes) in
// unsigned arithmetic, so a smaller one would wrap around.
const minGSOMaxSize = 4096

// Validate reports the first unusable field by name.
func (c LinkConfig) Validate() error {
	switch {
	case c.InQueue < 1:
		return fmt.Errorf("link in_queue %d: %w", c.InQueue, ErrConfig)
	case c.OutQueue < 1:
		return fmt.Errorf("link out_queue %d: %w", c.OutQueue, ErrConfig)
	case c.Batch < 1:
		return fmt.Errorf("link batch %d: %w", c.Batch, ErrConfig)
	case c.GSOMaxSize != 0 && (c.GSOMaxSize < minGSOMaxSize || c.GSOMaxSize > stack.GVisorGSOMaxSize):
		return fmt.Errorf("link gso_max_size %d (0, or %d to %d): %w", c.GSOMaxSize, minGSOMaxSize, stack.GVisorGSOMaxSize, ErrConfig)
	}
	return nil
}

// LinkCounters are one link's packet counts. Every packet that enters the
// link and does not leave it is in exactly one drop counter. The outbound
// counts are frames (IP packets of at most the MTU, as Read returns
// them): a GSO packet netstack writes counts as the segments it becomes,
// so OutPackets = ReadPackets + OutTooBig + OutMalformed + Pending, and
// after Close + OutClosed.
type LinkCounters struct {
	InPackets   uint64 // accepted by Inject into the inbound queue
	InBytes     uint64
	InFull      uint64 // refused by Inject because the inbound queue was full (left with the caller, not dropped)
	InMalformed uint64 // dropped by Inject: not an IPv4 or IPv6 packet
	InClosed    uint64 // dropped by Inject after Close
	Delivered   uint64 // handed from the inbound queue to netstack
	// GROMerged counts the delivered packets GRO merged into the
	// segment before them (netstack got Delivered - GROMerged packets).
	GROMerged  uint64
	OutPackets uint64 // written by netstack into the outbound queue
	OutFull    uint64 // dropped: netstack wrote while the outbound queue was full
	OutClosed  uint64 // dropped: netstack wrote after Close, or left in the queue at Close
	OutTooBig  uint64 // dropped by Read: the caller's buffer could not hold the packet
	// OutMalformed counts frames dropped because netstack wrote a GSO
	// packet the link cannot segment (not TCP over IPv4 or IPv6 without
	// extension headers, or no MSS): never expected.
	OutMalformed uint64
	ReadPackets  uint64 // copied out by Read
	ReadBytes    uint64
	// GSOPackets counts the GSO packets netstack wrote that the link cut
	// into more than one segment; GSOFrames the frames they became (part
	// of OutPackets).
	GSOPackets uint64
	GSOFrames  uint64
}

// Link is the link endpoint between the dataplane and one side's netstack.
// It carries bare IP packets (no link header): the dataplane strips the
// Ethernet header before Inject and writes one in front of what Read
// returns (Read's offset leaves room for it).
//
// Inject and Read may be called from any goroutine, concurrently. Inbound
// packets are copied into the link's bounded queue and handed to netstack by
// the link's own goroutine (routineInbound), started when netstack attaches
// the link and stopped when it detaches it, so a poller never runs TCP code.
// Outbound packets wait in a second bounded queue until Read copies them out.
//
// The link claims no checksum offload on receive: netstack verifies every
// received checksum. On send it claims TCP segmentation offload with the
// checksum (LinkConfig.GSOMaxSize, gso.go): netstack writes TCP segments
// larger than the MTU, and Read cuts them into MTU-sized packets and
// fills in their TCP checksums (AF_XDP frames carry real checksums and
// AF_XDP fills in none). Every other packet netstack checksums itself.
// What Read returns never exceeds the MTU.
type Link struct {
	name   string
	batch  int
	mtu    atomic.Uint32
	gsoMax uint32
	gro    bool

	in     pktQueue
	out    pktQueue
	inWake chan struct{}
	notify atomic.Pointer[func()]

	mu       sync.Mutex // guards stop
	stop     chan struct{}
	routines sync.WaitGroup // inbound goroutines started and not yet returned
	attached atomic.Bool

	rd  sync.Mutex // serializes Read and guards gso
	gso gsoReader  // the GSO packet Read is cutting

	ctr struct {
		inPackets, inBytes, inFull, inMalformed, inClosed, delivered atomic.Uint64
		groMerged                                                    atomic.Uint64
		outPackets, outFull, outClosed, outTooBig, outMalformed      atomic.Uint64
		readPackets, readBytes, gsoPackets, gsoFrames                atomic.Uint64
	}
}

var (
	_ stack.LinkEndpoint = (*Link)(nil)
	_ stack.GSOEndpoint  = (*Link)(nil)
)

// NewLink returns a detached link with the given MTU (the largest IP packet
// it carries).
func NewLink(name string, mtu uint32, cfg LinkConfig) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if mtu < header.IPv4MinimumSize+header.TCPMinimumSize+1 {
		return nil, fmt.Errorf("link %s mtu %d: %w", name, mtu, ErrConfig)
	}
	l := &Link{
		name:   name,
		batch:  cfg.Batch,
		gsoMax: cfg.GSOMaxSize,
		gro:    cfg.GRO,
		inWake: make(chan struct{}, 1),
	}
	l.mtu.Store(mtu)
	l.in.init(cfg.InQueue)
	l.out.init(cfg.OutQueue)
	return l, nil
}

// Name is the name given to NewLink.
func (l *Link) Name() string { return l.name }

// Inject copies IP packets (each starting at its IP header) into the
// inbound queue. It returns how many packets from the front of pkts it
// consumed: queued, or dropped and counted (not IP, or the link is closed).
// It stops at the first packet that does not fit; the caller keeps pkts[n:]
// and may retry later or drop them under its own counter. The caller's
// buffers are free again when Inject returns.
func (l *Link) Inject(pkts [][]byte) int {
	q := &l.in
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		l.ctr.inClosed.Add(uint64(len(pkts)))
		return len(pkts)
	}
	n, queued, bytes, bad := 0, 0, 0, 0
	for ; n < len(pkts); n++ {
		b := pkts[n]
		proto, ok := ipProto(b)
		if !ok {
			bad++
			continue
		}
		if q.n == len(q.ring) {
			break
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
		pkt.NetworkProtocolNumber = proto
		q.pushLocked(pkt, 1)
		queued++
		bytes += len(b)
	}
	q.mu.Unlock()
	if bad > 0 {
		l.ctr.inMalformed.Add(uint64(bad))
	}
	if n < len(pkts) {
		l.ctr.inFull.Add(uint64(len(pkts) - n))
	}
	if queued > 0 {
		l.ctr.inPackets.Add(uint64(queued))
		l.ctr.inBytes.Add(uint64(bytes))
		select {
		case l.inWake <- struct{}{}:
		default:
		}
	}
	return n
}

// ipProto tells an IPv4 or IPv6 packet by its version nibble. Netstack
// checks everything else (lengths, header checksum) and counts what fails.
func ipProto(b []byte) (tcpip.NetworkProtocolNumber, bool) {
	if len(b) < header.IPv4MinimumSize {
		return 0, false
	}
	switch b[0] >> 4 {
	case 4:
		return header.IPv4ProtocolNumber, true
	case 6:
		if len(b) < header.IPv6MinimumSize {
			return 0, false
		}
		return header.IPv6ProtocolNumber, true
	}
	return 0, false
}

// Read copies up to len(bufs) outbound frames, each into bufs[i][offset:],
// and sets sizes[i] to the frame's length (not counting offset). It returns
// how many it copied and never blocks. A GSO packet becomes several frames
// (its segments, each an IP packet of at most the MTU); Read stops
// between two of them when bufs run out, and the next Read goes on with
// the rest. A frame longer than len(bufs[i])-offset is dropped and
// counted as OutTooBig (it still counts towards the len(bufs) frames one
// call takes); give buffers of at least offset+MTU bytes. Read does not
// allocate.
func (l *Link) Read(bufs [][]byte, sizes []int, offset int) int {
	l.rd.Lock()
	defer l.rd.Unlock()
	g := &l.gso
	n, popped, frames, tooBig, bad, bytes := 0, 0, 0, 0, 0, 0
	var one [1]*stack.PacketBuffer
	for taken := 0; taken < len(bufs) && n < len(sizes); {
		if g.left() == 0 {
			if l.out.pop(one[:]) == 0 {
				break
			}
			popped++
			pkt := one[0]
			if isGSO(pkt) {
				k := framesOf(pkt, int(pkt.GSOOptions.MSS)) // the MSS WritePackets chose
				if !g.begin(pkt) {
					bad += k
					frames += k
				}
				continue
			}
			taken++
			frames++
			size := pkt.Size()
			dst := bufs[n]
			if offset < 0 || offset > len(dst) || size > len(dst)-offset {
				pkt.DecRef()
				tooBig++
				continue
			}
			copyPacket(dst[offset:], pkt)
			pkt.DecRef()
			sizes[n] = size
			bytes += size
			n++
			continue
		}
		taken++
		frames++
		size := g.size()
		dst := bufs[n]
		if offset < 0 || offset > len(dst) || size > len(dst)-offset {
			g.drop()
			tooBig++
			continue
		}
		g.emit(dst[offset : offset+size])
		sizes[n] = size
		bytes += size
		n++
	}
	if frames > popped {
		l.out.took(frames - popped) // pop took one per packet
	}
	if tooBig > 0 {
		l.ctr.outTooBig.Add(uint64(tooBig))
	}
	if bad > 0 {
		l.ctr.outMalformed.Add(uint64(bad))
	}
	if n > 0 {
		l.ctr.readPackets.Add(uint64(n))
		l.ctr.readBytes.Add(uint64(bytes))
	}
	return n
}

// copyPacket copies pkt's bytes (headers and payload) to dst, which must
// hold pkt.Size() bytes, without allocating.
func copyPacket(dst []byte, pkt *stack.PacketBuffer) {
	vl, skip := pkt.AsViewList()
	for v := vl.Front(); v != nil; v = v.Next() {
		s := v.AsSlice()
		if skip >= len(s) {
			skip -= len(s)
			continue
		}
		s = s[skip:]
		skip = 0
		dst = dst[copy(dst, s):]
	}
}

// Pending is how many outbound frames wait for Read (a GSO packet's
// segments counted one by one).
func (l *Link) Pending() int { return l.out.len() }

// SetNotify sets a function called (on netstack's goroutine, so it must not
// block or call back into netstack) whenever the outbound queue goes from
// empty to not empty: the dataplane's poller uses it to wake up and Read.
// nil removes it.
func (l *Link) SetNotify(f func()) {
	if f == nil {
		l.notify.Store(nil)
		return
	}
	l.notify.Store(&f)
}

// Counters returns a snapshot of the link's counters.
func (l *Link) Counters() LinkCounters {
	c := &l.ctr
	return LinkCounters{
		InPackets: c.inPackets.Load(), InBytes: c.inBytes.Load(), InFull: c.inFull.Load(),
		InMalformed: c.inMalformed.Load(), InClosed: c.inClosed.Load(), Delivered: c.delivered.Load(),
		GROMerged:  c.groMerged.Load(),
		OutPackets: c.outPackets.Load(), OutFull: c.outFull.Load(), OutClosed: c.outClosed.Load(),
		OutTooBig: c.outTooBig.Load(), OutMalformed: c.outMalformed.Load(),
		ReadPackets: c.readPackets.Load(), ReadBytes: c.readBytes.Load(),
		GSOPackets: c.gsoPackets.Load(), GSOFrames: c.gsoFrames.Load(),
	}
}

// WritePackets implements stack.LinkWriter: netstack's outbound packets.
// It queues as many as fit and counts the rest as OutFull (in frames),
// returning how many packets it queued; TCP recovers the rest as losses.
func (l *Link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	q := &l.out
	all := pkts.AsSlice()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		frames := 0
		for _, pkt := range all {
			frames += l.framesOf(pkt)
		}
		l.ctr.outClosed.Add(uint64(frames))
		return 0, &tcpip.ErrClosedForSend{}
	}
	wasEmpty := q.n == 0 // the ring, not frames: a GSO packet Read is cutting may hold frames
	mtu := l.mtu.Load()
	n, frames, gsoPkts, gsoFrames := 0, 0, 0, 0
	for _, pkt := range all {
		mss := 0
		if isGSO(pkt) {
			mss = gsoMSS(pkt, mtu)
		}
		k := framesOf(pkt, mss)
		if q.n == len(q.ring) || (q.frames > 0 && q.frames+k > len(q.ring)) {
			break
		}
		// Clone: netstack keeps (and releases) its own reference.
		c := pkt.Clone()
		if isGSO(c) {
			c.GSOOptions.MSS = uint16(mss)
		}
		q.pushLocked(c, k)
		n++
		frames += k
		if k > 1 {
			gsoPkts++
			gsoFrames += k
		}
	}
	q.mu.Unlock()
	l.ctr.outPackets.Add(uint64(frames))
	if gsoPkts > 0 {
		l.ctr.gsoPackets.Add(uint64(gsoPkts))
		l.ctr.gsoFrames.Add(uint64(gsoFrames))
	}
	if n < len(all) {
		rest := 0
		for _, pkt := range all[n:] {
			rest += l.framesOf(pkt)
		}
		l.ctr.outFull.Add(uint64(rest))
	}
	if n > 0 && wasEmpty {
		if f := l.notify.Load(); f != nil {
			(*f)()
		}
	}
	if n == 0 {
		return 0, &tcpip.ErrNoBufferSpace{}
	}
	return n, nil
}

// framesOf is how many frames pkt becomes on l now.
func (l *Link) framesOf(pkt *stack.PacketBuffer) int {
	if !isGSO(pkt) {
		return 1
	}
	return framesOf(pkt, gsoMSS(pkt, l.mtu.Load()))
}

// routineInbound hands queued inbound packets to netstack in batches until
// stop closes.
func (l *Link) routineInbound(d stack.NetworkDispatcher, stop <-chan struct{}) {
	defer l.routines.Done()
	batch := make([]*stack.PacketBuffer, l.batch)
	var run groRun
	for {
		select {
		case <-stop:
			return
		default:
		}
		n := l.in.pop(batch)
		if n == 0 {
			select {
			case <-l.inWake:
				continue
			case <-stop:
				return
			}
		}
		if l.gro {
			l.deliverGRO(d, batch[:n], &run)
		} else {
			for i := range n {
				d.DeliverNetworkPacket(batch[i].NetworkProtocolNumber, batch[i])
				batch[i].DecRef()
				batch[i] = nil
			}
		}
		l.ctr.delivered.Add(uint64(n))
	}
}

// deliverGRO hands pkts to netstack in order, merging runs of segments
// (gro.go), and releases them.
func (l *Link) deliverGRO(d stack.NetworkDispatcher, pkts []*stack.PacketBuffer, run *groRun) {
	merged := 0
	var s groSeg
	for i, pkt := range pkts {
		pkts[i] = nil
		b, ok := pkt.Data().PullUp(pkt.Data().Size())
		if ok && groParse(b, &s) {
			if run.fits(&s) {
				run.add(pkt, &s)
				continue
			}
			merged += flushRun(d, run)
			run.start(pkt, &s)
			continue
		}
		merged += flushRun(d, run)
		d.DeliverNetworkPacket(pkt.NetworkProtocolNumber, pkt)
		pkt.DecRef()
	}
	merged += flushRun(d, run)
	if merged > 0 {
		l.ctr.groMerged.Add(uint64(merged))
	}
}

// flushRun hands the run (if any) to netstack and returns how many
// segments it merged into its first.
func flushRun(d stack.NetworkDispatcher, run *groRun) int {
	if run.pkt == nil {
		return 0
	}
	merged := run.n - 1
	pkt := run.finish()
	d.DeliverNetworkPacket(pkt.NetworkProtocolNumber, pkt)
	pkt.DecRef()
	return merged
}

// Attach implements stack.NetworkLinkEndpoint. Attaching starts the
// inbound goroutine; detaching (nil) tells it to stop. Neither waits for it:
// netstack calls Attach holding its stack lock, which the goroutine may need
// to finish a packet. Close waits.
func (l *Link) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		l.stop = nil
	}
	l.attached.Store(d != nil)
	if d != nil {
		l.stop = make(chan struct{})
		l.routines.Add(1)
		go l.routineInbound(d, l.stop)
	}
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (l *Link) IsAttached() bool { return l.attached.Load() }

// Close implements stack.LinkEndpoint (netstack calls it when it removes
// the NIC, outside its locks): it stops the inbound goroutine, waits for it,
// and drops (and counts) what is still queued either way. Later Injects
// drop and count everything; later writes fail.
func (l *Link) Close() {
	l.Attach(nil)
	l.routines.Wait()
	if n := l.in.close(); n > 0 {
		l.ctr.inClosed.Add(uint64(n))
	}
	l.rd.Lock()
	if n := l.out.close(); n > 0 {
		l.ctr.outClosed.Add(uint64(n))
	}
	l.gso.release() // its frames were in the queue's count
	l.rd.Unlock()
}

// Wait implements stack.NetworkLinkEndpoint. Netstack calls it holding its
// stack lock, so it must not wait for the inbound goroutine; Close does.
func (*Link) Wait() {}

// MTU implements stack.NetworkLinkEndpoint.
func (l *Link) MTU() uint32 { return l.mtu.Load() }

// SetMTU implements stack.NetworkLinkEndpoint. It applies to connections
// made afterwards (their MSS is the route MTU less the TCP header).
func (l *Link) SetMTU(mtu uint32) { l.mtu.Store(mtu) }

// MaxHeaderLength implements stack.NetworkLinkEndpoint: no link header.
func (*Link) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.NetworkLinkEndpoint: none.
func (*Link) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.NetworkLinkEndpoint; a link without
// link addresses ignores it.
func (*Link) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.NetworkLinkEndpoint. None: no checksum
// offload either way (netstack checks every checksum it receives and fills
// every one it sends, except those of the GSO packets Read segments), no
// link address resolution (the dataplane owns Ethernet).
func (*Link) Capabilities() stack.LinkEndpointCapabilities { return 0 }

// SupportedGSO implements stack.GSOEndpoint: with GSOMaxSize set, TCP
// segmentation and its checksum are offloaded to the link (Read), the
// way netstack offloads them to a host kernel.
func (l *Link) SupportedGSO() stack.SupportedGSO {
	if l.gsoMax == 0 {
		return stack.GSONotSupported
	}
	return stack.HostGSOSupported
}

// GSOMaxSize implements stack.GSOEndpoint.
func (l *Link) GSOMaxSize() uint32 { return l.gsoMax }

// ARPHardwareType implements stack.NetworkLinkEndpoint.
func (*Link) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.NetworkLinkEndpoint: no link header.
func (*Link) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.NetworkLinkEndpoint: no link header.
func (*Link) ParseHeader(*stack.PacketBuffer) bool { return true }

// SetOnCloseAction implements stack.NetworkLinkEndpoint; the terminator
// closes its stacks itself.
func (*Link) SetOnCloseAction(func()) {}

// pktQueue is a bounded FIFO of packet buffers under a mutex, locked once
// per batch. frames counts the frames its packets become (framesOf) and
// those of a packet popped but not yet all read (took takes them off).
type pktQueue struct {
	mu     sync.Mutex
	ring   []*stack.PacketBuffer
	head   int
	n      int
	frames int
	closed bool
}

func (q *pktQueue) init(size int) { q.ring = make([]*stack.PacketBuffer, size) }

func (q *pktQueue) pushLocked(p *stack.PacketBuffer, frames int) {
	q.ring[(q.head+q.n)%len(q.ring)] = p
	q.n++
	q.frames += frames
}

// took takes n more frames read (or dropped) off the count than pop did.
func (q *pktQueue) took(n int) {
	q.mu.Lock()
	q.frames -= n
	q.mu.Unlock()
}

// pop moves up to len(dst) packets into dst and returns how many; it
// takes one frame per packet off the count.
func (q *pktQueue) pop(dst []*stack.PacketBuffer) int {
	q.mu.Lock()
	n := min(len(dst), q.n)
	q.frames -= n
	for i := range n {
		dst[i] = q.ring[q.head]
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
	}
	q.n -= n
	q.mu.Unlock()
	return n
}

// len is how many frames wait.
func (q *pktQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.frames
}

// close marks q closed, releases what it holds and returns how many
// frames it counted.
func (q *pktQueue) close() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	n := q.frames
	q.frames = 0
	for ; q.n > 0; q.n-- {
		q.ring[q.head].DecRef()
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
	}
	return n
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid tcpproxy config")
