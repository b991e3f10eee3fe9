package accte2e

// Durability of the accounting log (R-ACCT-2): gw1's samepathd is
// SIGKILLed while mob1 opens many short HTTP connections through it;
// nothing is restarted.
//
//	mob1 [4 HTTP clients, one connection per GET /] ~~ nas -- lb -- LAN1 -- gw1 [SIGKILL] -- LAN2 -- a1 a2
//	                                                                         |
//	                                               gw1.acct (fsync every 50 ms, time-wait linger 100 ms)
//
// Just before the kill the test reads how many records gw1 had fsync'd
// (samepath_gw_accounting_records_total{outcome="synced"}). After it,
// the log must be readable by acct.Scan with no bad line, at most one
// torn last line (skipped and reported by ScanStats), at least that many
// whole records, each one of mob1's connections; opening the log again
// (what a restarted gateway does) cuts the torn tail off and writes a
// final record (cause gateway-restart) for each connection the kill
// ended that had been checkpointed.

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"samepath/dp/acct"
	"samepath/testbed/demo"
	"samepath/testbed/topo"
)

func TestAccountingCrash(t *testing.T) {
	acc := demo.GWAccounting{Log: filepath.Join(t.TempDir(), "gw%d.acct"), SyncInterval: 50 * time.Millisecond}
	sys := startSystem(t, demo.Options{GWNAT: demo.GWNAT{TCPTimeWaitTimeout: 100 * time.Millisecond}, GWAccounting: acc})
	ctx := testCtx(t, 3*time.Minute)
	m := mobile(t, sys, "mob1")
	gw := sys.GWs[m.Gateway-1]
	startSession(ctx, t, sys, m)
	log := acc.Path(m.Gateway)
	url, attr := repURL(sys, 0, "/")

	// The load: short connections, one GET each, until stopped.
	lctx, stop := context.WithCancel(ctx)
	var ok, failed atomic.Uint64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return topo.Dial(ctx, m.NS, network, addr)
			}}
			defer tr.CloseIdleConnections()
			c := &http.Client{Timeout: 2 * time.Second, Transport: tr}
			for lctx.Err() == nil {
				req, _ := http.NewRequestWithContext(lctx, http.MethodGet, url, nil)
				resp, err := c.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			stop()
			wg.Wait()
		}
	}
	t.Cleanup(stopLoad)

	const minSynced = 200
	synced := func() float64 {
		v, err := metric(ctx, gw, `samepath_gw_accounting_records_total{outcome="synced"}`)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !eventually(60*time.Second, func() bool { return synced() >= minSynced }) {
		t.Fatalf("gw%d synced %v accounting records under load (%d requests ok, %d failed), want >= %d", m.Gateway, synced(), ok.Load(), failed.Load(), minSynced)
	}
	// Still under load: requests complete between two reads.
	ok0 := ok.Load()
	if !eventually(10*time.Second, func() bool { return ok.Load() > ok0 }) {
		t.Fatalf("the load stalled at %d requests", ok0)
	}
	written, err := metric(ctx, gw, `samepath_gw_accounting_records_total{outcome="written"}`)
	if err != nil {
		t.Fatal(err)
	}
	before := synced()
	okAtKill, failedAtKill := ok.Load(), failed.Load()
	killGateway(t, sys, m.Gateway)
	stopLoad()
	t.Logf("SIGKILL of samepathd-gw%d after %d requests (%d failed): %v records synced, %v written at the last reads", m.Gateway, okAtKill, failedAtKill, before, written)

	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("log after the crash: %v", err)
	}
	entries, st, err := acct.Query(log, acct.Filter{})
	if err != nil {
		t.Fatalf("query after the crash: %v", err)
	}
	t.Logf("log after the crash: %d bytes, scan %+v", len(raw), st)
	wholeLines := bytes.Count(raw, []byte{'\n'})
	tornTail := len(raw) > 0 && raw[len(raw)-1] != '\n'
	switch {
	case st.Bad != 0:
		t.Errorf("%d bad lines in the log", st.Bad)
	case st.Lines != wholeLines:
		t.Errorf("scan read %d lines, the file holds %d", st.Lines, wholeLines)
	case tornTail != (st.Torn == 1) || st.Torn > 1:
		t.Errorf("scan reports %d torn lines; file ends with a newline: %v", st.Torn, !tornTail)
	}
	if len(entries) != st.Lines {
		t.Errorf("%d records returned from %d whole lines", len(entries), st.Lines)
	}
	if float64(len(entries)) < before {
		t.Errorf("%d records in the log, %v were synced before the kill: synced records lost", len(entries), before)
	}
	for i, e := range entries {
		if e.Kind != "final" || e.Device != deviceOf(m) || e.User != userOf(m) || e.Service != "web-a" || e.Attribute() != attr || e.Proto != "tcp" {
			t.Errorf("record %d: %+v, want a final record of %s's GET %s", i, e, m.Name, attr)
			break
		}
	}

	// Recovery: opening the log cuts a torn tail off before appending.
	tail := 0
	if tornTail {
		tail = len(raw) - (bytes.LastIndexByte(raw, '\n') + 1)
	}
	l, err := acct.Open(acct.DefaultConfig(log))
	if err != nil {
		t.Fatalf("reopen the log: %v", err)
	}
	if rep := l.Stats().Repaired; rep != uint64(tail) {
		t.Errorf("reopening repaired %d bytes, the torn tail is %d", rep, tail)
	}
	recovered := int(l.Stats().Recovered)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	entries2, st2, err := acct.Query(log, acct.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if st2.Torn != 0 || st2.Bad != 0 || len(entries2) != len(entries)+recovered {
		t.Errorf("after reopening: scan %+v, %d records (before: %d, written from checkpoints: %d)", st2, len(entries2), len(entries), recovered)
	}
	// Reopening also wrote the final records (cause gateway-restart) of
	// the connections the kill ended, from their checkpoints; none of
	// them had one.
	ended := map[string]bool{}
	for _, e := range entries {
		ended[e.Flow] = true
	}
	for _, e := range entries2[min(len(entries), len(entries2)):] {
		if e.Kind != "final" || e.Cause != "gateway-restart" || e.Flow == "" || ended[e.Flow] || e.Device != deviceOf(m) {
			t.Errorf("record written at reopening: %+v, want a gateway-restart record of a connection without a final record", e)
		}
		ended[e.Flow] = true
	}
	t.Logf("reopening wrote %d gateway-restart records", recovered)

	// The gateway is gone: its API does not answer.
	if _, err := gw.Status(ctx); err == nil {
		t.Errorf("gw%d's API still answers after SIGKILL", m.Gateway)
	}
}
