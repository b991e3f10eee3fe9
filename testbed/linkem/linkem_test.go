package linkem

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

// Topology of the privileged tests:
//
//	[x] eth0 10.77.0.1 ---- a [air: linkem] b ---- eth0 10.77.0.2 [y]
//	    fd00:77::1                                  fd00:77::2
//
// x and y send with transmit checksum offload off; a and b have GRO off.
type pair struct {
	x, y, air string
	em        *Emulator
}

func setup(t *testing.T, ab, ba Config) *pair {
	t.Helper()
	privtest.Require(t)
	prefix := privtest.Name("sptl", "")
	p := &pair{x: prefix + "-x", y: prefix + "-y", air: prefix + "-air"}
	for _, n := range []string{p.x, p.y, p.air} {
		if err := topo.CreateNetns(n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { topo.DeleteNetns(n) })
	}
	h := map[string]*topo.NS{}
	for _, n := range []string{p.x, p.y, p.air} {
		ns, err := topo.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Close)
		h[n] = ns
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(topo.Sysctl(p.air, "net/ipv6/conf/all/disable_ipv6", "1"))
	must(topo.Sysctl(p.air, "net/ipv6/conf/default/disable_ipv6", "1"))
	must(topo.Veth(h[p.x], "eth0", nil, h[p.air], "a", nil))
	must(topo.Veth(h[p.y], "eth0", nil, h[p.air], "b", nil))
	for i, n := range []string{p.x, p.y} {
		must(h[n].AddrReplace("eth0", netip.MustParsePrefix([]string{"10.77.0.1/24", "10.77.0.2/24"}[i])))
		must(h[n].AddrReplace("eth0", netip.MustParsePrefix([]string{"fd00:77::1/64", "fd00:77::2/64"}[i])))
		must(topo.SetTxChecksum(n, "eth0", false))
		must(h[n].Up("eth0"))
	}
	for _, l := range []string{"a", "b"} {
		must(topo.SetGRO(p.air, l, false))
		must(h[p.air].Up(l))
	}
	must(topo.Do(p.air, func() error {
		var err error
		p.em, err = Open("a", "b", ab, ba)
		return err
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.em.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return p
}

func within(got, want, frac float64) bool { return math.Abs(got-want) <= frac*want }

func TestRTTWithDelayAndJitter(t *testing.T) {
	c := DefaultConfig()
	c.Delay, c.Jitter = 50*time.Millisecond, 5*time.Millisecond
	p := setup(t, c, c)
	for _, dst := range []string{"10.77.0.2", "fd00:77::2"} {
		// One probe first to resolve the neighbour: probes queued behind ARP
		// or ND would add its round trip to the measurement.
		if _, err := topo.Ping(p.x, netip.MustParseAddr(dst), 1, 0, time.Second); err != nil {
			t.Fatal(err)
		}
		r, err := topo.Ping(p.x, netip.MustParseAddr(dst), 30, 20*time.Millisecond, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// 50 ms each way: RTT 100 ms.
		if r.Received < 29 || !within(float64(r.MeanRTT()), float64(100*time.Millisecond), 0.10) {
			t.Errorf("ping %s: %d/%d, mean RTT %v; want 100ms +-10%%", dst, r.Received, r.Sent, r.MeanRTT())
		}
		t.Logf("ping %s: %d/%d mean RTT %v", dst, r.Received, r.Sent, r.MeanRTT())
	}
}

// blast sends n UDP datagrams of size bytes from x to y at about pps, and
// returns how many arrived and the kernel's receive timestamps of the first
// and last (kernel time: the test's own scheduling does not move them).
func blast(t *testing.T, p *pair, n, size, pps int) (got int, first, last time.Time) {
	t.Helper()
	rc, err := topo.ListenPacket(p.y, "udp4", "10.77.0.2:9999")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	uc := rc.(*net.UDPConn)
	raw, _ := uc.SyscallConn()
	raw.Control(func(fd uintptr) {
		// Room for every datagram even if this goroutine is starved.
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	})
	var count atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		oob := make([]byte, 128)
		for {
			_, oobn, _, _, err := uc.ReadMsgUDP(buf, oob)
			if err != nil {
				return
			}
			ts := time.Now()
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
						ts = time.Unix(int64(binary.NativeEndian.Uint64(m.Data)), int64(binary.NativeEndian.Uint64(m.Data[8:])))
					}
				}
			}
			if count.Add(1) == 1 {
				first = ts
			}
			last = ts
		}
	}()
	sc, err := topo.Dial(context.Background(), p.x, "udp4", "10.77.0.2:9999")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	msg := make([]byte, size)
	const batch = 50
	start := time.Now()
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint32(msg, uint32(i))
		sc.Write(msg)
		if i%batch == batch-1 {
			if d := time.Until(start.Add(time.Duration(i+1) * time.Second / time.Duration(pps))); d > 0 {
				time.Sleep(d)
			}
		}
	}
	// Wait until nothing more arrives.
	for prev := int64(-1); prev != count.Load(); {
		prev = count.Load()
		time.Sleep(200 * time.Millisecond)
	}
	rc.Close()
	<-done
	return int(count.Load()), first, last
}

func TestLossFraction(t *testing.T) {
	c := DefaultConfig()
	c.Loss, c.Seed = 0.05, 7
	p := setup(t, c, DefaultConfig())
	const n = 40000
	got, _, _ := blast(t, p, n, 64, 40000)
	loss := 1 - float64(got)/n
	ab, _ := p.em.Stats()
	t.Logf("sent %d received %d loss %.4f; emulator a>b %+v", n, got, loss, ab)
	if !within(loss, 0.05, 0.10) {
		t.Errorf("measured loss %.4f, want 0.05 +-10%%", loss)
	}
	if ab.QueueDrop != 0 || ab.RxDrops != 0 || ab.Lost+uint64(got) > ab.Frames {
		t.Errorf("counters inconsistent: %+v received %d", ab, got)
	}
}

func TestRateCap(t *testing.T) {
	c := DefaultConfig()
	c.Rate = 20e6
	c.Queue = 64 << 10
	p := setup(t, c, DefaultConfig())
	// 1000-byte payloads = 1042-byte frames at ~40 Mbit/s for about 1 s.
	const size, frameLen = 1000, 1000 + 8 + 20 + 14
	got, first, last := blast(t, p, 5000, size, 40000000/8/frameLen)
	rate := float64(got-1) * frameLen * 8 / last.Sub(first).Seconds()
	ab, _ := p.em.Stats()
	t.Logf("received %d frames, %.2f Mbit/s; emulator a>b %+v", got, rate/1e6, ab)
	if !within(rate, 20e6, 0.10) {
		t.Errorf("measured rate %.2f Mbit/s, want 20 +-10%%", rate/1e6)
	}
	if ab.QueueDrop == 0 {
		t.Error("sending at twice the cap dropped nothing at the queue")
	}
}
