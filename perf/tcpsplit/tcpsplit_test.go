package tcpsplit

import (
	"strings"
	"testing"

	"samepath/dp/daemon"
)

// The gateway config the scenario gives samepathd is one the daemon
// accepts, with a NAT and a terminate service on the same server.
func TestSamepathdConfigParses(t *testing.T) {
	tp := NewTopo("x")
	c, err := daemon.Parse([]byte(SamepathdConfig(tp)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, SamepathdConfig(tp))
	}
	if _, ok, err := c.GW.TermConfig(); !ok || err != nil {
		t.Fatalf("terminate section: ok %v, %v", ok, err)
	}
	modes := map[string]string{}
	for _, s := range c.GW.Services {
		modes[s.Name] = s.Mode
	}
	if modes["split-term"] != "terminate" || (modes["split-nat"] != "" && modes["split-nat"] != "nat") {
		t.Errorf("service modes %v", modes)
	}
}

func TestParseMemory(t *testing.T) {
	out := `goos: linux
BenchmarkIdleConnMemory-2   	       1	 912345678 ns/op	     11419 B/conn-direct	     23489 B/conn-terminator	     34908 B/conn-through
BenchmarkIdleConnMemory-2   	       1	 912345678 ns/op	     11000 B/conn-direct	     24000 B/conn-terminator	     35000 B/conn-through
PASS`
	m := ParseMemory(out)
	if len(m.Terminator) != 2 || m.Terminator[0] != 23489 || m.Through[1] != 35000 || m.Direct[0] != 11419 {
		t.Fatalf("got %+v", m)
	}
}

// Ratios pair the variants of the same rep; the section names every
// target and says whether it was met.
func TestRatioAndMarkdown(t *testing.T) {
	cfg := DefaultConfig("samepathd")
	r := &Result{Config: cfg, Samples: []Sample{
		{Case: "window", Variant: NAT, Rep: 1, Mbps: 4}, {Case: "window", Variant: Term, Rep: 1, Mbps: 40},
		{Case: "window", Variant: NAT, Rep: 2, Mbps: 8}, {Case: "window", Variant: Term, Rep: 2, Mbps: 40},
		{Case: "window", Variant: NAT, Rep: 3, Mbps: 5}, {Case: "window", Variant: Term, Rep: 3, Err: "boom"},
		{Case: "clean", Variant: HAProxy, Rep: 1, Mbps: 1000}, {Case: "clean", Variant: Term, Rep: 1, Mbps: 200},
	}}
	m, lo, hi, ok := r.Ratio("window", Term, NAT)
	if !ok || m != 7.5 || lo != 5 || hi != 10 {
		t.Errorf("window ratio %v [%v-%v] %v, want 7.5 [5-10]", m, lo, hi, ok)
	}
	if _, _, _, ok := r.Ratio("lossy", Term, NAT); ok {
		t.Error("lossy has no samples but a ratio")
	}
	st := r.Stats()["window"][Term]
	if st.N != 2 || st.Failed != 1 {
		t.Errorf("window terminate stat %+v", st)
	}
	md := Markdown(r, "perf/results/tcp-split.svg")
	for _, want := range []string{BeginMarker, EndMarker, "## tcp-split", ">= 5x nat: **met**", ">= 0.5x haproxy: **missed**", "- lossy: >= 1.5x nat: not measured", "(1 failed)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if svg := SVG(r); !strings.Contains(svg, "7.50x") || !strings.HasSuffix(svg, "</svg>\n") {
		t.Errorf("svg lacks the window ratio or its end")
	}
}
