package xsk

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"samepath/ring"
)

// Socket is an AF_XDP socket bound to one queue of one interface. It
// implements dp.Port. It belongs to the worker goroutine that owns its
// Umem; nothing here locks and, after New, nothing allocates.
type Socket struct {
	name    string
	cfg     Config
	fd      int
	ifindex int
	umem    *Umem
	frames  *ring.Umem
	ownUmem bool // Open made the Umem; Close closes it

	rx, tx     descRing
	fill, comp addrRing
	maps       [4][]byte // rx, tx, fill, completion mmaps

	needWakeup  bool          // bound with XDP_USE_NEED_WAKEUP
	fillShort   bool          // the last refill left free slots for lack of frames
	txDirty     bool          // frames sent since the TX ring was last seen empty
	sendInvalid atomic.Uint64 // descriptors Send refused (Stats.SendInvalid)
	pfd         [1]unix.PollFd
	ts          unix.Timespec
	closed      atomic.Bool // read by Stats on any goroutine
}

// Open opens a socket with a UMEM of its own (DefaultUmemConfig, sized to
// fill the fill ring and the TX ring twice over). Closing the socket
// closes the UMEM.
func Open(cfg Config) (*Socket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ucfg := DefaultUmemConfig()
	ucfg.Frames = 2 * (cfg.FillSize + cfg.TxSize)
	u, err := NewUmem(ucfg)
	if err != nil {
		return nil, err
	}
	s, err := New(u, cfg)
	if err != nil {
		_ = u.Close()
		return nil, err
	}
	s.ownUmem = true
	return s, nil
}

// NewShared opens, on u, one socket on queue q of each interface, every
// ring ringSize slots, busy polling as busyPoll says: the sockets of a
// forwarding worker, which moves descriptors between them. samepathd's
// roles and perf's AF_XDP reference open theirs here, so they stay alike.
// On an error it closes the sockets it opened.
func NewShared(u *Umem, ifnames []string, q, ringSize int, busyPoll bool) ([]*Socket, error) {
	var socks []*Socket
	for _, name := range ifnames {
		sc := DefaultConfig(name, q)
		sc.RxSize, sc.TxSize, sc.FillSize, sc.CompSize = ringSize, ringSize, ringSize, ringSize
		sc.BusyPoll = busyPoll
		s, err := New(u, sc)
		if err != nil {
			for _, o := range socks {
				o.Close()
			}
			return nil, err
		}
		socks = append(socks, s)
	}
	return socks, nil
}

// New opens a socket on u; the interface is looked up in the calling
// thread's network namespace. The first socket on a UMEM registers it with
// the kernel and picks the bind mode; the next ones bind with
// XDP_SHARED_UMEM and their own fill and completion rings, so a worker can
// forward between them by moving descriptors. Two sockets on the same
// interface and queue cannot share a UMEM this way.
func New(u *Umem, cfg Config) (*Socket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if u.closed {
		return nil, ErrClosed
	}
	name := fmt.Sprintf("%s/q%d", cfg.Ifname, cfg.Queue)
	ifi, err := net.InterfaceByName(cfg.Ifname)
	if err != nil {
		return nil, fmt.Errorf("xsk %s: %w", name, err)
	}
	for _, o := range u.socks {
		if o.ifindex == ifi.Index && o.cfg.Queue == cfg.Queue {
			return nil, fmt.Errorf("xsk %s: the umem already has a socket on this queue", name)
		}
	}
	s := &Socket{name: name, cfg: cfg, fd: -1, ifindex: ifi.Index, umem: u, frames: u.ring}
	if len(u.socks) > 0 {
		if err := s.setupRetry(unix.XDP_SHARED_UMEM, u.socks[0].fd); err != nil {
			return nil, fmt.Errorf("bind xsk %s (shared umem): %w", name, err)
		}
	} else {
		if err := s.bindFirst(); err != nil {
			return nil, err
		}
	}
	s.needWakeup = u.needWakeup
	s.pfd[0] = unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN}
	s.refill()
	u.socks = append(u.socks, s)
	return s, nil
}

// bindFirst binds the UMEM's first socket, trying zero-copy first in
// ModeAuto. A busy queue (EBUSY) is retried in the mode tried, not taken
// for a refusal of zero-copy.
func (s *Socket) bindFirst() error {
	u := s.umem
	var wake uint16
	if s.cfg.NeedWakeup {
		wake = unix.XDP_USE_NEED_WAKEUP
	}
	mode := s.cfg.Mode
	if mode != ModeCopy {
		err := s.setupRetry(unix.XDP_ZEROCOPY|wake, -1)
		if err == nil {
			u.mode, u.needWakeup = ModeZeroCopy, s.cfg.NeedWakeup
			return nil
		}
		if mode == ModeZeroCopy || !(errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)) {
			return fmt.Errorf("bind xsk %s zero-copy: %w", s.name, err)
		}
		if !u.fellBack {
			u.fellBack = true
			u.log.Info("xsk: zero-copy bind refused, using copy mode", "port", s.name, "err", err)
		}
	}
	if err := s.setupRetry(unix.XDP_COPY|wake, -1); err != nil {
		return fmt.Errorf("bind xsk %s copy mode: %w", s.name, err)
	}
	u.mode, u.needWakeup = ModeCopy, s.cfg.NeedWakeup
	return nil
}

// setup makes the socket, its rings and binds it; on error it leaves
// nothing behind. sharedFD >= 0 binds with XDP_SHARED_UMEM to that socket.
func (s *Socket) setup(flags uint16, sharedFD int) (err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	s.fd = fd
	defer func() {
		if err != nil {
			s.teardown()
		}
	}()
	if sharedFD < 0 {
		if err := registerUmem(fd, s.umem.mem, s.umem.cfg.FrameSize, s.umem.cfg.Headroom); err != nil {
			return fmt.Errorf("register umem: %w", err)
		}
	}
	for _, o := range []struct {
		name string
		opt  int
		n    int
	}{
		{"fill ring", unix.XDP_UMEM_FILL_RING, s.cfg.FillSize},
		{"completion ring", unix.XDP_UMEM_COMPLETION_RING, s.cfg.CompSize},
		{"rx ring", unix.XDP_RX_RING, s.cfg.RxSize},
		{"tx ring", unix.XDP_TX_RING, s.cfg.TxSize},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, o.opt, o.n); err != nil {
			return fmt.Errorf("%s of %d: %w", o.name, o.n, err)
		}
	}
	if err := s.mapRings(); err != nil {
		return err
	}
	// Best effort: kernels before 6.17 lack the option and send 32
	// frames per sendto, which Flush handles by kicking again.
	budget := s.cfg.TxBudget
	if budget == 0 {
		budget = s.cfg.TxSize
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, budget)
	if s.cfg.BusyPoll {
		for _, o := range []struct {
			name string
			opt  int
			v    int
		}{
			{"SO_PREFER_BUSY_POLL", unix.SO_PREFER_BUSY_POLL, 1},
			{"SO_BUSY_POLL", unix.SO_BUSY_POLL, int(s.cfg.BusyPollTime / time.Microsecond)},
			{"SO_BUSY_POLL_BUDGET", unix.SO_BUSY_POLL_BUDGET, s.cfg.BusyPollBudget},
		} {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o.opt, o.v); err != nil {
				return fmt.Errorf("%s: %w", o.name, err)
			}
		}
	}
	sa := &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(s.ifindex), QueueID: uint32(s.cfg.Queue)}
	if sharedFD >= 0 {
		sa.SharedUmemFD = uint32(sharedFD)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return err
	}
	return nil
}

// mapRings maps the four rings and builds their views.
func (s *Socket) mapRings() error {
	off, err := mmapOffsets(s.fd)
	if err != nil {
		return fmt.Errorf("ring offsets: %w", err)
	}
	type spec struct {
		name  string
		pgoff int64
		off   unix.XDPRingOffset
		n     int
		esize uint64
	}
	specs := [4]spec{
		{"rx", unix.XDP_PGOFF_RX_RING, off.Rx, s.cfg.RxSize, descEntrySize},
		{"tx", unix.XDP_PGOFF_TX_RING, off.Tx, s.cfg.TxSize, descEntrySize},
		{"fill", unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, s.cfg.FillSize, addrEntrySize},
		{"completion", unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, s.cfg.CompSize, addrEntrySize},
	}
	for i, sp := range specs {
		size := int(sp.off.Desc + uint64(sp.n)*sp.esize)
		m, err := unix.Mmap(s.fd, sp.pgoff, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return fmt.Errorf("mmap %s ring: %w", sp.name, err)
		}
		s.maps[i] = m
	}
	n := func(x int) uint32 { return uint32(x) }
	p, c, f := ringView(s.maps[0], off.Rx)
	s.rx = descRing{newConsIdx(p, c, f, n(s.cfg.RxSize)), descEntries(s.maps[0], off.Rx, n(s.cfg.RxSize))}
	p, c, f = ringView(s.maps[1], off.Tx)
	s.tx = descRing{newProdIdx(p, c, f, n(s.cfg.TxSize)), descEntries(s.maps[1], off.Tx, n(s.cfg.TxSize))}
	p, c, f = ringView(s.maps[2], off.Fr)
	s.fill = addrRing{newProdIdx(p, c, f, n(s.cfg.FillSize)), addrEntries(s.maps[2], off.Fr, n(s.cfg.FillSize))}
	p, c, f = ringView(s.maps[3], off.Cr)
	s.comp = addrRing{newConsIdx(p, c, f, n(s.cfg.CompSize)), addrEntries(s.maps[3], off.Cr, n(s.cfg.CompSize))}
	return nil
}

// teardown closes the fd and unmaps the rings.
func (s *Socket) teardown() error {
	var first error
	if s.fd >= 0 {
		if err := unix.Close(s.fd); err != nil {
			first = fmt.Errorf("close: %w", err)
		}
		s.fd = -1
	}
	for i, m := range s.maps {
		if m != nil {
			if err := unix.Munmap(m); err != nil && first == nil {
				first = fmt.Errorf("munmap ring: %w", err)
			}
			s.maps[i] = nil
		}
	}
	s.rx, s.tx, s.fill, s.comp = descRing{}, descRing{}, addrRing{}, addrRing{}
	return first
}

// Close unbinds the socket, gives the frames it held (on its fill, RX, TX
// and completion rings) back to the UMEM's pool and unmaps its rings. A
// socket made by Open also closes its UMEM. Calling Close again does
// nothing. Like every method, Close belongs to the owning worker (or runs
// after it stopped).
func (s *Socket) Close() error {
	if s.closed.Load() {
		return nil
	}
	s.closed.Store(true)
	// Close the fd first: the kernel stops using the rings, and what they
	// hold is then ours.
	var first error
	if err := unix.Close(s.fd); err != nil {
		first = fmt.Errorf("close xsk %s: %w", s.name, err)
	}
	s.fd = -1
	s.reclaim()
	if err := s.teardown(); err != nil && first == nil {
		first = fmt.Errorf("close xsk %s: %w", s.name, err)
	}
	s.umem.remove(s)
	if s.ownUmem {
		if err := s.umem.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// reclaim returns to the pool every frame the socket's rings hold: fill
// entries the kernel did not take, RX and completion entries we did not
// read, TX entries the kernel did not take.
func (s *Socket) reclaim() {
	pool := s.frames
	back := func(addrs []uint64, mask, from, to uint32) {
		for i := from; i != to; i++ {
			pool.Free(addrs[i&mask])
		}
	}
	if s.fill.addrs != nil {
		back(s.fill.addrs, s.fill.mask, atomic.LoadUint32(s.fill.consumer), s.fill.prod)
	}
	if s.comp.addrs != nil {
		back(s.comp.addrs, s.comp.mask, s.comp.cons, atomic.LoadUint32(s.comp.producer))
	}
	if s.rx.descs != nil {
		for i, end := s.rx.cons, atomic.LoadUint32(s.rx.producer); i != end; i++ {
			pool.Free(s.rx.descs[i&s.rx.mask].Addr)
		}
	}
	if s.tx.descs != nil {
		for i := atomic.LoadUint32(s.tx.consumer); i != s.tx.prod; i++ {
			pool.Free(s.tx.descs[i&s.tx.mask].Addr)
		}
	}
}

// Name is "ifname/qN".
func (s *Socket) Name() string { return s.name }

// Umem is the frame memory shared by all sockets of the socket's Umem.
func (s *Socket) Umem() *ring.Umem { return s.frames }

// Shared is the socket's Umem.
func (s *Socket) Shared() *Umem { return s.umem }

// FD is the socket's file descriptor, for an XSKMAP.
func (s *Socket) FD() int { return s.fd }

// Ifindex and Queue say where the socket is bound.
func (s *Socket) Ifindex() int { return s.ifindex }
func (s *Socket) Queue() int   { return s.cfg.Queue }

// Mode is the bind mode of the socket's Umem.
func (s *Socket) Mode() Mode { return s.umem.mode }

// refill lends free frames to the kernel until the fill ring is full or
// the pool is empty.
func (s *Socket) refill() {
	want := s.fill.size
	got := s.fill.fillFrom(s.frames.Pool(), want)
	// Either the ring is now full or the pool ran dry: free() reloaded the
	// consumer index if got < want.
	s.fillShort = got < want && s.fill.cons-s.fill.prod > 0
}

// Recv takes up to len(d) received descriptors and refills the fill ring
// from the pool. The frames belong to the caller until it gives them to
// Send (of a socket on the same Umem) or Release.
func (s *Socket) Recv(d []ring.Desc) (int, error) {
	n := s.rx.read(d)
	if n == 0 && (s.cfg.BusyPoll || (s.needWakeup && s.fill.needWakeup())) {
		if e := kickRx(s.fd); e != 0 && e != unix.EAGAIN && e != unix.EBUSY && e != unix.EINTR {
			return 0, e
		}
		n = s.rx.read(d)
	}
	if n > 0 || s.fillShort {
		s.refill()
	}
	return n, nil
}

// Send puts as many of d as fit on the TX ring and returns how many it
// took; the socket owns those frames until the kernel completes them
// (Flush gives them back to the pool). Nothing is transmitted before Flush.
// A descriptor the kernel would reject (empty, longer than a frame,
// crossing a frame boundary or outside the UMEM) is taken but not sent:
// its frame goes back to the pool and Stats counts it as SendInvalid, so a
// pipeline bug cannot leak frames (the kernel would consume it without a
// completion).
func (s *Socket) Send(d []ring.Desc) (int, error) {
	room := s.tx.free(uint32(min(len(d), maxRing)))
	fs := uint64(s.frames.FrameSize())
	memSize := uint64(len(s.frames.Mem()))
	var w uint32
	i := 0
	for ; i < len(d) && w < room; i++ {
		x := d[i]
		end := x.Addr + uint64(x.Len)
		if x.Len == 0 || end > memSize || end < x.Addr || x.Addr/fs != (end-1)/fs {
			s.sendInvalid.Add(1)
			if x.Addr < memSize {
				s.frames.Free(x.Addr)
			}
			continue
		}
		s.tx.descs[(s.tx.prod+w)&s.tx.mask] = x
		w++
	}
	if w > 0 {
		s.tx.submit(w)
		s.txDirty = true
	}
	return i, nil
}

// Release gives frames back to the pool.
func (s *Socket) Release(d []ring.Desc) {
	for i := range d {
		s.frames.Free(d[i].Addr)
	}
}

// maxKicks bounds the sendto calls of one Flush: copy mode transmits at
// most the TX budget per call and answers EAGAIN when more is left.
const maxKicks = 4

// Flush kicks the kernel to transmit what Send queued, with sendto, when
// the TX ring holds frames the kernel has not taken and (with need_wakeup)
// the kernel asked for a kick; then it gives completed frames back to the
// pool.
func (s *Socket) Flush() error {
	var err error
	if s.txDirty {
		for k := 0; ; k++ {
			if s.tx.pending() == 0 {
				s.txDirty = false
				break
			}
			if k == maxKicks || (s.needWakeup && !s.tx.needWakeup()) {
				break
			}
			e := kickTx(s.fd)
			if e == 0 || e == unix.EAGAIN || e == unix.EINTR {
				continue
			}
			if e != unix.EBUSY && e != unix.ENOBUFS && e != unix.ENETDOWN {
				err = e
			}
			break // the device is busy or down: try on the next Flush
		}
	}
	s.comp.drainTo(s.frames)
	return err
}

// Wait blocks in ppoll(2) until the RX ring has frames or timeout passes;
// it reports whether frames are ready. It refills the fill ring first, so
// the kernel has frames to receive into.
func (s *Socket) Wait(timeout time.Duration) (bool, error) {
	if s.rx.avail(1) > 0 {
		return true, nil
	}
	if s.fillShort {
		s.refill()
	}
	if timeout < 0 {
		timeout = 0
	}
	s.ts = unix.NsecToTimespec(int64(timeout))
	s.pfd[0].Revents = 0
	n, err := unix.Ppoll(s.pfd[:], &s.ts, nil)
	if err != nil {
		if err == unix.EINTR {
			return false, nil
		}
		return false, err
	}
	return n > 0 && s.pfd[0].Revents&unix.POLLIN != 0, nil
}

// Stats are the kernel's XDP_STATISTICS counters for the socket.
type Stats struct {
	RxDropped     uint64 // frames dropped for reasons other than below
	RxInvalid     uint64 // invalid descriptors on the fill ring
	TxInvalid     uint64 // invalid descriptors on the TX ring
	RxRingFull    uint64 // frames dropped because the RX ring was full
	FillRingEmpty uint64 // times the fill ring had no frame for a packet
	TxRingEmpty   uint64 // times the kernel found the TX ring empty
	// SendInvalid counts descriptors Send refused (ours, not the kernel's).
	SendInvalid uint64
}

// Stats reads the kernel's counters for the socket. Unlike the other
// methods it may run on any goroutine while the socket is open (the
// control API and metrics read it beside the worker).
func (s *Socket) Stats() (Stats, error) {
	if s.closed.Load() {
		return Stats{}, ErrClosed
	}
	st, err := xdpStatistics(s.fd)
	if err != nil {
		return Stats{}, fmt.Errorf("xsk %s statistics: %w", s.name, err)
	}
	return Stats{
		RxDropped: st.Rx_dropped, RxInvalid: st.Rx_invalid_descs, TxInvalid: st.Tx_invalid_descs,
		RxRingFull: st.Rx_ring_full, FillRingEmpty: st.Rx_fill_ring_empty_descs, TxRingEmpty: st.Tx_ring_empty_descs,
		SendInvalid: s.sendInvalid.Load(),
	}, nil
}
