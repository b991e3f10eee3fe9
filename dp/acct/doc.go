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
// crash (SIGKILL, power loss) loses at most the records not yet fsync'd;
// a record torn by it is skipped by the reader (Scan, Query) and cut off
// by Open before the log is appended to again. A failed write is cut back
// off the file and its records are counted as Failed.
//
// The writer allocates nothing per record once its buffer is grown; Open,
// Register, rotation, Stats, Close and the reader allocate (control
// path).
//
// # Sniffing
//
// HTTPRequest and TLSSNI parse the first payload bytes of a flow, bounded
// by the bytes given (HTTPRequest by MaxScan too), without allocating or
// panicking; Sniff picks one by the first byte (Record.Sniff fills a
// record). Benchmarks:
// BenchmarkPush, BenchmarkWriter, BenchmarkHTTPRequest, BenchmarkTLSSNI.
package acct
