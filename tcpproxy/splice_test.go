package tcpproxy

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// A request and a 1 MB response go through the splice byte for byte; the
// connection's counters, OnOpen, OnFirstBytes and OnClose see them.
func TestRequestResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  netip.Addr
		rep  netip.AddrPort
	}{
		{"ipv4", client1, repAddr},
		{"ipv6 mobile to ipv4 server", client6, repAddr6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testConfig())
			req := append([]byte("GET /big HTTP/1.1\r\nHost: example.test\r\n\r\n"), payload(100_000, 1)...)
			resp := payload(1_000_000, 2)

			c, _ := e.mustDial(tc.src, tc.rep)
			if _, err := c.Write(req); err != nil {
				t.Fatalf("client write: %v", err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatalf("client close write: %v", err)
			}
			sc := e.nextAccepted()
			got, err := readAll(sc.c)
			if err != nil {
				t.Fatalf("server read: %v", err)
			}
			if !bytes.Equal(got, req) {
				t.Fatalf("server got %d bytes, want the %d-byte request", len(got), len(req))
			}
			if _, err := sc.c.Write(resp); err != nil {
				t.Fatalf("server write: %v", err)
			}
			sc.c.Close()
			got, err = readAll(c)
			if err != nil {
				t.Fatalf("client read: %v", err)
			}
			if !bytes.Equal(got, resp) {
				t.Fatalf("client got %d bytes, want the %d-byte response", len(got), len(resp))
			}

			cn := e.nextClosed()
			if got, want := cn.End(), CtrEndFIN; got != want {
				t.Errorf("end %v, want %v", got, want)
			}
			want := ConnStats{MobileRx: uint64(len(req)), ServerTx: uint64(len(req)), ServerRx: uint64(len(resp)), MobileTx: uint64(len(resp))}
			if diff := cmp.Diff(want, cn.Stats()); diff != "" {
				t.Errorf("conn stats (-want +got):\n%s", diff)
			}
			if cn.Mobile().Addr() != tc.src || cn.Rep() != tc.rep || cn.Server() != srvAddr || cn.Local().Addr() != gwAddr {
				t.Errorf("conn addresses mobile %v rep %v server %v local %v", cn.Mobile(), cn.Rep(), cn.Server(), cn.Local())
			}
			if cn.Data() != tc.rep {
				t.Errorf("conn data %v, want %v", cn.Data(), tc.rep)
			}
			e.mu.Lock()
			opened, sniffed := e.nOpened, e.sniffed
			e.mu.Unlock()
			if opened != 1 || len(sniffed) != 1 {
				t.Fatalf("OnOpen %d times, OnFirstBytes %d times, want 1 each", opened, len(sniffed))
			}
			if !bytes.HasPrefix(req, sniffed[0]) || !bytes.HasPrefix(sniffed[0], []byte("GET /big HTTP/1.1\r\nHost: example.test")) || len(sniffed[0]) > 1024 {
				t.Errorf("OnFirstBytes got %q", sniffed[0])
			}
			ctr := e.term.Counters()
			for _, k := range []Counter{CtrSYN, CtrSpliced, CtrEndFIN} {
				if ctr.Conn[k] != 1 {
					t.Errorf("counter %v = %d, want 1", k, ctr.Conn[k])
				}
			}
			if ctr.Active != 0 {
				t.Errorf("active %d, want 0", ctr.Active)
			}
			if diff := cmp.Diff(want, ctr.Bytes); diff != "" {
				t.Errorf("terminator's bytes after the end (-want +got):\n%s", diff)
			}
		})
	}
}

// Half-close either way: the side that sent FIN still receives.
func TestHalfClose(t *testing.T) {
	t.Run("mobile first", func(t *testing.T) {
		e := newEnv(t, testConfig())
		c, _ := e.mustDial(client1, repAddr)
		c.Write([]byte("ping"))
		c.CloseWrite()
		sc := e.nextAccepted()
		if got, err := readAll(sc.c); err != nil || string(got) != "ping" {
			t.Fatalf("server read %q, %v; want ping then EOF", got, err)
		}
		// The server's direction is still open after the mobile's FIN.
		for i := range 3 {
			if _, err := sc.c.Write([]byte("pong")); err != nil {
				t.Fatalf("server write %d after mobile FIN: %v", i, err)
			}
			if got, err := readN(c, 4); err != nil || string(got) != "pong" {
				t.Fatalf("client read %q, %v", got, err)
			}
		}
		sc.c.CloseWrite()
		if got, err := readAll(c); err != nil || len(got) != 0 {
			t.Fatalf("client read %q, %v; want EOF", got, err)
		}
		if end := e.nextClosed().End(); end != CtrEndFIN {
			t.Errorf("end %v, want %v", end, CtrEndFIN)
		}
	})
	t.Run("server first", func(t *testing.T) {
		e := newEnv(t, testConfig())
		c, _ := e.mustDial(client1, repAddr)
		c.Write([]byte("hello"))
		sc := e.nextAccepted()
		if got, err := readN(sc.c, 5); err != nil || string(got) != "hello" {
			t.Fatalf("server read %q, %v", got, err)
		}
		sc.c.Write([]byte("bye"))
		sc.c.CloseWrite()
		if got, err := readAll(c); err != nil || string(got) != "bye" {
			t.Fatalf("client read %q, %v; want bye then EOF", got, err)
		}
		for i := range 3 {
			if _, err := c.Write([]byte("more")); err != nil {
				t.Fatalf("client write %d after server FIN: %v", i, err)
			}
			if got, err := readN(sc.c, 4); err != nil || string(got) != "more" {
				t.Fatalf("server read %q, %v", got, err)
			}
		}
		c.CloseWrite()
		if got, err := readAll(sc.c); err != nil || len(got) != 0 {
			t.Fatalf("server read %q, %v; want EOF", got, err)
		}
		if end := e.nextClosed().End(); end != CtrEndFIN {
			t.Errorf("end %v, want %v", end, CtrEndFIN)
		}
	})
}

// A RST from either side resets the other.
func TestReset(t *testing.T) {
	t.Run("mobile resets", func(t *testing.T) {
		e := newEnv(t, testConfig())
		c, ep := e.mustDial(client1, repAddr)
		c.Write([]byte("x"))
		sc := e.nextAccepted()
		readN(sc.c, 1)
		ep.Abort()
		_, err := readAll(sc.c)
		if !isReset(err) {
			t.Fatalf("server read error %v, want a reset", err)
		}
		if end := e.nextClosed().End(); end != CtrEndMobileReset {
			t.Errorf("end %v, want %v", end, CtrEndMobileReset)
		}
	})
	t.Run("server resets", func(t *testing.T) {
		e := newEnv(t, testConfig())
		c, _ := e.mustDial(client1, repAddr)
		c.Write([]byte("x"))
		sc := e.nextAccepted()
		readN(sc.c, 1)
		sc.ep.Abort()
		_, err := readAll(c)
		if !isReset(err) {
			t.Fatalf("client read error %v, want a reset", err)
		}
		if end := e.nextClosed().End(); end != CtrEndServerReset {
			t.Errorf("end %v, want %v", end, CtrEndServerReset)
		}
	})
}

// A live connection's counters are readable while it lasts (accounting
// checkpoints), through Conns.
func TestLiveStats(t *testing.T) {
	e := newEnv(t, testConfig())
	c, _ := e.mustDial(client1, repAddr)
	c.Write(payload(5000, 8))
	sc := e.nextAccepted()
	readN(sc.c, 5000)
	sc.c.Write(payload(7000, 9))
	readN(c, 7000)
	var got []ConnStats
	e.term.Conns(func(cn *Conn) bool { got = append(got, cn.Stats()); return true })
	want := []ConnStats{{MobileRx: 5000, ServerTx: 5000, ServerRx: 7000, MobileTx: 7000}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("live stats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[0], e.term.Counters().Bytes); diff != "" {
		t.Errorf("terminator's bytes of the live connection (-want +got):\n%s", diff)
	}
	var ends []Counter
	e.term.Conns(func(cn *Conn) bool { ends = append(ends, cn.End()); return false })
	if len(ends) != 1 || ends[0] != 0 {
		t.Errorf("End of a live connection %v, want [0]", ends)
	}
}

// Over a lossy mobile side (every 30th frame lost each way) the transfer
// still arrives byte for byte: the mobile side's SACK and RACK repair it
// while the server side sees no loss.
func TestLossyMobileSide(t *testing.T) {
	e := newEnv(t, testConfig())
	e.mw.mu.Lock()
	e.mw.dropEvery = 30
	e.mw.mu.Unlock()
	up, down := payload(200_000, 10), payload(1_000_000, 11)
	c, _ := e.mustDial(client1, repAddr)
	go c.Write(up)
	sc := e.nextAccepted()
	if got, err := readN(sc.c, len(up)); err != nil || !bytes.Equal(got, up) {
		t.Fatalf("server got %d bytes, %v", len(got), err)
	}
	go sc.c.Write(down)
	if got, err := readN(c, len(down)); err != nil || !bytes.Equal(got, down) {
		t.Fatalf("client got %d bytes, %v", len(got), err)
	}
	e.mw.mu.Lock()
	dropped := e.mw.dropped
	e.mw.mu.Unlock()
	if dropped[0] == 0 || dropped[1] == 0 {
		t.Errorf("dropped %v frames: the link lost nothing", dropped)
	}
	rtx := e.term.mob.stack.Stats().TCP.Retransmits.Value()
	if rtx == 0 {
		t.Errorf("the mobile side retransmitted nothing over a lossy link")
	}
	if got := e.term.srv.stack.Stats().TCP.Retransmits.Value(); got != 0 {
		t.Logf("server side retransmits %d (no loss there)", got)
	}
	t.Logf("dropped %v frames; mobile side retransmitted %d segments", dropped, rtx)
}
