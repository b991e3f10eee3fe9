// Package linkem is a user-space link emulator, since this kernel has no
// netem: it bridges two interfaces (normally two veth ends in a namespace of
// their own) with AF_PACKET sockets and adds, per direction, a one-way delay,
// jitter, random loss (seeded, so runs repeat) and a rate cap (token bucket
// with a drop-tail backlog limit).
//
// The testbed puts it on the wireless side of FIG. 2 (mobile <-> NAS). The
// interfaces that send into it must have transmit checksum offload (hence TSO)
// off and its own interfaces GRO off, so that every frame it reads is one
// complete packet; the testbed does that (topo.SetTxChecksum / SetGRO).
//
// Goroutines: per direction one reader (owns the receive socket, decides loss
// and departure time) and one writer (owns the queue's consumer side and the
// transmit socket); they share frames through a bounded channel, buffers
// through a free list. Frames are copied once, into buffers allocated on
// first use and recycled; nothing else is allocated per frame. The clock is
// read once per frame on each side (emulating time is the job).
package linkem
