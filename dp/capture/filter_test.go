package capture_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/bpf"

	"samepath/dp/capture"
	"samepath/dp/dptest"
)

// tcpPort80 is `tcpdump -ddd -y EN10MB 'tcp port 80'` (tcpdump 4.99.3,
// libpcap 1.10.3): IPv4 and IPv6, fragments excluded.
const tcpPort80 = `20
40 0 0 12
21 0 6 34525
48 0 0 20
21 0 15 6
40 0 0 54
21 12 0 80
40 0 0 56
21 10 11 80
21 0 10 2048
48 0 0 23
21 0 8 6
40 0 0 20
69 6 0 8191
177 0 0 14
72 0 0 14
21 2 0 80
72 0 0 16
21 0 1 80
6 0 0 262144
6 0 0 0
`

// vlan is `tcpdump -ddd -y EN10MB vlan`: it reads no extension, so the VM runs it.
const vlan = "6\n40 0 0 12\n21 2 0 33024\n21 1 0 34984\n21 0 1 37120\n6 0 0 262144\n6 0 0 0\n"

var (
	macA, macB = dptest.MAC("02:00:00:00:00:01"), dptest.MAC("02:00:00:00:00:02")
	mob        = netip.MustParseAddr("10.101.0.5")
	rep        = netip.MustParseAddr("10.30.0.1")
	srv        = netip.MustParseAddr("10.20.0.11")
	mob6       = netip.MustParseAddr("fd00:101::5")
	rep6       = netip.MustParseAddr("fd00:30::1")
)

func TestParseTuple(t *testing.T) {
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		in, str string
		want    capture.Tuple
	}{
		{"tcp 10.101.0.5:40000 10.30.0.1:80", "", capture.Tuple{Proto: 6, Src: pfx("10.101.0.5/32"), SPort: 40000, Dst: pfx("10.30.0.1/32"), DPort: 80}},
		{"* * *:80", "", capture.Tuple{DPort: 80}},
		{"udp 10.101.0.0/16 *", "", capture.Tuple{Proto: 17, Src: pfx("10.101.0.0/16")}},
		{"udp 10.101.7.9/16 *", "udp 10.101.0.0/16 *", capture.Tuple{Proto: 17, Src: pfx("10.101.0.0/16")}},
		{"icmp6 [fd00::1]:53 fd00::2", "", capture.Tuple{Proto: 58, Src: pfx("fd00::1/128"), SPort: 53, Dst: pfx("fd00::2/128")}},
		{"47 * *", "", capture.Tuple{Proto: 47}},
	} {
		got, err := capture.ParseTuple(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
			t.Errorf("%q (-want +got):\n%s", tc.in, d)
		}
		str := tc.str
		if str == "" {
			str = tc.in
		}
		if got.String() != str {
			t.Errorf("%q: String %q, want %q", tc.in, got.String(), str)
		}
	}
	for _, in := range []string{"", "tcp 1.2.3.4", "sctp * *", "tcp 1.2.3.4:99999 *", "tcp 1.2.3/8 *", "tcp [fd00::1 *", "tcp x *"} {
		if _, err := capture.ParseTuple(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestParseBPF(t *testing.T) {
	p, err := capture.ParseBPF(vlan)
	if err != nil {
		t.Fatal(err)
	}
	want := []bpf.RawInstruction{{Op: 40, K: 12}, {Op: 21, Jt: 2, K: 33024}, {Op: 21, Jt: 1, K: 34984}, {Op: 21, Jf: 1, K: 37120}, {Op: 6, K: 262144}, {Op: 6}}
	if d := cmp.Diff(want, p); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// tcpdump -dd's C-array style commas are no -ddd; but "," as a line
	// separator is taken (a program on one line: 2,6 0 0 1,6 0 0 0).
	if p, err := capture.ParseBPF("2,6 0 0 1,6 0 0 0"); err != nil || len(p) != 2 {
		t.Errorf("one-line program: %v %v", p, err)
	}
	for _, in := range []string{"", "3\n6 0 0 0\n", "x\n6 0 0 0", "1\n6 0 0", "1\n6 0 0 x", "1\n65536 0 0 0", "1\n6 256 0 0"} {
		if _, err := capture.ParseBPF(in); !errors.Is(err, capture.ErrFilter) {
			t.Errorf("%q: err %v, want a capture filter error", in, err)
		}
	}
}

// TestFilterMatch runs filters over frames through a session's tap, as
// the worker does: Begin, Before, then After keeping every match.
func TestFilterMatch(t *testing.T) {
	web := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(40000, 80).Bytes()
	webBack := dptest.Frame().Eth(macB, macA).IPv4(rep, mob).TCP(80, 40000).Bytes()
	web6 := dptest.Frame().Eth(macA, macB).IPv6(mob6, rep6).TCP(40000, 80).Bytes()
	dns := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).UDP(5353, 53).Bytes()
	nat := dptest.Frame().Eth(macA, macB).IPv4(srv, rep).TCP(8080, 1024).Bytes()
	vlanWeb := dptest.Frame().Eth(macA, macB).VLAN(5).IPv4(mob, rep).TCP(40000, 80).Bytes()
	arp := dptest.Frame().Eth(macA, macB).ARP(1, macA, mob, [6]byte{}, rep).Bytes()
	frames := [][]byte{web, webBack, web6, dns, nat, vlanWeb, arp, nil, web[:20]}
	names := []string{"web", "webBack", "web6", "dns", "nat", "vlanWeb", "arp", "empty", "short"}
	bpf80, err := capture.ParseBPF(tcpPort80)
	if err != nil {
		t.Fatal(err)
	}
	bpfVLAN, _ := capture.ParseBPF(vlan)
	tuple := func(s string) *capture.Tuple {
		tp, err := capture.ParseTuple(s)
		if err != nil {
			t.Fatal(err)
		}
		return &tp
	}
	for _, tc := range []struct {
		name string
		f    capture.Filter
		want []string
	}{
		{"all", capture.Filter{}, names},
		{"bpf tcp port 80", capture.Filter{BPF: bpf80}, []string{"web", "webBack", "web6"}},
		{"bpf vlan", capture.Filter{BPF: bpfVLAN}, []string{"vlanWeb"}},
		{"tuple both ways", capture.Filter{Tuple: tuple("tcp 10.101.0.5:40000 10.30.0.1:80")}, []string{"web", "webBack", "vlanWeb"}},
		{"tuple port", capture.Filter{Tuple: tuple("* * *:53")}, []string{"dns"}},
		{"tuple prefix", capture.Filter{Tuple: tuple("* 10.20.0.0/16 *")}, []string{"nat"}},
		{"tuple v6", capture.Filter{Tuple: tuple("tcp fd00:101::/64 *")}, []string{"web6"}},
		{"bpf and tuple", capture.Filter{BPF: bpf80, Tuple: tuple("* 10.101.0.5 *")}, []string{"web", "webBack"}},
		{"other port", capture.Filter{InPorts: 1 << 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := matchAll(t, tc.f, frames, names)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func matchAll(t *testing.T, f capture.Filter, frames [][]byte, names []string) []string {
	cfg := capture.DefaultConfig()
	cfg.Filter, cfg.Workers = f, [][]string{{"lan/q0", "srv/q0"}}
	s, err := capture.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tap := s.Tap(0)
	var got []string
	if !tap.Begin(0) {
		return nil
	}
	for i, fr := range frames {
		tap.Before(i, fr)
	}
	for k := range tap.Pending() {
		got = append(got, names[tap.Index(k)])
		tap.After(k, 1, 0, frames[tap.Index(k)])
	}
	tap.Commit()
	return got
}

func TestFilterErrors(t *testing.T) {
	cfg := capture.DefaultConfig()
	cfg.Workers = [][]string{{"lan/q0"}}
	for name, prog := range map[string][]bpf.RawInstruction{
		"jump out":        {{Op: 0x15, Jt: 5, K: 1}, {Op: 6}},
		"no return":       {{Op: 0x28, K: 12}},
		"extension":       {{Op: 0x20, K: 0xfffff000 + 44}, {Op: 6}}, // ld vlan_tci, which the VM lacks
		"unknown opcode":  {{Op: 0xff}, {Op: 6}},
		"divide by zero":  {{Op: 0x34, K: 0}, {Op: 6}},
		"empty but given": {},
	} {
		cfg.Filter = capture.Filter{BPF: prog}
		_, err := capture.New(cfg)
		if name == "empty but given" {
			if err != nil {
				t.Errorf("%s: %v (no program is no filter)", name, err)
			}
			continue
		}
		if !errors.Is(err, capture.ErrFilter) || !strings.Contains(err.Error(), "bpf program") {
			t.Errorf("%s: err %v, want a bpf program error", name, err)
		}
	}
}
