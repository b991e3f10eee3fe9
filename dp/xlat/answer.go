package xlat

import (
	"encoding/binary"

	"samepath/dp/header"
)

// answerTTL is the TTL / hop limit of the errors the translator sends.
const answerTTL = 64

// answer4 builds into out the ICMPv4 error (typ, code, bytes 4..7 rest)
// that answers the IPv4 packet b from the translator's own address,
// quoting as much of b as keeps it within 576 bytes (RFC 1812 4.3.2.3),
// and returns o. An ICMP error is never answered (RFC 1812 4.3.2.7).
func (t *Translator) answer4(b []byte, d *header.Decoded, out []byte, r *Result, o Outcome, typ, code uint8, rest uint32) Outcome {
	if d.IsICMPError(b) {
		return DropErrorNoAnswer
	}
	quote := b[d.L3Off:d.IPEnd]
	quote = quote[:min(len(quote), 576-header.IPv4MinLen-header.ICMPMinLen)]
	mlen := header.ICMPMinLen + len(quote)
	need := d.L3Off + header.IPv4MinLen + mlen
	if need > len(out) {
		return DropNoRoom
	}
	f := out[:need]
	l3 := answerL2(b, d, f, header.EtherTypeIPv4)
	in := d.IPv4(b)
	h := header.IPv4(f[l3:])
	h.SetVersionIHL(header.IPv4MinLen)
	h.SetTOS(0)
	h.SetTotalLen(uint16(header.IPv4MinLen + mlen))
	h.SetID(0)
	h.SetFlagsFragOffset(0)
	h.SetTTL(answerTTL)
	h.SetProtocol(header.ProtoICMPv4)
	h.SetSrc(t.st.m.own4)
	h.SetDst(in.Src())
	h.SetChecksum(0)
	h.SetChecksum(h.CalculateChecksum())
	m := f[l3+header.IPv4MinLen:]
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint32(m[4:], rest)
	copy(m[header.ICMPMinLen:], quote)
	binary.BigEndian.PutUint16(m[2:], header.Fold(header.Checksum(m, 0)))
	r.Pkts[0] = Packet{Off: 0, Len: need}
	r.N = 1
	return o
}

// answer6 is answer4 for IPv6: an ICMPv6 error within 1280 bytes (RFC
// 4443 section 2.4).
func (t *Translator) answer6(b []byte, d *header.Decoded, out []byte, r *Result, o Outcome, typ, code uint8, rest uint32) Outcome {
	if d.IsICMPError(b) {
		return DropErrorNoAnswer
	}
	quote := b[d.L3Off:d.IPEnd]
	quote = quote[:min(len(quote), 1280-header.IPv6Len-header.ICMPMinLen)]
	mlen := header.ICMPMinLen + len(quote)
	need := d.L3Off + header.IPv6Len + mlen
	if need > len(out) {
		return DropNoRoom
	}
	f := out[:need]
	l3 := answerL2(b, d, f, header.EtherTypeIPv6)
	in := d.IPv6(b)
	h := header.IPv6(f[l3:])
	h.SetVersionClassFlow(0, 0)
	h.SetPayloadLen(uint16(mlen))
	h.SetNextHeader(header.ProtoICMPv6)
	h.SetHopLimit(answerTTL)
	h.SetSrc(t.st.m.own6)
	h.SetDst(in.Src())
	m := f[l3+header.IPv6Len:]
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint32(m[4:], rest)
	copy(m[header.ICMPMinLen:], quote)
	own, dst := t.st.m.own6, in.Src()
	ph := header.PseudoHeaderChecksum(header.ProtoICMPv6, own[:], dst[:], uint16(mlen))
	binary.BigEndian.PutUint16(m[2:], header.Fold(header.Checksum(m, ph)))
	r.Pkts[0] = Packet{Off: 0, Len: need}
	r.N = 1
	return o
}

// answerL2 writes b's Ethernet header with the MAC addresses swapped.
func answerL2(b []byte, d *header.Decoded, out []byte, et uint16) int {
	copy(out[0:6], b[6:12])
	copy(out[6:12], b[0:6])
	copy(out[12:d.L3Off], b[12:d.L3Off])
	binary.BigEndian.PutUint16(out[d.L3Off-2:], et)
	return d.L3Off
}
