package linkem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// maxFrame bounds one frame (jumbo MTU plus header); larger reads are counted
// as Oversize and dropped.
const maxFrame = 9216 + 14

// queueFrames bounds the frames in flight per direction.
const queueFrames = 8192

// Stats counts one direction.
type Stats struct {
	Frames    uint64 `json:"frames"`     // read from the input side
	Forwarded uint64 `json:"forwarded"`  // written to the output side
	Bytes     uint64 `json:"bytes"`      // bytes forwarded
	Lost      uint64 `json:"lost"`       // dropped by the loss setting
	QueueDrop uint64 `json:"queue_drop"` // dropped by the rate cap's backlog limit or a full queue
	Oversize  uint64 `json:"oversize"`   // too big to relay
	TxErrors  uint64 `json:"tx_errors"`  // write failed (link down, ...)
	RxDrops   uint64 `json:"rx_drops"`   // dropped by the kernel before linkem read them (it fell behind)
}

type stats struct {
	frames, forwarded, bytes, lost, queueDrop, oversize, txErrors, rxDrops atomic.Uint64
}

func (s *stats) snapshot() Stats {
	return Stats{Frames: s.frames.Load(), Forwarded: s.forwarded.Load(), Bytes: s.bytes.Load(), Lost: s.lost.Load(),
		QueueDrop: s.queueDrop.Load(), Oversize: s.oversize.Load(), TxErrors: s.txErrors.Load(), RxDrops: s.rxDrops.Load()}
}

type frame struct {
	buf *[maxFrame]byte
	n   int
	due time.Time
}

// dir is one direction: frames read on in, written to out.
type dir struct {
	in, out *os.File
	q       chan frame
	free    chan *[maxFrame]byte
	cfg     atomic.Pointer[Config]
	st      stats
}

// Emulator bridges two interfaces of the calling thread's namespace.
type Emulator struct {
	a, b   *os.File
	ab, ba *dir
	once   sync.Once
}

// Open opens raw sockets on interfaces a and b (in the namespace of the
// calling thread; see topo.Do) and returns an emulator set to abCfg for
// frames a -> b and baCfg for b -> a. The interfaces must be up; packet
// sockets see every frame, so no promiscuous mode is needed.
func Open(a, b string, abCfg, baCfg Config) (*Emulator, error) {
	for _, c := range []Config{abCfg, baCfg} {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("linkem: %w", err)
		}
	}
	fa, err := openPacket(a)
	if err != nil {
		return nil, err
	}
	fb, err := openPacket(b)
	if err != nil {
		fa.Close()
		return nil, err
	}
	e := &Emulator{a: fa, b: fb, ab: newDir(fa, fb, abCfg), ba: newDir(fb, fa, baCfg)}
	return e, nil
}

func newDir(in, out *os.File, c Config) *dir {
	d := &dir{in: in, out: out, q: make(chan frame, queueFrames), free: make(chan *[maxFrame]byte, queueFrames+2)}
	d.cfg.Store(&c)
	return d
}

func openPacket(ifname string) (*os.File, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("linkem: interface %s: %w", ifname, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("linkem: packet socket: %w", err)
	}
	// Our own transmissions on this interface must not come back to us.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("linkem: PACKET_IGNORE_OUTGOING on %s: %w", ifname, err)
	}
	// Deep socket buffers (beyond rmem_max/wmem_max when root) so that a
	// reader starved of CPU for a while loses nothing in the kernel.
	setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, 16<<20)
	setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, 16<<20)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("linkem: bind %s: %w", ifname, err)
	}
	return os.NewFile(uintptr(fd), "packet:"+ifname), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func setBuf(fd, force, plain, n int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, n) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, n)
	}
}

// kernelDrops returns (and resets) the frames the kernel dropped on socket f
// because the reader did not keep up.
func kernelDrops(f *os.File) uint64 {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	var n uint64
	rc.Control(func(fd uintptr) {
		if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			n = uint64(st.Drops)
		}
	})
	return n
}

// SetConfig changes both directions' behaviour while running.
func (e *Emulator) SetConfig(abCfg, baCfg Config) error {
	for _, c := range []Config{abCfg, baCfg} {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("linkem: %w", err)
		}
	}
	e.ab.cfg.Store(&abCfg)
	e.ba.cfg.Store(&baCfg)
	return nil
}

// Stats returns the counters of both directions.
func (e *Emulator) Stats() (ab, ba Stats) {
	e.ab.st.rxDrops.Add(kernelDrops(e.ab.in))
	e.ba.st.rxDrops.Add(kernelDrops(e.ba.in))
	return e.ab.st.snapshot(), e.ba.st.snapshot()
}

// Close closes both sockets; Run returns.
func (e *Emulator) Close() error {
	e.once.Do(func() {
		e.a.Close()
		e.b.Close()
	})
	return nil
}

// Run relays frames both ways until ctx is done or a socket fails.
func (e *Emulator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for i, d := range []*dir{e.ab, e.ba} {
		wg.Add(2)
		go func() { defer wg.Done(); errc <- d.routineRead(uint64(i)) }()
		go func() { defer wg.Done(); d.routineWrite() }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	e.Close()
	wg.Wait()
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	return err
}

func (d *dir) getBuf() *[maxFrame]byte {
	select {
	case b := <-d.free:
		return b
	default:
		return new([maxFrame]byte)
	}
}

func (d *dir) putBuf(b *[maxFrame]byte) {
	select {
	case d.free <- b:
	default:
	}
}

// routineRead reads frames, applies loss and the rate cap, and queues them
// with their departure time. It closes the queue when the socket closes.
func (d *dir) routineRead(stream uint64) error {
	defer close(d.q)
	cur := d.cfg.Load()
	s := newSched(*cur, stream)
	buf := d.getBuf()
	for {
		n, err := d.in.Read(buf[:])
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("linkem: read %s: %w", d.in.Name(), err)
		}
		now := time.Now()
		d.st.frames.Add(1)
		if n >= maxFrame {
			d.st.oversize.Add(1)
			continue
		}
		if c := d.cfg.Load(); c != cur {
			cur = c
			s.setConfig(*c)
		}
		v, due := s.decide(now, n)
		switch v {
		case lost:
			d.st.lost.Add(1)
			continue
		case overQueue:
			d.st.queueDrop.Add(1)
			continue
		}
		select {
		case d.q <- frame{buf: buf, n: n, due: due}:
			buf = d.getBuf()
		default:
			d.st.queueDrop.Add(1)
		}
	}
}

// routineWrite sends queued frames when they are due.
func (d *dir) routineWrite() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for f := range d.q {
		if wait := time.Until(f.due); wait > 0 {
			t.Reset(wait)
			<-t.C
		}
		if _, err := d.out.Write(f.buf[:f.n]); err != nil {
			d.st.txErrors.Add(1)
		} else {
			d.st.forwarded.Add(1)
			d.st.bytes.Add(uint64(f.n))
		}
		d.putBuf(f.buf)
	}
}
