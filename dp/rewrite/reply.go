package rewrite

import (
	"encoding/binary"

	"samepath/dp/header"
)

// The gateway answers for the server (proxy replies) when it refuses a
// packet: a TCP RST (RFC 9293 section 3.10.7.1) or an ICMP destination
// unreachable. Replies are built into out, which may be the received
// frame's own buffer only if it does not overlap the input (build into a
// scratch buffer and copy when in doubt). The reply goes back where the
// packet came from: Ethernet addresses swapped, VLAN tag kept, source
// address = the packet's destination (the representative address), so
// the mobile's stack accepts it.

// replyTTL is the TTL/hop limit of generated packets.
const replyTTL = 64

// ethReply writes the Ethernet header (and VLAN tag) of a reply to b into
// out and returns the L3 offset.
func ethReply(b []byte, p *header.Parsed, out []byte) int {
	copy(out[0:6], b[6:12])
	copy(out[6:12], b[0:6])
	copy(out[12:p.L3Off], b[12:p.L3Off])
	return p.L3Off
}

// ipReply writes an IP header from the packet's destination to its source
// for a payload of plen bytes of protocol proto, and returns its length.
func ipReply(b []byte, p *header.Parsed, out []byte, proto uint8, plen int) int {
	if p.IPVersion == 4 {
		in := p.IPv4(b)
		h := header.IPv4(out[:header.IPv4MinLen])
		h.SetVersionIHL(header.IPv4MinLen)
		h.SetTOS(0)
		h.SetTotalLen(uint16(header.IPv4MinLen + plen))
		h.SetID(0)
		h.SetFlagsFragOffset(header.IPv4FlagDF)
		h.SetTTL(replyTTL)
		h.SetProtocol(proto)
		h.SetSrc(in.Dst())
		h.SetDst(in.Src())
		h.SetChecksum(0)
		h.SetChecksum(h.CalculateChecksum())
		return header.IPv4MinLen
	}
	in := p.IPv6(b)
	h := header.IPv6(out[:header.IPv6Len])
	h.SetVersionClassFlow(0, 0)
	h.SetPayloadLen(uint16(plen))
	h.SetNextHeader(proto)
	h.SetHopLimit(replyTTL)
	h.SetSrc(in.Dst())
	h.SetDst(in.Src())
	return header.IPv6Len
}

// pseudo returns the pseudo-header sum of a reply whose IP header is ip.
func pseudo(version uint8, ip []byte, proto uint8, n int) uint32 {
	if version == 4 {
		return header.PseudoHeaderChecksum(proto, ip[12:16], ip[16:20], uint16(n))
	}
	return header.PseudoHeaderChecksum(proto, ip[8:24], ip[24:40], uint16(n))
}

// TCPReset builds into out the RST that answers TCP segment b, and
// returns its length, or 0 if b is not a TCP segment with a header, is
// itself a RST, or out is too small. Per RFC 9293: if the segment has
// ACK, the RST carries seq = its ack; otherwise seq 0, ACK set and
// ack = its seq + segment length (SYN and FIN count one each).
func TCPReset(b []byte, p *header.Parsed, out []byte) int {
	if p.Proto != header.ProtoTCP || p.L4Off == 0 {
		return 0
	}
	in := p.TCP(b)
	if in.Flags()&header.FlagRST != 0 {
		return 0
	}
	ipLen := header.IPv4MinLen
	if p.IPVersion == 6 {
		ipLen = header.IPv6Len
	}
	n := p.L3Off + ipLen + header.TCPMinLen
	if len(out) < n {
		return 0
	}
	off := ethReply(b, p, out)
	off += ipReply(b, p, out[off:], header.ProtoTCP, header.TCPMinLen)
	t := header.TCP(out[off : off+header.TCPMinLen])
	clear(t)
	t.SetSrcPort(in.DstPort())
	t.SetDstPort(in.SrcPort())
	t[12] = 5 << 4
	if in.Flags()&header.FlagACK != 0 {
		t.SetSeq(in.Ack())
		t.SetFlags(header.FlagRST)
	} else {
		seglen := uint32(len(in.Payload()))
		if in.Flags()&header.FlagSYN != 0 {
			seglen++
		}
		if in.Flags()&header.FlagFIN != 0 {
			seglen++
		}
		t.SetAck(in.Seq() + seglen)
		t.SetFlags(header.FlagRST | header.FlagACK)
	}
	sum := pseudo(p.IPVersion, out[p.L3Off:off], header.ProtoTCP, header.TCPMinLen)
	binary.BigEndian.PutUint16(t[16:], header.Fold(header.Checksum(t, sum)))
	return n
}

// Unreachable builds into out an ICMP destination unreachable with code
// (ICMPv4: e.g. header.ICMPv4AdminProhibited; ICMPv6: e.g.
// header.ICMPv6AdminProhibited) quoting as much of packet b as keeps the
// reply within 576 bytes (IPv4, RFC 1812) or 1280 bytes (IPv6, RFC 4443),
// and returns its length, or 0 if out is too small or b is an ICMP error
// itself (never answer an error with an error).
func Unreachable(b []byte, p *header.Parsed, out []byte, code uint8) int {
	if p.IsICMPError(b) {
		return 0
	}
	quote := p.IP(b)
	limit, ipLen, proto, typ := 576, header.IPv4MinLen, uint8(header.ProtoICMPv4), uint8(header.ICMPv4DstUnreachable)
	if p.IPVersion == 6 {
		limit, ipLen, proto, typ = 1280, header.IPv6Len, header.ProtoICMPv6, header.ICMPv6DstUnreachable
	}
	if max := limit - ipLen - header.ICMPMinLen; len(quote) > max {
		quote = quote[:max]
	}
	plen := header.ICMPMinLen + len(quote)
	n := p.L3Off + ipLen + plen
	if len(out) < n {
		return 0
	}
	off := ethReply(b, p, out)
	off += ipReply(b, p, out[off:], proto, plen)
	m := out[off : off+plen]
	m[0], m[1] = typ, code
	clear(m[2:8])
	copy(m[8:], quote)
	var sum uint32
	if p.IPVersion == 6 {
		sum = pseudo(6, out[p.L3Off:off], proto, plen)
	}
	binary.BigEndian.PutUint16(m[2:], header.Fold(header.Checksum(m, sum)))
	return n
}
