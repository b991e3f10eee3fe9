package dp_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"samepath/dp/acct"
	"samepath/dp/balance"
	"samepath/nat"
	"samepath/tcpproxy"
)

// setRisk gives webt risk balancing.
func (r *wired) setRisk(t *testing.T, risk balance.Risk) {
	t.Helper()
	for _, c := range r.svcs.Services() {
		if c.Name == "webt" {
			c.Risk = risk
			if _, err := r.svcs.Put(c); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no webt")
}

// TestGWTerminateFailover (R-TCP-4): the server the gateway chose takes
// the request and closes without answering; the terminator replays it to
// the other server of webt's group, chosen by the gateway's table
// without the failed one, and the client gets that server's answer. The
// service's counters say so. With both servers failing, the client gets
// a RST and abort_no_server counts it.
func TestGWTerminateFailover(t *testing.T) {
	req := []byte("GET /x HTTP/1.1\r\nHost: term.example\r\n\r\n")
	t.Run("other server answers", func(t *testing.T) {
		r := newWired(t, nil)
		r.setRisk(t, balance.Risk{ReplayBuffer: 4096})
		var n atomic.Int32
		first := make(chan netip.Addr, 1)
		r.listen(func(c net.Conn) {
			defer c.Close()
			got, err := readRequest(c)
			if err != nil {
				return
			}
			local := netip.MustParseAddrPort(c.LocalAddr().String()).Addr()
			if n.Add(1) == 1 {
				first <- local
				return // FIN without an answer
			}
			c.Write(append([]byte("from "+local.String()+": "), got...))
		})
		c, err := r.dial(rep, 81)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(req)
		got, err := io.ReadAll(c)
		c.Close()
		failed := <-first
		other := a1
		if failed == a1 {
			other = a2
		}
		if want := append([]byte("from "+other.String()+": "), req...); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
		r.waitFor("the flow record ends", func() bool { return r.gw.Stats().FlowsEnded.Load() == 1 })
		if got := r.gw.RiskCounts("webt"); got[tcpproxy.RiskFailover] != 1 || got[tcpproxy.RiskAbortNoServer] != 0 {
			t.Errorf("webt risk counters %v", got)
		}
	})
	t.Run("no server left", func(t *testing.T) {
		r := newWired(t, nil)
		r.setRisk(t, balance.Risk{ReplayBuffer: 4096})
		r.listen(func(c net.Conn) {
			defer c.Close()
			readRequest(c)
		})
		c, err := r.dial(rep, 81)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(req)
		got, err := io.ReadAll(c)
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "reset") {
			t.Fatalf("got %q, %v; want a reset", got, err)
		}
		r.waitFor("the flow record ends", func() bool { return r.gw.Stats().FlowsEnded.Load() == 1 })
		if got := r.gw.RiskCounts("webt"); got[tcpproxy.RiskFailover] != 1 || got[tcpproxy.RiskAbortNoServer] != 1 {
			t.Errorf("webt risk counters %v", got)
		}
	})
	t.Run("off", func(t *testing.T) {
		r := newWired(t, nil)
		r.listen(func(c net.Conn) {
			defer c.Close()
			readRequest(c)
		})
		c, err := r.dial(rep, 81)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(req)
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(got) != 0 {
			t.Fatalf("without risk balancing: %q, %v; want the server's FIN", got, err)
		}
		if got := r.gw.RiskCounts("webt"); got != [tcpproxy.NumRiskCounters]uint64{} {
			t.Errorf("webt risk counters %v", got)
		}
	})
}

// TestGWTerminateFailoverFollows (R-TCP-4): after a failover before the
// answer, and after a resume mid-body, the flow's T5 record (the flow
// views) and T7's active-flow count name the server the connection is
// on, the old server's count drops, and the final T10 record names the
// server that carried the response's end.
func TestGWTerminateFailoverFollows(t *testing.T) {
	body := make([]byte, 40_000)
	for i := range body {
		body[i] = byte(i*13 + i>>8)
	}
	const etag = `"v1"`
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: %s\r\n\r\n", len(body), etag)
	half := len(body) / 2
	for _, tc := range []struct {
		name  string
		risk  balance.Risk
		req   string
		first func(c net.Conn)           // the first server, after the request
		other func(c net.Conn, q []byte) // the substitute, once released
		want  []byte
		ctr   tcpproxy.RiskCounter
	}{
		{
			name:  "before the answer",
			risk:  balance.Risk{ReplayBuffer: 4096},
			req:   "GET /x HTTP/1.1\r\nHost: term.example\r\n\r\n",
			first: func(c net.Conn) {}, // FIN without an answer
			other: func(c net.Conn, q []byte) { c.Write(append([]byte("answer: "), q...)) },
			want:  []byte("answer: GET /x HTTP/1.1\r\nHost: term.example\r\n\r\n"),
			ctr:   tcpproxy.RiskFailover,
		},
		{
			name:  "resume mid-body",
			risk:  balance.Risk{ReplayBuffer: 4096, HTTP: true, Resume: true},
			req:   "GET /big HTTP/1.1\r\nHost: term.example\r\n\r\n",
			first: func(c net.Conn) { c.Write(append([]byte(head), body[:half]...)) }, // then FIN mid-body
			other: func(c net.Conn, q []byte) {
				if !bytes.Contains(q, []byte("\r\nRange: bytes="+strconv.Itoa(half)+"-\r\n")) {
					return // not the continuation: the client sees a reset
				}
				fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Length: %d\r\nContent-Range: bytes %d-%d/%d\r\nETag: %s\r\n\r\n",
					len(body)-half, half, len(body)-1, len(body), etag)
				c.Write(body[half:])
			},
			want: append([]byte(head), body...),
			ctr:  tcpproxy.RiskResume,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, prod, path := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
			r := newWired(t, prod)
			r.setRisk(t, tc.risk)
			svc, _ := r.svcs.ID("webt")
			var n atomic.Int32
			firstAt := make(chan netip.AddrPort, 1)
			otherAt := make(chan netip.AddrPort, 1)
			release := make(chan struct{})
			var once sync.Once
			free := func() { once.Do(func() { close(release) }) }
			t.Cleanup(free) // a failed check must not leave the handler waiting
			r.listen(func(c net.Conn) {
				defer c.Close()
				q, err := readRequest(c)
				if err != nil {
					return
				}
				local := netip.MustParseAddrPort(c.LocalAddr().String())
				if n.Add(1) == 1 {
					firstAt <- local
					tc.first(c)
					return
				}
				otherAt <- local
				<-release
				tc.other(c, q)
			})
			conns := func() map[netip.AddrPort]int64 {
				m := map[netip.AddrPort]int64{}
				for _, s := range r.svcs.Status()[svc].Servers {
					m[s.Addr] = s.Conns
				}
				return m
			}
			c, err := r.dial(rep, 81)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(tc.req)); err != nil {
				t.Fatal(err)
			}
			from, to := <-firstAt, <-otherAt
			if from == to {
				t.Fatalf("the substitute is the failed server %v", from)
			}
			// While the substitute holds its answer: the flow view and
			// the counts name it.
			var flow []nat.Binding
			r.waitFor("the flow record names the substitute", func() bool {
				flow = flowsTo(r.flows, 81)
				return len(flow) == 1 && flow[0].Server == nat.Addr16From(to.Addr()) && flow[0].SPort == to.Port()
			})
			r.waitFor("the active count moves", func() bool {
				m := conns()
				return m[from] == 0 && m[to] == 1
			})
			free()
			got, err := io.ReadAll(c)
			c.Close() // the mobile's FIN: the connection ends
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("client got %d bytes, %v; want the %d of the whole response", len(got), err, len(tc.want))
			}
			r.waitFor("the flow record ends", func() bool { return r.gw.Stats().FlowsEnded.Load() == 1 })
			r.stop()
			if m := conns(); m[from] != 0 || m[to] != 0 {
				t.Errorf("active counts after the end %v, want none", m)
			}
			if n := r.gw.Stats().Term.Moved.Load(); n != 1 {
				t.Errorf("term moved %d, want 1", n)
			}
			if got := r.gw.RiskCounts("webt"); got[tc.ctr] != 1 {
				t.Errorf("webt risk counters %v, want %v 1", got, tc.ctr)
			}
			final := closeFinal(t, log, path)
			if final.Server != to.String() || final.Cause != "tcp-close" {
				t.Errorf("final record server %q cause %q, want %v tcp-close (the first was %v)", final.Server, final.Cause, to, from)
			}
			if final.DownPayload == nil || *final.DownPayload != uint64(len(tc.want)) {
				t.Errorf("final record down payload %v, want %d", final.DownPayload, len(tc.want))
			}
		})
	}
}

// TestGWTerminateDrainMidBody (R-TCP-4): an operator's drain of the
// server of a download in flight lets it run to its end (flows already
// on a draining server run on): risk balancing's health poll does not
// take the drain for a dead server, so a response it could not resume
// (no validator) is not reset.
func TestGWTerminateDrainMidBody(t *testing.T) {
	r := newWired(t, nil)
	r.setRisk(t, balance.Risk{ReplayBuffer: 4096, HTTP: true, Resume: true})
	const n = 64 << 10
	resp := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(n) + "\r\nConnection: close\r\n\r\n"
	drained := make(chan struct{})
	r.listen(func(c net.Conn) {
		defer c.Close()
		if _, err := readRequest(c); err != nil {
			return
		}
		local := netip.MustParseAddrPort(c.LocalAddr().String())
		c.Write([]byte(resp))
		c.Write(bytes.Repeat([]byte("a"), n/2))
		if _, err := r.svcs.SetAdmin("webt", local, balance.AdminDrain); err != nil {
			t.Error(err)
		}
		close(drained)
		// Several of the terminator's health polls (200 ms) see the
		// drain before the rest: a reset would come now.
		time.Sleep(3 * tcpproxy.DefaultHealthPoll)
		c.Write(bytes.Repeat([]byte("a"), n-n/2))
	})
	c, err := r.dial(rep, 81)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET /x HTTP/1.1\r\nHost: term.example\r\n\r\n"))
	got, err := io.ReadAll(c)
	c.Close()
	<-drained
	if want := resp + strings.Repeat("a", n); err != nil || string(got) != want {
		t.Fatalf("got %d bytes, %v; want the whole response (%d bytes)", len(got), err, len(want))
	}
	if got := r.gw.RiskCounts("webt"); got != [tcpproxy.NumRiskCounters]uint64{} {
		t.Errorf("webt risk counters %v", got)
	}
}
