package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"samepath/dp/acct"
)

// writeFlowLog writes, to a new log, a record of flow (boot, seq) with
// the given bytes and cause, and one of another flow.
func writeFlowLog(t *testing.T, boot, seq, up, down uint64, cause acct.Cause) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acct.log")
	l, err := acct.Open(acct.DefaultConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Register()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []uint64{seq, seq + 100} {
		var r acct.Record
		r.Session, r.Boot, r.Seq, r.Proto = 1, boot, s, 6
		r.SetUser("alice")
		r.SetAcctSession("acct-1")
		r.Start = acctT0.UnixNano()
		r.End = r.Start + int64(time.Second)
		r.Cause = cause
		r.UpBytes, r.DownBytes = up+uint64(i), down
		if !p.Push(&r) {
			t.Fatal("push refused")
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAccountingFlowAcrossLogs (issue 17, part 4): -flow with one -log
// per gateway shows the one flow's records on both, each line naming its
// log and the flow.
func TestAccountingFlowAcrossLogs(t *testing.T) {
	const boot = 0xabc
	gw1 := writeFlowLog(t, boot, 7, 100, 5000, acct.CauseGatewayRestart)
	gw2 := writeFlowLog(t, boot, 7, 40, 9000, acct.CauseTCPClose)
	id := (&acct.Record{Boot: boot, Seq: 7}).FlowID()
	code, out, errs := runCtl("accounting", "-log", gw1, "-log", gw2, "-flow", id)
	if code != 0 {
		t.Fatalf("rc %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "LOG") || !strings.HasSuffix(lines[0], "FLOW") {
		t.Fatalf("want a header and two records:\n%s", out)
	}
	for i, want := range []struct{ log, bytes, cause string }{{gw1, "5000", "gateway-restart"}, {gw2, "9000", "tcp-close"}} {
		l := lines[i+1]
		if !strings.HasPrefix(l, want.log) || !strings.Contains(l, want.bytes) || !strings.Contains(l, want.cause) || !strings.HasSuffix(l, id) {
			t.Errorf("record %d %q: want %s, %s bytes down, %s, flow %s", i+1, l, want.log, want.bytes, want.cause, id)
		}
	}
	if code, _, _ := runCtl("accounting", "-log", gw1, "-log", ""); code != 2 {
		t.Fatalf("an empty -log: rc %d, want 2", code)
	}
}
