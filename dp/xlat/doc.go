// Package xlat translates packets between IPv4 and IPv6 as a stateless
// IP/ICMP translator, SIIT (RFC 7915), for the gateway's IPv4/IPv6
// service (R-TCP-3): headers both ways with the transport checksums
// adjusted, ICMP and ICMPv6 types and codes mapped, ICMP errors with
// their quoted packet translated, fragments, RFC 6052 address embedding,
// an explicit address mapping table (EAM, RFC 7757) and an RFC 6791 pool
// for the sources of ICMP errors that have no mapping.
//
// # Use
//
// One Translator per worker goroutine, made by New from a Config
// (DefaultConfig: 64:ff9b::/96). It holds the IPv4 identification
// generator, a scratch buffer for hairpinning and its Counters, so it is
// not shared. Translate takes a frame that header.Decode accepted and
// writes the result into out:
//
//	var r xlat.Result
//	switch o := tr.Translate(pkt.Data, &d, scratch, &r); {
//	case o.Translated(): // r.Pkts[:r.N] go out of the other family's side
//	case o.Answered():   // r.Pkts[0] is an ICMP error for the sender, back out of its port
//	default:             // dropped; tr.Counters[o] counted it
//	}
//
// The configuration lives in a Runtime, which the control API may change
// while workers translate (Runtime.Set, Update): each worker's
// Translator (Runtime.NewTranslator) loads it with one atomic pointer
// load per packet, no lock, and translates the whole packet with the
// configuration it loaded. Counters are the worker's plain counts;
// Publish (once per batch) copies the changed ones into atomics that
// Published reads from any goroutine.
//
// A stateless translator (SIIT) maps addresses itself: EAM first, then
// Pool6, and for the source of an ICMP error without a mapping, the RFC
// 6791 pool or the translator's own address. A stateful NAT64 picks the
// addresses from its tables and calls TranslateWith; ports (and the echo
// identifier) are then rewritten in the new family with dp/rewrite.
//
// Every outcome is an Outcome with a metric name (Outcome.String, one
// table like dp's drop reasons); the translator counts each in its
// Counters for the gateway to export.
//
// # Header sizes, and why the output goes to another buffer
//
// IPv4 to IPv6 grows the header by 20 bytes, 28 with a fragment header;
// IPv6 to IPv4 shrinks it by 20 or more. Translate never writes into its
// input: it builds the new frame (or frames) in out, which must not
// overlap the input, and leaves the input intact. The gateway passes a
// per-worker scratch buffer of OutLen(frame size) bytes and copies the
// result into the packet's Room (the frame from Data's start to the end
// of its UMEM frame), or into further frames for the fragments.
//
// Cost: the translator copies the packet once (its payload, with the new
// headers written around it) and the gateway copies it once more into
// the UMEM frame: two memmoves of at most one MTU, tens of nanoseconds
// next to the 170-700 ns of a translation (BenchmarkXlat). In exchange
// no headroom has to be registered in front of the frames (neither the
// AF_XDP socket nor the in-memory port must offer any), and the cases an
// in-place move cannot do are the same code: a packet split into
// fragments, an ICMP error whose quoted packet grows or shrinks inside
// it, and an answer that quotes the original packet. If profiles ever
// show the copy, the single-packet IPv4-to-IPv6 case can write its
// headers into UMEM headroom in front of Data instead; nothing in the
// API would change but the buffer passed as out.
//
// # RFC 7915 in brief
//
// IPv4 to IPv6 (section 4): Traffic Class from TOS, flow label 0, hop
// limit TTL-1 (TTL 1: ICMPv4 time exceeded), IPv4 options dropped (an
// unexpired source route: ICMPv4 3/5). A fragment header only when the
// IPv4 packet is a fragment, or when a DF-clear packet is bigger than the
// lowest IPv6 MTU and the translator fragments it; its ID is the IPv4 ID.
// DF set and too big for the IPv6 side: ICMPv4 3/4 with the IPv6 MTU - 20.
// UDP with checksum 0: computed when unfragmented and
// AmendUDPZeroChecksum is on, else refused with ICMPv4 3/13.
//
//	+---------------+            +-----------------------+
//	| IPv4 (20+opt) |            | IPv6 (40)             |
//	+---------------+    ==>     +-----------------------+
//	| TCP/UDP/ICMP  |            | [Fragment (8)]        |
//	+---------------+            +-----------------------+
//	                             | TCP/UDP/ICMPv6        |
//	                             +-----------------------+
//
// IPv6 to IPv4 (section 5): TOS from Traffic Class, TTL hop limit-1,
// hop-by-hop, destination options and spent routing headers skipped (a
// routing header with segments left: ICMPv6 4/0 pointing at it; an
// extension header after the fragment header: ICMPv6 1/1, as Jool). With
// a fragment header: ID its low 16 bits, MF and offset copied, DF clear.
// Without: DF set above 1260 bytes (with ID 0, an atomic datagram), else
// DF clear with a generated ID. Too big for the IPv4 side: ICMPv6 2/0
// with the IPv4 MTU + 20.
//
// ICMP (sections 4.2, 5.2): echo maps to echo, other informational
// messages are dropped; errors map type and code (figures 3 and 6 for
// parameter problem pointers). Packet Too Big and Fragmentation Needed
// MTUs differ by 20, bounded by both sides' MTUs; a Packet Too Big is
// never below 1280, and a Fragmentation Needed with MTU 0 gets the RFC
// 1191 plateau below the quoted packet's length. The quoted packet
// (sections 4.3, 5.3) is translated with its TTL untouched and its
// transport checksum adjusted, not checked: a wrong one stays wrong and
// is no reason to drop. Errors are cut to 1280 bytes (to IPv6) or 576 (to
// IPv4). RFC 4884 extensions are kept opaque behind an original-datagram
// part of at least 128 bytes, a multiple of 8 (to IPv6) or 4 (to IPv4);
// an extension that does not fit is left out, and the length field
// follows.
//
// # Addresses (RFC 6052 section 2.2)
//
//	+--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//	|PL| 0-------------32--40--48--56--64--72--80--88--96--104---------|
//	|32|     prefix    |v4(32)         | u | suffix                    |
//	|40|     prefix        |v4(24)     | u |(8)| suffix                |
//	|48|     prefix            |v4(16) | u | (16)  | suffix            |
//	|56|     prefix                |(8)| u |  v4(24)   | suffix        |
//	|64|     prefix                    | u |   v4(32)      | suffix    |
//	|96|     prefix                                    |    v4(32)     |
//	+--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//
// Hairpinning (RFC 7757 appendix B.1, "intrinsic"): an IPv6 packet whose
// destination maps to an EAM IPv4 address is translated back to IPv6 at
// once, its source through Pool6, and leaves by the IPv6 side.
//
// # Not done
//
// No IPv4 fragmentation (an IPv6 packet of at most 1280 bytes that does
// not fit a smaller IPv4 MTU is dropped, DropTooBig); fragmented ICMP
// messages are dropped (their checksum covers bytes not present); no
// reassembly. The conformance test replays Jool's graybox suite
// (TestJool, its stateful NAT64 cases through dp.GW;
// testdata/deviations.txt lists where we differ and why).
//
// # Allocation
//
// New allocates (the tables, 64 KiB of scratch); Translate, TranslateWith
// and everything they call do not (TestAllocs). Nothing keeps a
// reference to a frame after returning.
package xlat
