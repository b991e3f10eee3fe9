package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"samepath/dp/acct"
)

var acctT0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// writeAcctLog writes records through a real acct.Log and returns its path.
func writeAcctLog(t *testing.T) string {
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
	type row struct {
		user, dev, svc, typ, attr string
		kind                      uint8
		startMin                  int
		up, down                  uint64
	}
	for i, x := range []row{
		{"alice", "IMEI-1", "web-a", "web", "web-a.example/files/1M.bin", acct.AttrHTTP, 0, 4200, 1050000},
		{"bob", "IMEI-2", "web-a", "web", "web-a.example/", acct.AttrHTTP, 5, 300, 900},
		{"alice", "IMEI-1", "video-b", "video", "video-b.example", acct.AttrSNI, 10, 8000, 5000000},
	} {
		var r acct.Record
		r.Session = uint64(i + 1)
		r.SetAcctSession("acct-" + string(rune('1'+i)))
		r.SetUser(x.user)
		r.SetDevice(x.dev)
		r.SetService(x.svc)
		r.SetServiceType(x.typ)
		r.SetAttr(x.kind, x.attr)
		r.Proto = 6
		r.SetRep(netip.MustParseAddrPort("10.30.0.1:80"))
		r.SetServer(netip.MustParseAddrPort("10.20.0.11:80"))
		r.Start = acctT0.Add(time.Duration(x.startMin) * time.Minute).UnixNano()
		r.End = r.Start + int64(1500*time.Millisecond)
		r.Cause = acct.CauseTCPClose
		r.UpPackets, r.UpBytes, r.DownPackets, r.DownBytes = 10, x.up, 20, x.down
		if !p.Push(&r) {
			t.Fatal("push refused")
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCtl(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb, Defaults{})
	return code, out.String(), errb.String()
}

func TestAccountingTable(t *testing.T) {
	path := writeAcctLog(t)
	code, out, errs := runCtl("accounting", "-log", path, "-user", "alice")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	want := [][]string{
		{"KIND", "SUBSCRIBER", "DEVICE", "SERVICE", "TYPE", "URL/SNI", "UP_BYTES", "DOWN_BYTES", "PACKETS(UP/DOWN)", "START", "DURATION", "CAUSE"},
		{"final", "alice", "IMEI-1", "web-a", "web", "web-a.example/files/1M.bin", "4200", "1050000", "10/20", "2025-06-01T12:00:00Z", "1.5s", "tcp-close"},
		{"final", "alice", "IMEI-1", "video-b", "video", "video-b.example", "8000", "5000000", "10/20", "2025-06-01T12:10:00Z", "1.5s", "tcp-close"},
	}
	var got [][]string
	for _, l := range lines {
		got = append(got, strings.Fields(l))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("table (-want +got):\n%s", d)
	}
}

func TestAccountingJSON(t *testing.T) {
	path := writeAcctLog(t)
	for _, args := range [][]string{
		{"accounting", "-log", path, "-service-type", "web", "-o", "json"},
		{"-o", "json", "accounting", "-log", filepath.Dir(path) + "/acct.log", "-service", "web-a"},
	} {
		code, out, errs := runCtl(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		var users []string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var e acct.Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			if e.Service != "web-a" || e.ServiceType != "web" || e.Rep != "10.30.0.1:80" || e.Cause != "tcp-close" {
				t.Errorf("entry %+v", e)
			}
			users = append(users, e.User)
		}
		if d := cmp.Diff([]string{"alice", "bob"}, users); d != "" {
			t.Errorf("%v: users (-want +got):\n%s", args, d)
		}
	}
}

func TestAccountingFilters(t *testing.T) {
	path := writeAcctLog(t)
	tests := []struct {
		args []string
		want []string // sessions' devices, in order
	}{
		{[]string{"-device", "IMEI-2"}, []string{"bob"}},
		{[]string{"-from", "2025-06-01T12:04:00Z"}, []string{"bob", "alice"}},
		{[]string{"-to", "2025-06-01T12:05:00Z"}, []string{"alice"}},
		{[]string{"-from", "2025-06-01T12:05:01Z", "-to", "2025-06-01T12:10:00Z"}, []string{"bob"}},
		{[]string{"-user", "carol"}, nil},
		{[]string{"-kind", "interim"}, nil},
		{[]string{"-acct-session-id", "acct-2"}, []string{"bob"}},
		{[]string{"-acct-session-id", "acct-9"}, nil},
	}
	for _, tc := range tests {
		args := append([]string{"accounting", "-log", path, "-o", "json"}, tc.args...)
		code, out, errs := runCtl(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errs)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var e acct.Entry
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatal(err)
			}
			got = append(got, e.User)
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%v (-want +got):\n%s", tc.args, d)
		}
	}
}

func TestAccountingErrors(t *testing.T) {
	path := writeAcctLog(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"accounting"}, 2},
		{[]string{"accounting", "-log", path, "-from", "yesterday"}, 2},
		{[]string{"accounting", "-log", path, "-o", "yaml"}, 2},
		{[]string{"accounting", "-log", path, "-kind", "start"}, 2},
		{[]string{"accounting", "-log", path, "extra"}, 2},
		{[]string{"accounting", "-log", filepath.Join(t.TempDir(), "none.log")}, 1},
	} {
		if code, _, errs := runCtl(tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errs)
		}
	}
}
