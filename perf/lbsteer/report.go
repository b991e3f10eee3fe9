package lbsteer

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Markers delimit the scenario's section of BENCHMARKS.md.
const (
	BeginMarker = "<!-- perf:lb-steer begin -->"
	EndMarker   = "<!-- perf:lb-steer end -->"
)

// Stat summarizes the samples of one variant and case.
type Stat struct {
	N                       int
	Median, Min, Max        float64 // sink pps
	MedianBPS, GenPPS, Loss float64
	Late                    uint64
	byRep                   map[int]float64
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Stats groups samples by variant and case.
func (r *Result) Stats() map[string]map[Case]*Stat {
	out := map[string]map[Case]*Stat{}
	type acc struct{ pps, bps, gen, loss []float64 }
	accs := map[string]map[Case]*acc{}
	for _, s := range r.Samples {
		if out[s.Variant] == nil {
			out[s.Variant] = map[Case]*Stat{}
			accs[s.Variant] = map[Case]*acc{}
		}
		st := out[s.Variant][s.Case]
		if st == nil {
			st = &Stat{byRep: map[int]float64{}}
			out[s.Variant][s.Case] = st
			accs[s.Variant][s.Case] = &acc{}
		}
		a := accs[s.Variant][s.Case]
		a.pps, a.bps, a.gen, a.loss = append(a.pps, s.SinkPPS), append(a.bps, s.SinkBPS), append(a.gen, s.GenPPS), append(a.loss, s.Loss)
		st.byRep[s.Rep] = s.SinkPPS
		st.Late += s.Late
	}
	for v, m := range out {
		for c, st := range m {
			a := accs[v][c]
			st.N = len(a.pps)
			st.Median, st.Min, st.Max = median(a.pps), slices.Min(a.pps), slices.Max(a.pps)
			st.MedianBPS, st.GenPPS, st.Loss = median(a.bps), median(a.gen), median(a.loss)
		}
	}
	return out
}

// Ratio is the median over reps of variant/baseline, pairing run i of each;
// ok is false when they share no rep.
func Ratio(v, base *Stat) (float64, bool) {
	if v == nil || base == nil {
		return 0, false
	}
	var rs []float64
	for rep, x := range v.byRep {
		if b, ok := base.byRep[rep]; ok && b > 0 {
			rs = append(rs, x/b)
		}
	}
	if len(rs) == 0 {
		return 0, false
	}
	return median(rs), true
}

// genLimited is the loss under which a result is marked generator-limited.
const genLimited = 0.05

// targets are issue 3's goals for samepathd on this 2-core box.
var targets = []struct {
	variant, base string
	min           float64
}{
	{"samepathd-afxdp", "kernel-fwd", 1.5},
	{"samepathd-afxdp", "xdp-redirect", 0.3},
	{"samepathd-xdp", "xdp-redirect", 0.9},
}

// Markdown renders the BENCHMARKS.md section (markers included); chart is
// the chart's path relative to BENCHMARKS.md.
func (r *Result) Markdown(chart string) string {
	var b strings.Builder
	cfg, e := r.Config, r.Env
	stats := r.Stats()
	fmt.Fprintf(&b, "%s\n## lb-steer\n\n", BeginMarker)
	fmt.Fprintf(&b, "_Written by `make perf` (perf/lbsteer); do not edit by hand._\n\n")
	fmt.Fprintf(&b, "pktgen namespace -> device under test -> sink namespace, veth all the way. ")
	fmt.Fprintf(&b, "Sink packets per second, median of %d alternating runs per variant [min-max]; ratios are medians of run-by-run ratios.\n\n", cfg.Reps)
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| date | %s |\n| commit | %s |\n| kernel | %s |\n| CPU | %s (%d CPUs) |\n", e.Date, e.Commit, e.Kernel, e.CPU, e.NCPU)
	fmt.Fprintf(&b, "| NIC | veth; XDP native mode (checked on every attachment); AF_XDP copy mode |\n")
	fmt.Fprintf(&b, "| generator | pktgen live frames (BPF_PROG_RUN, XDP_TX), kernel batch %d, IPv4 UDP, CPU%d |\n", cfg.Batch, cfg.GenCPU)
	fmt.Fprintf(&b, "| sink | XDP counting program (native), NAPI threaded on CPU%d |\n", cfg.SinkCPU)
	if cfg.NAPIFifo > 0 {
		fmt.Fprintf(&b, "| scheduling | NAPI threads and the DUT's pinned pollers SCHED_FIFO priority %d (background work on the box cannot delay them) |\n", cfg.NAPIFifo)
	}
	fmt.Fprintf(&b, "| load average | %s before, %s after (2 CPUs shared with other work: read ratios, not absolutes) |\n", e.LoadBefore, e.LoadAfter)
	fmt.Fprintf(&b, "| windows | %v warm-up, %v counted, per case |\n", cfg.Warm, cfg.Measure)
	fmt.Fprintf(&b, "| command | `%s` |\n\n", e.Command)

	fmt.Fprintf(&b, "| frame | flows | variant | sink Mpps | Gbit/s | gen Mpps | loss | late | x XDP_REDIRECT | x kernel fwd |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cfg.Cases {
		for _, v := range cfg.Variants {
			st := stats[v.Name][c]
			if st == nil {
				continue
			}
			ratio := func(base string) string {
				if base == v.Name {
					return "1"
				}
				if x, ok := Ratio(st, stats[base][c]); ok {
					return fmt.Sprintf("%.2f", x)
				}
				return "-"
			}
			label := v.Label
			if st.Loss < genLimited {
				label += " (gen-limited)"
			}
			fmt.Fprintf(&b, "| %d B | %d | %s | %.3f [%.3f-%.3f] | %.2f | %.2f | %.1f%% | %d | %s | %s |\n",
				c.Size, c.Flows, label, st.Median/1e6, st.Min/1e6, st.Max/1e6, st.MedianBPS/1e9,
				st.GenPPS/1e6, 100*st.Loss, st.Late, ratio("xdp-redirect"), ratio("kernel-fwd"))
		}
	}
	fmt.Fprintf(&b, "\nLoss: frames generated but not counted at the sink, median over runs (the generator runs at full speed, so it mostly shows the device under test saturating). Late: stamped frames that arrived below a sequence already seen (reordered or duplicated), summed over runs. (gen-limited): median loss under %.0f%%, so the generator, not the device under test, set the rate: its number is a lower bound and its ratios understate it.\n\n", 100*genLimited)

	var tl []string
	for _, tg := range targets {
		for _, c := range cfg.Cases {
			if x, ok := Ratio(stats[tg.variant][c], stats[tg.base][c]); ok {
				mark := "met"
				if x < tg.min {
					mark = "MISSED"
				}
				tl = append(tl, fmt.Sprintf("- %s >= %.1fx %s, %s: %.3fx %s", tg.variant, tg.min, tg.base, c, x, mark))
			}
		}
	}
	if len(tl) > 0 {
		fmt.Fprintf(&b, "Targets (issue 3):\n\n%s\n\n", strings.Join(tl, "\n"))
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(&b, "Not measured:\n\n")
		for _, v := range cfg.Variants {
			if why, ok := r.Skipped[v.Name]; ok {
				fmt.Fprintf(&b, "- %s: %s\n", v.Name, why)
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Variants and CPU placement (first run):\n\n")
	for _, v := range cfg.Variants {
		if _, ok := r.Placement[v.Name]; !ok {
			continue
		}
		fmt.Fprintf(&b, "- **%s**: %s\n", v.Label, v.Detail)
		for _, l := range r.Placement[v.Name] {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
	}
	fmt.Fprintf(&b, "\n![lb-steer: sink Mpps per variant](%s)\n%s\n", chart, EndMarker)
	return b.String()
}

// WriteSection replaces the scenario's section of the markdown file at path
// (between the markers), appending it when absent and creating the file
// when missing.
func WriteSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	s := string(old)
	if s == "" {
		s = "# samepath benchmarks\n\nMethod: ../shared/BENCH.md rules; every section is rewritten by `make perf`.\n"
	}
	i, j := strings.Index(s, BeginMarker), strings.Index(s, EndMarker)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + section + s[j+len(EndMarker):]
	case i >= 0 || j >= 0:
		return fmt.Errorf("%s: unbalanced %s markers", path, BeginMarker)
	default:
		if !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += "\n" + section + "\n"
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2"}

// SVG draws a grouped bar chart: one group per case, one bar per variant
// (median sink Mpps) with a min-max whisker.
func (r *Result) SVG() string {
	stats := r.Stats()
	var vs []Variant
	for _, v := range r.Config.Variants {
		if stats[v.Name] != nil {
			vs = append(vs, v)
		}
	}
	const W, H, left, right, top, bottom = 900.0, 440.0, 60.0, 20.0, 40.0, 90.0
	maxY := 0.0
	for _, m := range stats {
		for _, st := range m {
			maxY = max(maxY, st.Max/1e6)
		}
	}
	maxY = niceCeil(maxY)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="15" font-weight="bold">lb-steer: packets per second at the sink (median, min-max), %s, %s</text>`+"\n", left, html.EscapeString(r.Env.Date), html.EscapeString(r.Env.Commit))
	plotH, plotW := H-top-bottom, W-left-right
	y := func(v float64) float64 { return top + plotH - v/maxY*plotH }
	for i := 0; i <= 5; i++ {
		v := maxY * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%.1f</text>`+"\n",
			left, W-right, y(v), y(v), left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="14" y="%.1f" transform="rotate(-90 14 %.1f)" text-anchor="middle">Mpps</text>`+"\n", top+plotH/2, top+plotH/2)
	cases := r.Config.Cases
	if len(cases) > 0 && len(vs) > 0 {
		gw := plotW / float64(len(cases))
		bw := gw * 0.8 / float64(len(vs))
		for ci, c := range cases {
			gx := left + gw*float64(ci) + gw*0.1
			for vi, v := range vs {
				st := stats[v.Name][c]
				if st == nil {
					continue
				}
				x := gx + bw*float64(vi)
				col := palette[vi%len(palette)]
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.3f Mpps</title></rect>`+"\n",
					x+1, y(st.Median/1e6), bw-2, y(0)-y(st.Median/1e6), col, html.EscapeString(v.Label), c, st.Median/1e6)
				cx := x + bw/2
				fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black"/>`+"\n", cx, cx, y(st.Min/1e6), y(st.Max/1e6))
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%.2f</text>`+"\n", cx, y(st.Max/1e6)-3, st.Median/1e6)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", left+gw*float64(ci)+gw/2, y(0)+16, html.EscapeString(c.String()))
		}
		for vi, v := range vs {
			lx := left + float64(vi%3)*260
			ly := H - 45 + float64(vi/3)*18
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
				lx, ly, palette[vi%len(palette)], lx+16, ly+10, html.EscapeString(v.Label))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	for _, step := range []float64{0.5, 1, 2, 5, 10, 20, 50} {
		if v <= step*5 {
			return step * float64(int(v/step)+1)
		}
	}
	return v * 1.1
}

// Write writes the chart to chartPath, the samples next to it (same name,
// .json) and the section into mdPath, linking the chart relative to the
// markdown file.
func (r *Result) Write(mdPath, chartPath string) error {
	if err := os.MkdirAll(filepath.Dir(chartPath), 0o755); err != nil {
		return err
	}
	js, err := r.MarshalJSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(strings.TrimSuffix(chartPath, filepath.Ext(chartPath))+".json", append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(chartPath, []byte(r.SVG()), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	absMD, err := filepath.Abs(filepath.Dir(mdPath))
	if err != nil {
		return err
	}
	absChart, err := filepath.Abs(chartPath)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(absMD, absChart)
	if err != nil {
		rel = absChart
	}
	return WriteSection(mdPath, r.Markdown(filepath.ToSlash(rel)))
}

// saved is the JSON form of a Result: the samples and what describes them.
type saved struct {
	Env       Env
	Reps      int
	Warm      string
	Measure   string
	Cases     []Case
	Variants  []string
	GenCPU    int
	SinkCPU   int
	Batch     int
	NAPIFifo  int
	Samples   []Sample
	Skipped   map[string]string
	Placement map[string][]string
}

// MarshalJSON saves the run (variants by name).
func (r *Result) MarshalJSON() ([]byte, error) {
	c := r.Config
	s := saved{Env: r.Env, Reps: c.Reps, Warm: c.Warm.String(), Measure: c.Measure.String(), Cases: c.Cases,
		GenCPU: c.GenCPU, SinkCPU: c.SinkCPU, Batch: c.Batch, NAPIFifo: c.NAPIFifo,
		Samples: r.Samples, Skipped: r.Skipped, Placement: r.Placement}
	for _, v := range c.Variants {
		s.Variants = append(s.Variants, v.Name)
	}
	return json.MarshalIndent(s, "", "  ")
}

// LoadResult reads a saved run so that it can be rendered again; variants
// are looked up by name among AllVariants.
func LoadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse results %s: %w", path, err)
	}
	c := DefaultConfig("")
	c.Reps, c.Cases, c.GenCPU, c.SinkCPU, c.Batch, c.NAPIFifo = s.Reps, s.Cases, s.GenCPU, s.SinkCPU, s.Batch, s.NAPIFifo
	if c.Warm, err = time.ParseDuration(s.Warm); err != nil {
		return nil, fmt.Errorf("results %s: warm: %w", path, err)
	}
	if c.Measure, err = time.ParseDuration(s.Measure); err != nil {
		return nil, fmt.Errorf("results %s: measure: %w", path, err)
	}
	byName := map[string]Variant{}
	for _, v := range AllVariants("") {
		byName[v.Name] = v
	}
	c.Variants = nil
	for _, n := range s.Variants {
		v, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("results %s: unknown variant %q", path, n)
		}
		c.Variants = append(c.Variants, v)
	}
	return &Result{Config: c, Env: s.Env, Samples: s.Samples, Skipped: s.Skipped, Placement: s.Placement}, nil
}
