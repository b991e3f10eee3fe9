// Package nat holds the dataplane's lookup tables: T4, the load balancers'
// source-range -> gateway table (FIG. 14), and the gateways' port-key NAT
// tables.
//
// Readers are the poll-loop workers and never take a lock: a table is an
// immutable snapshot published through an atomic pointer, and writers
// (the control API) build a new snapshot and swap it in. Lookups allocate
// nothing; updates allocate the new snapshot.
//
// The gateway's port-key NAT table (PortTable: T5 with its reverse index,
// the per-address port rings and the session index) is built the other
// way, for a table that changes on every new flow: each worker owns one
// table and is its only writer, so creating, touching and expiring a
// binding takes no lock and no atomic read-modify-write. Other goroutines
// (the control API, metrics) read it through a per-slot sequence lock:
// the owner publishes a binding when it is created, ends or changes TCP
// state, and its counters lazily from the expiry sweep (at most once a
// second per binding), so readers never make the owner wait and see
// counters at most about a second old.
//
// The owner's up lookups (Up, or UpHash, TouchUp and UpHashed for a batch)
// read the up index directly. With many flows each lookup misses the
// cache; TouchUp loads a whole batch's cells in one tight loop so that the
// misses overlap (BENCHMARKS.md, gw-nat).
//
// Behaviour in RFC 4787 terms (the gateway, dp/gw_down.go, applies it):
//   - Mapping: a new key port (external port) per flow key, that is, per
//     mobile address and port and destination address and port:
//     address- and port-dependent mapping (RFC 4787 section 4.1, what
//     RFC 6888 calls a symmetric NAT). Ports rest PortReuseDelay before
//     reuse, and a flow's key is never shared.
//   - Filtering: a down packet to a key port is accepted only from the
//     flow's actual server address and port (for ICMP echo, whose
//     identifier is the key: only from the server's address), and an ICMP
//     error only when the packet it quotes went to that server:
//     address- and port-dependent filtering (RFC 4787 section 5). A
//     packet-unit flow, which sends each up datagram to a new choice,
//     accepts an answer from any server of its service. Everything else
//     is dropped and counted as "filtered", so a host that guesses a key
//     port cannot inject into a subscriber's flow.
//   - Hairpinning is not offered: mobiles reach each other through the
//     operator's network, not through the gateway's key addresses.
package nat
