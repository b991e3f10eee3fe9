package dp

import (
	"time"

	"samepath/ring"
)

// Port is one receive/transmit queue of a network interface as the engine
// sees it. AF_XDP sockets (ring/xsk) and in-memory ports (ring/memport)
// implement it. A Port belongs to the one worker goroutine that polls it.
//
// Frames live in the port's Umem. Received descriptors belong to the caller
// until it hands them to Send (of a port sharing the same Umem) or Release.
type Port interface {
	// Name identifies the port in counters and logs, e.g. "eth0/q0".
	Name() string
	// Umem is the frame memory the port's descriptors index. Ports that
	// return the same *ring.Umem exchange descriptors without copying.
	Umem() *ring.Umem
	// Recv fills d with received frames and returns how many.
	Recv(d []ring.Desc) (int, error)
	// Send queues frames for transmission and takes ownership of the first
	// n it returns; the rest stay with the caller.
	Send(d []ring.Desc) (int, error)
	// Release gives frames the caller will not send back to the port.
	Release(d []ring.Desc)
	// Flush kicks pending transmissions and reclaims completed frames.
	Flush() error
	// Wait blocks until the port may have frames to receive or timeout
	// passes; it reports whether frames may be ready.
	Wait(timeout time.Duration) (bool, error)
}
