package xsk

import (
	"fmt"
	"log/slog"

	"golang.org/x/sys/unix"

	"samepath/ring"
)

// Umem is an mmap'd area registered with the kernel as an AF_XDP UMEM and
// shared by every socket opened on it: a frame received on one socket can
// be sent on another by handing over its descriptor. The frames and their
// free pool are the *ring.Umem that Ring (and every socket's Umem method)
// returns.
//
// A Umem, its sockets and its frames belong to one worker goroutine;
// nothing here locks.
type Umem struct {
	cfg  UmemConfig
	log  *slog.Logger
	mem  []byte
	ring *ring.Umem

	socks      []*Socket // open sockets; socks[0] is the one others share through
	mode       Mode      // ModeCopy or ModeZeroCopy once a socket is bound
	needWakeup bool      // need_wakeup as bound by the first socket
	fellBack   bool      // the zero-copy fallback was logged
	closed     bool
}

// NewUmem maps an anonymous area of cfg.Frames frames. The kernel sees it
// when the first socket opens on it.
func NewUmem(cfg UmemConfig) (*Umem, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	size := cfg.Frames * int(cfg.FrameSize)
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap xsk umem of %d bytes: %w", size, err)
	}
	r, err := ring.NewUmem(mem, cfg.FrameSize)
	if err != nil {
		_ = unix.Munmap(mem)
		return nil, fmt.Errorf("xsk umem: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Umem{cfg: cfg, log: log, mem: mem, ring: r}, nil
}

// Ring is the frame memory and free pool the sockets share.
func (u *Umem) Ring() *ring.Umem { return u.ring }

// Mode reports how the sockets are bound: ModeCopy or ModeZeroCopy, or
// ModeAuto while no socket is open.
func (u *Umem) Mode() Mode {
	if len(u.socks) == 0 {
		return ModeAuto
	}
	return u.mode
}

// Sockets returns the open sockets, in the order they were opened.
func (u *Umem) Sockets() []*Socket { return append([]*Socket(nil), u.socks...) }

// Close closes every socket still open on the UMEM and unmaps it. Calling
// it again does nothing.
func (u *Umem) Close() error {
	if u.closed {
		return nil
	}
	u.closed = true
	var first error
	for len(u.socks) > 0 {
		if err := u.socks[len(u.socks)-1].Close(); err != nil && first == nil {
			first = err
		}
	}
	if err := unix.Munmap(u.mem); err != nil && first == nil {
		first = fmt.Errorf("munmap xsk umem: %w", err)
	}
	u.mem = nil
	return first
}

func (u *Umem) remove(s *Socket) {
	for i, x := range u.socks {
		if x == s {
			u.socks = append(u.socks[:i], u.socks[i+1:]...)
			return
		}
	}
}
