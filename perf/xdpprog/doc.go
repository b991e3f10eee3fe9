// Package xdpprog holds samepath's small XDP programs for performance work,
// written in C under bpf/ and compiled with bpf2go (the generated *_bpfel.go
// and *_bpfel.o files are committed; regenerate with `make generate`):
//
//   - Gen (bpf/gen.c): the packet generator run with BPF_PROG_RUN and
//     BPF_F_TEST_XDP_LIVE_FRAMES. It rewrites source address, source port,
//     sequence stamp and checksums of every frame and returns XDP_TX, which
//     transmits the frame out of the ingress ifindex of the run context.
//     Per-thread state slots (sequence, pacing interval, frame limit) let a
//     long run transmit at a set rate: runs ahead of schedule return XDP_DROP.
//   - Sink (bpf/sink.c): a counting sink attached to the receiving device;
//     per-CPU totals and per-stream sequence tracking (loss, late frames).
//   - Fwd (bpf/fwd.c): kernel baselines for the device under test: drop,
//     pass, XDP_TX with swapped MACs, XDP_REDIRECT through a devmap.
//
// Ownership: each loaded object owns its kernel programs and maps; Close
// releases them (attachments are links owned by the caller). Loading
// allocates; reading counters allocates one per-CPU slice per call.
package xdpprog
