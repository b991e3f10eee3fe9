package dp_test

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"samepath/dp/balance"
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
