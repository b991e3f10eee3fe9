package xsk

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrClosed is returned by control calls on a closed Socket or Umem.
var ErrClosed = errors.New("xsk: closed")

// Mode is how a socket binds to its queue.
type Mode int

const (
	// ModeAuto tries zero-copy and falls back to copy mode when the driver
	// refuses it (EOPNOTSUPP or EINVAL), logging the fallback once per Umem.
	ModeAuto Mode = iota
	// ModeCopy binds in copy mode (XDP_COPY): the kernel copies each frame
	// between its own buffers and the UMEM. veth supports only this.
	ModeCopy
	// ModeZeroCopy binds in zero-copy mode (XDP_ZEROCOPY) or fails.
	ModeZeroCopy
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeCopy:
		return "copy"
	case ModeZeroCopy:
		return "zero-copy"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// UmemConfig sizes a UMEM.
type UmemConfig struct {
	// Frames is the number of frames. Every socket on the UMEM keeps up to
	// FillSize of them lent to the kernel on its fill ring, so Frames should
	// exceed the sum of the sockets' FillSize by the frames the worker wants
	// for packets in flight (TX rings, its own batches, generated packets).
	Frames int
	// FrameSize is the size of one frame: a power of two, 2048 or 4096 (the
	// kernel's aligned-chunk mode allows 2048 up to the page size).
	FrameSize uint32
	// Headroom is reserved by the kernel in front of each received packet,
	// after its own XDP_PACKET_HEADROOM (256 bytes), for encapsulation.
	Headroom uint32
	// Logger receives the one-time copy-mode fallback message; nil means
	// slog.Default().
	Logger *slog.Logger
}

// DefaultUmemConfig returns 8192 frames of 2048 bytes (16 MiB): enough for
// two sockets with full 2048-slot fill rings plus 4096 frames in flight.
// 2048-byte frames hold a 1500-byte MTU frame after the kernel's 256-byte
// headroom; use 4096 for jumbo frames.
func DefaultUmemConfig() UmemConfig {
	return UmemConfig{Frames: 8192, FrameSize: 2048}
}

// Validate checks the config.
func (c UmemConfig) Validate() error {
	switch {
	case c.FrameSize != 2048 && c.FrameSize != 4096:
		return fmt.Errorf("xsk umem frame size %d: want 2048 or 4096", c.FrameSize)
	case c.Frames <= 0 || c.Frames > 1<<20:
		return fmt.Errorf("xsk umem frames %d: want 1..%d", c.Frames, 1<<20)
	case c.Headroom > c.FrameSize/2:
		return fmt.Errorf("xsk umem headroom %d: want at most half the %d-byte frame", c.Headroom, c.FrameSize)
	}
	return nil
}

// Config configures one socket: one queue of one interface.
type Config struct {
	// Ifname is the interface; Queue its RX/TX queue index.
	Ifname string
	Queue  int
	// Ring sizes in descriptors, powers of two. The fill and completion rings
	// belong to the socket even when its UMEM is shared (one pair per
	// device and queue, as the kernel requires).
	RxSize, TxSize, FillSize, CompSize int
	// Mode is zero-copy, copy, or try zero-copy then copy. Sockets after the
	// first on a shared UMEM inherit the first one's mode (the kernel takes
	// no mode flags with XDP_SHARED_UMEM), so Mode is only read for the first.
	Mode Mode
	// NeedWakeup sets XDP_USE_NEED_WAKEUP: the kernel flags the rings when
	// it needs a syscall to make progress, so Flush and Recv only make
	// syscalls when flagged. Like Mode, the first socket of a UMEM decides.
	NeedWakeup bool
	// BusyPoll, when set, sets SO_PREFER_BUSY_POLL, SO_BUSY_POLL (µs) and
	// SO_BUSY_POLL_BUDGET, and makes Recv kick the kernel with recvfrom
	// whenever its RX ring is empty. The NIC needs napi_defer_hard_irqs and
	// gro_flush_timeout set for this to pay off.
	BusyPoll       bool
	BusyPollTime   time.Duration
	BusyPollBudget int
	// TxBudget is how many frames one sendto may transmit in copy mode
	// (XDP_MAX_TX_SKB_BUDGET, kernel >= 6.17; ignored where unsupported).
	// 0 means TxSize.
	TxBudget int
	// BindBusyWait bounds how long New retries a bind the kernel refuses
	// with EBUSY because the queue still belongs to a socket it is
	// releasing (a process killed just before: the kernel frees the old
	// socket's pool from a work queue). The retries back off from 10 ms,
	// doubling up to 500 ms, until their sleeps add up to BindBusyWait;
	// each is logged. 0: no retry. Other errors are never retried.
	BindBusyWait time.Duration
}

// DefaultConfig returns 2048-slot rings, zero-copy with copy fallback, and
// need_wakeup, for queue queue of ifname, retrying a busy queue's bind for
// up to 3 s.
func DefaultConfig(ifname string, queue int) Config {
	return Config{
		Ifname: ifname, Queue: queue,
		RxSize: 2048, TxSize: 2048, FillSize: 2048, CompSize: 2048,
		Mode: ModeAuto, NeedWakeup: true,
		BusyPollTime: 20 * time.Microsecond, BusyPollBudget: 64,
		BindBusyWait: 3 * time.Second,
	}
}

const maxRing = 1 << 16

// Validate checks the config.
func (c Config) Validate() error {
	if c.Ifname == "" || len(c.Ifname) > 15 {
		return fmt.Errorf("xsk interface name %q: want 1..15 bytes", c.Ifname)
	}
	if c.Queue < 0 {
		return fmt.Errorf("xsk %s: queue %d < 0", c.Ifname, c.Queue)
	}
	for _, r := range []struct {
		name string
		n    int
	}{{"rx", c.RxSize}, {"tx", c.TxSize}, {"fill", c.FillSize}, {"completion", c.CompSize}} {
		if r.n <= 0 || r.n > maxRing || r.n&(r.n-1) != 0 {
			return fmt.Errorf("xsk %s/q%d: %s ring size %d: want a power of two in 1..%d", c.Ifname, c.Queue, r.name, r.n, maxRing)
		}
	}
	if c.Mode < ModeAuto || c.Mode > ModeZeroCopy {
		return fmt.Errorf("xsk %s/q%d: unknown mode %d", c.Ifname, c.Queue, int(c.Mode))
	}
	if c.BusyPoll && (c.BusyPollTime <= 0 || c.BusyPollTime > time.Second || c.BusyPollBudget <= 0 || c.BusyPollBudget > 65535) {
		return fmt.Errorf("xsk %s/q%d: busy poll %v budget %d: want 0 < time <= 1s, 0 < budget <= 65535", c.Ifname, c.Queue, c.BusyPollTime, c.BusyPollBudget)
	}
	if c.TxBudget < 0 {
		return fmt.Errorf("xsk %s/q%d: tx budget %d < 0", c.Ifname, c.Queue, c.TxBudget)
	}
	if c.BindBusyWait < 0 || c.BindBusyWait > time.Minute {
		return fmt.Errorf("xsk %s/q%d: bind busy wait %v: want 0..1m", c.Ifname, c.Queue, c.BindBusyWait)
	}
	return nil
}
