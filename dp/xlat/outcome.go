package xlat

// Outcome is what Translate did with a packet. It indexes Counters; the
// names come from outcomeNames, the one table of outcomes.
//
// Three kinds: translated (the Result's packets go out of the other
// family's side: IPv6 for Translated46, Fragmented46 and Hairpinned,
// IPv4 for Translated64), answered (the Result holds one ICMP error the
// RFC asks the translator to send back to the packet's source, out of
// the side it came in by) and dropped (the Result is empty).
type Outcome uint8

const (
	// Translated.
	Translated46 Outcome = iota // IPv4 to IPv6
	Translated64                // IPv6 to IPv4
	Hairpinned                  // IPv6 to IPv6 through an EAM IPv4 address (RFC 7757 B.1)
	Fragmented46                // IPv4 (DF clear) to several IPv6 fragments

	// Answered with an ICMP error, nothing translated.
	AnswerFragNeeded      // IPv4 with DF too big for the IPv6 side: ICMPv4 3/4
	AnswerPacketTooBig    // IPv6 too big for the IPv4 side: ICMPv6 2/0
	AnswerTimeExceeded    // TTL or hop limit would reach 0: ICMPv4 11/0, ICMPv6 3/0
	AnswerUDPZeroChecksum // IPv4 UDP without checksum that cannot be amended: ICMPv4 3/13 (RFC 7915 4.5)
	AnswerSourceRoute     // IPv4 with an unexpired source route: ICMPv4 3/5 (RFC 7915 4.1)
	AnswerRoutingHeader   // IPv6 routing header with segments left: ICMPv6 4/0 (RFC 7915 5.1)
	AnswerExtAfterFrag    // IPv6 extension header after the fragment header: ICMPv6 1/1

	// Dropped.
	DropMalformed        // does not parse, or an ICMP error whose quote cannot be read
	DropNotIP            // neither IPv4 nor IPv6
	DropNoMapping        // an address with no EAM entry and outside Pool6
	DropICMPType         // ICMP type or code RFC 7915 says to drop (redirect, ND, MLD, ...)
	DropICMPOtherFamily  // ICMPv6 over IPv4 or ICMPv4 over IPv6 (RFC 7915 4.1, 5.1)
	DropProtocol         // IPv4 protocol number that IPv6 reads as an extension header (0, 43, 44, 51, 60, ...)
	DropTooBig           // cannot be sent: bigger than an MTU and no ICMP may be answered
	DropNoRoom           // the output buffer is too small
	DropFragmentedICMP   // a fragmented ICMP message: its checksum cannot be translated
	DropErrorNoAnswer    // needs an ICMP error answer but is an ICMP error itself (RFC 1812 4.3.2.7)
	DropHairpin          // a hairpinned packet whose way back to IPv6 would need an ICMP error
	DropUDPZeroChecksum6 // IPv6 UDP with checksum 0, which IPv6 forbids (RFC 8200 8.1)
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{
	Translated46:          "translated_46",
	Translated64:          "translated_64",
	Hairpinned:            "hairpinned",
	Fragmented46:          "fragmented_46",
	AnswerFragNeeded:      "answer_frag_needed",
	AnswerPacketTooBig:    "answer_packet_too_big",
	AnswerTimeExceeded:    "answer_time_exceeded",
	AnswerUDPZeroChecksum: "answer_udp_zero_checksum",
	AnswerSourceRoute:     "answer_source_route",
	AnswerRoutingHeader:   "answer_routing_header",
	AnswerExtAfterFrag:    "answer_ext_after_frag",
	DropMalformed:         "drop_malformed",
	DropNotIP:             "drop_not_ip",
	DropNoMapping:         "drop_no_mapping",
	DropICMPType:          "drop_icmp_type",
	DropICMPOtherFamily:   "drop_icmp_other_family",
	DropProtocol:          "drop_protocol",
	DropTooBig:            "drop_too_big",
	DropNoRoom:            "drop_no_room",
	DropFragmentedICMP:    "drop_fragmented_icmp",
	DropErrorNoAnswer:     "drop_error_no_answer",
	DropHairpin:           "drop_hairpin",
	DropUDPZeroChecksum6:  "drop_udp_zero_checksum6",
}

// String is the outcome's metric label.
func (o Outcome) String() string {
	if o >= NumOutcomes {
		return "unknown"
	}
	return outcomeNames[o]
}

// Translated reports whether the Result's packets are the translation.
func (o Outcome) Translated() bool { return o <= Fragmented46 }

// Answered reports whether the Result holds an ICMP error for the sender.
func (o Outcome) Answered() bool { return o >= AnswerFragNeeded && o <= AnswerExtAfterFrag }

// Dropped reports whether nothing is to be sent.
func (o Outcome) Dropped() bool { return o >= DropMalformed && o < NumOutcomes }

// Outcomes lists every outcome in order.
func Outcomes() []Outcome {
	os := make([]Outcome, NumOutcomes)
	for i := range os {
		os[i] = Outcome(i)
	}
	return os
}

// Counters counts outcomes. A Translator counts into its own (one per
// worker, no atomics); the gateway sums them for export.
type Counters [NumOutcomes]uint64

// Add adds o's counts to c.
func (c *Counters) Add(o *Counters) {
	for i := range c {
		c[i] += o[i]
	}
}
