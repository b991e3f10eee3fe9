package acct

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"samepath/nat"
)

func TestSetFlow(t *testing.T) {
	b := nat.Binding{
		Flow:    nat.MakeFlowKey(nat.ProtoTCP, netip.MustParseAddrPort("10.100.0.7:40000"), netip.MustParseAddrPort("10.30.0.1:80")),
		Server:  nat.Addr16From(netip.MustParseAddr("10.20.0.11")),
		SPort:   8080,
		Session: 99, Created: int64(2 * time.Second), LastSeen: int64(5 * time.Second),
		UpPackets: 6, UpBytes: 450, DownPackets: 9, DownBytes: 11000,
	}
	var r Record
	r.SetFlow(&b, t0.UnixNano())
	r.SetUser("alice")
	r.SetDevice("IMEI-1")
	r.Cause = CauseTCPClose
	var got Entry
	line := AppendJSON(nil, &r)
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	want := Entry{Kind: "final", Session: 99, User: "alice", Device: "IMEI-1", Rep: "10.30.0.1:80", Server: "10.20.0.11:8080",
		Proto: "tcp", Start: t0.Add(2 * time.Second), End: t0.Add(5 * time.Second), Cause: "tcp-close",
		UpPackets: 6, UpBytes: 450, DownPackets: 9, DownBytes: 11000}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if n := testing.AllocsPerRun(100, func() { r.SetFlow(&b, 1) }); n != 0 {
		t.Errorf("SetFlow: %v allocs", n)
	}
}
