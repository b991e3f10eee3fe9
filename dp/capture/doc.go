// Package capture takes copies of the frames a dataplane worker handles,
// with the worker's verdict on each, and writes them as pcapng (what
// `samepathctl capture` asks a samepathd for; tcpdump on an AF_XDP
// interface sees nothing the pollers forward).
//
// A Session is one capture: a Filter (received-on port, classic BPF on
// the received frame, a 5-tuple, dropped frames only), a bounded frame
// count and a bounded duration. It makes one Tap per worker; the worker
// holds the armed Tap behind one atomic pointer (dp.Worker.SetTap) and,
// when one is armed, calls Begin, Before for each frame of a batch
// before its pipeline runs, After for each frame Before kept, and Commit.
// Unarmed, the worker pays one atomic load per batch and nothing per
// packet.
//
// Ownership: a Tap's ring of records is single-producer single-consumer.
// The worker's goroutine writes records into free slots and publishes
// them once per batch (Commit); the session's goroutine (Session.Run)
// drains published slots every DrainInterval and writes them out. A full
// ring never blocks the worker: the frame is not captured and counted
// lost. Each record holds the frame as received and, when it was
// forwarded, as sent (after rewriting); the session writes both as
// pcapng packets with the same packet ID, their direction in the flags
// word and the worker, port and verdict in a comment.
//
// Allocation: New preallocates every record's buffers (Ring records of
// 2 x SnapLen bytes per worker); Begin, Before, After and Commit allocate
// nothing. The session allocates while writing, on its own goroutine.
// Cost: BenchmarkTap here (per frame, the tap alone) and
// BenchmarkGWCapture in dp (per packet, through the gateway), both in
// BENCHMARKS.md "micro".
//
// Libraries: pcapng is written by github.com/gopacket/gopacket/pcapgo
// (NgWriter: interfaces, packet comments, flags, packet IDs), the
// maintained fork of google/gopacket, whose last release is from 2020;
// BPF programs run in golang.org/x/net/bpf's VM, which checks a program
// before it runs and never reads outside the frame.
package capture
