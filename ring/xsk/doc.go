// Package xsk implements dp.Port on AF_XDP sockets, written directly on
// golang.org/x/sys/unix.
//
// # Why not asavie/xdp
//
// asavie/xdp v0.3.3 reads the ring indices the kernel writes without
// atomics (a data race the compiler may turn into a stale loop), gives each
// socket its own UMEM (so forwarding between ports copies every byte),
// knows nothing of need_wakeup (a sendto per batch even when the kernel
// does not need one), defaults to 128 frames, keeps mutable package
// globals and returns slices the next call overwrites. Fixing that means
// rewriting its core, and what is left is small, so we replaced it: this
// package mmaps the rings itself, reads and publishes their indices with
// sync/atomic, caches the other side's index and publishes its own once
// per batch, and shares one UMEM between the sockets of a worker.
//
// # Sharing one UMEM
//
// A Umem (NewUmem) is an anonymous mmap cut into frames and wrapped in a
// *ring.Umem, whose O(1) pool holds the free frames. The first socket
// opened on it (New) registers the memory (XDP_UMEM_REG) and binds
// normally; every later one binds with XDP_SHARED_UMEM to the first and
// sets its own fill and completion rings (XDP_UMEM_FILL_RING,
// XDP_UMEM_COMPLETION_RING), which the kernel requires when the sockets
// are on different devices or queues. So a frame received on one socket is
// transmitted on another by moving its descriptor: no byte is copied.
// Each socket keeps up to FillSize frames lent to the kernel on its fill
// ring; size the Umem for the sum of the sockets' fill rings plus what is
// in flight (DefaultUmemConfig: 8192 frames of 2048 bytes = 16 MiB).
//
// With XDP_SHARED_UMEM the kernel takes no mode flags: the later sockets
// inherit copy or zero-copy, and need_wakeup, from the first.
//
// # Modes
//
// ModeAuto binds with XDP_ZEROCOPY first and, when the driver answers
// EOPNOTSUPP or EINVAL, binds in copy mode (XDP_COPY) on a fresh socket,
// logging that once per Umem through log/slog.
//
// # A busy queue
//
// A queue still bound to another socket answers bind with EBUSY before any
// mode check. That is also what a restart right after SIGKILL meets: the
// kernel releases the killed process's socket pool from a work queue, a
// little after the process is gone. New retries such a bind (only EBUSY),
// backing off from 10 ms, doubling up to 500 ms, until the sleeps add up
// to Config.BindBusyWait (DefaultConfig: 3 s; NewShared uses it, so
// samepathd's lb and gw roles do), logging each retry with its attempt
// number and error (TestBindRetriesBusyQueue, TestRetryBusy).
//
// Measured on kernel 6.18 (2026-11-25), by the tests in veth_test.go:
//   - veth: zero-copy bind fails with EOPNOTSUPP ("operation not
//     supported"); copy mode works. The loopback device behaves the same.
//   - XDP_SHARED_UMEM works across two veth devices and across two queues
//     of one veth, each socket with its own fill and completion rings: a
//     frame received on a0 leaves b0 from the same UMEM address
//     (TestHairpinSharedUmem), and sockets on a0/q0 and a0/q1 share the
//     UMEM (TestMultiQueue; veth delivers on the receiver's queue equal to
//     the sender's TX queue, which an AF_XDP sender sets to its own queue).
//   - With need_wakeup in copy mode the kernel keeps XDP_RING_NEED_WAKEUP
//     set on the TX ring (every transmission needs a sendto) and never on
//     the fill ring (Recv makes no syscall).
//   - XDP_MAX_TX_SKB_BUDGET (6.17+) is accepted; it is set to the TX ring
//     size so one sendto transmits a whole batch in copy mode (older
//     kernels send 32 per call, and Flush kicks up to 4 times).
//
// # Hot path
//
// Socket implements dp.Port: Recv reads RX descriptors and refills the
// fill ring from the pool in the same call; Send writes TX descriptors;
// Flush kicks TX with sendto(MSG_DONTWAIT) only when the TX ring holds
// frames the kernel has not taken and, with need_wakeup, the kernel set
// XDP_RING_NEED_WAKEUP; then it returns completed frames to the pool. Wait
// is ppoll(2) for POLLIN. With BusyPoll set, the socket options
// SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET are set and
// Recv calls recvfrom when its RX ring is empty, to drive the NAPI loop.
//
// The RX and completion consumers re-read the kernel's producer index only
// when their cached view is empty, and the fill and TX producers re-read
// the consumer index only when the cached free space is short, as libxdp
// does: the shared cache lines are touched about once per batch.
//
// # Ownership and allocation
//
// A Umem, its sockets and its frames belong to one worker goroutine;
// nothing locks. Descriptors returned by Recv belong to the caller until
// Send or Release. Recv, Send, Release, Flush and Wait allocate nothing
// (TestNoAllocs); New, Close and Stats allocate. Close returns the frames
// a socket's rings still hold to the pool and is safe to call twice; a
// Umem's Close closes its sockets and unmaps the memory. All raw unsafe
// code is in sys_unsafe.go.
//
// The XDP program that steers frames into the sockets is in xdpfilter.
package xsk
