package tcpproxy

// Risk balancing (risk.go) on the in-memory topology of harness_test.go,
// with more servers on the server netstack:
//
//	client ==wire== [Terminator] ==wire== server netstack: 192.0.2.13 (srvA), 192.0.2.11 (srvB),
//	                                      192.0.2.12 (srvC), 192.0.2.20 (srvDead: no listener, RST)

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

var (
	srvB    = netip.MustParseAddrPort("192.0.2.11:80")
	srvC    = netip.MustParseAddrPort("192.0.2.12:80")
	srvDead = netip.MustParseAddrPort("192.0.2.20:80")
	srvA    = netip.MustParseAddrPort("192.0.2.13:80") // srvAddr is e.listen's
)

// riskEnv is an env whose Admit hands out risk, with a group of servers.
type riskEnv struct {
	*env
	risk  *Risk
	group []netip.AddrPort
	ctr   RiskCounters
	down  sync.Map // netip.AddrPort -> bool: health down

	mu    sync.Mutex
	logs  []string
	moves []netip.AddrPort // OnServer's servers, in order
}

func newRiskEnv(t *testing.T, first netip.AddrPort, group []netip.AddrPort, r Risk) *riskEnv {
	t.Helper()
	e := newEnv(t, testConfig())
	re := &riskEnv{env: e, group: group}
	for _, a := range []netip.AddrPort{srvA, srvB, srvC, srvDead} {
		if err := e.server.addAddress(a.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	r.Counters = &re.ctr
	r.Next = func(tried []netip.AddrPort) (netip.AddrPort, bool) {
		for _, s := range re.group {
			if !slices.Contains(tried, s) {
				return s, true
			}
		}
		return netip.AddrPort{}, false
	}
	r.Healthy = func(s netip.AddrPort) bool { _, d := re.down.Load(s); return !d }
	r.HealthPoll = 10 * time.Millisecond
	r.Log = func(c *Conn, ev RiskCounter, from, to netip.AddrPort, why error) {
		re.mu.Lock()
		re.logs = append(re.logs, ev.String()+" "+from.String()+" -> "+to.String()+": "+errString(why))
		re.mu.Unlock()
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	re.risk = &r
	e.term.cfg.Admit = func(q Request) Decision {
		return Decision{Server: first, Session: 1, Risk: re.risk}
	}
	e.term.cfg.OnServer = func(c *Conn, server netip.AddrPort) {
		re.mu.Lock()
		re.moves = append(re.moves, server)
		re.mu.Unlock()
	}
	t.Cleanup(func() {
		re.mu.Lock()
		defer re.mu.Unlock()
		for _, l := range re.logs {
			t.Log("risk:", l)
		}
	})
	return re
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// wantCounts compares the risk counters with want (missing: 0).
func (re *riskEnv) wantCounts(t *testing.T, want map[RiskCounter]uint64) {
	t.Helper()
	got := re.ctr.Snapshot()
	for i := range got {
		if got[i] != want[RiskCounter(i)] {
			t.Errorf("risk counter %v = %d, want %d", RiskCounter(i), got[i], want[RiskCounter(i)])
		}
	}
}

// wantMoves compares the servers OnServer reported with want.
func (re *riskEnv) wantMoves(t *testing.T, want ...netip.AddrPort) {
	t.Helper()
	re.mu.Lock()
	defer re.mu.Unlock()
	if !slices.Equal(re.moves, want) {
		t.Errorf("OnServer got %v, want %v", re.moves, want)
	}
}

// rawServer accepts on addr and runs h for each connection; h may
// reset it with ep.Abort.
func (re *riskEnv) rawServer(t *testing.T, addr netip.AddrPort, h func(c net.Conn, ep tcpip.Endpoint)) {
	t.Helper()
	var wq waiter.Queue
	l, terr := re.server.stack.NewEndpoint(tcp.ProtocolNumber, netProto(addr.Addr()), &wq)
	if terr != nil {
		t.Fatalf("listen %v: %s", addr, terr)
	}
	if terr := l.Bind(fullAddr(addr)); terr != nil {
		t.Fatalf("bind %v: %s", addr, terr)
	}
	if terr := l.Listen(64); terr != nil {
		t.Fatalf("listen %v: %s", addr, terr)
	}
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&entry)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			ep, nwq, terr := l.Accept(nil)
			if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
				select {
				case <-ch:
					continue
				case <-stop:
					return
				}
			}
			if terr != nil {
				return
			}
			c := gonet.NewTCPConn(nwq, ep)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				h(c, ep)
			}()
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wq.EventUnregister(&entry)
		l.Close()
		wg.Wait()
	})
}

// httpServer serves h on addr with net/http (its Range, If-Match and
// If-Range handling is the reference).
func (re *riskEnv) httpServer(t *testing.T, addr netip.AddrPort, h http.Handler) {
	t.Helper()
	l, err := gonet.ListenTCP(re.server.stack, fullAddr(addr), netProto(addr.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(l) }()
	t.Cleanup(func() { s.Close(); <-done })
}

// readRequest reads one request head (to the empty line).
func readHead(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(waitLimit))
	var b []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(b, []byte("\r\n\r\n")) {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// echoAnswer answers what it read with "from NAME: " and the request.
func echoAnswer(name string) func(c net.Conn, _ tcpip.Endpoint) {
	return func(c net.Conn, _ tcpip.Endpoint) {
		b, err := readHead(c)
		if err != nil {
			return
		}
		c.Write(append([]byte("from "+name+": "), b...))
	}
}

// exchange sends req and reads to EOF.
func (re *riskEnv) exchange(t *testing.T, req []byte) ([]byte, error) {
	t.Helper()
	c, _ := re.mustDial(client1, repAddr)
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	return readAll(c)
}

var getReq = []byte("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")

// A server that refuses the connect (RST to the SYN) is replaced before
// the mobile's handshake completes.
func TestFailoverConnectRefused(t *testing.T) {
	re := newRiskEnv(t, srvDead, []netip.AddrPort{srvDead, srvB}, Risk{ReplayBuffer: 4096})
	re.rawServer(t, srvB, echoAnswer("b"))
	got, err := re.exchange(t, getReq)
	if want := append([]byte("from b: "), getReq...); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	c := re.nextClosed()
	if c.End() != CtrEndFIN || c.Server() != srvB {
		t.Errorf("end %v, server %v; want end_fin, %v", c.End(), c.Server(), srvB)
	}
	re.wantCounts(t, map[RiskCounter]uint64{RiskFailover: 1})
	re.wantMoves(t, srvB)
}

// A server that takes the request and fails before answering (FIN
// without data, RST, health down) is replaced and the request replayed:
// the mobile sees one answer, the other server's, to its whole request.
func TestFailoverBeforeAnswer(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(re *riskEnv, c net.Conn, ep tcpip.Endpoint)
	}{
		{"fin", func(re *riskEnv, c net.Conn, ep tcpip.Endpoint) {}},
		{"rst", func(re *riskEnv, c net.Conn, ep tcpip.Endpoint) { ep.Abort() }},
		{"health down", func(re *riskEnv, c net.Conn, ep tcpip.Endpoint) {
			re.down.Store(srvA, true)
			c.SetReadDeadline(time.Now().Add(waitLimit))
			io.Copy(io.Discard, c) // until the terminator gives up on it
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096})
			var sawA atomic.Int32
			re.rawServer(t, srvA, func(c net.Conn, ep tcpip.Endpoint) {
				if _, err := readHead(c); err == nil {
					sawA.Add(1)
				}
				tc.fail(re, c, ep)
			})
			re.rawServer(t, srvB, echoAnswer("b"))
			// Two writes: the replay is the whole request.
			req := append(bytes.Clone(getReq[:10]), getReq[10:]...)
			c, _ := re.mustDial(client1, repAddr)
			c.Write(req[:10])
			time.Sleep(10 * time.Millisecond) // two segments, not a timing assertion
			c.Write(req[10:])
			got, err := readAll(c)
			if want := append([]byte("from b: "), getReq...); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("got %q, %v; want %q", got, err, want)
			}
			if sawA.Load() != 1 {
				t.Errorf("server a saw %d requests, want 1", sawA.Load())
			}
			re.wantCounts(t, map[RiskCounter]uint64{RiskFailover: 1})
			re.wantMoves(t, srvB)
		})
	}
}

// A request larger than the replay buffer whose server fails is reset,
// and so is one whose every server fails.
func TestFailoverResets(t *testing.T) {
	closeAfterHead := func(c net.Conn, _ tcpip.Endpoint) { readHead(c) }
	t.Run("overflow", func(t *testing.T) {
		re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 16})
		re.rawServer(t, srvA, closeAfterHead)
		re.rawServer(t, srvB, echoAnswer("b"))
		got, err := re.exchange(t, getReq)
		if !isReset(err) {
			t.Fatalf("got %q, %v; want a reset", got, err)
		}
		re.wantCounts(t, map[RiskCounter]uint64{RiskAbortOverflow: 1})
	})
	t.Run("no server left", func(t *testing.T) {
		re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB, srvDead}, Risk{ReplayBuffer: 4096})
		re.rawServer(t, srvA, closeAfterHead)
		re.rawServer(t, srvB, closeAfterHead)
		got, err := re.exchange(t, getReq)
		if !isReset(err) {
			t.Fatalf("got %q, %v; want a reset", got, err)
		}
		re.wantCounts(t, map[RiskCounter]uint64{RiskFailover: 1, RiskAbortNoServer: 1})
	})
	t.Run("no replay buffer", func(t *testing.T) {
		re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{})
		re.rawServer(t, srvA, closeAfterHead)
		re.rawServer(t, srvB, echoAnswer("b"))
		if got, err := re.exchange(t, getReq); !isReset(err) {
			t.Fatalf("got %q, %v; want a reset", got, err)
		}
		re.wantCounts(t, map[RiskCounter]uint64{RiskAbortOverflow: 1})
	})
}

// Not HTTP: after the first response byte the splice's rules hold (a
// server's FIN is passed on), nothing is counted.
func TestRiskPlainAfterAnswer(t *testing.T) {
	re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096})
	re.rawServer(t, srvA, func(c net.Conn, _ tcpip.Endpoint) { readHead(c); c.Write([]byte("part")) })
	got, err := re.exchange(t, getReq)
	if err != nil || string(got) != "part" {
		t.Fatalf("got %q, %v; want \"part\" then EOF", got, err)
	}
	re.wantCounts(t, nil)
}

// body is the resumed download's representation.
var body = payload(3<<20, 7)

// cutServer answers a GET with body's head and its first cut bytes,
// then closes (FIN) or resets: a server dying mid-body.
func cutServer(cut int, hdr string, rst bool) func(net.Conn, tcpip.Endpoint) {
	return func(c net.Conn, ep tcpip.Endpoint) {
		if _, err := readHead(c); err != nil {
			return
		}
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n" + hdr + "\r\n"))
		c.Write(body[:cut])
		if rst {
			ep.Abort()
		}
	}
}

// rangeHandler serves body with ETag etag through http.ServeContent.
func rangeHandler(etag string, ranges *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranges.Add(1)
		}
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// get downloads through the terminator with net/http's client.
func (re *riskEnv) get(t *testing.T) (*http.Response, []byte, error) {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, _, err := re.dial(client1, repAddr)
		return c, err
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: waitLimit}
	resp, err := cl.Get("http://" + repAddr.String() + "/obj")
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// A download whose server dies mid-body is resumed from another server by
// a conditional Range request: the client sees one 200 with the whole
// body. Without a validator, or with another one at the new server, it
// is reset instead, never a short success.
func TestResume(t *testing.T) {
	etag := `"v1"`
	for _, tc := range []struct {
		name      string
		hdr       string // the first server's validator fields
		etagB     string // the second server's
		resume    bool
		rst       bool
		want      map[RiskCounter]uint64
		wantRange int32
		ok        bool
	}{
		{name: "etag fin", hdr: "ETag: " + etag + "\r\n", etagB: etag, resume: true, want: map[RiskCounter]uint64{RiskResume: 1}, wantRange: 1, ok: true},
		{name: "etag rst", hdr: "ETag: " + etag + "\r\n", etagB: etag, resume: true, rst: true, want: map[RiskCounter]uint64{RiskResume: 1}, wantRange: 1, ok: true},
		{name: "no validator", hdr: "", etagB: etag, resume: true, want: map[RiskCounter]uint64{RiskAbortMidResponse: 1}},
		{name: "weak etag", hdr: "ETag: W/" + etag + "\r\n", etagB: etag, resume: true, want: map[RiskCounter]uint64{RiskAbortMidResponse: 1}},
		{name: "etag changed", hdr: "ETag: " + etag + "\r\n", etagB: `"v2"`, resume: true, want: map[RiskCounter]uint64{RiskAbortMismatch: 1}, wantRange: 1},
		{name: "resume off", hdr: "ETag: " + etag + "\r\n", etagB: etag, want: map[RiskCounter]uint64{RiskAbortMidResponse: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096, HTTP: true, Resume: tc.resume})
			re.rawServer(t, srvA, cutServer(1234567, tc.hdr, tc.rst))
			var ranges atomic.Int32
			re.httpServer(t, srvB, rangeHandler(tc.etagB, &ranges))
			resp, got, err := re.get(t)
			if tc.ok {
				if err != nil || resp.StatusCode != 200 || sha256.Sum256(got) != sha256.Sum256(body) {
					t.Fatalf("download: %v, %d of %d bytes", err, len(got), len(body))
				}
			} else if err == nil || !isReset(err) {
				t.Fatalf("download: %v, %d of %d bytes; want a reset", err, len(got), len(body))
			}
			if ranges.Load() != tc.wantRange {
				t.Errorf("%d range requests, want %d", ranges.Load(), tc.wantRange)
			}
			re.wantCounts(t, tc.want)
			if tc.wantRange > 0 {
				re.wantMoves(t, srvB) // the continuation's server, connected
			} else {
				re.wantMoves(t)
			}
		})
	}
}

// A kept-alive connection tracks each request anew: the second request's
// server fails before answering and the request goes to the other.
func TestFailoverKeepAlive(t *testing.T) {
	re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096, HTTP: true, Resume: true})
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
	re.rawServer(t, srvA, func(c net.Conn, _ tcpip.Endpoint) {
		readHead(c)
		c.Write([]byte(answer))
		readHead(c) // the second request: dies before answering
	})
	re.rawServer(t, srvB, func(c net.Conn, _ tcpip.Endpoint) {
		readHead(c)
		c.Write([]byte(answer))
	})
	c, _ := re.mustDial(client1, repAddr)
	br := bufio.NewReader(c)
	for i := range 2 {
		c.Write(getReq)
		c.SetReadDeadline(time.Now().Add(waitLimit))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "hi" {
			t.Fatalf("response %d: %q, %v", i, b, err)
		}
	}
	re.wantCounts(t, map[RiskCounter]uint64{RiskFailover: 1})
}

func TestRiskValidate(t *testing.T) {
	next := func([]netip.AddrPort) (netip.AddrPort, bool) { return netip.AddrPort{}, false }
	for _, r := range []Risk{{ReplayBuffer: -1, Next: next}, {Resume: true, Next: next}, {}, {Next: next, HealthPoll: -1}} {
		if err := r.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", r, err)
		}
	}
}

// Last-Modified as the validator (strong: Date a minute later): the
// resume asks If-Range with the date and gets the rest.
func TestResumeLastModified(t *testing.T) {
	mod := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	hdr := "Last-Modified: " + mod.Format(http.TimeFormat) + "\r\nDate: " + mod.Add(time.Minute).Format(http.TimeFormat) + "\r\n"
	re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096, HTTP: true, Resume: true})
	re.rawServer(t, srvA, cutServer(777777, hdr, false))
	var ifRange atomic.Value
	re.httpServer(t, srvB, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ifRange.Store(r.Header.Get("If-Range"))
		http.ServeContent(w, r, "", mod, bytes.NewReader(body))
	}))
	resp, got, err := re.get(t)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("download: %v, %d of %d bytes", err, len(got), len(body))
	}
	if v, _ := ifRange.Load().(string); v != mod.Format(http.TimeFormat) {
		t.Errorf("If-Range %q, want the Last-Modified date", v)
	}
	re.wantCounts(t, map[RiskCounter]uint64{RiskResume: 1})
}

// Pipelined requests, a response without a length, a body cut before its
// head ended: no resume. The mobile gets a RST where the server died
// mid-body; a response without a length ends with the server's FIN.
func TestResumeDoubts(t *testing.T) {
	etag := "ETag: \"v1\"\r\n"
	t.Run("pipelined", func(t *testing.T) {
		re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096, HTTP: true, Resume: true})
		re.rawServer(t, srvA, cutServer(100000, etag, false))
		var ranges atomic.Int32
		re.httpServer(t, srvB, rangeHandler(`"v1"`, &ranges))
		got, err := re.exchange(t, append(bytes.Clone(getReq), getReq...))
		if !isReset(err) || len(got) >= len(body) {
			t.Fatalf("got %d bytes, %v; want a reset", len(got), err)
		}
		if ranges.Load() != 0 {
			t.Errorf("%d range requests for pipelined requests", ranges.Load())
		}
		re.wantCounts(t, map[RiskCounter]uint64{RiskAbortMidResponse: 1})
	})
	t.Run("head cut", func(t *testing.T) {
		re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096, HTTP: true, Resume: true})
		re.rawServer(t, srvA, func(c net.Conn, _ tcpip.Endpoint) { readHead(c); c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Le")) })
		got, err := re.exchange(t, getReq)
		if !isReset(err) {
			t.Fatalf("got %q, %v; want a reset", got, err)
		}
		re.wantCounts(t, map[RiskCounter]uint64{RiskAbortMidResponse: 1})
	})
	t.Run("no length", func(t *testing.T) {
		re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096, HTTP: true, Resume: true})
		const resp = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe body ends with the connection"
		re.rawServer(t, srvA, func(c net.Conn, _ tcpip.Endpoint) { readHead(c); c.Write([]byte(resp)) })
		got, err := re.exchange(t, getReq)
		if err != nil || string(got) != resp {
			t.Fatalf("got %q, %v; want the response and EOF", got, err)
		}
		re.wantCounts(t, nil)
	})
	t.Run("tls", func(t *testing.T) {
		re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096, HTTP: true, Resume: true})
		hello := []byte("\x16\x03\x01\x00\x05hello\r\n\r\n")
		re.rawServer(t, srvA, func(c net.Conn, ep tcpip.Endpoint) {
			readHead(c)
			c.Write([]byte("\x16\x03\x03 server data"))
			ep.Abort()
		})
		if got, err := re.exchange(t, hello); !isReset(err) {
			t.Fatalf("got %q, %v; want the server's reset passed on", got, err)
		}
		re.wantCounts(t, nil)
	})
}

// A server that does not answer the SYN is replaced at the dial timeout.
func TestFailoverConnectTimeout(t *testing.T) {
	silent := netip.MustParseAddrPort("192.0.2.30:80") // no such address on the server netstack: SYNs vanish
	re := newRiskEnv(t, silent, []netip.AddrPort{silent, srvB}, Risk{ReplayBuffer: 4096})
	re.term.cfg.DialTimeout = 300 * time.Millisecond // before any traffic
	re.rawServer(t, srvB, echoAnswer("b"))
	got, err := re.exchange(t, getReq)
	if want := append([]byte("from b: "), getReq...); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	re.wantCounts(t, map[RiskCounter]uint64{RiskFailover: 1})
}

// silentServer answers a GET with body's head and its first cut bytes,
// then goes silent (no FIN, no RST: its host is gone) while its health
// goes down, and holds the connection until the terminator drops it.
func silentServer(re *riskEnv, addr netip.AddrPort, cut int, hdr string) func(net.Conn, tcpip.Endpoint) {
	return func(c net.Conn, _ tcpip.Endpoint) {
		if _, err := readHead(c); err != nil {
			return
		}
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n" + hdr + "\r\n"))
		c.Write(body[:cut])
		re.down.Store(addr, true)
		c.SetReadDeadline(time.Now().Add(2 * waitLimit))
		io.Copy(io.Discard, c) // until the terminator gives up on it
	}
}

// A server whose health goes down mid-body while it sends nothing more
// is handled like one that died mid-body: resumed from another server if
// the response allows it, else the mobile is reset; never a hang.
func TestResumeHealthDown(t *testing.T) {
	etag := `"v1"`
	t.Run("resumable", func(t *testing.T) {
		re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096, HTTP: true, Resume: true})
		re.rawServer(t, srvA, silentServer(re, srvA, 1234567, "ETag: "+etag+"\r\n"))
		var ranges atomic.Int32
		re.httpServer(t, srvB, rangeHandler(etag, &ranges))
		resp, got, err := re.get(t)
		if err != nil || resp.StatusCode != 200 || sha256.Sum256(got) != sha256.Sum256(body) {
			t.Fatalf("download: %v, %d of %d bytes", err, len(got), len(body))
		}
		if ranges.Load() != 1 {
			t.Errorf("%d range requests, want 1", ranges.Load())
		}
		re.wantCounts(t, map[RiskCounter]uint64{RiskResume: 1})
		re.wantMoves(t, srvB)
	})
	t.Run("not resumable", func(t *testing.T) {
		re := newRiskEnv(t, srvA, []netip.AddrPort{srvA, srvB}, Risk{ReplayBuffer: 4096, HTTP: true, Resume: true})
		re.rawServer(t, srvA, silentServer(re, srvA, 1234567, "")) // no validator
		var ranges atomic.Int32
		re.httpServer(t, srvB, rangeHandler(etag, &ranges))
		_, got, err := re.get(t)
		if err == nil || !isReset(err) {
			t.Fatalf("download: %v, %d of %d bytes; want a reset", err, len(got), len(body))
		}
		if ranges.Load() != 0 {
			t.Errorf("%d range requests, want 0", ranges.Load())
		}
		re.wantCounts(t, map[RiskCounter]uint64{RiskAbortMidResponse: 1})
		re.wantMoves(t)
	})
}
