package xsk

import (
	"sync/atomic"

	"samepath/ring"
)

// An AF_XDP ring is a power-of-two array of entries with a producer and a
// consumer index, both free-running uint32 counters that wrap; entry i lives
// at slot i&mask. The kernel produces on RX and completion, we produce on
// fill and TX. Each side caches the other side's index and re-reads it (an
// atomic load, which orders the entry reads after it) only when the cached
// value says the ring is empty or full; it publishes its own index with an
// atomic store once per batch, after writing the entries.
//
//	free slots (producer view) = cachedCons + size - cachedProd
//	filled slots (consumer view) = cachedProd - cachedCons
//
// Both differences are computed in uint32 so they stay right across wrap.

// ringIdx is the index half of a ring, shared by all four rings.
type ringIdx struct {
	producer *uint32 // in the mmap'd ring
	consumer *uint32 // in the mmap'd ring
	flags    *uint32 // in the mmap'd ring (XDP_RING_NEED_WAKEUP)
	mask     uint32
	size     uint32
	// Producer side: prod is our next slot, cons the cached consumer + size.
	// Consumer side: cons is our next slot, prod the cached producer.
	prod, cons uint32
}

func newProdIdx(producer, consumer, flags *uint32, size uint32) ringIdx {
	r := ringIdx{producer: producer, consumer: consumer, flags: flags, mask: size - 1, size: size}
	r.prod = atomic.LoadUint32(producer)
	r.cons = atomic.LoadUint32(consumer) + size
	return r
}

func newConsIdx(producer, consumer, flags *uint32, size uint32) ringIdx {
	r := ringIdx{producer: producer, consumer: consumer, flags: flags, mask: size - 1, size: size}
	r.cons = atomic.LoadUint32(consumer)
	r.prod = atomic.LoadUint32(producer)
	return r
}

// free returns how many slots up to want a producer may fill now.
func (r *ringIdx) free(want uint32) uint32 {
	n := r.cons - r.prod
	if n < want {
		r.cons = atomic.LoadUint32(r.consumer) + r.size
		n = r.cons - r.prod
	}
	return min(n, want)
}

// submit publishes n produced slots.
func (r *ringIdx) submit(n uint32) {
	r.prod += n
	atomic.StoreUint32(r.producer, r.prod)
}

// avail returns how many filled slots up to want a consumer may read now.
func (r *ringIdx) avail(want uint32) uint32 {
	n := r.prod - r.cons
	if n == 0 {
		r.prod = atomic.LoadUint32(r.producer)
		n = r.prod - r.cons
	}
	return min(n, want)
}

// release gives n consumed slots back to the producer.
func (r *ringIdx) release(n uint32) {
	r.cons += n
	atomic.StoreUint32(r.consumer, r.cons)
}

// needWakeup reports whether the kernel flagged the ring as needing a
// syscall to make progress.
func (r *ringIdx) needWakeup() bool {
	return atomic.LoadUint32(r.flags)&xdpRingNeedWakeup != 0
}

// pending is, for a producer ring, how many published slots the kernel has
// not consumed yet.
func (r *ringIdx) pending() uint32 { return r.prod - atomic.LoadUint32(r.consumer) }

// addrRing is a fill or completion ring: entries are UMEM addresses.
type addrRing struct {
	ringIdx
	addrs []uint64 // size entries, in the mmap'd ring
}

// descRing is an RX or TX ring: entries are descriptors.
type descRing struct {
	ringIdx
	descs []ring.Desc // size entries, in the mmap'd ring
}

// fillFrom moves up to want frames from pool onto the fill ring and
// publishes them; it returns how many.
func (r *addrRing) fillFrom(pool *ring.FramePool, want uint32) uint32 {
	n := r.free(min(want, uint32(pool.Len())))
	if n == 0 {
		return 0
	}
	for i := uint32(0); i < n; i++ {
		a, _ := pool.Get()
		r.addrs[(r.prod+i)&r.mask] = a
	}
	r.submit(n)
	return n
}

// drainTo moves every completed address to u's pool and returns how many.
func (r *addrRing) drainTo(u *ring.Umem) uint32 {
	n := r.avail(r.size)
	if n == 0 {
		return 0
	}
	for i := uint32(0); i < n; i++ {
		u.Free(r.addrs[(r.cons+i)&r.mask])
	}
	r.release(n)
	return n
}

// read copies up to len(d) descriptors out of the ring and releases them.
func (r *descRing) read(d []ring.Desc) int {
	n := r.avail(uint32(min(len(d), maxRing)))
	if n == 0 {
		return 0
	}
	for i := uint32(0); i < n; i++ {
		d[i] = r.descs[(r.cons+i)&r.mask]
	}
	r.release(n)
	return int(n)
}

// write copies as many of d as fit into the ring, publishes them and
// returns how many.
func (r *descRing) write(d []ring.Desc) int {
	n := r.free(uint32(min(len(d), maxRing)))
	if n == 0 {
		return 0
	}
	for i := uint32(0); i < n; i++ {
		r.descs[(r.prod+i)&r.mask] = d[i]
	}
	r.submit(n)
	return int(n)
}

const xdpRingNeedWakeup = 1 // XDP_RING_NEED_WAKEUP
