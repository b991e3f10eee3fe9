// Package nat holds the dataplane's lookup tables: T4, the load balancers'
// source-range -> gateway table (FIG. 14), and the gateways' port-key NAT
// tables.
//
// Readers are the poll-loop workers and never take a lock: a table is an
// immutable snapshot published through an atomic pointer, and writers
// (the control API) build a new snapshot and swap it in. Lookups allocate
// nothing; updates allocate the new snapshot.
package nat
