package xlat

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"samepath/dp/header"
)

// MaxPackets bounds the packets one translation emits: the fragments of
// an IPv4 packet (DF clear) bigger than the lowest IPv6 MTU.
const MaxPackets = 8

// Packet is one frame of a Result: out[Off : Off+Len].
type Packet struct{ Off, Len int }

// Result is where Translate puts what it wrote into out: N frames, back to
// back. Each frame starts with the input's Ethernet header (and 802.1Q
// tag) with the EtherType of the new family; an answer has the MAC
// addresses swapped, so it can go back out of the port the packet came
// in by. The caller sets the MAC addresses of translated frames.
type Result struct {
	Outcome Outcome
	N       int
	Pkts    [MaxPackets]Packet
}

// OutLen is the len(out) that Translate needs for any frame of n bytes:
// the frame grown by the IPv6 and fragment headers, split in up to
// MaxPackets fragments each with its own headers, or an ICMP error answer
// (at most 1280 bytes of IP).
func OutLen(n int) int {
	l2 := header.EthernetLen + header.VLANLen
	return max(n+28+MaxPackets*(l2+header.IPv6Len+header.IPv6FragmentLen), l2+1280)
}

// Translator translates packets with the Config of its Runtime. It
// keeps an IPv4 identification generator, a scratch buffer for
// hairpinning and its Counters, so it belongs to one worker goroutine:
// make one per worker (Runtime.NewTranslator, or New for a private
// Runtime). It allocates only when made.
type Translator struct {
	rt      *Runtime
	st      *state // the Runtime's config, loaded once per packet
	id      uint16
	scratch []byte
	// inHairpin is set while from6 runs the first half of a hairpin.
	inHairpin bool
	// Counters counts each outcome of Translate and TranslateWith. Only
	// the worker reads and writes it; Publish copies it for others.
	Counters Counters
	pub      [NumOutcomes]atomic.Uint64
	last     Counters // what pub holds
}

// New validates c and returns a translator for it, with a Runtime of its
// own (Runtime returns it).
func New(c Config) (*Translator, error) {
	rt, err := NewRuntime(c)
	if err != nil {
		return nil, err
	}
	return rt.NewTranslator(), nil
}

// Runtime returns the translator's Runtime, through which its
// configuration changes.
func (t *Translator) Runtime() *Runtime { return t.rt }

// Pool6 is the RFC 6052 prefix (invalid: none) of the current config.
func (t *Translator) Pool6() netip.Prefix { return t.rt.cur.Load().cfg.Pool6 }

// Config returns the translator's current configuration (a copy).
func (t *Translator) Config() Config { return t.rt.Config() }

// Publish makes Counters readable by other goroutines (Published): the
// worker calls it once per batch. It stores only the outcomes that
// changed since the last call, so a batch costs a comparison per outcome
// and an atomic store per outcome that happened.
func (t *Translator) Publish() {
	for i := range t.Counters {
		if t.Counters[i] != t.last[i] {
			t.last[i] = t.Counters[i]
			t.pub[i].Store(t.Counters[i])
		}
	}
}

// Published returns the counters as of the worker's latest Publish. Any
// goroutine may call it.
func (t *Translator) Published() Counters {
	var c Counters
	for i := range c {
		c[i] = t.pub[i].Load()
	}
	return c
}

// Translate translates the frame b, which header.Decode read into d,
// into out (which must not overlap b), with addresses mapped by the
// configuration (EAM, then Pool6, then RFC 6791 for ICMP error sources).
// It fills r and returns r.Outcome, already counted. b is not modified.
// Translate does not allocate.
func (t *Translator) Translate(b []byte, d *header.Decoded, out []byte, r *Result) Outcome {
	return t.translate(b, d, nil, out, r)
}

// Addrs are the addresses of a translated packet, chosen by the caller
// (a stateful NAT64 that keeps them in its tables). Src and Dst are the
// outer addresses in the new family; for an ICMP error QSrc and QDst are
// those of the quoted packet. Ports are not touched: rewrite them in the
// new family afterwards (rewrite.Flow, rewrite.ICMPError).
type Addrs struct {
	Src, Dst   header.Addr16
	QSrc, QDst header.Addr16
}

// TranslateWith is Translate with the addresses given instead of mapped:
// IPv4-mapped Addr16 (header.Addr16V4) for 6->4, IPv6 for 4->6. It does
// not hairpin.
func (t *Translator) TranslateWith(b []byte, d *header.Decoded, a *Addrs, out []byte, r *Result) Outcome {
	return t.translate(b, d, a, out, r)
}

// translate is Translate (a nil: mapped addresses) and TranslateWith.
func (t *Translator) translate(b []byte, d *header.Decoded, a *Addrs, out []byte, r *Result) Outcome {
	var o Outcome
	r.N = 0
	t.st = t.rt.cur.Load()
	switch d.IPVersion {
	case 4:
		o = t.from4(b, d, out, r, a)
	case 6:
		o = t.from6(b, d, out, r, a)
	default:
		o = DropNotIP
	}
	if !o.Translated() && !o.Answered() {
		r.N = 0
	}
	r.Outcome = o
	t.Counters[o]++
	return o
}

// nextID is the IPv4 identification generator for translated packets
// without a fragment header and with DF clear (RFC 7915 section 5.1,
// RFC 6864 section 4).
func (t *Translator) nextID() uint16 {
	t.id++
	if t.id == 0 {
		t.id = 1
	}
	return t.id
}

// writeL2 copies b's Ethernet header (and tag) to out with EtherType et
// and returns its length.
func writeL2(b []byte, d *header.Decoded, out []byte, et uint16) int {
	copy(out[:d.L3Off], b[:d.L3Off])
	binary.BigEndian.PutUint16(out[d.L3Off-2:], et)
	return d.L3Off
}

// Ones' complement helpers. sum16 folds a running sum to 16 bits.
func sum16(s uint32) uint16 {
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}

// adjust updates checksum cs for covered data whose ones' complement sum
// changed from sub to add (RFC 1624 eqn. 3 over sums).
func adjust(cs uint16, sub, add uint32) uint16 {
	s := uint32(^cs) + uint32(^sum16(sub)) + uint32(sum16(add))
	return ^sum16(s)
}

func addrSum(src, dst []byte) uint32 {
	return header.Checksum(dst, header.Checksum(src, 0))
}

// patchL4 applies to a copied transport header (TCP, UDP or ICMP echo,
// the whole header present) the checksum change of the pseudo-header
// going from sum sub to sum add; ICMP also changes type (to typ) and
// gains or loses the ICMPv6 pseudo-header, which the caller folds into
// sub or add.
func patchL4(l4 []byte, proto uint8, sub, add uint32) {
	switch proto {
	case header.ProtoTCP:
		if len(l4) >= 18 {
			binary.BigEndian.PutUint16(l4[16:], adjust(binary.BigEndian.Uint16(l4[16:]), sub, add))
		}
	case header.ProtoUDP:
		if len(l4) >= 8 {
			cs := binary.BigEndian.Uint16(l4[6:])
			if cs == 0 {
				return // none: the caller decides (computes it or refuses)
			}
			cs = adjust(cs, sub, add)
			if cs == 0 {
				cs = 0xffff
			}
			binary.BigEndian.PutUint16(l4[6:], cs)
		}
	}
}

// icmpEcho translates the type of an ICMP echo message at m (at least 4
// bytes) and updates its checksum for the type change and pseudo-header
// sums sub and add. It reports false for types other than echo.
func icmpEcho(m []byte, to6 bool, sub, add uint32) bool {
	old := binary.BigEndian.Uint16(m[0:])
	var typ uint8
	switch {
	case to6 && m[0] == header.ICMPv4Echo:
		typ = header.ICMPv6EchoRequest
	case to6 && m[0] == header.ICMPv4EchoReply:
		typ = header.ICMPv6EchoReply
	case !to6 && m[0] == header.ICMPv6EchoRequest:
		typ = header.ICMPv4Echo
	case !to6 && m[0] == header.ICMPv6EchoReply:
		typ = header.ICMPv4EchoReply
	default:
		return false
	}
	m[0] = typ
	nw := binary.BigEndian.Uint16(m[0:])
	cs := binary.BigEndian.Uint16(m[2:])
	binary.BigEndian.PutUint16(m[2:], adjust(cs, uint32(sum16(sub))+uint32(old), uint32(sum16(add))+uint32(nw)))
	return true
}

// isEcho reports whether ICMP type typ of the given family is an echo
// request or reply.
func isEcho(v6 bool, typ uint8) bool {
	if v6 {
		return typ == header.ICMPv6EchoRequest || typ == header.ICMPv6EchoReply
	}
	return typ == header.ICMPv4Echo || typ == header.ICMPv4EchoReply
}
