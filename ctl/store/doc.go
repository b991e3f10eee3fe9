// Package store is the control process's durable state: an embedded bbolt
// database (T1 gateways, T2 users, T3 sessions, address assignments, the
// gateway-push outbox) plus the session log (one JSON object per line).
//
// Writes go through a group committer: callers change their in-memory tables
// under their own lock, hand the matching key/value operations (and session
// log lines) to Enqueue, which returns a sequence number at once, and later
// call Wait(seq) before they answer anyone (Access-Accept, Accounting-Response,
// API reply). One goroutine (RoutineCommit) drains the queue: it appends the
// log lines and fsyncs the log first, then applies every operation in one
// bbolt transaction and commits it (fsync). A batch therefore becomes durable
// as a whole, in Enqueue order; a log line is durable no later than the table
// change it describes, so after a crash a Close is logged at least once.
//
// Enqueue never blocks on disk, so it may be called with the caller's lock
// held. OnCommit callbacks run on the commit goroutine after the batch is
// durable and must not call Wait.
//
// Allocation: each Enqueue appends to a slice owned by the committer; values
// are copied by the caller (the store keeps the slices it is given).
package store
