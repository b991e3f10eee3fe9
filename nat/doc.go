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
package nat
