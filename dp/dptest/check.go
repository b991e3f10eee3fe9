package dptest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"

	"samepath/dp"
	"samepath/dp/header"
)

// Golden is one golden-packet case (Katran style): a frame In arriving on
// port InPort must leave as Want on port WantPort, or be dropped with
// reason WantDrop (then Want is nil and WantPort is -1).
type Golden struct {
	Name     string
	In       []byte
	InPort   int
	Want     []byte
	WantPort int
	WantDrop dp.Reason
}

// ErrChecksum is wrapped by VerifyChecksums errors about a wrong checksum.
var ErrChecksum = header.ErrChecksum

// VerifyChecksums is header.VerifyChecksums: every checksum of frame
// recomputed in full.
func VerifyChecksums(frame []byte) error { return header.VerifyChecksums(frame) }

// Diff compares two frames layer by layer and names the first field that
// differs, as "layer.field: want X, got Y"; it returns "" when the frames
// are byte-identical. Use it in golden tests so a failure says "ipv4.ttl"
// rather than "byte 22".
func Diff(want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	var pw, pg header.Parsed
	vw, vg := header.Parse(want, &pw), header.Parse(got, &pg)
	if vw != header.OK || vg != header.OK {
		if d := diffRaw("frame", want, got); vw == vg {
			return fmt.Sprintf("%s (both frames fail to parse: %v)", d, vw)
		}
		return fmt.Sprintf("parse: want %v, got %v; %s", vw, vg, diffRaw("frame", want, got))
	}
	d := &differ{}
	ew, eg := pw.Ethernet(want), pg.Ethernet(got)
	d.mac("eth.dst", ew.Dst(), eg.Dst())
	d.mac("eth.src", ew.Src(), eg.Src())
	num(d, "eth.type", ew.Type(), eg.Type())
	d.flag("vlan.present", pw.HasVLAN, pg.HasVLAN)
	num(d, "vlan.tci", pw.VLANTCI, pg.VLANTCI)
	num(d, "eth.inner_type", pw.EtherType, pg.EtherType)
	if d.out != "" {
		return d.out
	}
	switch {
	case pw.IPVersion != 0:
		d.l3("", want[pw.L3Off:pw.IPEnd], got[pg.L3Off:pg.IPEnd], &pw, &pg)
		if d.out == "" {
			d.raw("eth.padding", want[pw.IPEnd:], got[pg.IPEnd:])
		}
	case pw.EtherType == header.EtherTypeARP:
		aw, ag := pw.ARP(want), pg.ARP(got)
		num(d, "arp.op", aw.Op(), ag.Op())
		d.mac("arp.sender_mac", aw.SenderMAC(), ag.SenderMAC())
		d.addr("arp.sender_ip", aw.SenderAddr(), ag.SenderAddr())
		d.mac("arp.target_mac", aw.TargetMAC(), ag.TargetMAC())
		d.addr("arp.target_ip", aw.TargetAddr(), ag.TargetAddr())
		d.raw("arp.rest", want[pw.IPEnd:], got[pg.IPEnd:])
	default:
		d.raw("payload", want[pw.L3Off:], got[pg.L3Off:])
	}
	if d.out == "" {
		d.out = diffRaw("frame", want, got) // not expected: every byte is covered above
	}
	return d.out
}

type differ struct{ out string }

func (d *differ) set(field string, w, g any) {
	if d.out == "" {
		d.out = fmt.Sprintf("%s: want %v, got %v", field, w, g)
	}
}

func num[T uint64Like](d *differ, field string, w, g T) {
	if w != g {
		d.set(field, fmt.Sprintf("%d (%#x)", w, w), fmt.Sprintf("%d (%#x)", g, g))
	}
}

type uint64Like interface{ ~uint8 | ~uint16 | ~uint32 }

func (d *differ) flag(field string, w, g bool) {
	if w != g {
		d.set(field, w, g)
	}
}

func (d *differ) mac(field string, w, g [6]byte) {
	if w != g {
		d.set(field, fmtMAC(w), fmtMAC(g))
	}
}

func (d *differ) addr(field string, w, g netip.Addr) {
	if w != g {
		d.set(field, w, g)
	}
}

func (d *differ) raw(field string, w, g []byte) {
	if d.out == "" && !bytes.Equal(w, g) {
		d.out = diffRaw(field, w, g)
	}
}

func fmtMAC(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

func diffRaw(field string, w, g []byte) string {
	n := min(len(w), len(g))
	for i := 0; i < n; i++ {
		if w[i] != g[i] {
			return fmt.Sprintf("%s[%d]: want %#02x, got %#02x (lengths %d, %d)", field, i, w[i], g[i], len(w), len(g))
		}
	}
	return fmt.Sprintf("%s length: want %d, got %d", field, len(w), len(g))
}

// l3 compares two IP packets (header onward) whose parse results are pw
// and pg (offsets relative to their frames; ipw and ipg start at L3Off).
func (d *differ) l3(prefix string, ipw, ipg []byte, pw, pg *header.Parsed) {
	if pw.IPVersion != pg.IPVersion {
		d.set(prefix+"ip.version", pw.IPVersion, pg.IPVersion)
		return
	}
	d.ipFields(prefix, pw.IPVersion, ipw, ipg)
	num(d, prefix+"ip.proto", pw.Proto, pg.Proto)
	if d.out != "" {
		return // different headers: what follows cannot be compared field by field
	}
	lw, lg := pw.L4Off-pw.L3Off, pg.L4Off-pg.L3Off
	if pw.L4Off == 0 || pg.L4Off == 0 || lw != lg {
		// Fragment payload or different extension headers: compare bytes.
		d.raw(prefix+"ip.after_header", ipw[headerLen(ipw, pw):], ipg[headerLen(ipg, pg):])
		return
	}
	d.raw(prefix+"ip.ext_headers", ipw[headerLen(ipw, pw):lw], ipg[headerLen(ipg, pg):lg])
	d.l4(prefix, pw.Proto, pw.IPVersion, ipw[lw:], ipg[lg:])
}

// ipFields compares the fixed IP header fields (the caller checked that
// both headers are present in full).
func (d *differ) ipFields(prefix string, ipv uint8, ipw, ipg []byte) {
	if ipv == 4 {
		hw, hg := header.IPv4(ipw), header.IPv4(ipg)
		num(d, prefix+"ipv4.header_len", uint8(hw.HeaderLen()), uint8(hg.HeaderLen()))
		num(d, prefix+"ipv4.tos", hw.TOS(), hg.TOS())
		num(d, prefix+"ipv4.total_len", hw.TotalLen(), hg.TotalLen())
		num(d, prefix+"ipv4.id", hw.ID(), hg.ID())
		num(d, prefix+"ipv4.flags", hw.Flags(), hg.Flags())
		num(d, prefix+"ipv4.frag_offset", hw.FragOffset(), hg.FragOffset())
		num(d, prefix+"ipv4.ttl", hw.TTL(), hg.TTL())
		num(d, prefix+"ipv4.protocol", hw.Protocol(), hg.Protocol())
		d.addr(prefix+"ipv4.src", hw.SrcAddr(), hg.SrcAddr())
		d.addr(prefix+"ipv4.dst", hw.DstAddr(), hg.DstAddr())
		d.raw(prefix+"ipv4.options", hw.Options(), hg.Options())
		num(d, prefix+"ipv4.checksum", hw.Checksum(), hg.Checksum())
	} else {
		hw, hg := header.IPv6(ipw), header.IPv6(ipg)
		num(d, prefix+"ipv6.traffic_class", hw.TrafficClass(), hg.TrafficClass())
		num(d, prefix+"ipv6.flow_label", hw.FlowLabel(), hg.FlowLabel())
		num(d, prefix+"ipv6.payload_len", hw.PayloadLen(), hg.PayloadLen())
		num(d, prefix+"ipv6.next_header", hw.NextHeader(), hg.NextHeader())
		num(d, prefix+"ipv6.hop_limit", hw.HopLimit(), hg.HopLimit())
		d.addr(prefix+"ipv6.src", hw.SrcAddr(), hg.SrcAddr())
		d.addr(prefix+"ipv6.dst", hw.DstAddr(), hg.DstAddr())
	}
}

func headerLen(ip []byte, p *header.Parsed) int {
	if p.IPVersion == 4 {
		return header.IPv4(ip).HeaderLen()
	}
	return header.IPv6Len
}

func (d *differ) l4(prefix string, proto, ipv uint8, w, g []byte) {
	switch {
	case proto == header.ProtoTCP:
		tw, tg := header.TCP(w), header.TCP(g)
		num(d, prefix+"tcp.src_port", tw.SrcPort(), tg.SrcPort())
		num(d, prefix+"tcp.dst_port", tw.DstPort(), tg.DstPort())
		num(d, prefix+"tcp.seq", tw.Seq(), tg.Seq())
		num(d, prefix+"tcp.ack", tw.Ack(), tg.Ack())
		num(d, prefix+"tcp.data_offset", uint8(tw.DataOffset()), uint8(tg.DataOffset()))
		if tw.Flags() != tg.Flags() {
			d.set(prefix+"tcp.flags", tcpFlags(tw.Flags()), tcpFlags(tg.Flags()))
		}
		num(d, prefix+"tcp.window", tw.Window(), tg.Window())
		num(d, prefix+"tcp.urgent", tw.UrgentPtr(), tg.UrgentPtr())
		d.raw(prefix+"tcp.options", tw.Options(), tg.Options())
		d.raw(prefix+"tcp.payload", tw.Payload(), tg.Payload())
		num(d, prefix+"tcp.checksum", tw.Checksum(), tg.Checksum())
	case proto == header.ProtoUDP:
		uw, ug := header.UDP(w), header.UDP(g)
		num(d, prefix+"udp.src_port", uw.SrcPort(), ug.SrcPort())
		num(d, prefix+"udp.dst_port", uw.DstPort(), ug.DstPort())
		num(d, prefix+"udp.length", uw.Length(), ug.Length())
		d.raw(prefix+"udp.payload", w[header.UDPLen:], g[header.UDPLen:])
		num(d, prefix+"udp.checksum", uw.Checksum(), ug.Checksum())
	case proto == header.ProtoICMPv4 && ipv == 4 || proto == header.ProtoICMPv6 && ipv == 6:
		name := prefix + "icmpv4"
		if ipv == 6 {
			name = prefix + "icmpv6"
		}
		num(d, name+".type", w[0], g[0])
		num(d, name+".code", w[1], g[1])
		num(d, name+".rest", binary.BigEndian.Uint32(w[4:]), binary.BigEndian.Uint32(g[4:]))
		if d.out == "" && isICMPError(ipv, w[0]) {
			d.embedded(name+".embedded.", ipv, w[8:], g[8:])
		}
		d.raw(name+".payload", w[8:], g[8:])
		num(d, name+".checksum", binary.BigEndian.Uint16(w[2:]), binary.BigEndian.Uint16(g[2:]))
	default:
		d.raw(prefix+"l4", w, g)
	}
}

func isICMPError(ipv, typ uint8) bool {
	if ipv == 6 {
		return typ < 128
	}
	return header.ICMPv4{typ, 0, 0, 0, 0, 0, 0, 0}.IsError()
}

// embedded compares the invoking packets of two ICMP errors field by field.
// They are usually cut short (RFC 792: IP header plus 8 bytes), so they are
// not run through Parse: the fixed IP header and the first 8 transport
// bytes are compared where present, the rest as bytes by the caller.
func (d *differ) embedded(prefix string, ipv uint8, w, g []byte) {
	hl := header.IPv6Len
	if ipv == 4 {
		if len(w) < header.IPv4MinLen || len(g) < header.IPv4MinLen {
			return
		}
		hl = header.IPv4(w).HeaderLen()
		hg := header.IPv4(g).HeaderLen()
		if hl < header.IPv4MinLen || hl > len(w) || hg < header.IPv4MinLen || hg > len(g) {
			return
		}
		if hl != hg {
			num(d, prefix+"ipv4.header_len", uint8(hl), uint8(hg))
			return
		}
	} else if len(w) < hl || len(g) < hl {
		return
	}
	d.ipFields(prefix, ipv, w, g)
	proto := w[6]
	if ipv == 4 {
		proto = w[9]
	}
	w, g = w[hl:], g[hl:]
	if len(w) < 8 || len(g) < 8 {
		return
	}
	switch {
	case proto == header.ProtoTCP:
		num(d, prefix+"tcp.src_port", binary.BigEndian.Uint16(w), binary.BigEndian.Uint16(g))
		num(d, prefix+"tcp.dst_port", binary.BigEndian.Uint16(w[2:]), binary.BigEndian.Uint16(g[2:]))
		num(d, prefix+"tcp.seq", binary.BigEndian.Uint32(w[4:]), binary.BigEndian.Uint32(g[4:]))
	case proto == header.ProtoUDP:
		num(d, prefix+"udp.src_port", binary.BigEndian.Uint16(w), binary.BigEndian.Uint16(g))
		num(d, prefix+"udp.dst_port", binary.BigEndian.Uint16(w[2:]), binary.BigEndian.Uint16(g[2:]))
		num(d, prefix+"udp.length", binary.BigEndian.Uint16(w[4:]), binary.BigEndian.Uint16(g[4:]))
		num(d, prefix+"udp.checksum", binary.BigEndian.Uint16(w[6:]), binary.BigEndian.Uint16(g[6:]))
	case proto == header.ProtoICMPv4 && ipv == 4, proto == header.ProtoICMPv6 && ipv == 6:
		num(d, prefix+"icmp.type", w[0], g[0])
		num(d, prefix+"icmp.code", w[1], g[1])
		num(d, prefix+"icmp.checksum", binary.BigEndian.Uint16(w[2:]), binary.BigEndian.Uint16(g[2:]))
		num(d, prefix+"icmp.ident", binary.BigEndian.Uint16(w[4:]), binary.BigEndian.Uint16(g[4:]))
		num(d, prefix+"icmp.seq", binary.BigEndian.Uint16(w[6:]), binary.BigEndian.Uint16(g[6:]))
	}
}

func tcpFlags(f uint8) string {
	const names = "FSRPAUEC"
	var b []byte
	for i := 0; i < 8; i++ {
		if f&(1<<i) != 0 {
			b = append(b, names[i])
		}
	}
	if len(b) == 0 {
		return "none"
	}
	return string(b)
}
