package xlatgw

import (
	"context"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"samepath/dp/daemon"
	"samepath/dp/xlat"
	"samepath/perf/bench"
	"samepath/perf/pktgen"
	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The gateway config the harness writes is one samepathd accepts, with
// translation on under the scenario's prefix.
func TestConfigParses(t *testing.T) {
	tp := bench.NewTopology("x")
	c, err := daemon.Parse([]byte(Config(tp)))
	if err != nil {
		t.Fatalf("samepathd rejects the harness config: %v\n%s", err, Config(tp))
	}
	if c.Role != "gw" || c.GW.RequireSession == nil || *c.GW.RequireSession || len(c.GW.NAT.Addrs) != len(NATAddrs) {
		t.Errorf("parsed config %+v", c.GW)
	}
	xc, ok, err := c.GW.XlatConfig()
	if err != nil || !ok || xc.Pool6 != Pool6 || xc.IPv6Address != Own6 {
		t.Errorf("translator config %+v ok %v err %v: want pool6 %v, own address %v", xc, ok, err, Pool6, Own6)
	}
}

// The translated variant's frames are the untranslated ones' flows from
// the IPv6 mobile to the RFC 6052 address, 20 bytes longer, stamped.
func TestFrame6(t *testing.T) {
	if got := netip.AddrFrom16(xlat.Embed(Pool6, RepIP.As4())); got != netip.MustParseAddr("64:ff9b::a1e:1") || got != RepIP6 {
		t.Fatalf("RepIP6 %v", RepIP6)
	}
	tp := bench.NewTopology("x")
	for _, size := range []int{64, 1500} {
		c := bench.Case{Size: size, Flows: 1000}
		f := pktgen.FrameSpec{Size: size, Proto: pktgen.UDP, SrcMAC: tp.GenMAC, DstMAC: tp.InMAC, SrcIP: tp.SrcIP, DstIP: tp.DstIP,
			SrcAddrs: 1, SrcPort: 1024, SrcPorts: 1000}
		Frame(tp, c, &f)
		v4 := f
		Frame6(tp, c, &f)
		if f.Size != size+20 || !f.SrcIP.Is6() || f.DstIP != RepIP6 || f.DstPort != ServicePort || f.Flows() != v4.Flows() {
			t.Errorf("%d B: IPv6 spec %+v from IPv4 %+v", size, f, v4)
		}
		if s4, s6 := v4.SrcIP.As4(), f.SrcIP.As16(); [4]byte(s6[12:]) != s4 {
			t.Errorf("%d B: source %v does not carry %v's low 32 bits", size, f.SrcIP, v4.SrcIP)
		}
		if size+20 > MobileMTU+18 {
			t.Errorf("%d B: IPv6 frame of %d B above the mobile-side MTU %d", size, size+20, MobileMTU)
		}
		if _, _, err := f.Build(); err != nil {
			t.Errorf("%d B: %v", size, err)
		}
		if !f.Stamped() || !v4.Stamped() {
			t.Errorf("%d B: frames not stamped (loss would be unknown)", size)
		}
	}
}

func TestMarkdown(t *testing.T) {
	cfg := DefaultConfig("/nonexistent/samepathd")
	cfg.Cases = []bench.Case{{Size: 64, Flows: 1000}}
	r := &bench.Result{Config: cfg, Env: bench.Env{Date: "d", Commit: "c", Command: "perfrun -scenario xlat"}, Skipped: map[string]string{},
		Placement: map[string][]string{V4: {"napi here"}}}
	for rep, v := range map[int][2]float64{1: {4e5, 2e5}, 2: {4e5, 3e5}, 3: {2e5, 2e5}} {
		r.Samples = append(r.Samples,
			bench.Sample{Variant: V4, Case: cfg.Cases[0], Rep: rep, SinkPPS: v[0]},
			bench.Sample{Variant: Xlat, Case: cfg.Cases[0], Rep: rep, SinkPPS: v[1], Note: "in/q0 rx 5", DevDrops: "i.rx_queue_0_drops +3"})
	}
	md := Markdown(r, "perf/results/xlat.svg")
	// Ratios 0.5, 0.75, 1 -> median 0.75.
	for _, want := range []string{BeginMarker, EndMarker, "## xlat", "| 64 B | 1000 | samepathd gw, v6 -> v4 (NAT64) | 0.200 [0.200-0.300] |", "| 0.75 |",
		"64 B, 1000 flows: translated 0.75x untranslated (0.200 vs 0.400 Mpps", "[64:ff9b::a1e:1]:9", "84 B", "require_session: false",
		"gateway in/q0 rx 5; veth i.rx_queue_0_drops +3", "napi here", "](perf/results/xlat.svg)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// A short, gentle run of both variants carries frames to the sink: the
// translated ones too (IPv6 in, IPv4 out), and leaves nothing behind. No
// timing is asserted.
func TestRunSmoke(t *testing.T) {
	privtest.Require(t)
	bin := filepath.Join(t.TempDir(), "samepathd")
	if out, err := exec.Command("go", "build", "-o", bin, "samepath/cmd/samepathd").CombinedOutput(); err != nil {
		t.Fatalf("build samepathd: %v\n%s", err, out)
	}
	cfg := QuickConfig(bin)
	cfg.Prefix = privtest.Name("spx", "")
	cfg.Warm, cfg.Measure = 200*time.Millisecond, 300*time.Millisecond
	cfg.Cases = []bench.Case{{Size: 1500, Flows: 100}}
	cfg.GenRate = 20000
	res, err := bench.Run(context.Background(), cfg)
	t.Cleanup(func() { bench.NewTopology(cfg.Prefix).Down() })
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{V4, Xlat} {
		if why, ok := res.Skipped[v]; ok {
			t.Fatalf("%s failed: %s", v, why)
		}
		got := 0.0
		for _, s := range res.Samples {
			if s.Variant == v {
				got += s.SinkPPS
				// Every frame the sink counts is a 1500 B IPv4 frame.
				if s.SinkPPS > 0 && (s.SinkBPS/s.SinkPPS < 1500*8-1 || s.SinkBPS/s.SinkPPS > 1500*8+1) {
					t.Errorf("%s: %.0f bits per frame at the sink, want 1500 B frames", v, s.SinkBPS/s.SinkPPS)
				}
			}
		}
		if got == 0 {
			t.Errorf("%s: no frame reached the sink", v)
		}
	}
	left, err := topo.ListNetns(cfg.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
}
