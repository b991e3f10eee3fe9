package xlat_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

// The golden tests: one case per RFC 7915 rule, the input and the
// expected output built with dptest's builder, compared field by field
// with dptest.Diff.

var (
	macA = dptest.MAC("02:00:00:00:00:01")
	macB = dptest.MAC("02:00:00:00:00:02")
)

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

// The test network: an IPv6 host 2001:db8:1::5 mapped by EAM to
// 192.0.2.5, IPv4 servers behind the well-known prefix 64:ff9b::/96.
var (
	h6   = a("2001:db8:1::5")
	h4   = a("192.0.2.5")
	s4   = a("203.0.113.7")
	s6   = a("64:ff9b::cb00:7107")
	r4   = a("198.51.100.77") // an IPv4 router
	r6   = a("64:ff9b::c633:644d")
	own4 = a("198.51.100.1")
	own6 = a("2001:db8:ffff::1")
)

func testConfig() xlat.Config {
	c := xlat.DefaultConfig()
	c.EAM = []xlat.EAM{{IPv6: netip.MustParsePrefix("2001:db8:1::/120"), IPv4: netip.MustParsePrefix("192.0.2.0/24")}}
	c.IPv4Address, c.IPv6Address = own4, own6
	return c
}

func newT(t testing.TB, mod func(*xlat.Config)) *xlat.Translator {
	t.Helper()
	c := testConfig()
	if mod != nil {
		mod(&c)
	}
	tr, err := xlat.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// run translates frame in and returns the outcome and the frames.
func run(t testing.TB, tr *xlat.Translator, in []byte) (xlat.Outcome, [][]byte) {
	t.Helper()
	var d header.Decoded
	if v := header.Decode(in, &d); v != header.OK {
		t.Fatalf("input does not decode: %v", v)
	}
	before := append([]byte(nil), in...)
	out := make([]byte, xlat.OutLen(len(in)))
	var r xlat.Result
	o := tr.Translate(in, &d, out, &r)
	if !bytes.Equal(before, in) {
		t.Fatal("Translate changed its input")
	}
	if o != r.Outcome {
		t.Fatalf("returned %v, Result says %v", o, r.Outcome)
	}
	var fs [][]byte
	for i := 0; i < r.N; i++ {
		fs = append(fs, out[r.Pkts[i].Off:r.Pkts[i].Off+r.Pkts[i].Len])
	}
	return o, fs
}

func v4(src, dst netip.Addr) *dptest.Builder { return dptest.Frame().Eth(macA, macB).IPv4(src, dst) }
func v6(src, dst netip.Addr) *dptest.Builder { return dptest.Frame().Eth(macA, macB).IPv6(src, dst) }

// answer4 and answer6 start the translator's own ICMP errors: MACs
// swapped, from its own address, TTL 64.
func answer4(dst netip.Addr) *dptest.Builder {
	return dptest.Frame().Eth(macB, macA).IPv4(own4, dst).TTL(64)
}
func answer6(dst netip.Addr) *dptest.Builder {
	return dptest.Frame().Eth(macB, macA).IPv6(own6, dst).TTL(64)
}

var data = []byte("0123456789abcdefghijklmnopqrstuvwxyz")

type golden struct {
	name string
	mod  func(*xlat.Config)
	in   []byte
	want [][]byte
	o    xlat.Outcome
	// idFromGot: the outer IPv4 ID of packet 0 is the generator's; copy
	// it from the output (checking it is not 0) before comparing.
	idFromGot bool
	badL4     bool // the input's transport checksum is wrong on purpose
}

func checkGolden(t *testing.T, cases []golden) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newT(t, tc.mod)
			o, got := run(t, tr, tc.in)
			if o != tc.o {
				t.Fatalf("outcome %v, want %v", o, tc.o)
			}
			if tr.Counters[o] != 1 {
				t.Errorf("counter of %v is %d, want 1", o, tr.Counters[o])
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d packets, want %d", len(got), len(tc.want))
			}
			if tc.idFromGot {
				id := binary.BigEndian.Uint16(got[0][header.EthernetLen+4:])
				if id == 0 {
					t.Errorf("generated IPv4 ID is 0")
				}
				w := header.IPv4(tc.want[0][header.EthernetLen:])
				w.SetID(id)
				w.SetChecksum(0)
				w.SetChecksum(w.CalculateChecksum())
			}
			for i := range got {
				if d := dptest.Diff(tc.want[i], got[i]); d != "" {
					t.Errorf("packet %d: %s", i, d)
				}
				if err := dptest.VerifyChecksums(got[i]); err != nil && !tc.badL4 {
					t.Errorf("packet %d: %v", i, err)
				}
			}
		})
	}
}
