package pktgen

import (
	"fmt"

	"samepath/perf/xdpprog"
	"samepath/ring"
	"samepath/ring/xsk"
)

// afxdpEngine builds AF_XDP transmit threads on ring/xsk: one socket per
// thread on queue i%Queues, frames written from the template and stamped in
// Go, sent in batches of cfg.Batch.
func afxdpEngine(cfg TxConfig, tmpl []byte, g xdpprog.GenConfig) (func(int) (txThread, error), func() error, error) {
	newThread := func(i int) (txThread, error) {
		xc := xsk.DefaultConfig(cfg.Iface, i%cfg.Queues)
		// TX only: a small fill ring keeps most of the UMEM for transmission.
		xc.RxSize, xc.FillSize = 64, 64
		s, err := xsk.Open(xc)
		if err != nil {
			return nil, fmt.Errorf("afxdp tx on %s: %w", cfg.Iface, err)
		}
		return &afxdpThread{sock: s, umem: s.Umem(), tmpl: tmpl,
			st: newStamper(g, len(tmpl), cfg.StreamBase+uint32(i)), descs: make([]ring.Desc, cfg.Batch)}, nil
	}
	return newThread, func() error { return nil }, nil
}

type afxdpThread struct {
	sock  *xsk.Socket
	umem  *ring.Umem
	tmpl  []byte
	st    stamper
	seq   uint64
	descs []ring.Desc
}

// send queues up to n frames in batches and kicks the kernel; it returns
// how many the TX ring took (0 when the ring and pool are full: the caller
// loops).
func (a *afxdpThread) send(n int) (int, error) {
	total := 0
	for total < n {
		if err := a.sock.Flush(); err != nil {
			return total, fmt.Errorf("afxdp flush: %w", err)
		}
		k := 0
		for k < len(a.descs) && total+k < n {
			addr, ok := a.umem.Alloc()
			if !ok {
				break
			}
			f := a.umem.Frame(addr)[:len(a.tmpl)]
			copy(f, a.tmpl)
			a.st.write(f, a.seq+uint64(k))
			a.descs[k] = ring.Desc{Addr: addr, Len: uint32(len(a.tmpl))}
			k++
		}
		if k == 0 {
			break
		}
		sent, err := a.sock.Send(a.descs[:k])
		if err != nil {
			a.sock.Release(a.descs[:k])
			return total, fmt.Errorf("afxdp send: %w", err)
		}
		// Frames the ring did not take were stamped with sequences that
		// were never sent; give them back and reuse the numbers.
		a.sock.Release(a.descs[sent:k])
		a.seq += uint64(sent)
		total += sent
		if sent < k {
			break
		}
	}
	if err := a.sock.Flush(); err != nil {
		return total, fmt.Errorf("afxdp flush: %w", err)
	}
	return total, nil
}

func (a *afxdpThread) paced() bool { return false }

func (a *afxdpThread) close() error { return a.sock.Close() }
