package tcpproxy

import (
	"bytes"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Conn is one terminated connection: the mobile's, accepted on the mobile
// side, and the terminator's own to the server, on the server side. Its
// methods may be called from any goroutine.
type Conn struct {
	t       *Terminator
	req     Request
	server  netip.AddrPort
	session uint64
	data    any
	local   atomic.Pointer[netip.AddrPort]

	// Payload bytes read from and written to each side's endpoint.
	mobileRx, mobileTx, serverRx, serverTx atomic.Uint64

	end        atomic.Int32 // Counter, 0 while it lasts
	killReason atomic.Int32 // Counter of the first kill
	killOnce   sync.Once
	killCh     chan struct{}

	// Owned by the connection's goroutine.
	mq, sq   waiter.Queue
	mep, sep tcpip.Endpoint
	sniffed  bool
	risk     *riskState // nil: no failover (risk.go)
}

// ConnStats are a connection's payload byte counts. Rx is what the
// terminator read from that side's endpoint, Tx what it wrote into it
// (accepted into the send buffer, not necessarily acknowledged yet).
type ConnStats struct {
	MobileRx, MobileTx, ServerRx, ServerTx uint64
}

func newConn(t *Terminator, req Request, d Decision) *Conn {
	return &Conn{t: t, req: req, server: d.Server, session: d.Session, data: d.Data, killCh: make(chan struct{}), risk: newRisk(d.Risk, d.Server)}
}

// Mobile is the mobile's address and port.
func (c *Conn) Mobile() netip.AddrPort { return c.req.Mobile }

// Rep is the representative address and port the mobile connected to.
func (c *Conn) Rep() netip.AddrPort { return c.req.Rep }

// Server is the actual server's address and port (the latest, after a
// failover).
func (c *Conn) Server() netip.AddrPort {
	if c.risk != nil {
		return *c.risk.server.Load()
	}
	return c.server
}

// Local is the server-side connection's source (a gateway address and
// port), known once the server connection is made; invalid before.
func (c *Conn) Local() netip.AddrPort {
	if p := c.local.Load(); p != nil {
		return *p
	}
	return netip.AddrPort{}
}

// Session is the Decision's session.
func (c *Conn) Session() uint64 { return c.session }

// Data is the Decision's data.
func (c *Conn) Data() any { return c.data }

// Stats returns the connection's byte counts so far.
func (c *Conn) Stats() ConnStats {
	return ConnStats{
		MobileRx: c.mobileRx.Load(), MobileTx: c.mobileTx.Load(),
		ServerRx: c.serverRx.Load(), ServerTx: c.serverTx.Load(),
	}
}

// End is why the connection ended (a CtrRefused*, CtrDialFailed,
// CtrMobileHandshakeFailed or CtrEnd* counter), or 0 while it lasts.
func (c *Conn) End() Counter { return Counter(c.end.Load()) }

// Reset resets both sides of the connection (CtrEndClose). It does not wait.
func (c *Conn) Reset() { c.kill(CtrEndClose) }

// kill ends the connection with RST both ways for reason; the first
// reason wins. It wakes the connection's goroutine wherever it waits: in
// the server connect, the mobile's handshake or the splice.
func (c *Conn) kill(reason Counter) {
	c.killOnce.Do(func() {
		c.killReason.Store(int32(reason))
		close(c.killCh)
		ev := waiter.EventHUp | waiter.EventErr | waiter.ReadableEvents | waiter.WritableEvents
		c.mq.Notify(ev)
		c.sq.Notify(ev)
	})
}

func (c *Conn) killed() bool {
	select {
	case <-c.killCh:
		return true
	default:
		return false
	}
}

// sliceWriter is an io.Writer into a fixed buffer, kept in the pump so
// that reading allocates nothing.
type sliceWriter struct {
	b []byte
	n int
}

func (w *sliceWriter) Write(p []byte) (int, error) {
	n := copy(w.b[w.n:], p)
	w.n += n
	if n < len(p) {
		return n, errShortWrite
	}
	return n, nil
}

var errShortWrite = &shortWrite{}

type shortWrite struct{}

func (*shortWrite) Error() string { return "short write" }

// pump moves one direction's bytes from src to dst through at most one
// buffer, held only while bytes wait for dst.
type pump struct {
	src, dst tcpip.Endpoint
	rx, tx   *atomic.Uint64
	up       bool // mobile to server: the sniffed direction

	buf      *[]byte
	off, end int
	eof      bool // src's FIN read
	shut     bool // FIN passed to dst
	w        sliceWriter
	r        bytes.Reader
	pre      []byte // written to dst before anything else: a replay or a Range request (risk.go)
	held     bool   // src's FIN kept from dst: the server may yet be replaced (risk.go)
}

func (p *pump) done() bool { return p.shut && p.buf == nil }

// step moves bytes until src has none or dst takes none. It returns
// whether it moved any, and the error of the endpoint that failed.
func (p *pump) step(c *Conn) (moved bool, srcErr, dstErr tcpip.Error) {
	t := c.t
	for {
		if len(p.pre) > 0 {
			p.r.Reset(p.pre)
			n, err := p.dst.Write(&p.r, tcpip.WriteOptions{})
			p.pre = p.pre[n:]
			p.tx.Add(uint64(n))
			moved = moved || n > 0
			if err != nil {
				if _, ok := err.(*tcpip.ErrWouldBlock); ok {
					return moved, nil, nil
				}
				return moved, nil, err
			}
			if n == 0 {
				return moved, nil, nil
			}
			continue
		}
		if p.buf != nil {
			p.r.Reset((*p.buf)[p.off:p.end])
			n, err := p.dst.Write(&p.r, tcpip.WriteOptions{})
			if n > 0 {
				p.off += int(n)
				p.tx.Add(uint64(n))
				moved = true
			}
			if p.off == p.end {
				t.buf.Put(p.buf)
				p.buf = nil
			}
			if err != nil {
				if _, ok := err.(*tcpip.ErrWouldBlock); ok {
					return moved, nil, nil
				}
				return moved, nil, err
			}
			if p.buf != nil && n == 0 {
				return moved, nil, nil
			}
			continue
		}
		if p.eof {
			if !p.up && !p.shut && c.risk.holdFIN() {
				p.held = true
				return moved, nil, nil
			}
			if !p.shut {
				// Half-close: pass the FIN on. An error here means dst
				// is already gone, which its own read reports.
				_ = p.dst.Shutdown(tcpip.ShutdownWrite)
				p.shut = true
			}
			return moved, nil, nil
		}
		buf := t.buf.Get().(*[]byte)
		p.w = sliceWriter{b: *buf}
		res, err := p.src.Read(&p.w, tcpip.ReadOptions{})
		if err != nil || res.Count == 0 {
			t.buf.Put(buf)
			switch err.(type) {
			case nil, *tcpip.ErrWouldBlock:
				return moved, nil, nil
			case *tcpip.ErrClosedForReceive:
				p.eof = true
				continue
			}
			return moved, err, nil
		}
		n := res.Count
		p.rx.Add(uint64(n))
		moved = true
		if p.up && !c.sniffed {
			c.sniffed = true
			if f := t.cfg.OnFirstBytes; f != nil && t.cfg.SniffBytes > 0 {
				f(c, (*buf)[:min(n, t.cfg.SniffBytes)])
			}
		}
		p.buf, p.off, p.end = buf, 0, n
		if c.risk != nil {
			if p.up {
				c.risk.fromMobile((*buf)[:n])
			} else {
				s, e, abort := c.risk.fromServer(c, (*buf)[:n])
				if abort {
					return moved, &tcpip.ErrConnectionAborted{}, nil
				}
				p.off, p.end = s, e
				if s == e {
					t.buf.Put(buf)
					p.buf = nil
				}
			}
		}
	}
}

// splice runs the connection until it ends and returns why. It owns both
// endpoints and closes them.
func (c *Conn) splice() Counter {
	t := c.t
	wake := make(chan struct{}, 1)
	notify := func(waiter.EventMask) {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	mask := waiter.ReadableEvents | waiter.WritableEvents | waiter.EventHUp | waiter.EventErr
	me := waiter.NewFunctionEntry(mask, notify)
	se := waiter.NewFunctionEntry(mask, notify)
	c.mq.EventRegister(&me)
	c.sq.EventRegister(&se)

	up := pump{src: c.mep, dst: c.sep, rx: &c.mobileRx, tx: &c.serverTx, up: true}
	down := pump{src: c.sep, dst: c.mep, rx: &c.serverRx, tx: &c.mobileTx}
	idle := time.NewTimer(t.cfg.IdleTimeout)
	last := time.Now()
	var end Counter
	abortMobile, abortServer := false, false
loop:
	for {
		m1, se1, de1 := up.step(c)
		m2, se2, de2 := down.step(c)
		switch {
		case se1 != nil || de2 != nil:
			end, abortServer = CtrEndMobileReset, true
			break loop
		case de1 != nil || se2 != nil || down.held || c.risk.due():
			if c.recover(&up, &down) {
				last = time.Now()
				continue
			}
			end, abortMobile = CtrEndServerReset, true
			if c.killed() { // during a failover
				end, abortServer = Counter(c.killReason.Load()), true
			}
			break loop
		case up.done() && down.done():
			end = CtrEndFIN
			break loop
		}
		if m1 || m2 {
			last = time.Now()
		}
		select {
		case <-wake:
		case <-c.risk.tickC():
			c.risk.pollHealth(c)
		case <-c.killCh:
			end, abortMobile, abortServer = Counter(c.killReason.Load()), true, true
			break loop
		case <-idle.C:
			if left := t.cfg.IdleTimeout - time.Since(last); left > 0 {
				idle.Reset(left)
				continue
			}
			end, abortMobile, abortServer = CtrEndIdle, true, true
			break loop
		}
	}
	idle.Stop()
	if c.risk != nil {
		c.risk.stopTick()
	}
	c.mq.EventUnregister(&me)
	c.sq.EventUnregister(&se)
	for _, p := range []*pump{&up, &down} {
		if p.buf != nil {
			t.buf.Put(p.buf)
			p.buf = nil
		}
	}
	if abortMobile {
		c.mep.Abort()
	}
	if abortServer {
		c.sep.Abort()
	}
	c.mep.Close()
	c.sep.Close()
	return end
}
