package ring

import (
	"fmt"
	"sync/atomic"
)

// SPSC is a bounded lock-free ring with one producer goroutine and one
// consumer goroutine. Each side caches the other's index and reads it
// (atomically) only when the cache says the ring looks full or empty, and
// publishes its own index once per batch.
type SPSC[T any] struct {
	buf  []T
	mask uint64

	_    [64]byte
	head atomic.Uint64 // next slot to read; written by the consumer
	_    [56]byte
	tail atomic.Uint64 // next slot to write; written by the producer
	_    [56]byte

	// producer-local
	cachedHead uint64
	_          [56]byte
	// consumer-local
	cachedTail uint64
}

// NewSPSC makes a ring of size slots (a power of two).
func NewSPSC[T any](size int) (*SPSC[T], error) {
	if size <= 0 || size&(size-1) != 0 {
		return nil, fmt.Errorf("spsc ring size %d: want a power of two", size)
	}
	return &SPSC[T]{buf: make([]T, size), mask: uint64(size - 1)}, nil
}

// Push appends as many of v as fit and returns how many did. Producer only.
func (r *SPSC[T]) Push(v []T) int {
	t := r.tail.Load()
	size := uint64(len(r.buf))
	if t-r.cachedHead+uint64(len(v)) > size {
		r.cachedHead = r.head.Load()
	}
	free := size - (t - r.cachedHead)
	n := uint64(len(v))
	if n > free {
		n = free
	}
	for i := uint64(0); i < n; i++ {
		r.buf[(t+i)&r.mask] = v[i]
	}
	if n > 0 {
		r.tail.Store(t + n)
	}
	return int(n)
}

// Pop moves up to len(v) entries into v and returns how many. Consumer only.
func (r *SPSC[T]) Pop(v []T) int {
	h := r.head.Load()
	if r.cachedTail-h < uint64(len(v)) {
		r.cachedTail = r.tail.Load()
	}
	n := r.cachedTail - h
	if n > uint64(len(v)) {
		n = uint64(len(v))
	}
	var zero T
	for i := uint64(0); i < n; i++ {
		v[i] = r.buf[(h+i)&r.mask]
		r.buf[(h+i)&r.mask] = zero
	}
	if n > 0 {
		r.head.Store(h + n)
	}
	return int(n)
}

// Len is the number of entries queued; exact only when both sides are idle.
func (r *SPSC[T]) Len() int { return int(r.tail.Load() - r.head.Load()) }

// Cap is the number of slots.
func (r *SPSC[T]) Cap() int { return len(r.buf) }
