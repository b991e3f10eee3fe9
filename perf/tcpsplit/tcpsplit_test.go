package tcpsplit

import (
	"html"
	"slices"
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

// The clean case carries the two references as extra rows: goodput and
// x base against HAProxy like the others, no target, and the text below
// the targets says what the l2fwd row bounds and where it stands against
// the terminator's target.
func TestReferenceRows(t *testing.T) {
	cfg := DefaultConfig("samepathd")
	var clean Case
	for _, c := range cfg.Cases {
		if c.Name == "clean" {
			clean = c
		} else if slices.ContainsFunc(c.Variants, Reference) {
			t.Errorf("case %s has a reference variant: %v", c.Name, c.Variants)
		}
	}
	if !slices.Contains(clean.Variants, L2Fwd) || !slices.Contains(clean.Variants, KernelFwd) {
		t.Fatalf("clean variants %v lack the references", clean.Variants)
	}
	cfg.Cases = []Case{clean}
	r := &Result{Config: cfg}
	for rep, mbps := range []map[string]float64{
		{NAT: 1500, Term: 700, HAProxy: 3600, L2Fwd: 1700, KernelFwd: 3000},
		{NAT: 1400, Term: 800, HAProxy: 4000, L2Fwd: 1600, KernelFwd: 2800},
	} {
		for _, v := range clean.Variants {
			r.Samples = append(r.Samples, Sample{Case: "clean", Variant: v, Rep: rep + 1, Mbps: mbps[v]})
		}
	}
	md := Markdown(r, "x.svg")
	for _, want := range []string{
		"| clean | " + labels[L2Fwd] + " | 1650.00 [1600.00-1700.00] | 1.0 | 0.44 [0.40-0.47] |  |\n",
		"| clean | " + labels[KernelFwd] + " | 2900.00 [2800.00-3000.00] | 0.6 | 0.77 [0.70-0.83] |  |\n",
		"**the ceiling for any copy-mode AF_XDP program on this path**: 1650.00 Mbit/s, 0.44x haproxy [0.40-0.47], below the terminator's target of 0.5x haproxy in every rep",
		"Against it, in the same rep: nat 0.88x [0.88-0.88], terminate 0.46x [0.41-0.50]",
		"the server's own address (10.2.0.1:5001)",
		"; afxdp-l2fwd keeps 0.57x of it [0.57-0.57]",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Count(md, ": **missed**") != 2 || strings.Contains(md, ": **met**") {
		t.Errorf("want the terminator's target missed in the table and the list only, got %d missed", strings.Count(md, ": **missed**"))
	}
	// Reps on both sides of the target put l2fwd at it; above it in
	// every rep, copy mode does not rule the target out.
	for _, tc := range []struct {
		mbps [2]float64
		want string
	}{
		{[2]float64{1700, 2400}, "0.54x haproxy [0.47-0.60], at the terminator's target of 0.5x haproxy (its reps fall on both sides)"},
		{[2]float64{3000, 3000}, "above the terminator's target of 0.5x haproxy in every rep"},
	} {
		for i := range r.Samples {
			if r.Samples[i].Variant == L2Fwd {
				r.Samples[i].Mbps = tc.mbps[r.Samples[i].Rep-1]
			}
		}
		if md := Markdown(r, "x.svg"); !strings.Contains(md, tc.want) {
			t.Errorf("l2fwd at %v Mbit/s: markdown lacks %q", tc.mbps, tc.want)
		}
	}
	svg := SVG(r)
	for _, v := range clean.Variants {
		if !strings.Contains(svg, html.EscapeString(labels[v])) {
			t.Errorf("svg legend lacks %q", labels[v])
		}
	}
}

// A run without the references (-variants nat,terminate,haproxy) says
// nothing about them.
func TestNoReferenceText(t *testing.T) {
	cfg := DefaultConfig("samepathd")
	for i := range cfg.Cases {
		cfg.Cases[i].Variants = slices.DeleteFunc(cfg.Cases[i].Variants, Reference)
	}
	r := &Result{Config: cfg, Samples: []Sample{{Case: "clean", Variant: HAProxy, Rep: 1, Mbps: 1000}}}
	if md := Markdown(r, "x.svg"); strings.Contains(md, "References of the") || strings.Contains(md, "ceiling") {
		t.Errorf("markdown explains references the run did not have")
	}
}

// A variant that failed to start has no placement line; it is skipped,
// not indexed (Run panicked on it), and each program is listed once.
func TestAddPlacement(t *testing.T) {
	placed := map[string]bool{}
	var l []string
	for _, p := range []string{"samepathd: on CPU1", "", "samepathd: again", "haproxy: on CPU1"} {
		l = addPlacement(l, placed, p)
	}
	if !slices.Equal(l, []string{"samepathd: on CPU1", "haproxy: on CPU1"}) {
		t.Errorf("placement %q", l)
	}
}
