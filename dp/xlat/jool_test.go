package xlat_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

// The Jool graybox conformance replay (issue 14 part 3). The packets are
// Jool's (GPL-2.0) and stay in shared/: the test reads them from
// SAMEPATH_JOOL_DIR, by default ../shared/testdata/jool next to the
// repository root. See that folder's PROVENANCE.md for the manifest.

type joolManifest struct {
	Configs map[string]joolConfig `json:"configs"`
	Cases   []joolCase            `json:"cases"`
}

type joolCase struct {
	Suite         string   `json:"suite"`
	Group         string   `json:"group"`
	ID            string   `json:"id"`
	Direction     string   `json:"direction"`
	Send          string   `json:"send"`
	Expect        []string `json:"expect"`
	IgnoreOffsets []int    `json:"ignore_offsets"`
	Config        string   `json:"config"`
	Stateful      bool     `json:"stateful"`
	Section       string   `json:"section"`
	PreSend       []struct {
		From   string `json:"from"`
		Packet string `json:"packet"`
	} `json:"pre_send"`
}

type joolSide struct {
	Addresses []string `json:"addresses"`
	MTU       int      `json:"mtu"`
}

type joolConfig struct {
	Translator    string  `json:"translator"`
	Pool6         *string `json:"pool6"`
	EAMT          []struct{ IPv6, IPv4 string }
	RFC6791v4     *string   `json:"rfc6791v4_prefix"`
	RFC6791v6     *string   `json:"rfc6791v6_prefix"`
	LowestIPv6MTU int       `json:"lowest_ipv6_mtu"`
	AmendUDPZero  bool      `json:"amend_udp_checksum_zero"`
	Side6         joolSide  `json:"translator_ipv6_side"`
	Side4         joolSide  `json:"translator_ipv4_side"`
	ZeroizeTC     bool      `json:"zeroize_traffic_class"`
	StaticBIB     []joolBIB `json:"static_bib"`
}

// joolBIB is a NAT64 static binding (RFC 6146 BIB entry).
type joolBIB struct {
	Protocol string `json:"protocol"`
	IPv4     string `json:"ipv4_address"`
	Port4    uint16 `json:"ipv4_port"`
	IPv6     string `json:"ipv6_address"`
	Port6    uint16 `json:"ipv6_port"`
}

// joolDir finds the data: SAMEPATH_JOOL_DIR, or ../shared/testdata/jool
// relative to the repository root (the directory holding go.mod).
func joolDir(t *testing.T) string {
	if d := os.Getenv("SAMEPATH_JOOL_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "..", "shared", "testdata", "jool")
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}

func prefixOrZero(s *string) netip.Prefix {
	if s == nil {
		return netip.Prefix{}
	}
	return netip.MustParsePrefix(*s)
}

func (c *joolConfig) xlat() xlat.Config {
	x := xlat.DefaultConfig()
	x.Pool6 = prefixOrZero(c.Pool6)
	for _, e := range c.EAMT {
		x.EAM = append(x.EAM, xlat.EAM{IPv6: netip.MustParsePrefix(e.IPv6), IPv4: netip.MustParsePrefix(e.IPv4)})
	}
	x.RFC6791v4, x.RFC6791v6 = prefixOrZero(c.RFC6791v4), prefixOrZero(c.RFC6791v6)
	x.LowestIPv6MTU = c.LowestIPv6MTU
	x.AmendUDPZeroChecksum = c.AmendUDPZero
	x.IPv4Address = netip.MustParsePrefix(c.Side4.Addresses[0]).Addr()
	x.IPv6Address = netip.MustParsePrefix(c.Side6.Addresses[0]).Addr()
	x.IPv4MTU, x.IPv6MTU = c.Side4.MTU, c.Side6.MTU
	x.ResetTrafficClass = c.ZeroizeTC
	return x
}

// deviation is one line of testdata/deviations.txt: a case whose output
// differs from Jool's on purpose, with the RFC section that says why.
type deviation struct{ section, why string }

func readDeviations(t *testing.T) map[string]deviation {
	f, err := os.Open("testdata/deviations.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	devs := map[string]deviation{}
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.SplitN(line, " ", 3)
		if len(fs) < 3 || !strings.HasPrefix(fs[1], "RFC") {
			t.Fatalf("deviations.txt:%d: want \"<case id> <RFC section> <reason>\", got %q", n, line)
		}
		devs[fs[0]] = deviation{section: fs[1], why: strings.TrimSpace(fs[2])}
	}
	return devs
}

var (
	joolMACa = dptest.MAC("02:00:00:00:00:0a")
	joolMACb = dptest.MAC("02:00:00:00:00:0b")
)

// ethFrame wraps a raw layer-3 packet in an Ethernet header.
func ethFrame(ip []byte) []byte {
	f := make([]byte, header.EthernetLen, header.EthernetLen+len(ip))
	copy(f[0:6], joolMACb[:])
	copy(f[6:12], joolMACa[:])
	et := uint16(header.EtherTypeIPv4)
	if len(ip) > 0 && ip[0]>>4 == 6 {
		et = header.EtherTypeIPv6
	}
	f[12], f[13] = byte(et>>8), byte(et)
	return append(f, ip...)
}

// l3Addrs returns a raw packet's source and destination as bytes.
func l3Addrs(p []byte) (src, dst []byte) {
	if len(p) >= 20 && p[0]>>4 == 4 {
		return p[12:16], p[16:20]
	}
	if len(p) >= 40 && p[0]>>4 == 6 {
		return p[8:24], p[24:40]
	}
	return nil, nil
}

// compareJool compares got with want outside the ignored offsets and
// returns "" or the first difference.
func compareJool(want, got []byte, ignore map[int]bool) string {
	if len(want) != len(got) {
		return fmt.Sprintf("length %d, want %d (%s)", len(got), len(want), dptest.Diff(ethFrame(want), ethFrame(got)))
	}
	for i := range want {
		if !ignore[i] && want[i] != got[i] {
			return fmt.Sprintf("byte %d: %#02x, want %#02x (%s)", i, got[i], want[i], dptest.Diff(ethFrame(want), ethFrame(got)))
		}
	}
	return ""
}

// TestJool replays Jool's graybox suite with the configuration each
// case names and compares each expected packet byte for byte outside its
// ignored offsets: the SIIT cases and the NAT64 cases a static BIB entry
// with equal ports makes stateless through Translate and TranslateWith,
// every other NAT64 case through the gateway's stateful NAT64
// (jool_gw_test.go). A case listed in testdata/deviations.txt must
// differ (its RFC section says why; a "key-port:" entry must match once
// the gateway's key port reads as Jool's); one that passes is a stale
// entry and fails the test.
func TestJool(t *testing.T) {
	dir := joolDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("jool conformance data missing (set SAMEPATH_JOOL_DIR): %v", err)
		}
		t.Skipf("jool conformance data missing (set SAMEPATH_JOOL_DIR): %v", err)
	}
	var man joolManifest
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	devs := readDeviations(t)
	seen := map[string]bool{}
	trs := map[string]*xlat.Translator{}
	var passed, failed, deviated int
	var nat64Replayed, gwReplayed int
	// classify counts one case's result against deviations.txt. mapped:
	// the comparison needed the gateway's key ports mapped to Jool's
	// (jool_gw_test.go), which only a "key-port:" entry allows.
	classify := func(c *joolCase, msg string, mapped bool) {
		dev, isDev := devs[c.ID]
		keyPort := isDev && strings.HasPrefix(dev.why, "key-port:")
		switch {
		case keyPort && !mapped:
			failed++
			t.Errorf("%s: listed as a key-port deviation (%s) but needs no key port mapped: %s", c.ID, dev.section, orPass(msg))
		case keyPort && msg != "":
			failed++
			t.Errorf("%s (config %s): differs even with the key ports mapped: %s", c.ID, c.Config, msg)
		case keyPort:
			deviated++
			t.Logf("%s: deviation (%s: %s): matches with the key ports mapped", c.ID, dev.section, dev.why)
		case msg == "" && isDev:
			failed++
			t.Errorf("%s: passes but is listed in deviations.txt (%s): remove the entry", c.ID, dev.section)
		case msg == "" && mapped:
			failed++
			t.Errorf("%s: matches only with the gateway's key ports mapped to Jool's: list it in deviations.txt as key-port", c.ID)
		case msg == "":
			passed++
		case isDev:
			deviated++
			t.Logf("%s: deviation (%s: %s): %s", c.ID, dev.section, dev.why, msg)
		default:
			failed++
			t.Errorf("%s (section %s, config %s): %s", c.ID, c.Section, c.Config, msg)
		}
	}
	var jg *joolGW
	var gwOnlyDiffer []string
	for _, c := range man.Cases {
		var addrs *xlat.Addrs
		if c.Suite != "siit" {
			jc, ok := man.Configs[c.Config]
			if !ok {
				t.Fatalf("%s: no config %q", c.ID, c.Config)
			}
			if jg == nil {
				base := man.Configs["nat64-base"]
				jg = newJoolGW(t, &base, "nat64-base")
			}
			if addrs = nat64Stateless(t, dir, &jc, &c); addrs == nil {
				// Stateful, or answered by the translator itself:
				// through the gateway.
				seen[c.ID] = true
				gwReplayed++
				msg := jg.run(dir, &c, &jc)
				classify(&c, msg, jg.mapped)
				continue
			}
			// Sent to the gateway too, for the state it leaves (as
			// upstream's run); counted by the TranslateWith replay,
			// the gateway's result only logged.
			if msg := jg.run(dir, &c, &jc); msg != "" {
				gwOnlyDiffer = append(gwOnlyDiffer, c.ID)
				t.Logf("%s: through the gateway (not counted): %s", c.ID, msg)
			}
			nat64Replayed++
		}
		seen[c.ID] = true
		tr := trs[c.Config]
		if tr == nil {
			jc, ok := man.Configs[c.Config]
			if !ok {
				t.Fatalf("%s: no config %q", c.ID, c.Config)
			}
			if tr, err = xlat.New(jc.xlat()); err != nil {
				t.Fatalf("%s: config %s: %v", c.ID, c.Config, err)
			}
			trs[c.Config] = tr
		}
		classify(&c, replayJool(t, dir, tr, &c, addrs), false)
	}
	for id := range devs {
		if !seen[id] {
			t.Errorf("deviations.txt names %s, which is no replayed case", id)
		}
	}
	t.Logf("of the %d NAT64 cases replayed through TranslateWith, %d also match through the gateway (key ports mapped); differ there: %s",
		nat64Replayed, nat64Replayed-len(gwOnlyDiffer), strings.Join(gwOnlyDiffer, " "))
	sum := fmt.Sprintf("jool conformance: %d passed, %d failed, %d deviations; replayed %d SIIT cases and %d NAT64 cases through TranslateWith (a static BIB entry), %d NAT64 cases through the gateway's NAT64 (stateful); %d cases in all",
		passed, failed, deviated, passed+failed+deviated-nat64Replayed-gwReplayed, nat64Replayed, gwReplayed, len(man.Cases))
	t.Log(sum)
	fmt.Println(sum)
}

func orPass(msg string) string {
	if msg == "" {
		return "it matches"
	}
	return msg
}

// replayJool runs one case and returns "" or what went wrong.
func replayJool(t *testing.T, dir string, tr *xlat.Translator, c *joolCase, addrs *xlat.Addrs) string {
	send, err := os.ReadFile(filepath.Join(dir, c.Send))
	if err != nil {
		t.Fatal(err)
	}
	in := ethFrame(send)
	var d header.Decoded
	if v := header.Decode(in, &d); v != header.OK {
		return fmt.Sprintf("send does not decode: %v", v)
	}
	out := make([]byte, xlat.OutLen(len(in)))
	var r xlat.Result
	var o xlat.Outcome
	if addrs != nil {
		o = tr.TranslateWith(in, &d, addrs, out, &r)
	} else {
		o = tr.Translate(in, &d, out, &r)
	}
	var got [][]byte
	for i := 0; i < r.N; i++ {
		p := r.Pkts[i]
		f := out[p.Off : p.Off+p.Len]
		var pd header.Parsed
		if v := header.Parse(f, &pd); v != header.OK {
			return fmt.Sprintf("outcome %v: packet %d does not parse: %v", o, i, v)
		}
		got = append(got, f[pd.L3Off:])
	}
	return matchJool(t, dir, c, got, fmt.Sprintf("outcome %v", o))
}

// matchJool holds the layer-3 packets got against the case's expected
// packets as upstream does and returns "" or the first difference; what
// prefixes the messages.
func matchJool(t *testing.T, dir string, c *joolCase, got [][]byte, what string) string {
	ignore := map[int]bool{}
	for _, off := range c.IgnoreOffsets {
		ignore[off] = true
	}
	next := 0
	for i, e := range c.Expect {
		want, err := os.ReadFile(filepath.Join(dir, e))
		if err != nil {
			t.Fatal(err)
		}
		ws, wd := l3Addrs(want)
		// Upstream checks a packet only against the first pending
		// expectation with the same addresses.
		for next < len(got) {
			gs, gd := l3Addrs(got[next])
			if bytes.Equal(gs, ws) && bytes.Equal(gd, wd) {
				break
			}
			next++
		}
		if next == len(got) {
			return fmt.Sprintf("%s, %d packets: expected packet %d (%s) never sent", what, len(got), i, e)
		}
		if msg := compareJool(want, got[next], ignore); msg != "" {
			return fmt.Sprintf("%s: packet %d (%s): %s", what, i, e, msg)
		}
		next++
	}
	return ""
}

// nat64Stateless returns the addresses with which a NAT64 case can be
// replayed through TranslateWith without the gateway's state: a case
// that needs no earlier packet, goes through a static BIB entry whose
// IPv4 and IPv6 ports are equal (so no port is rewritten), and whose
// other side is the Pool6 prefix. It returns nil for any other case.
func nat64Stateless(t *testing.T, dir string, jc *joolConfig, c *joolCase) *xlat.Addrs {
	if c.Stateful || len(c.PreSend) > 0 || jc.Pool6 == nil || (c.Direction != "6to4" && c.Direction != "4to6") {
		return nil
	}
	send, err := os.ReadFile(filepath.Join(dir, c.Send))
	if err != nil {
		t.Fatal(err)
	}
	in := ethFrame(send)
	var d header.Decoded
	if header.Decode(in, &d) != header.OK {
		return nil
	}
	pool6 := netip.MustParsePrefix(*jc.Pool6)
	proto := func(p uint8) string {
		switch p {
		case header.ProtoTCP:
			return "tcp"
		case header.ProtoUDP:
			return "udp"
		}
		return "icmp"
	}
	// bib finds the entry of an address and port on either side.
	bib := func(p uint8, addr header.Addr16, port uint16) (netip.Addr, bool) {
		for _, e := range jc.StaticBIB {
			if e.Protocol != proto(p) || e.Port4 != e.Port6 || e.Port4 != port {
				continue
			}
			if a6 := netip.MustParseAddr(e.IPv6); !addr.Is4() && header.Addr16From(a6) == addr {
				return netip.MustParseAddr(e.IPv4), true
			}
			if a4 := netip.MustParseAddr(e.IPv4); addr.Is4() && header.Addr16From(a4) == addr {
				return netip.MustParseAddr(e.IPv6), true
			}
		}
		return netip.Addr{}, false
	}
	// other maps the far side through Pool6.
	other := func(addr header.Addr16) (header.Addr16, bool) {
		if addr.Is4() {
			return header.Addr16From(netip.AddrFrom16(xlat.Embed(pool6, [4]byte(addr[12:])))), true
		}
		v4, ok := xlat.Extract(pool6, addr)
		return header.Addr16V4(v4), ok
	}
	var a xlat.Addrs
	tu := &d.Tuple
	switch d.Kind {
	case header.KindFlow:
		// The BIB side is the source going out (6to4), the destination
		// coming in (4to6); for echo the identifier is the port.
		local, far, port := tu.Src, tu.Dst, tu.SPort
		if c.Direction == "4to6" {
			local, far, port = tu.Dst, tu.Src, tu.DPort
		}
		if tu.Proto != header.ProtoTCP && tu.Proto != header.ProtoUDP {
			port = tu.SPort | tu.DPort
		}
		l, ok1 := bib(tu.Proto, local, port)
		f, ok2 := other(far)
		if !ok1 || !ok2 {
			return nil
		}
		if c.Direction == "6to4" {
			a.Src, a.Dst = header.Addr16From(l), f
		} else {
			a.Src, a.Dst = f, header.Addr16From(l)
		}
	case header.KindICMPError:
		// The quoted packet went the other way: its BIB side is its
		// destination (6to4: it came from IPv4) or its source (4to6).
		q := &d.Quote.Tuple
		local, far, port := q.Dst, q.Src, q.DPort
		if c.Direction == "4to6" {
			local, far, port = q.Src, q.Dst, q.SPort
		}
		if q.Proto != header.ProtoTCP && q.Proto != header.ProtoUDP {
			port = q.SPort | q.DPort
		}
		l, ok1 := bib(q.Proto, local, port)
		f, ok2 := other(far)
		if !ok1 || !ok2 {
			return nil
		}
		// The error comes from (6to4) or goes to (4to6) the BIB host;
		// its other end is the quoted packet's far side.
		of, ok := other(map[bool]header.Addr16{true: tu.Dst, false: tu.Src}[c.Direction == "6to4"])
		if !ok {
			return nil
		}
		if c.Direction == "6to4" {
			a.Src, a.Dst = header.Addr16From(l), of
			a.QSrc, a.QDst = f, header.Addr16From(l)
		} else {
			a.Src, a.Dst = of, header.Addr16From(l)
			a.QSrc, a.QDst = header.Addr16From(l), f
		}
	default:
		return nil
	}
	return &a
}
