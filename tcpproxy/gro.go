package tcpproxy

import (
	"bytes"
	"encoding/binary"
	"math/bits"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Receive offload done by the link (LinkConfig.GRO). Before the inbound
// goroutine hands a pass's packets to netstack it merges runs of
// consecutive TCP segments of one connection into one larger segment, so
// netstack's receive path (IP, demux, TCP) runs once per run instead of
// once per segment, as Linux's GRO does.
//
// A segment joins the run before it only if the merged packet says
// exactly what the segments said: IPv4 without options and not a
// fragment, or IPv6 without extension headers; TCP flags ACK (PSH
// allowed, and it ends the run); payload; the same addresses, ports,
// IPv4 TOS, TTL and flags or IPv6 traffic class, flow label and hop
// limit, acknowledgment number, window, and options (timestamps
// included), byte for byte; its sequence number right after the run's
// data; no more payload than the run's first segment (a shorter one ends
// the run); and the merged packet within 64 KiB. ECN marks, FIN, SYN,
// RST, URG, CWR and ECE all keep a segment apart.
//
// Every segment's IP header checksum and TCP checksum are verified first
// (a segment that fails goes to netstack alone, unchanged, and netstack
// drops and counts it as before), and the merged packet gets a correct
// IPv4 header checksum and a TCP checksum made from its segments'
// verified payload sums; netstack verifies it again in full, since the
// link claims no RX checksum offload.
//
// gVisor's own GRO (pkg/tcpip/stack/gro, used by fdbased) does not work
// on such a link at this gVisor version: it updates a merged packet's IP
// length without the IPv4 header checksum or the TCP checksum, relying
// on the NIC's RXChecksumValidated, which the NIC resets from the link's
// capabilities (stack.CapabilityRXChecksumOffload) on every delivery, so
// without that capability every merged packet fails netstack's checks,
// and with it no packet the link delivers (ICMP, fragments) would be
// checked at all.

// groMax is the largest merged IP packet.
const groMax = 0xffff

// groSeg is a parsed inbound segment that may join or start a run.
type groSeg struct {
	b      []byte // the packet (contiguous)
	ipLen  int
	tcpLen int
	payLen int
	paySum uint16 // checksum of the payload alone
	v6     bool
}

// groParse reports whether b is a segment that may be merged, with its
// checksums verified.
func groParse(b []byte, s *groSeg) bool {
	if len(b) < header.IPv4MinimumSize {
		return false
	}
	var src, dst []byte
	switch b[0] >> 4 {
	case 4:
		ip := header.IPv4(b)
		if ip.HeaderLength() != header.IPv4MinimumSize || int(ip.TotalLength()) != len(b) ||
			ip.Protocol() != uint8(header.TCPProtocolNumber) ||
			ip.FragmentOffset() != 0 || ip.Flags()&header.IPv4FlagMoreFragments != 0 ||
			checksum.Checksum(b[:header.IPv4MinimumSize], 0) != 0xffff {
			return false
		}
		s.ipLen, s.v6 = header.IPv4MinimumSize, false
		src, dst = b[12:16], b[16:20]
	case 6:
		if len(b) < header.IPv6MinimumSize {
			return false
		}
		ip := header.IPv6(b)
		if ip.NextHeader() != uint8(header.TCPProtocolNumber) || int(ip.PayloadLength()) != len(b)-header.IPv6MinimumSize {
			return false
		}
		s.ipLen, s.v6 = header.IPv6MinimumSize, true
		src, dst = b[8:24], b[24:40]
	default:
		return false
	}
	seg := b[s.ipLen:]
	if len(seg) < header.TCPMinimumSize {
		return false
	}
	tcp := header.TCP(seg)
	s.tcpLen = int(tcp.DataOffset())
	if s.tcpLen < header.TCPMinimumSize || s.tcpLen > len(seg) {
		return false
	}
	if f := tcp.Flags(); f != header.TCPFlagAck && f != header.TCPFlagAck|header.TCPFlagPsh {
		return false
	}
	s.payLen = len(seg) - s.tcpLen
	if s.payLen == 0 {
		return false
	}
	s.b = b
	s.paySum = checksum.Checksum(seg[s.tcpLen:], 0)
	xsum := pseudoSum(src, dst, len(seg))
	xsum = checksum.Checksum(seg[:s.tcpLen], xsum)
	return checksum.Combine(xsum, s.paySum) == 0xffff
}

// pseudoSum is the TCP pseudo header's checksum.
func pseudoSum(src, dst []byte, tcpLen int) uint16 {
	xsum := checksum.Checksum(src, 0)
	xsum = checksum.Checksum(dst, xsum)
	xsum = checksum.Combine(xsum, uint16(header.TCPProtocolNumber))
	return checksum.Combine(xsum, uint16(tcpLen))
}

// groRun is the run of segments being merged into its first packet.
type groRun struct {
	pkt    *stack.PacketBuffer // the first segment's packet, holding the run; nil: none
	hdr    []byte              // its IP and TCP headers (writable, in its first view)
	ipLen  int
	v6     bool
	segLen int    // the first segment's payload
	payLen int    // the run's payload
	paySum uint16 // the run's payload checksum
	next   uint32 // the sequence number that may join
	n      int    // segments in the run
	psh    bool
	ended  bool // nothing more may join
}

// start makes s (in pkt) a new run.
func (r *groRun) start(pkt *stack.PacketBuffer, s *groSeg) {
	tcp := header.TCP(s.b[s.ipLen:])
	*r = groRun{
		pkt: pkt, hdr: s.b[:s.ipLen+s.tcpLen], ipLen: s.ipLen, v6: s.v6,
		segLen: s.payLen, payLen: s.payLen, paySum: s.paySum,
		next: tcp.SequenceNumber() + uint32(s.payLen), n: 1,
		psh: tcp.Flags()&header.TCPFlagPsh != 0,
	}
	r.ended = r.psh
}

// fits reports whether s may join the run.
func (r *groRun) fits(s *groSeg) bool {
	if r.pkt == nil || r.ended || s.v6 != r.v6 || s.ipLen+s.tcpLen != len(r.hdr) ||
		s.payLen > r.segLen || len(r.hdr)+r.payLen+s.payLen > groMax {
		return false
	}
	a, b := r.hdr, s.b
	if r.v6 {
		// Version, traffic class, flow label; next header and hop
		// limit; addresses.
		if !bytes.Equal(a[0:4], b[0:4]) || !bytes.Equal(a[6:40], b[6:40]) {
			return false
		}
	} else {
		// Version, IHL, TOS; ID and length may differ; flags and
		// fragment offset, TTL, protocol; the header checksum differs;
		// addresses.
		if !bytes.Equal(a[0:2], b[0:2]) || !bytes.Equal(a[6:10], b[6:10]) || !bytes.Equal(a[12:20], b[12:20]) {
			return false
		}
	}
	ta, tb := header.TCP(a[r.ipLen:]), header.TCP(b[s.ipLen:])
	// Ports; sequence number; acknowledgment number; data offset (flags
	// were checked by groParse); window; options. The checksum and the
	// urgent pointer (URG is never set here) are not compared.
	return bytes.Equal(ta[0:4], tb[0:4]) && tb.SequenceNumber() == r.next &&
		bytes.Equal(ta[8:13], tb[8:13]) && bytes.Equal(ta[14:16], tb[14:16]) &&
		bytes.Equal(ta[header.TCPMinimumSize:], tb[header.TCPMinimumSize:len(ta)])
}

// add merges s (in pkt, whose reference it takes) into the run.
func (r *groRun) add(pkt *stack.PacketBuffer, s *groSeg) {
	sum := s.paySum
	if r.payLen%2 == 1 {
		sum = bits.RotateLeft16(sum, 8) // its bytes sit at odd offsets of the run
	}
	r.paySum = checksum.Combine(r.paySum, sum)
	r.payLen += s.payLen
	r.next += uint32(s.payLen)
	r.n++
	if header.TCP(s.b[s.ipLen:]).Flags()&header.TCPFlagPsh != 0 {
		r.psh, r.ended = true, true
	}
	if s.payLen < r.segLen {
		r.ended = true
	}
	pkt.Data().Consume(s.ipLen + s.tcpLen)
	r.pkt.Data().Merge(pkt.Data())
	pkt.DecRef()
}

// finish writes the merged packet's headers and returns it (and the
// reference to it), leaving no run.
func (r *groRun) finish() *stack.PacketBuffer {
	pkt := r.pkt
	if r.n > 1 {
		h := r.hdr
		tcpLen := len(h) - r.ipLen + r.payLen
		if r.v6 {
			binary.BigEndian.PutUint16(h[4:], uint16(tcpLen))
		} else {
			ip := header.IPv4(h)
			ip.SetTotalLength(uint16(len(h) + r.payLen))
			ip.SetChecksum(0)
			ip.SetChecksum(^checksum.Checksum(h[:r.ipLen], 0))
		}
		var src, dst []byte
		if r.v6 {
			src, dst = h[8:24], h[24:40]
		} else {
			src, dst = h[12:16], h[16:20]
		}
		tcp := header.TCP(h[r.ipLen:])
		if r.psh {
			tcp.SetFlags(uint8(header.TCPFlagAck | header.TCPFlagPsh))
		}
		tcp.SetChecksum(0)
		xsum := checksum.Checksum(tcp[:tcp.DataOffset()], pseudoSum(src, dst, tcpLen))
		tcp.SetChecksum(^checksum.Combine(xsum, r.paySum))
	}
	*r = groRun{}
	return pkt
}
