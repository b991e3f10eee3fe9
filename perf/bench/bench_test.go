package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMedianAndRatio(t *testing.T) {
	if got := []float64{Median(nil), Median([]float64{3, 1, 2}), Median([]float64{4, 1, 2, 3})}; !cmp.Equal(got, []float64{0, 2, 2.5}) {
		t.Errorf("medians %v", got)
	}
	r := &Result{Samples: []Sample{
		{Variant: "a", Rep: 1, SinkPPS: 2, CPUBusy: []float64{0.5, 1}}, {Variant: "b", Rep: 1, SinkPPS: 1},
		{Variant: "a", Rep: 2, SinkPPS: 6, CPUBusy: []float64{0.7, 0.9}}, {Variant: "b", Rep: 2, SinkPPS: 2},
	}}
	st := r.Stats()
	x, ok := Ratio(st["a"][Case{}], st["b"][Case{}])
	if !ok || x != 2.5 { // 2/1 and 6/2
		t.Errorf("ratio %v %v, want 2.5", x, ok)
	}
	if got := st["a"][Case{}].BusyString(); got != "60% / 95%" {
		t.Errorf("busy %q", got)
	}
	if got := st["b"][Case{}].BusyString(); got != "-" {
		t.Errorf("busy without samples %q", got)
	}
}

func TestCPUTimes(t *testing.T) {
	a, err := cpuTimes()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != runtime.NumCPU() {
		t.Errorf("%d CPUs in /proc/stat, runtime says %d", len(a), runtime.NumCPU())
	}
	b := make([][2]uint64, len(a))
	for i := range a {
		b[i] = [2]uint64{a[i][0] + 30, a[i][1] + 40}
	}
	for _, f := range busy(a, b) {
		if f != 0.75 {
			t.Errorf("busy %v, want 0.75", f)
		}
	}
	if busy(a, b[:0]) != nil {
		t.Error("mismatched readings gave a result")
	}
}

func TestWriteSectionAndLoad(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "B.md")
	if err := os.WriteFile(md, []byte("# t\n\n<!-- a begin -->\nold\n<!-- a end -->\n<!-- b begin -->\nB\n<!-- b end -->\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(md, "<!-- a begin -->", "<!-- a end -->", "<!-- a begin -->\nnew\n<!-- a end -->"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(md)
	if want := "# t\n\n<!-- a begin -->\nnew\n<!-- a end -->\n<!-- b begin -->\nB\n<!-- b end -->\n"; string(got) != want {
		t.Errorf("got %q", got)
	}
	v := Variant{Name: "v", Label: "V"}
	r := &Result{Config: Config{Scenario: "x", Reps: 1, Warm: 1, Measure: 2, Cases: []Case{{Size: 64, Flows: 1}}, Variants: []Variant{v}, Engine: "afxdp", SinkSoftirq: true},
		Samples: []Sample{{Variant: "v", Case: Case{Size: 64, Flows: 1}, Rep: 1, SinkPPS: 5, Note: "n"}}}
	chart := filepath.Join(dir, "r", "x.svg")
	if err := r.Write(md, chart, "x", "<!-- x begin -->", "<!-- x end -->", func(r *Result, c string) string {
		return "<!-- x begin -->\n" + c + "\n<!-- x end -->"
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(md); !strings.Contains(string(got), "<!-- x begin -->\nr/x.svg\n<!-- x end -->") {
		t.Errorf("section with relative chart path missing:\n%s", got)
	}
	back, err := LoadResult(filepath.Join(dir, "r", "x.json"), Config{Scenario: "x", Variants: []Variant{v}})
	if err != nil {
		t.Fatal(err)
	}
	if !back.Config.SinkSoftirq || back.Config.Engine != "afxdp" || !cmp.Equal(back.Samples, r.Samples) {
		t.Errorf("round trip: %+v", back)
	}
	if _, err := LoadResult(filepath.Join(dir, "r", "x.json"), Config{Scenario: "y", Variants: []Variant{v}}); err == nil {
		t.Error("results of another scenario accepted")
	}
	if _, err := LoadResult(filepath.Join(dir, "r", "x.json"), Config{Scenario: "x"}); err == nil {
		t.Error("unknown variant accepted")
	}
}
