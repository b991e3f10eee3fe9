// Package memport is an in-memory dp.Port. It behaves like an AF_XDP socket
// in copy mode: the worker that owns the port hands free frames to a fill
// ring, the "wire" side copies an injected frame into one of them and queues
// it on the RX ring; frames the worker sends wait on the TX ring until the
// wire side takes them and returns them through the completion ring.
//
// Ownership: the worker goroutine calls the dp.Port methods; one other
// goroutine may call Inject and one (the same or another) may call Take.
// After New, nothing allocates.
package memport

import (
	"fmt"
	"time"

	"samepath/ring"
)

// Port is an in-memory port.
type Port struct {
	name   string
	umem   *ring.Umem
	fill   *ring.SPSC[ring.Desc] // worker -> wire: free frames
	rx     *ring.SPSC[ring.Desc] // wire -> worker: received frames
	tx     *ring.SPSC[ring.Desc] // worker -> wire: frames to send
	comp   *ring.SPSC[ring.Desc] // wire -> worker: sent frames
	notify chan struct{}
	timer  *time.Timer

	// wire-side scratch, so Inject and Take allocate nothing
	one  [1]ring.Desc
	tone [1]ring.Desc
	// worker-side scratch
	wbuf []ring.Desc
}

// Config sizes a port's rings.
type Config struct {
	Name string
	// RingSize is the size of each ring (a power of two).
	RingSize int
}

// DefaultConfig returns a config with 1024-slot rings.
func DefaultConfig(name string) Config { return Config{Name: name, RingSize: 1024} }

// Validate checks the config.
func (c Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("memport: empty name")
	}
	if c.RingSize <= 0 || c.RingSize&(c.RingSize-1) != 0 {
		return fmt.Errorf("memport %s: ring size %d is not a power of two", c.Name, c.RingSize)
	}
	return nil
}

// New returns a port whose frames live in umem. Several ports may share
// one umem (then they must all belong to the same worker).
func New(cfg Config, umem *ring.Umem) (*Port, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Port{name: cfg.Name, umem: umem, notify: make(chan struct{}, 1), wbuf: make([]ring.Desc, cfg.RingSize)}
	var err error
	for _, r := range []**ring.SPSC[ring.Desc]{&p.fill, &p.rx, &p.tx, &p.comp} {
		if *r, err = ring.NewSPSC[ring.Desc](cfg.RingSize); err != nil {
			return nil, fmt.Errorf("memport %s: %w", cfg.Name, err)
		}
	}
	p.timer = time.NewTimer(time.Hour)
	p.timer.Stop()
	p.refill()
	return p, nil
}

// NewUmem is a helper that makes a heap Umem of frames frames of 2048 bytes.
func NewUmem(frames int) (*ring.Umem, error) {
	return ring.NewUmem(make([]byte, frames*2048), 2048)
}

func (p *Port) Name() string     { return p.name }
func (p *Port) Umem() *ring.Umem { return p.umem }

// refill moves free frames from the pool to the fill ring, keeping at most
// half the ring filled so that other ports sharing the umem get frames too.
func (p *Port) refill() {
	want := p.fill.Cap()/2 - p.fill.Len()
	if want <= 0 {
		return
	}
	n := 0
	for ; n < want && n < len(p.wbuf); n++ {
		a, ok := p.umem.Alloc()
		if !ok {
			break
		}
		p.wbuf[n] = ring.Desc{Addr: a}
	}
	pushed := p.fill.Push(p.wbuf[:n])
	for _, d := range p.wbuf[pushed:n] {
		p.umem.Free(d.Addr)
	}
}

// Recv implements dp.Port.
func (p *Port) Recv(d []ring.Desc) (int, error) {
	n := p.rx.Pop(d)
	p.refill()
	return n, nil
}

// Send implements dp.Port.
func (p *Port) Send(d []ring.Desc) (int, error) { return p.tx.Push(d), nil }

// Release implements dp.Port.
func (p *Port) Release(d []ring.Desc) {
	for _, x := range d {
		p.umem.Free(x.Addr)
	}
}

// Flush implements dp.Port: it reclaims frames the wire side has taken.
func (p *Port) Flush() error {
	for {
		n := p.comp.Pop(p.wbuf)
		if n == 0 {
			return nil
		}
		p.Release(p.wbuf[:n])
	}
}

// Wait implements dp.Port.
func (p *Port) Wait(timeout time.Duration) (bool, error) {
	if p.rx.Len() > 0 {
		return true, nil
	}
	p.timer.Reset(timeout)
	select {
	case <-p.notify:
		p.timer.Stop()
		return true, nil
	case <-p.timer.C:
		return false, nil
	}
}

// Inject copies frame into a free frame of the port and queues it for the
// worker to receive. It reports false (the frame is lost, as on a real
// link) when the worker has not provided a free frame or the RX ring is
// full, or when the frame does not fit in a frame. Wire side only.
func (p *Port) Inject(frame []byte) bool {
	if len(frame) > int(p.umem.FrameSize()) {
		return false
	}
	if p.fill.Pop(p.one[:]) == 0 {
		return false
	}
	d := p.one[0]
	copy(p.umem.Frame(d.Addr), frame)
	d.Len = uint32(len(frame))
	p.one[0] = d
	if p.rx.Push(p.one[:]) == 0 {
		// Cannot happen: the RX ring is as large as the fill ring and
		// every frame in RX came from fill. Keep the frame rather than
		// leak it.
		p.fill.Push(p.one[:])
		return false
	}
	select {
	case p.notify <- struct{}{}:
	default:
	}
	return true
}

// Take passes the next transmitted frame to f and returns the frame to the
// port. The bytes are valid only during f. It reports whether there was a
// frame. Wire side only.
func (p *Port) Take(f func([]byte)) bool {
	if p.tx.Pop(p.tone[:]) == 0 {
		return false
	}
	f(p.umem.Bytes(p.tone[0]))
	for p.comp.Push(p.tone[:]) == 0 {
		// The completion ring is as large as the TX ring; it can only be
		// full if the worker is not flushing. Wait for it.
		time.Sleep(10 * time.Microsecond)
	}
	return true
}

// TakeAll drains every transmitted frame, copying each, for tests.
func (p *Port) TakeAll() [][]byte {
	var out [][]byte
	for p.Take(func(b []byte) { out = append(out, append([]byte(nil), b...)) }) {
	}
	return out
}
