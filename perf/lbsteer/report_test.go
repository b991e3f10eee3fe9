package lbsteer

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/perf/bench"
)

func fakeResult() *Result {
	cfg := DefaultConfig("/nonexistent/samepathd")
	cfg.Cases = []Case{{Size: 64, Flows: 1}}
	r := &Result{Config: cfg, Env: Env{Date: "d", Commit: "c", Kernel: "k", CPU: "cpu", NCPU: 2, Command: "perfrun"},
		Skipped: map[string]string{"samepathd-xdp": "not built"}, Placement: map[string][]string{"xdp-redirect": {"napi here"}}}
	// Rep-wise: redirect 4,5,3; fwd 1,2,1; samepathd-afxdp 2,2,2.
	for rep, v := range map[int][3]float64{1: {4e6, 1e6, 2e6}, 2: {5e6, 2e6, 2e6}, 3: {3e6, 1e6, 2e6}} {
		for i, name := range []string{"xdp-redirect", "kernel-fwd", "samepathd-afxdp"} {
			loss := 0.5
			if name == "kernel-fwd" {
				loss = 0.01 // reads as generator-limited
			}
			r.Samples = append(r.Samples, Sample{Variant: name, Case: Case{Size: 64, Flows: 1}, Rep: rep, SinkPPS: v[i], SinkBPS: v[i] * 512, GenPPS: 8e6, Loss: loss})
		}
	}
	return r
}

func TestStatsAndRatios(t *testing.T) {
	st := fakeResult().Stats()
	red, fwd, sp := st["xdp-redirect"][Case{Size: 64, Flows: 1}], st["kernel-fwd"][Case{Size: 64, Flows: 1}], st["samepathd-afxdp"][Case{Size: 64, Flows: 1}]
	got := []float64{red.Median, red.Min, red.Max, fwd.Median}
	if d := cmp.Diff([]float64{4e6, 3e6, 5e6, 1e6}, got); d != "" {
		t.Errorf("stats (-want +got):\n%s", d)
	}
	// Pairwise ratios 2/4, 2/5, 2/3 -> median 0.5; 2/1, 2/2, 2/1 -> 2.
	if x, ok := bench.Ratio(sp, red); !ok || x != 0.5 {
		t.Errorf("ratio to redirect %v %v, want 0.5", x, ok)
	}
	if x, ok := bench.Ratio(sp, fwd); !ok || x != 2 {
		t.Errorf("ratio to fwd %v %v, want 2", x, ok)
	}
	if _, ok := bench.Ratio(sp, nil); ok {
		t.Error("ratio to a missing baseline")
	}
}

func TestMarkdownAndSection(t *testing.T) {
	r := fakeResult()
	md := Markdown(r, "perf/results/lb-steer.svg")
	for _, want := range []string{BeginMarker, EndMarker, "| 64 B | 1 | samepathd afxdp | 2.000 [2.000-2.000] |", "| 0 | 0.50 | 2.00 |", "| kernel forwarding (gen-limited) | 1.000",
		"samepathd-afxdp >= 1.5x kernel-fwd, 64 B, 1 flows: 2.000x met", "samepathd-afxdp >= 0.3x xdp-redirect, 64 B, 1 flows: 0.500x met",
		"samepathd-xdp: not built", "napi here", "](perf/results/lb-steer.svg)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	path := filepath.Join(t.TempDir(), "B.md")
	if err := os.WriteFile(path, []byte("# head\n\n"+BeginMarker+"\nold\n"+EndMarker+"\n\n## other\ntext\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sec := BeginMarker + "\nNEW\n" + EndMarker
	for range 2 { // idempotent
		if err := WriteSection(path, sec); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	if d := cmp.Diff("# head\n\n"+sec+"\n\n## other\ntext\n", string(b)); d != "" {
		t.Errorf("section rewrite (-want +got):\n%s", d)
	}
	if err := os.WriteFile(path, []byte(BeginMarker+" no end"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "X"); err == nil {
		t.Error("unbalanced markers accepted")
	}
	fresh := filepath.Join(t.TempDir(), "new.md")
	if err := WriteSection(fresh, "S"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(fresh); !strings.Contains(string(b), "\nS\n") {
		t.Errorf("fresh file: %q", b)
	}
}

func TestSVG(t *testing.T) {
	svg := fakeResult().SVG("lb-steer")
	if !strings.HasPrefix(svg, "<svg") || !strings.HasSuffix(svg, "</svg>\n") {
		t.Fatal("not an svg document")
	}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("svg is not well-formed XML: %v", err)
		}
	}
	if n := strings.Count(svg, "<title>"); n != 3 {
		t.Errorf("%d bars, want 3", n)
	}
	for _, want := range []string{"kernel XDP_REDIRECT", "kernel forwarding", "samepathd afxdp", "64 B, 1 flows"} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
}

func TestSaveAndLoad(t *testing.T) {
	r := fakeResult()
	dir := t.TempDir()
	md, chart := filepath.Join(dir, "B.md"), filepath.Join(dir, "res", "c.svg")
	if err := Write(r, md, chart); err != nil {
		t.Fatal(err)
	}
	back, err := LoadResult(filepath.Join(dir, "res", "c.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Markdown(r, "x.svg"), Markdown(back, "x.svg")); d != "" {
		t.Errorf("markdown after a JSON round trip (-want +got):\n%s", d)
	}
	b, _ := os.ReadFile(md)
	if !strings.Contains(string(b), "](res/c.svg)") {
		t.Errorf("chart link not relative to the markdown file:\n%s", b)
	}
}
