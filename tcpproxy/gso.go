package tcpproxy

import (
	"errors"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Segmentation offload done by the link (LinkConfig.GSOMaxSize). The link
// tells netstack it offloads TCP segmentation (stack.HostGSOSupported):
// netstack's TCP sender then builds segments of up to GSOMaxSize bytes and
// writes each as one packet, with the MSS to cut it at in
// pkt.GSOOptions.MSS and, since the offload includes the checksum
// (GSOOptions.NeedsCsum), only the pseudo-header sum in the TCP checksum
// field; its IP header's length is the whole packet's. Read cuts such a
// packet into MTU-sized IP packets (gsoHeader.finish): each segment gets
// the IP and TCP headers of the original with its own IP length (IPv4:
// the ID incremented per segment and the header checksum recomputed), the
// sequence number advanced by the payload before it, CWR only on the
// first segment, FIN and PSH only on the last, and a TCP checksum computed
// in full over the segment (AF_XDP fills in none). Every packet netstack
// marks with a TCP GSO type goes this way, including one that fits in a
// single segment (a pure ACK): its checksum field holds only the pseudo
// header's sum too.
//
// gVisor's own software GSO (stack.GVisorGSOSupported) does not help
// here: at this gVisor version its TCP sender cuts the large segment into
// MSS-sized packets itself (tcp.sendTCPBatch) and writes each through the
// IP layer with a full checksum, so the link never sees a large packet.

// maxGSOHeader is the largest IP and TCP header the segmenter takes:
// IPv4 with options and TCP with options (IPv6 without extension headers
// is smaller).
const maxGSOHeader = header.IPv4MaximumHeaderSize + header.TCPHeaderMaximumSize

// errGSO is wrapped by every reason the segmenter refuses a packet.
var errGSO = errors.New("gso packet")

// gsoHeader is a GSO packet's IP and TCP headers: the template its
// segments' headers are made from.
type gsoHeader struct {
	b      [maxGSOHeader]byte
	ipLen  int // IP header length
	hdrLen int // IP and TCP header length
	v6     bool
	mss    int // payload bytes per segment
	payLen int // the whole packet's payload
	n      int // segments
	seq    uint32
	id     uint16
	flags  header.TCPFlags
}

// gsoSegments is how many segments a payload of payLen bytes makes at mss
// bytes each: at least one (a packet without payload is one segment).
func gsoSegments(payLen, mss int) int {
	if payLen <= mss {
		return 1
	}
	return (payLen + mss - 1) / mss
}

// parse takes hdr, a packet's IP and TCP headers (nothing before or
// after), its payload length and the MSS to cut at. It accepts IPv4 (with
// options, not a fragment) and IPv6 without extension headers, carrying
// TCP whose data offset covers exactly the rest of hdr.
func (h *gsoHeader) parse(hdr []byte, payLen, mss int) error {
	if mss < 1 || payLen < 0 {
		return errGSO
	}
	if len(hdr) < header.IPv4MinimumSize || len(hdr) > maxGSOHeader {
		return errGSO
	}
	switch hdr[0] >> 4 {
	case 4:
		ip := header.IPv4(hdr)
		h.ipLen = int(ip.HeaderLength())
		if h.ipLen < header.IPv4MinimumSize || h.ipLen > len(hdr) ||
			ip.Protocol() != uint8(header.TCPProtocolNumber) ||
			ip.FragmentOffset() != 0 || ip.Flags()&header.IPv4FlagMoreFragments != 0 {
			return errGSO
		}
		h.v6 = false
		h.id = ip.ID()
	case 6:
		if len(hdr) < header.IPv6MinimumSize || header.IPv6(hdr).NextHeader() != uint8(header.TCPProtocolNumber) {
			return errGSO
		}
		h.ipLen = header.IPv6MinimumSize
		h.v6 = true
	default:
		return errGSO
	}
	tcpLen := len(hdr) - h.ipLen
	if tcpLen < header.TCPMinimumSize {
		return errGSO
	}
	tcp := header.TCP(hdr[h.ipLen:])
	if int(tcp.DataOffset()) != tcpLen {
		return errGSO
	}
	// One segment must fit an IP packet's length field.
	if h.ipLen+tcpLen+min(mss, payLen) > 0xffff {
		return errGSO
	}
	h.hdrLen = len(hdr)
	copy(h.b[:], hdr)
	h.mss, h.payLen = mss, payLen
	h.n = gsoSegments(payLen, mss)
	h.seq = tcp.SequenceNumber()
	h.flags = tcp.Flags()
	return nil
}

// segLen is segment i's payload length.
func (h *gsoHeader) segLen(i int) int {
	if i == h.n-1 {
		return h.payLen - i*h.mss
	}
	return h.mss
}

// finish writes segment i's headers into pkt, which holds the segment:
// room for the headers, then its payload (segLen(i) bytes), and nothing
// after.
func (h *gsoHeader) finish(pkt []byte, i int) {
	copy(pkt, h.b[:h.hdrLen])
	tcpLen := len(pkt) - h.ipLen
	var src, dst tcpip.Address
	if h.v6 {
		ip := header.IPv6(pkt)
		ip.SetPayloadLength(uint16(tcpLen))
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	} else {
		ip := header.IPv4(pkt)
		ip.SetTotalLength(uint16(len(pkt)))
		ip.SetID(h.id + uint16(i))
		ip.SetChecksum(0)
		ip.SetChecksum(^checksum.Checksum(pkt[:h.ipLen], 0))
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	}
	tcp := header.TCP(pkt[h.ipLen:])
	tcp.SetSequenceNumber(h.seq + uint32(i*h.mss))
	flags := h.flags
	if i != 0 {
		flags &^= header.TCPFlagCwr
	}
	if i != h.n-1 {
		flags &^= header.TCPFlagFin | header.TCPFlagPsh
	}
	tcp.SetFlags(uint8(flags))
	tcp.SetChecksum(0)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen))
	tcp.SetChecksum(^checksum.Checksum(tcp, xsum))
}

// isGSO reports whether pkt is one the link segments (and checksums).
func isGSO(pkt *stack.PacketBuffer) bool {
	t := pkt.GSOOptions.Type
	return t == stack.GSOTCPv4 || t == stack.GSOTCPv6
}

// gsoMSS is the MSS a GSO packet is cut at on a link of the given MTU:
// netstack's, or less if the segments would not fit the MTU (an MTU
// lowered after the connection chose its MSS). 0 if nothing fits.
func gsoMSS(pkt *stack.PacketBuffer, mtu uint32) int {
	return max(0, min(int(pkt.GSOOptions.MSS), int(mtu)-pkt.HeaderSize()))
}

// framesOf is how many frames pkt becomes at mss: its segments if it is a
// GSO packet, else one. A GSO packet that cannot be cut (mss 0) is one,
// which Read drops as OutMalformed.
func framesOf(pkt *stack.PacketBuffer, mss int) int {
	if !isGSO(pkt) || mss < 1 {
		return 1
	}
	return gsoSegments(pkt.Data().Size(), mss)
}

// viewCursor walks a packet's bytes view by view.
type viewCursor struct {
	v   *buffer.View
	off int // into v.AsSlice()
}

// start points c at byte skip of the view list.
func (c *viewCursor) start(vl buffer.ViewList, skip int) {
	c.v, c.off = vl.Front(), skip
	c.settle()
}

// settle moves past exhausted views.
func (c *viewCursor) settle() {
	for c.v != nil && c.off >= c.v.Size() {
		c.off -= c.v.Size()
		c.v = c.v.Next()
	}
}

// read copies len(dst) bytes (or what is left) into dst and advances; it
// returns how many it copied.
func (c *viewCursor) read(dst []byte) int {
	n := 0
	for n < len(dst) && c.v != nil {
		k := copy(dst[n:], c.v.AsSlice()[c.off:])
		n += k
		c.off += k
		c.settle()
	}
	return n
}

// skip advances n bytes (or what is left).
func (c *viewCursor) skip(n int) {
	for n > 0 && c.v != nil {
		k := min(n, c.v.Size()-c.off)
		n -= k
		c.off += k
		c.settle()
	}
}

// gsoReader is the GSO packet Read is cutting into segments.
type gsoReader struct {
	pkt  *stack.PacketBuffer // nil: none
	h    gsoHeader
	cur  viewCursor // at the next segment's payload
	next int        // the next segment
}

// begin takes pkt (and the reference to it) for cutting. It returns false,
// releasing pkt, if the segmenter cannot take its headers.
func (r *gsoReader) begin(pkt *stack.PacketBuffer) bool {
	hdrLen := pkt.HeaderSize()
	if hdrLen > maxGSOHeader {
		pkt.DecRef()
		return false
	}
	vl, skip := pkt.AsViewList()
	r.cur.start(vl, skip)
	var hdr [maxGSOHeader]byte
	if r.cur.read(hdr[:hdrLen]) != hdrLen ||
		r.h.parse(hdr[:hdrLen], pkt.Data().Size(), int(pkt.GSOOptions.MSS)) != nil {
		pkt.DecRef()
		r.cur = viewCursor{}
		return false
	}
	r.pkt, r.next = pkt, 0
	return true
}

// left is how many segments of the current packet Read has not taken.
func (r *gsoReader) left() int {
	if r.pkt == nil {
		return 0
	}
	return r.h.n - r.next
}

// size is the next segment's length, headers included.
func (r *gsoReader) size() int { return r.h.hdrLen + r.h.segLen(r.next) }

// emit writes the next segment into dst (which holds size() bytes) and
// advances.
func (r *gsoReader) emit(dst []byte) {
	n := r.h.segLen(r.next)
	r.cur.read(dst[r.h.hdrLen : r.h.hdrLen+n])
	r.h.finish(dst[:r.h.hdrLen+n], r.next)
	r.advanced()
}

// drop skips the next segment.
func (r *gsoReader) drop() {
	r.cur.skip(r.h.segLen(r.next))
	r.advanced()
}

func (r *gsoReader) advanced() {
	r.next++
	if r.next == r.h.n {
		r.release()
	}
}

// release drops the current packet.
func (r *gsoReader) release() {
	if r.pkt != nil {
		r.pkt.DecRef()
	}
	r.pkt, r.cur, r.next = nil, viewCursor{}, 0
}
