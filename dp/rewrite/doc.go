// Package rewrite rewrites packets for the gateway's port-key NAT
// (R-GW-1) within one address family: addresses and transport ports (the
// ICMP echo identifier standing in for a port), with the IPv4 header
// checksum and the transport checksum updated incrementally (RFC 1624),
// and ICMP error messages whose quoted packet is rewritten as well (RFC
// 5508 section 4.2, RFC 7857). It also builds the gateway's proxy
// replies (a TCP RST, an ICMP destination unreachable) when it refuses a
// packet. IPv4/IPv6 translation is dp/xlat's.
//
// Functions work in place on frames that header.Decode has read, and use
// only what it read: its tuple, its quote, its offsets. They allocate
// nothing and are called by the worker that owns the frame.
package rewrite
