// Package ring holds the memory the dataplane moves packets in: frame
// descriptors (the layout of the kernel's struct xdp_desc), UMEM areas cut
// into fixed-size frames, an O(1) pool of free frames and a lock-free
// single-producer single-consumer ring.
//
// Ownership: a Umem and its FramePool belong to one worker goroutine; nothing
// here locks. SPSC rings are the only structure meant to be shared between two
// goroutines, one on each end. Nothing in this package allocates after New.
package ring
