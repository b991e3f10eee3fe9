// Package xlat rewrites packets for the gateway's port-key NAT (R-GW-1):
// addresses and transport ports (the ICMP echo identifier standing in for
// a port), with the IPv4 header checksum and the transport checksum
// updated incrementally (RFC 1624), and ICMP error messages whose
// embedded packet is translated as well (RFC 5508 section 4.2, RFC 7857).
//
// Functions work in place on frames already checked by header.Parse and
// allocate nothing. They are called by the worker that owns the frame.
package xlat
