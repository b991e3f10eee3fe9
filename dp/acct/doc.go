// Package acct is the gateway's proxy accounting (R-ACCT-1, R-ACCT-2;
// FIG. 28-29 of the patent): T10 records, the durable log they are
// written to, the attribute sniffers that fill in a record's URL or TLS
// server name, and the reader behind `samepathctl accounting`.
//
// # Records
//
// A Record is one user session's flow as the gateway saw it: packets and
// bytes each way, start and end, termination cause, the attribute seen in
// its first payload, and, filled in by the gateway at the end (steps
// S78-S79), the subscriber (user id and device id from T3), the service
// (T6) and the service type (T9) instead of the mobile's addresses. It is
// a fixed-size value without pointers. Interim records carry cumulative
// counters; a flow's last word is its Final record.
//
// # Log
//
// Each producer goroutine (a gateway worker) Registers once and owns its
// Producer: it writes the ring's tail and slots, the writer goroutine
// reads the slots and writes the head. Push copies the record into the
// ring, never blocks and allocates nothing; when the ring is full the
// record is dropped and counted (Stats.Lost), never silently.
//
// One writer goroutine (routineWriter) owns the files: it drains the
// rings in rounds, appends one JSON object per line (AppendJSON) through
// one reused buffer, fsyncs when SyncInterval has passed or SyncRecords
// are unsynced, and rotates by size (path -> path.1 -> ... path.Keep). A
// crash (SIGKILL, power loss) loses at most the records not yet fsync'd
// (and live flows' usage since their last checkpoint, see Checkpoints);
// a record torn by it is skipped by the reader (Scan, Query) and cut off
// by Open before the log is appended to again. A failed write is cut back
// off the file and its records are counted as Failed.
//
// The writer allocates nothing per record once its buffer is grown; Open,
// Register, rotation, Stats, Close and the reader allocate (control
// path).
//
// # Checkpoints
//
// Records name their flow ("flow": the worker's random boot id and a
// sequence number), so interim, checkpoint and final records of one flow
// are tied together across restarts. A gateway worker pushes a
// Checkpoint record (Producer.Checkpoint, only while its ring is at most
// half full) for each live flow whose counters changed, once per
// CheckpointInterval (the SyncInterval); see dp/gw_acct.go. The writer
// never puts checkpoints in the log: it keeps each flow's newest
// checkpoint or interim record in its producer's checkpoint file
// (path.ckpt.N), a slot per binding id in two CRC'd halves, so that a
// write torn by a crash leaves the previous one; it fsyncs the file after
// the log and clears a flow's slot once its final record is fsync'd (a
// clean Close leaves no file). Open, before anything else, writes a final
// record with cause gateway-restart, from its last checkpoint (End: the
// checkpoint's time), for every flow left in a checkpoint file with no
// final record in the current log file (the flow ids tell), fsyncs, and
// removes the files (Stats.Recovered). A checkpoint never counts as
// usage: the reader sees only final and interim records.
//
// Worst-case loss (R-ACCT-2). A flow's usage reaches its checkpoint slot
// at most I + S + P after it moves: I the checkpoint interval
// (SyncInterval, default 200 ms), S one sweep of the gateway's table
// (256 slots and at most 32 checkpoints per poll round: capacity/256 or
// changed flows/32 rounds, whichever is more; about 40 ms for a table of
// a million flows at 10 µs a round) and P the writer's PollInterval
// (2 ms). A crash of the gateway process (SIGKILL, panic) loses at most
// that: about 200 ms of each live flow's usage (before checkpoints a
// killed download lost 18% of its bytes with interim records every
// second, all of them without). A power loss loses also what was not
// fsync'd, up to one more SyncInterval: I + S + P + I, about 400 ms. Flows
// that end have their final records as before (at most the last fsync
// batch). A ring more than half full defers checkpoints (counted in
// Stats.CheckpointsDeferred), stretching S.
//
// Cost: BenchmarkGWAccounting's paired runs (the gateway with accounting
// off, on without checkpoints, on with them, alternating; 5 runs of 2 s
// on a shared 2-core VM, noisy) put accounting with checkpoints at
// 0.96-1.00x accounting without them for 64 B packets of 1 flow, and at
// 1.03-1.12x (median 1.09x) for 64 B packets over 10 000 flows that all
// move between two sweeps: the worst case, every flow checkpointed every
// 200 ms, 50 000 checkpoints a second, whose pwrites by the writer
// goroutine share the two cores with the worker. A CPU profile of that
// case splits it: the worker's sweep (dp's acctCheckpoint) is 2.5% of
// the worker's time, the writer's checkpoint writes 6% of a core (a core
// of its own in a deployment). Idle flows cost only the sweep's look at
// their slot. The checkpoint file takes 1 KiB per
// binding id in use.
//
// # Sniffing
//
// HTTPRequest and TLSSNI parse the first payload bytes of a flow, bounded
// by the bytes given (HTTPRequest by MaxScan too), without allocating or
// panicking; Sniff picks one by the first byte (Record.Sniff fills a
// record). Benchmarks:
// BenchmarkPush, BenchmarkWriter, BenchmarkHTTPRequest, BenchmarkTLSSNI;
// the gateway's, dp's BenchmarkGWAccounting.
package acct
