package acct

import (
	"encoding/json"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"samepath/nat"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	goleak.VerifyTestMain(m)
}

func u64(v uint64) *uint64 { return &v }

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

// testRecord is record i of a synthetic load: its fields are functions of
// i, so a reader can check every field of what it gets back.
func testRecord(i uint64) Record {
	var r Record
	r.Kind = Final
	if i%5 == 4 {
		r.Kind = Interim
	}
	r.Session = i
	r.SetAcctSession("acct-" + itoa(i))
	r.SetUser("user" + itoa(i%7))
	r.SetDevice("IMEI-" + itoa(i%7))
	r.SetService("svc" + itoa(i%3))
	r.SetServiceType([]string{"web", "video", "mail"}[i%3])
	r.SetAttr(AttrHTTP, "h"+itoa(i)+".example/p?q="+itoa(i))
	r.Proto = 6
	r.SetRep(netip.MustParseAddrPort("10.30.0.1:80"))
	r.SetServer(netip.MustParseAddrPort("10.20.0.11:8080"))
	r.Start = t0.Add(time.Duration(i) * time.Second).UnixNano()
	r.End = r.Start + int64(i%11)*int64(time.Millisecond)
	r.Cause = Cause(i % uint64(CauseInterim))
	if r.Kind == Interim {
		r.Cause = CauseInterim
	}
	r.UpPackets, r.UpBytes, r.DownPackets, r.DownBytes = i, 3*i, 2*i, 100*i
	return r
}

func itoa(i uint64) string { return strconv.FormatUint(i, 10) }

// wantEntry is what the reader must return for testRecord(i).
func wantEntry(i uint64) Entry {
	r := testRecord(i)
	return Entry{
		Kind: r.Kind.String(), Session: i, AcctSessionID: "acct-" + itoa(i), User: r.UserID(), Device: r.DeviceID(),
		Service: r.ServiceName(), ServiceType: r.ServiceTypeName(), URL: r.Attribute(),
		Rep: "10.30.0.1:80", Server: "10.20.0.11:8080", Proto: "tcp",
		Start: time.Unix(0, r.Start).UTC(), End: time.Unix(0, r.End).UTC(), Cause: r.Cause.String(),
		UpPackets: r.UpPackets, UpBytes: r.UpBytes, DownPackets: r.DownPackets, DownBytes: r.DownBytes,
	}
}

func TestCauseNumbersAreNats(t *testing.T) {
	if int(nat.NumCauses) != int(CauseInterim) {
		t.Fatalf("nat has %d causes, acct maps %d", nat.NumCauses, CauseInterim)
	}
	for c := nat.Cause(0); c < nat.NumCauses; c++ {
		if got, want := Cause(c).String(), c.String(); got != want {
			t.Errorf("cause %d: acct %q, nat %q", c, got, want)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	full := testRecord(9)
	full.HasPayload, full.UpPayload, full.DownPayload = true, 77, 10432
	wantFull := wantEntry(9)
	wantFull.UpPayload, wantFull.DownPayload = u64(77), u64(10432)

	var sni Record
	sni.Kind, sni.Proto, sni.Cause = Interim, 6, CauseInterim
	sni.SetUser("alice")
	sni.SetDevice("IMEI-1")
	sni.SetAttr(AttrSNI, "x.example")
	sni.SetRep(netip.MustParseAddrPort("[2001:db8::1]:443"))
	sni.Start, sni.End = t0.UnixNano(), t0.Add(time.Second).UnixNano()

	var bare Record // unknown addresses, no service, unknown protocol
	bare.Proto = 132
	bare.Start, bare.End = t0.UnixNano(), t0.UnixNano()

	tests := []struct {
		name string
		r    Record
		want Entry
		line string // exact line, when given
	}{
		{name: "full", r: full, want: wantFull},
		{name: "sni v6", r: sni, want: Entry{Kind: "interim", User: "alice", Device: "IMEI-1", SNI: "x.example",
			Rep: "[2001:db8::1]:443", Proto: "tcp", Start: t0, End: t0.Add(time.Second), Cause: "interim"}},
		{name: "bare", r: bare, want: Entry{Kind: "final", Proto: "132", Start: t0, End: t0, Cause: "idle-timeout"},
			line: `{"kind":"final","session":0,"user":"","device":"","service":"","service_type":"","proto":"132",` +
				`"start":"2025-03-04T05:06:07.123456789Z","end":"2025-03-04T05:06:07.123456789Z","cause":"idle-timeout",` +
				`"up_packets":0,"up_bytes":0,"down_packets":0,"down_bytes":0}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line := AppendJSON(nil, &tc.r)
			if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
				t.Fatalf("not one line: %q", line)
			}
			if tc.line != "" && string(line) != tc.line {
				t.Errorf("line\n got %s\nwant %s", line, tc.line)
			}
			var got Entry
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("decoded (-want +got):\n%s", d)
			}
		})
	}
}

// TestAppendJSONEscaping checks the string encoder against encoding/json.
func TestAppendJSONEscaping(t *testing.T) {
	for _, s := range []string{
		`plain`, `quo"te\back`, "ctl\x00\x01\x1f\x7f\t\n\r", "héllo wörld", "bad\xff\xfeutf8",
		"cut\xe3\x81", "\u2028\u2029", "<&>", "日本語のユーザー名",
	} {
		var r Record
		r.SetUser(s)
		r.SetAttr(AttrHTTP, s)
		line := AppendJSON(nil, &r)
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%q: %v: %s", s, err, line)
		}
		var want string
		ref, _ := json.Marshal(r.UserID())
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if e.User != want || e.URL != want {
			t.Errorf("%q: user %q url %q, want %q", s, e.User, e.URL, want)
		}
	}
}

func TestSetTruncates(t *testing.T) {
	var r Record
	long := strings.Repeat("a", UserSize-1) + "é" // é is 2 bytes: cut before it
	r.SetUser(long)
	if got := r.UserID(); got != strings.Repeat("a", UserSize-1) {
		t.Errorf("user %q", got)
	}
	r.SetDeviceBytes([]byte(strings.Repeat("d", 40)))
	if got := r.DeviceID(); got != strings.Repeat("d", DeviceSize) {
		t.Errorf("device %q", got)
	}
	r.SetAttrBytes(AttrSNI, []byte(strings.Repeat("x", 300)))
	if r.AttrLen != AttrSize || r.AttrKind != AttrSNI {
		t.Errorf("attr len %d kind %d", r.AttrLen, r.AttrKind)
	}
	r.SetServiceType("")
	if r.ServiceTypeLen != 0 {
		t.Errorf("service type len %d", r.ServiceTypeLen)
	}
}

func TestAppendJSONAllocs(t *testing.T) {
	r := testRecord(12345)
	r.SetRep(netip.MustParseAddrPort("[2001:db8::1]:443"))
	buf := make([]byte, 0, MaxLine)
	user, attr := []byte("bob"), []byte("example.org/x")
	if n := testing.AllocsPerRun(100, func() {
		r.SetUserBytes(user)
		r.SetAttrBytes(AttrHTTP, attr)
		buf = AppendJSON(buf[:0], &r)
	}); n != 0 {
		t.Errorf("AppendJSON: %v allocs", n)
	}
}

func TestMaxLineBounds(t *testing.T) {
	var r Record
	r.Kind, r.Cause, r.Proto, r.Session = numKinds+9, NumCauses+9, 255, ^uint64(0)
	worst := strings.Repeat("\x01", 300)
	r.SetUser(worst)
	r.SetAcctSession(worst)
	r.SetDevice(worst)
	r.SetService(worst)
	r.SetServiceType(worst)
	r.SetAttr(AttrHTTP, worst)
	r.SetRep(netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535"))
	r.SetServer(netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535"))
	r.Start, r.End = -1<<63, 1<<63-1
	r.UpPackets, r.UpBytes, r.DownPackets, r.DownBytes = ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)
	r.HasPayload, r.UpPayload, r.DownPayload = true, ^uint64(0), ^uint64(0)
	r.Boot, r.Seq = ^uint64(0), ^uint64(0)
	if n := len(AppendJSON(nil, &r)); n > MaxLine {
		t.Errorf("worst line %d bytes > MaxLine %d", n, MaxLine)
	}
}

// TestAcctSessionID (issue 18): the record carries the RADIUS
// Acct-Session-Id to the line, the reader and the query filter.
func TestAcctSessionID(t *testing.T) {
	r := testRecord(3)
	line := AppendJSON(nil, &r)
	if !strings.Contains(string(line), `"session":3,"acct_session_id":"acct-3",`) {
		t.Fatalf("line lacks acct_session_id: %s", line)
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want bool
	}{{"", true}, {"acct-3", true}, {"acct-4", false}} {
		f := Filter{AcctSessionID: tc.id}
		if got := f.Match(&e); got != tc.want {
			t.Errorf("filter %q: match %v, want %v", tc.id, got, tc.want)
		}
	}
	var none Record
	if l := AppendJSON(nil, &none); strings.Contains(string(l), "acct_session_id") {
		t.Errorf("record without an id writes one: %s", l)
	}
}

// TestCheckpointHalfWithoutAcctSession: a half written before the
// Acct-Session-Id existed (zeroes past Slot) decodes with none.
func TestCheckpointHalfWithoutAcctSession(t *testing.T) {
	r := testRecord(5)
	var b [recSize]byte
	encodeRecord(b[:], &r)
	clear(b[recSize-1-AcctSessionSize:])
	var got Record
	decodeRecord(b[:], &got)
	want := r
	want.AcctSession, want.AcctSessionLen = [AcctSessionSize]byte{}, 0
	if got != want {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}
