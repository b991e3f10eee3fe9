package xsk_test

// Topology of the privileged tests (fresh namespaces per test):
//
//	  ns dut                              ns peer
//	+---------------------------+      +-------------------+
//	| a0 10.9.1.1/24  [xdpfilter]|<---->| a1 10.9.1.2/24    |
//	|   sockets a0/q0, a0/q1    |      |  packet socket,   |
//	|                           |      |  xsk generator    |
//	| b0             [xdpfilter]|<---->| b1 packet socket  |
//	|   socket b0/q0            |      |                   |
//	+---------------------------+      +-------------------+
//
// All dut sockets share one Umem. The filter owns frames to the a0/b0 MACs
// with destinations in 10.99.0.0/16 and leaves 10.9.1.1 (the host) alone.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"samepath/dp"
	"samepath/ring"
	"samepath/ring/xsk"
	"samepath/ring/xsk/internal/nettest"
	"samepath/ring/xsk/xdpfilter"
	"samepath/testbed/privtest"
)

var _ dp.Port = (*xsk.Socket)(nil)

type env struct {
	dut, peer      *nettest.NS
	a0, a1, b0, b1 string
	a0mac, b0mac   [6]byte
	a1mac          [6]byte
	umem           *xsk.Umem
	filter         *xdpfilter.Filter
	sa, sb         *xsk.Socket
}

func mac6(h net.HardwareAddr) (m [6]byte) { copy(m[:], h); return m }

func newEnv(t testing.TB, queues int) *env {
	t.Helper()
	privtest.Require(t)
	e := &env{
		dut: nettest.NewNS(t, privtest.Name("xd", "d")), peer: nettest.NewNS(t, privtest.Name("xd", "p")),
		// Unique names: NAPI kernel threads are named after them.
		a0: privtest.Name("xa", "0"), a1: privtest.Name("xa", "1"), b0: privtest.Name("xb", "0"), b1: privtest.Name("xb", "1"),
	}
	nettest.Veth(t, e.dut, e.a0, e.peer, e.a1, queues)
	nettest.Veth(t, e.dut, e.b0, e.peer, e.b1, 1)
	e.dut.Ip(t, "addr", "add", "10.9.1.1/24", "dev", e.a0)
	e.peer.Ip(t, "addr", "add", "10.9.1.2/24", "dev", e.a1)
	e.a0mac, e.b0mac, e.a1mac = mac6(e.dut.MAC(t, e.a0)), mac6(e.dut.MAC(t, e.b0)), mac6(e.peer.MAC(t, e.a1))

	f, err := xdpfilter.Load(xdpfilter.Match{
		DstMACs:     [][6]byte{e.a0mac, e.b0mac},
		DstPrefixes: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")},
		ExcludeDst:  []netip.Addr{netip.MustParseAddr("10.9.1.1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.filter = f
	t.Cleanup(func() { f.Close() })
	ucfg := xsk.DefaultUmemConfig()
	ucfg.Frames = 4096
	u, err := xsk.NewUmem(ucfg)
	if err != nil {
		t.Fatal(err)
	}
	e.umem = u
	t.Cleanup(func() { u.Close() })
	if err := e.dut.Do(func() error {
		for _, ifn := range []string{e.a0, e.b0} {
			ifi, err := net.InterfaceByName(ifn)
			if err != nil {
				return err
			}
			if err := f.Attach(ifi.Index, xdpfilter.Native); err != nil {
				return err
			}
		}
		socks, err := xsk.NewShared(u, []string{e.a0, e.b0}, 0, 512, false)
		if err != nil {
			return err
		}
		e.sa, e.sb = socks[0], socks[1]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*xsk.Socket{e.sa, e.sb} {
		if err := f.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// small is a socket config with 512-slot rings, so two sockets leave
// frames in a 4096-frame Umem for the test.
func small(ifname string, q int) xsk.Config {
	c := xsk.DefaultConfig(ifname, q)
	c.RxSize, c.TxSize, c.FillSize, c.CompSize = 512, 512, 512, 512
	return c
}

// udpFrame is a frame from a1 to dst MAC with IPv4 destination dst.
func (e *env) udpFrame(dstMAC [6]byte, dst string, seq int) []byte {
	payload := []byte(fmt.Sprintf("samepath xsk test %06d", seq))
	return nettest.Ether(dstMAC, e.a1mac, 0, 0x0800, nettest.UDP(netip.MustParseAddr("10.9.1.2"), netip.MustParseAddr(dst), 4000, 5000, payload))
}

// recvN receives n frames on s within a generous deadline (not a timing
// assertion: it only bounds a hung test) and returns copies of them.
func recvN(t *testing.T, s *xsk.Socket, n int) [][]byte {
	t.Helper()
	var out [][]byte
	d := make([]ring.Desc, 64)
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		if _, err := s.Wait(50 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		k, err := s.Recv(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range d[:k] {
			out = append(out, append([]byte(nil), s.Umem().Bytes(x)...))
		}
		s.Release(d[:k])
	}
	if len(out) < n {
		st, _ := s.Stats()
		t.Fatalf("%s: received %d of %d frames (stats %+v)", s.Name(), len(out), n, st)
	}
	return out
}

func TestRecvAndModes(t *testing.T) {
	e := newEnv(t, 1)
	if got := e.umem.Mode(); got != xsk.ModeCopy {
		t.Errorf("veth mode %v, want copy (zero-copy bind refused)", got)
	}
	if e.sa.Name() != e.a0+"/q0" || e.sa.Umem() != e.sb.Umem() || e.sa.Umem() != e.umem.Ring() {
		t.Errorf("name %q, umem shared %v", e.sa.Name(), e.sa.Umem() == e.sb.Umem())
	}
	out := e.dut.Ip(t, "link", "show", e.a0)
	if !strings.Contains(out, "prog/xdp ") || strings.Contains(out, "xdpgeneric") {
		t.Errorf("xdp not attached in native mode:\n%s", out)
	}
	free := e.umem.Ring().Pool().Len()
	p := nettest.OpenPacket(t, e.peer, e.a1)
	var want [][]byte
	for i := 0; i < 100; i++ {
		f := e.udpFrame(e.a0mac, "10.99.0.5", i)
		want = append(want, f)
		if err := p.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	got := recvN(t, e.sa, len(want))
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d:\n got %x\nwant %x", i, got[i], want[i])
		}
	}
	// Frames not ours stay with the kernel: to the host's address, and
	// outside the prefix; neither reaches the socket.
	before, _ := e.filter.Counters()
	for _, dst := range []string{"10.9.1.1", "192.0.2.1"} {
		if err := p.Send(e.udpFrame(e.a0mac, dst, 0)); err != nil {
			t.Fatal(err)
		}
	}
	waitCounters(t, e.filter, func(c xdpfilter.Counters) bool {
		return c.Excluded > before.Excluded && c.NotOurs > before.NotOurs
	})
	d := make([]ring.Desc, 8)
	if n, _ := e.sa.Recv(d); n != 0 {
		t.Errorf("socket received %d frames that were not ours", n)
	}
	// Every frame is back: the pool plus the fill rings hold them all.
	if n := e.umem.Ring().Pool().Len(); n != free {
		t.Errorf("pool has %d free frames, had %d", n, free)
	}
	st, err := e.sa.Stats()
	if err != nil || st.RxDropped != 0 || st.RxInvalid != 0 {
		t.Errorf("stats %+v, err %v", st, err)
	}
}

func waitCounters(t *testing.T, f *xdpfilter.Filter, ok func(xdpfilter.Counters) bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c, err := f.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if ok(c) {
			return
		}
	}
	c, _ := f.Counters()
	t.Fatalf("counters never got there: %+v", c)
}

func TestKernelKeepsARPAndPing(t *testing.T) {
	e := newEnv(t, 1)
	before, _ := e.filter.Counters()
	// ping resolves 10.9.1.1 by ARP first; both go to the dut's kernel
	// through the attached program.
	if out, err := e.peer.Exec("ping", "-c", "2", "-W", "2", "10.9.1.1"); err != nil {
		t.Fatalf("ping to the host with the filter attached: %v\n%s", err, out)
	}
	after, _ := e.filter.Counters()
	if after.Excluded < before.Excluded+2 || after.NotOurs <= before.NotOurs {
		t.Errorf("counters before %+v after %+v: want 2 excluded echo requests and an ARP passed", before, after)
	}
	if out := e.peer.Ip(t, "neigh", "show", "10.9.1.1"); !strings.Contains(out, "lladdr") {
		t.Errorf("peer has no ARP entry for the host: %q", out)
	}
}

// TestHairpinSharedUmem receives on a0 and sends the same descriptors out
// of b0: the UMEM is shared, so no byte is copied.
func TestHairpinSharedUmem(t *testing.T) {
	e := newEnv(t, 1)
	p := nettest.OpenPacket(t, e.peer, e.a1)
	sink := nettest.OpenPacket(t, e.peer, e.b1)
	const n = 200
	for i := 0; i < n; i++ {
		if err := p.Send(e.udpFrame(e.a0mac, "10.99.0.5", i)); err != nil {
			t.Fatal(err)
		}
	}
	d := make([]ring.Desc, 64)
	moved := 0
	addrs := map[uint64]bool{}
	for deadline := time.Now().Add(5 * time.Second); moved < n && time.Now().Before(deadline); {
		e.sa.Wait(20 * time.Millisecond)
		k, _ := e.sa.Recv(d)
		for _, x := range d[:k] {
			addrs[x.Addr] = true
		}
		sent, _ := e.sb.Send(d[:k])
		e.sa.Release(d[sent:k])
		moved += sent
		if err := e.sb.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if moved != n {
		t.Fatalf("moved %d of %d", moved, n)
	}
	got := 0
	for got < n {
		f, err := sink.Recv(5*time.Second, func(b []byte) bool { return bytes.Contains(b, []byte("samepath xsk test")) })
		if err != nil {
			t.Fatalf("b1 got %d of %d: %v", got, n, err)
		}
		want := e.udpFrame(e.a0mac, "10.99.0.5", got)
		if !bytes.Equal(f, want) {
			t.Fatalf("b1 frame %d:\n got %x\nwant %x", got, f, want)
		}
		got++
	}
	// The completions come back to the shared pool.
	for deadline := time.Now().Add(5 * time.Second); e.umem.Ring().Pool().Len() < 4096-2*512 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		e.sb.Flush()
	}
	if free := e.umem.Ring().Pool().Len(); free != 4096-2*512 {
		t.Errorf("pool has %d free frames, want %d (all but the two fill rings)", free, 4096-2*512)
	}
	t.Logf("%d frames in %d distinct UMEM frames went a0 -> b0 by descriptor", n, len(addrs))
}

// NewShared that cannot open every socket closes the ones it opened.
func TestNewSharedCloses(t *testing.T) {
	e := newEnv(t, 1)
	u, err := xsk.NewUmem(xsk.DefaultUmemConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	c0, c1 := privtest.Name("xc", "0"), privtest.Name("xc", "1")
	nettest.Veth(t, e.dut, c0, e.peer, c1, 1)
	var opened int
	err = e.dut.Do(func() error {
		// The first interface alone opens (so the failure below comes
		// from the second one, after the first socket was open).
		socks, err := xsk.NewShared(u, []string{c0}, 0, 512, false)
		if err != nil {
			return err
		}
		opened = len(u.Sockets())
		socks[0].Close()
		_, err = xsk.NewShared(u, []string{c0, "nosuchdev0"}, 0, 512, false)
		if err == nil {
			return errors.New("NewShared with a missing interface succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if opened != 1 {
		t.Fatalf("the first socket alone: %d sockets on the UMEM, want 1", opened)
	}
	if n := len(u.Sockets()); n != 0 {
		t.Errorf("%d sockets left open after the error", n)
	}
}

// TestMultiQueue opens sockets on two queues of a0 and sends to each from
// an AF_XDP socket on the matching queue of a1 (veth delivers on the
// receiving side's queue with the sender's TX queue index).
func TestMultiQueue(t *testing.T) {
	e := newEnv(t, 2)
	var sq1 *xsk.Socket
	if err := e.dut.Do(func() error {
		var err error
		cfg := small(e.a0, 1)
		cfg.BusyPoll = true // the socket options are accepted; Recv kicks
		sq1, err = xsk.New(e.umem, cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.filter.Register(sq1); err != nil {
		t.Fatal(err)
	}
	if sq1.Name() != e.a0+"/q1" {
		t.Errorf("name %q", sq1.Name())
	}
	for q, rx := range []*xsk.Socket{e.sa, sq1} {
		var g *xsk.Socket
		if err := e.peer.Do(func() error {
			var err error
			g, err = xsk.Open(small(e.a1, q))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		want := e.udpFrame(e.a0mac, "10.99.1.1", q)
		if err := sendFrames(g, want, 10); err != nil {
			t.Fatal(err)
		}
		for i, f := range recvN(t, rx, 10) {
			if !bytes.Equal(f, want) {
				t.Fatalf("q%d frame %d:\n got %x\nwant %x", q, i, f, want)
			}
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// sendFrames transmits n copies of frame from s.
func sendFrames(s *xsk.Socket, frame []byte, n int) error {
	u := s.Umem()
	for i := 0; i < n; i++ {
		a, ok := u.Alloc()
		if !ok {
			if err := s.Flush(); err != nil {
				return err
			}
			i--
			continue
		}
		copy(u.Frame(a), frame)
		d := []ring.Desc{{Addr: a, Len: uint32(len(frame))}}
		for {
			k, _ := s.Send(d)
			if k == 1 {
				break
			}
			if err := s.Flush(); err != nil {
				return err
			}
		}
	}
	return s.Flush()
}

var xdpAttached = regexp.MustCompile(`\bxdp(generic|drv|offload)?\b|prog/xdp`)

func TestCloseLeavesNothing(t *testing.T) {
	privtest.Require(t)
	fdsBefore := openFDs(t)
	e := newEnv(t, 1)
	if err := e.filter.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.filter.Close(); err != nil {
		t.Fatalf("second filter Close: %v", err)
	}
	for _, ifn := range []string{e.a0, e.b0} {
		// An attached program shows as "xdp"/"xdpgeneric" and "prog/xdp";
		// a bare substring would also match the netns name (random
		// letters: "xdjxdp" was seen).
		if out := e.dut.Ip(t, "link", "show", ifn); xdpAttached.MatchString(out) {
			t.Errorf("%s still has XDP after Close:\n%s", ifn, out)
		}
	}
	if err := e.sa.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.sa.Close(); err != nil {
		t.Fatalf("second socket Close: %v", err)
	}
	if got := len(e.umem.Sockets()); got != 1 {
		t.Errorf("%d sockets open after closing one of two", got)
	}
	if err := e.umem.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.umem.Close(); err != nil {
		t.Fatalf("second umem Close: %v", err)
	}
	if _, err := e.sb.Stats(); err == nil {
		t.Error("Stats on a socket closed by its Umem succeeded")
	}
	if _, err := xsk.New(e.umem, small(e.a0, 0)); err == nil {
		t.Error("New on a closed Umem succeeded")
	}
	if got := openFDs(t); got != fdsBefore {
		t.Errorf("%d fds open after Close, %d before", got, fdsBefore)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestNoAllocs(t *testing.T) {
	e := newEnv(t, 1)
	p := nettest.OpenPacket(t, e.peer, e.a1)
	for i := 0; i < 300; i++ {
		if err := p.Send(e.udpFrame(e.a0mac, "10.99.0.5", i)); err != nil {
			t.Fatal(err)
		}
	}
	d := make([]ring.Desc, 32)
	total := 0
	allocs := testing.AllocsPerRun(50, func() {
		e.sa.Wait(time.Millisecond)
		k, _ := e.sa.Recv(d)
		total += k
		n, _ := e.sb.Send(d[:k])
		e.sa.Release(d[n:k])
		e.sb.Flush()
		e.sa.Flush()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round, want 0", allocs)
	}
	if total == 0 {
		t.Error("no frame went through the measured rounds")
	}
}

// TestSendInvalid: descriptors the kernel would reject are taken, counted
// and their frames returned, never put on the TX ring.
func TestSendInvalid(t *testing.T) {
	e := newEnv(t, 1)
	u := e.sb.Umem()
	free := u.Pool().Len()
	var d []ring.Desc
	for _, l := range []uint32{0, 2049} { // empty, longer than a frame
		a, _ := u.Alloc()
		d = append(d, ring.Desc{Addr: a, Len: l})
	}
	a, _ := u.Alloc()
	d = append(d, ring.Desc{Addr: a + 2000, Len: 100})                   // crosses into the next frame
	d = append(d, ring.Desc{Addr: uint64(len(u.Mem())) + 4096, Len: 60}) // outside the UMEM
	n, err := e.sb.Send(d)
	if n != len(d) || err != nil {
		t.Fatalf("Send = %d, %v; want %d taken", n, err, len(d))
	}
	st, _ := e.sb.Stats()
	if st.SendInvalid != 4 {
		t.Errorf("SendInvalid = %d, want 4", st.SendInvalid)
	}
	if err := e.sb.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := u.Pool().Len(); got != free {
		t.Errorf("pool %d frames, want %d back", got, free)
	}
	if st, _ := e.sb.Stats(); st.TxInvalid != 0 {
		t.Errorf("kernel saw %d invalid TX descriptors", st.TxInvalid)
	}
}

// A queue another socket still holds answers bind with EBUSY (what a
// socket of a process killed just before looks like while the kernel
// releases it). Without retries New fails with EBUSY; with the default
// BindBusyWait it retries, logs each retry, and binds once the holder is
// gone.
func TestBindRetriesBusyQueue(t *testing.T) {
	privtest.Require(t)
	dut, peer := nettest.NewNS(t, privtest.Name("xd", "d")), nettest.NewNS(t, privtest.Name("xd", "p"))
	c0, c1 := privtest.Name("xc", "0"), privtest.Name("xc", "1")
	nettest.Veth(t, dut, c0, peer, c1, 1)
	var logs syncBuffer
	umem := func() *xsk.Umem {
		ucfg := xsk.DefaultUmemConfig()
		ucfg.Frames = 2048
		ucfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		u, err := xsk.NewUmem(ucfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		return u
	}
	holderUmem, u := umem(), umem()
	var retried string
	err := dut.Do(func() error {
		holder, err := xsk.New(holderUmem, small(c0, 0))
		if err != nil {
			return err
		}
		noRetry := small(c0, 0)
		noRetry.BindBusyWait = 0
		if s, err := xsk.New(u, noRetry); !errors.Is(err, unix.EBUSY) {
			if s != nil {
				s.Close()
			}
			holder.Close()
			return fmt.Errorf("bind on a held queue without retries: err %v, want EBUSY", err)
		}
		released := make(chan struct{})
		go func() {
			time.Sleep(200 * time.Millisecond) // New is retrying by now
			holder.Close()
			close(released)
		}()
		s, err := xsk.New(u, small(c0, 0))
		<-released
		if err != nil {
			return fmt.Errorf("bind while the holder goes away: %w", err)
		}
		retried = logs.String()
		return s.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("log:\n%s", retried)
	if !strings.Contains(retried, "retrying bind") || !strings.Contains(retried, "attempt=1 ") {
		t.Errorf("no retry logged:\n%s", retried)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
