package dp

import (
	"samepath/dp/header"
	"samepath/dp/rewrite"
	"samepath/dp/xlat"
	"samepath/nat"
)

// Flows whose actual server is of the other IP family than the mobile
// are translated (R-TCP-3): stateful NAT64 (RFC 6146) for an IPv6 mobile
// and an IPv4 server, NAT46 the other way, on the same port-key NAT. The
// flow's record is made as for any flow, its key port on a gateway
// address of the server's family, so balancing, authorization, T7,
// accounting and the down path's source filtering are the same; only the
// rewrite differs. dp/xlat translates the headers (RFC 7915) with the
// addresses the record names (TranslateWith), then dp/rewrite sets the
// ports in the new family. The translated frame is built in the worker's
// own buffer and copied into the packet's frame (Packet.Room): one copy
// of the packet, measured in BENCHMARKS.md "xlat".
//
// A translation that needs more than one frame (an IPv4 packet with DF
// clear bigger than the lowest IPv6 MTU, which RFC 7915 section 4
// fragments: xlat.Fragmented46) leaves as its fragments: the first in
// the packet's own frame, the others queued (xlatQueue, preallocated)
// and sent by the worker as the pipeline's own frames (Originator) after
// the round's batches, in order, out of the same port. Without room for
// them all the packet is dropped whole as ReasonXlatFragFull. Every
// packet dp/xlat refuses is dropped as ReasonXlat, its outcome counted
// by the translator. The ICMP errors dp/xlat answers with itself (Packet
// Too Big, ...) are sent back where the packet came from.

// embedded4 returns the IPv4 address an IPv6 destination embeds under the
// translator's RFC 6052 prefix.
func (g *GW) embedded4(a nat.Addr16) (nat.Addr16, bool) {
	if a.Is4() {
		return a, false
	}
	p := g.xl.Pool6()
	if !p.IsValid() {
		return a, false
	}
	v4, ok := xlat.Extract(p, a)
	return nat.Addr16V4(v4), ok
}

// forwardXlat translates packet d to the other family with the addresses
// of to, sets its ports to to's, and sends it out of port out from MAC
// src to MAC dst; an answer of the translator's goes back toward the
// packet's sender. On a refusal the packet is dropped (pk.Out stays -1).
func (g *GW) forwardXlat(pk *Packet, d *header.Decoded, to *header.Tuple, dst, src nat.MAC, out int) {
	a := xlat.Addrs{Src: to.Src, Dst: to.Dst}
	in := g.cfg.Lan
	if out == g.cfg.Lan {
		in = g.cfg.Servers
	}
	if !g.translate(pk, d, &a, in) {
		return
	}
	b := pk.Room[:pk.Desc.Len]
	if v := header.Decode(b, &g.xd); v != header.OK || !rewrite.Flow(b, &g.xd, to) {
		pk.Drop = ReasonXlat
		return
	}
	e := header.Ethernet(b)
	e.SetDst(dst)
	e.SetSrc(src)
	pk.Out = out
	// The further fragments: only the first holds the transport header
	// (and the datagram's checksum, which Flow adjusted for the ports);
	// the others take the addresses the translator wrote and the MACs.
	r := &g.xres
	for i := 1; i < r.N; i++ {
		g.xq[g.xqIndex(out)].push(g.xout[r.Pkts[i].Off:r.Pkts[i].Off+r.Pkts[i].Len], dst, src)
	}
}

// translate runs dp/xlat on the packet and copies its one output frame
// into the packet's frame. It reports whether a translated frame is
// there. A refusal sets the drop reason; an answer of the translator's
// (RFC 7915 asks for some, e.g. Packet Too Big) also goes back out of
// in, the port the packet came by: the translator swapped its MACs.
func (g *GW) translate(pk *Packet, d *header.Decoded, a *xlat.Addrs, in int) bool {
	r := &g.xres
	o := g.xl.TranslateWith(pk.Data, d, a, g.xout, r)
	if r.N < 1 || r.Pkts[0].Len > len(pk.Room) || !(o.Translated() || o.Answered()) {
		pk.Drop = ReasonXlat // refused
		return false
	}
	if r.N > 1 {
		// Fragmented46: the fragments after the first wait in the
		// queue of the side the packet leaves by, all or none.
		q := &g.xq[g.xqIndex(g.otherSide(in))]
		fit := q.free() >= r.N-1
		for i := 1; i < r.N && fit; i++ {
			fit = r.Pkts[i].Len <= xlatSlotLen
		}
		if !fit {
			pk.Drop = ReasonXlatFragFull
			return false
		}
	}
	f := g.xout[r.Pkts[0].Off : r.Pkts[0].Off+r.Pkts[0].Len]
	copy(pk.Room, f)
	pk.Desc.Len = uint32(len(f))
	if o.Answered() {
		pk.Drop, pk.Out = ReasonXlat, in
		return false
	}
	return true
}

// errorXlat translates an ICMP error about a translated flow: outer
// addresses src -> dst and the quoted packet's addresses and ports q, all
// in the new family, then sends it out of port out from MAC smac to dmac.
func (g *GW) errorXlat(pk *Packet, d *header.Decoded, src, dst nat.Addr16, q *header.Tuple, dmac, smac nat.MAC, out int) {
	a := xlat.Addrs{Src: src, Dst: dst, QSrc: q.Src, QDst: q.Dst}
	in := g.cfg.Lan
	if out == g.cfg.Lan {
		in = g.cfg.Servers
	}
	if !g.translate(pk, d, &a, in) {
		return
	}
	b := pk.Room[:pk.Desc.Len]
	if v := header.Decode(b, &g.xd); v != header.OK || !rewrite.ICMPError(b, &g.xd, src, dst, q) {
		pk.Drop = ReasonXlat
		return
	}
	e := header.Ethernet(b)
	e.SetDst(dmac)
	e.SetSrc(smac)
	pk.Out = out
}

// source6 is the IPv6 source of an ICMP error that an IPv4 host (a
// router on the path) sent about a translated flow: its address under
// the RFC 6052 prefix, or the representative address without one.
func (g *GW) source6(v4, rep nat.Addr16) nat.Addr16 {
	if p := g.xl.Pool6(); p.IsValid() {
		return xlat.Embed(p, [4]byte(v4[12:]))
	}
	return rep
}

// XlatCounters returns the translator's outcome counters as of the
// worker's latest batch, and false without a translator. Any goroutine
// may call it.
func (g *GW) XlatCounters() (xlat.Counters, bool) {
	if g.xl == nil {
		return xlat.Counters{}, false
	}
	return g.xl.Published(), true
}

// XlatRuntime returns the translator's Runtime, through which its
// configuration changes while the worker runs (nil without one).
func (g *GW) XlatRuntime() *xlat.Runtime {
	if g.xl == nil {
		return nil
	}
	return g.xl.Runtime()
}

// otherSide is the port a translated packet that came in by in leaves by.
func (g *GW) otherSide(in int) int {
	if in == g.cfg.Lan {
		return g.cfg.Servers
	}
	return g.cfg.Lan
}

// xqIndex is the xlatQueue of port out: 0 toward the LBs, 1 toward the
// servers.
func (g *GW) xqIndex(out int) int {
	if out == g.cfg.Lan {
		return 0
	}
	return 1
}

// xlatSlots and xlatSlotLen size each side's fragment queue: a batch of
// 64 packets split in up to 4 fragments each, of up to 2048 bytes (the
// usual UMEM frame; a fragment is at most the lowest IPv6 MTU plus the
// link header). 512 KiB a side, allocated with the translator.
const (
	xlatSlots   = 256
	xlatSlotLen = 2048
)

// xlatQueue is a FIFO of translated frames waiting to be sent as the
// pipeline's own (Originate): fixed slots, no allocation per packet.
type xlatQueue struct {
	buf     []byte // xlatSlots slots of xlatSlotLen
	lens    []int
	head, n int
}

func newXlatQueue() xlatQueue {
	return xlatQueue{buf: make([]byte, xlatSlots*xlatSlotLen), lens: make([]int, xlatSlots)}
}

func (q *xlatQueue) free() int { return len(q.lens) - q.n }

// push appends frame f (at most xlatSlotLen, with room: the caller
// checked) with its MACs set.
func (q *xlatQueue) push(f []byte, dst, src nat.MAC) {
	i := (q.head + q.n) % len(q.lens)
	slot := q.buf[i*xlatSlotLen : (i+1)*xlatSlotLen]
	copy(slot, f)
	e := header.Ethernet(slot)
	e.SetDst(dst)
	e.SetSrc(src)
	q.lens[i] = len(f)
	q.n++
}

// pop writes the oldest frame into pk (as Originate does) and reports
// whether there was one.
func (q *xlatQueue) pop(pk *Packet, out int) bool {
	if q.n == 0 {
		return false
	}
	i := q.head
	q.head = (q.head + 1) % len(q.lens)
	q.n--
	f := q.buf[i*xlatSlotLen : i*xlatSlotLen+q.lens[i]]
	if len(f) > len(pk.Room) {
		pk.Drop = ReasonTooBig
		return true
	}
	pk.Desc.Len = uint32(copy(pk.Room, f))
	pk.Out = out
	return true
}

// Pending implements Originator: the queued fragments of translated
// packets and the terminator's frames for port out.
func (g *GW) Pending(out int) int {
	n := g.termPending(out)
	if g.xl != nil && (out == g.cfg.Lan || out == g.cfg.Servers) {
		n += g.xq[g.xqIndex(out)].n
	}
	return n
}

// Originate implements Originator: first the queued fragments (they
// follow their first fragment, sent in the round's batch), then the
// terminator's frames.
func (g *GW) Originate(out int, pkts []Packet) int {
	n := 0
	if g.xl != nil && (out == g.cfg.Lan || out == g.cfg.Servers) {
		q := &g.xq[g.xqIndex(out)]
		for n < len(pkts) && q.pop(&pkts[n], out) {
			n++
		}
	}
	if n == len(pkts) {
		return n
	}
	return n + g.termOriginate(out, pkts[n:])
}
