// Package dptest builds and checks packets for dataplane tests; production
// code must not import it.
//
// Frame() starts a Builder that assembles an Ethernet frame layer by layer
// (optional 802.1Q tag, ARP, IPv4 with options and fragment fields, IPv6
// with hop-by-hop, routing, fragment and destination-options headers, TCP,
// UDP, ICMP echo and errors embedding another built packet, raw EtherTypes)
// and computes every length and checksum in Bytes:
//
//	f := dptest.Frame().Eth(src, dst).VLAN(100).IPv4(a, b).TTL(64).
//		UDP(1000, 53).Payload([]byte("x")).Bytes()
//
// The privileged test sends built frames over a veth pair into a namespace
// and checks that the Linux stack accepts them (a UDP datagram reaches a
// socket, a ping and a TCP SYN get answers), so the builder's arithmetic is
// checked against the kernel, not against itself.
//
// Golden describes a golden-packet case (Katran style). Diff compares two
// frames layer by layer and names the first differing field ("ipv4.ttl:
// want 64, got 63"), descending into the packet embedded in ICMP errors.
// VerifyChecksums recomputes every checksum of a frame in full.
//
// Everything here allocates freely (it is test code); nothing keeps
// references to the caller's slices or starts goroutines.
package dptest
