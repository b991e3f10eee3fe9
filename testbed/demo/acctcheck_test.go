package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"samepath/dp/acct"
	"samepath/nat"
)

// writeLog writes records to a fresh accounting log in dir and returns
// its path.
func writeLog(t *testing.T, dir, name string, rs ...acct.Record) string {
	t.Helper()
	var b []byte
	for i := range rs {
		b = acct.AppendJSON(b, &rs[i])
		b = append(b, '\n')
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rec is a record of flow (boot, seq) with down payload down (down
// bytes: payload plus 52 bytes per 1448-byte segment).
func rec(kind acct.Kind, cause acct.Cause, boot, seq uint64, url string, down uint64) acct.Record {
	r := acct.Record{Kind: kind, Cause: cause, Boot: boot, Seq: seq, Proto: nat.ProtoTCP,
		HasPayload: true, DownPayload: down, DownPackets: down/1448 + 1}
	r.DownBytes = down + 52*r.DownPackets
	r.Start, r.End = time.Unix(100, 0).UnixNano(), time.Unix(110, 0).UnixNano()
	if url != "" {
		r.SetAttr(acct.AttrHTTP, url)
	}
	return r
}

// TestFlowAcctCheck: the accounting check of TestTakeoverLiveFlows
// passes a flow split between two gateways' records and fails when a
// gateway's part is counted twice (a second final record, or a gateway
// that counted its peer's part too), when the crashed gateway's records
// miss more than the bound, or when a gateway that did not carry the
// flow wrote a final record of it.
func TestFlowAcctCheck(t *testing.T) {
	const (
		size       = 100 << 20
		hdr        = 200
		boot, seq  = 0xabc, 7
		killed     = 30 << 20 // gw1 carried this much
		lost       = 300 << 10
		below      = 800 << 10
		above      = below + 1<<10
		url        = "10.0.0.1/bytes/104857600"
		otherBytes = 5 << 20
	)
	gw1Final := rec(acct.Final, acct.CauseGatewayRestart, boot, seq, url, killed-lost)
	gw1Interim := rec(acct.Interim, acct.CauseInterim, boot, seq, url, 10<<20)
	gw2Final := rec(acct.Final, acct.CauseSessionEnd, boot, seq, "", size+hdr-killed)
	other := rec(acct.Final, acct.CauseSessionEnd, boot, seq+1, "10.0.0.1/x", otherBytes)
	upOnly := rec(acct.Final, acct.CauseSessionEnd, boot, seq, "", 0)
	upOnly.DownPackets, upOnly.DownBytes, upOnly.UpPackets, upOnly.UpBytes = 0, 0, 900, 900*52
	idle := upOnly
	idle.UpPackets, idle.UpBytes = 0, 0
	whole := rec(acct.Final, acct.CauseSessionEnd, boot, seq, url, size+hdr)
	for _, tc := range []struct {
		name     string
		gw1, gw2 []acct.Record
		want     string // "" passes
	}{
		{"split", []acct.Record{gw1Interim, gw1Final}, []acct.Record{other, gw2Final}, ""},
		{"gw1 carried only up packets", []acct.Record{upOnly}, []acct.Record{whole}, ""},
		{"a carrier's record counts nothing", []acct.Record{idle}, []acct.Record{whole}, "counts nothing carried"},
		{"gw2 final twice", []acct.Record{gw1Final}, []acct.Record{gw2Final, gw2Final}, "2 final records on gw2"},
		{"gw2 counted gw1's part", []acct.Record{gw1Final},
			[]acct.Record{rec(acct.Final, acct.CauseSessionEnd, boot, seq, "", size+hdr)}, "want within"},
		{"gw1 lost more than the bound", []acct.Record{rec(acct.Final, acct.CauseGatewayRestart, boot, seq, url, killed-2*below)},
			[]acct.Record{gw2Final}, "want within"},
		{"gw1 without a final", []acct.Record{gw1Interim}, []acct.Record{gw2Final}, "0 final records on gw1"},
		{"interim above final", []acct.Record{rec(acct.Interim, acct.CauseInterim, boot, seq, url, killed), gw1Final},
			[]acct.Record{gw2Final}, "than its final one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logs := map[string]string{"gw1": writeLog(t, dir, "gw1.acct", tc.gw1...), "gw2": writeLog(t, dir, "gw2.acct", tc.gw2...)}
			flows, err := ReadFlowAcct(logs)
			if err != nil {
				t.Fatal(err)
			}
			f, err := FindFlow(flows, "/bytes/104857600")
			if err != nil {
				t.Fatal(err)
			}
			err = f.Check([]string{"gw1", "gw2"}, size, below, above)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Check: %v, want an error with %q", err, tc.want)
			}
		})
	}
	// A flow on a gateway that did not carry it.
	dir := t.TempDir()
	logs := map[string]string{"gw1": writeLog(t, dir, "gw1.acct", gw1Final), "gw2": writeLog(t, dir, "gw2.acct", gw2Final)}
	flows, _ := ReadFlowAcct(logs)
	f, _ := FindFlow(flows, "/bytes/104857600")
	if err := f.Check([]string{"gw1"}, killed, below, above); err == nil || !strings.Contains(err.Error(), "did not carry it") {
		t.Fatalf("Check with gw2 not a carrier: %v", err)
	}
}
