package topo

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PingResult is what Ping measured.
type PingResult struct {
	Sent, Received int
	RTTs           []time.Duration // one per reply, in send order
}

// Loss is the fraction of probes without a reply.
func (r PingResult) Loss() float64 {
	if r.Sent == 0 {
		return 0
	}
	return 1 - float64(r.Received)/float64(r.Sent)
}

// MeanRTT is the mean round-trip time over the replies (0 without replies).
func (r PingResult) MeanRTT() time.Duration {
	if len(r.RTTs) == 0 {
		return 0
	}
	var s time.Duration
	for _, d := range r.RTTs {
		s += d
	}
	return s / time.Duration(len(r.RTTs))
}

// Ping sends count ICMP (or ICMPv6) echo requests to dst from namespace ns,
// one per interval, and waits up to timeout after the last for replies. It
// needs root (raw socket); no ping binary is required.
func Ping(ns string, dst netip.Addr, count int, interval, timeout time.Duration) (PingResult, error) {
	if count <= 0 {
		return PingResult{}, fmt.Errorf("ping: count %d", count)
	}
	network, typ, replyType := "ip4:icmp", byte(8), byte(0)
	if dst.Is6() && !dst.Is4In6() {
		network, typ, replyType = "ip6:ipv6-icmp", 128, 129
	}
	pc, err := ListenPacket(ns, network, "")
	if err != nil {
		return PingResult{}, fmt.Errorf("ping %s from %s: %w", dst, ns, err)
	}
	defer pc.Close()
	id := uint16(rand.Uint32())
	sent := make([]time.Time, count)
	rtt := make([]time.Duration, count)
	var mu sync.Mutex
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if n < 8 || buf[0] != replyType || binary.BigEndian.Uint16(buf[4:]) != id {
				continue
			}
			seq := int(binary.BigEndian.Uint16(buf[6:]))
			mu.Lock()
			if seq < count && !sent[seq].IsZero() && rtt[seq] == 0 {
				rtt[seq] = now.Sub(sent[seq])
				got++
			}
			all := got == count
			mu.Unlock()
			if all {
				return
			}
		}
	}()
	ua := &net.IPAddr{IP: net.IP(dst.AsSlice())}
	msg := make([]byte, 8+56)
	for i := 0; i < count; i++ {
		msg[0], msg[1] = typ, 0
		binary.BigEndian.PutUint16(msg[2:], 0)
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], uint16(i))
		if typ == 8 { // the kernel fills in the ICMPv6 checksum itself
			binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
		}
		mu.Lock()
		sent[i] = time.Now()
		mu.Unlock()
		// A send error (unreachable, no route) makes the probe count as lost.
		_, _ = pc.WriteTo(msg, ua)
		if i < count-1 {
			time.Sleep(interval)
		}
	}
	pc.SetReadDeadline(time.Now().Add(timeout))
	<-done
	res := PingResult{Sent: count}
	for _, d := range rtt {
		if d > 0 {
			res.Received++
			res.RTTs = append(res.RTTs, d)
		}
	}
	return res, nil
}

func inetChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
