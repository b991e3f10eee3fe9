package ring

// FramePool is a LIFO stack of free frame addresses: Get and Put are O(1)
// and allocate nothing. LIFO order hands out the most recently used frame,
// which is likely still in cache. A FramePool belongs to one goroutine.
type FramePool struct {
	free []uint64
	n    int
}

func (p *FramePool) init(capacity int) { p.free = make([]uint64, capacity) }

// Get takes a frame address; ok is false when the pool is empty.
func (p *FramePool) Get() (addr uint64, ok bool) {
	if p.n == 0 {
		return 0, false
	}
	p.n--
	return p.free[p.n], true
}

// Put returns a frame address. Putting more frames than the pool was made
// for means a frame was freed twice: it panics, as that is a program bug
// that would otherwise corrupt packets silently.
func (p *FramePool) Put(addr uint64) {
	if p.n == len(p.free) {
		panic("ring: frame pool overflow (frame freed twice)")
	}
	p.free[p.n] = addr
	p.n++
}

// Len is the number of free frames.
func (p *FramePool) Len() int { return p.n }

// Cap is the number of frames the pool can hold.
func (p *FramePool) Cap() int { return len(p.free) }
