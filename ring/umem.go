package ring

import (
	"errors"
	"fmt"
)

// ErrNoFrame is returned when a Umem has no free frame left.
var ErrNoFrame = errors.New("no free frame")

// Umem is a contiguous memory area cut into frames of FrameSize bytes, with
// the pool of frames not currently in use. Ports that return the same *Umem
// exchange descriptors without copying bytes.
//
// A Umem belongs to one worker goroutine.
type Umem struct {
	mem       []byte
	frameSize uint32
	pool      FramePool
}

// NewUmem cuts mem into frames of frameSize bytes (a power of two, >= 2048)
// and puts every frame in the free pool.
func NewUmem(mem []byte, frameSize uint32) (*Umem, error) {
	if frameSize < 2048 || frameSize&(frameSize-1) != 0 {
		return nil, fmt.Errorf("umem frame size %d: want a power of two >= 2048", frameSize)
	}
	n := len(mem) / int(frameSize)
	if n == 0 {
		return nil, fmt.Errorf("umem of %d bytes holds no %d-byte frame", len(mem), frameSize)
	}
	u := &Umem{mem: mem, frameSize: frameSize}
	u.pool.init(n)
	for i := n - 1; i >= 0; i-- {
		u.pool.Put(uint64(i) * uint64(frameSize))
	}
	return u, nil
}

// Mem is the whole area, for registering it with the kernel.
func (u *Umem) Mem() []byte { return u.mem }

// FrameSize is the size of every frame.
func (u *Umem) FrameSize() uint32 { return u.frameSize }

// Frames is the number of frames in the area.
func (u *Umem) Frames() int { return len(u.mem) / int(u.frameSize) }

// Pool is the free-frame pool.
func (u *Umem) Pool() *FramePool { return &u.pool }

// Bytes returns the frame d describes. The slice aliases the Umem and stays
// valid while the caller owns d.
func (u *Umem) Bytes(d Desc) []byte {
	end := d.Addr + uint64(d.Len)
	if end > uint64(len(u.mem)) {
		return nil
	}
	return u.mem[d.Addr:end:end]
}

// Room returns the frame buffer from d.Addr to the end of its frame: the
// space a packet starting at d.Addr may grow into.
func (u *Umem) Room(d Desc) []byte {
	end := (d.Addr | uint64(u.frameSize-1)) + 1
	if end > uint64(len(u.mem)) || d.Addr >= end {
		return nil
	}
	return u.mem[d.Addr:end:end]
}

// Frame returns the whole frame that holds addr, for writing a new packet.
func (u *Umem) Frame(addr uint64) []byte {
	base := addr &^ uint64(u.frameSize-1)
	if base+uint64(u.frameSize) > uint64(len(u.mem)) {
		return nil
	}
	return u.mem[base : base+uint64(u.frameSize) : base+uint64(u.frameSize)]
}

// Alloc takes a free frame. It returns the frame's address.
func (u *Umem) Alloc() (uint64, bool) { return u.pool.Get() }

// Free returns the frame holding addr to the pool.
func (u *Umem) Free(addr uint64) { u.pool.Put(addr &^ uint64(u.frameSize-1)) }
