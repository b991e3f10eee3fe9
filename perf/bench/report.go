package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"samepath/perf/pktgen"
	"slices"
	"strings"
	"time"
)

// Stat summarizes the samples of one variant and case.
type Stat struct {
	N                       int
	Median, Min, Max        float64 // sink pps
	MedianBPS, GenPPS, Loss float64
	Late                    uint64
	// Busy is the median busy fraction of each CPU during the counting
	// windows (nil when not recorded).
	Busy  []float64
	byRep map[int]float64
}

// BusyString formats Busy as "93% / 100%" (CPU0 first; "-" when unknown).
func (st *Stat) BusyString() string {
	if len(st.Busy) == 0 {
		return "-"
	}
	var parts []string
	for _, b := range st.Busy {
		parts = append(parts, fmt.Sprintf("%d%%", int(100*b+0.5)))
	}
	return strings.Join(parts, " / ")
}

// Median is the median of v (0 for none).
func Median(v []float64) float64 {
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
	type acc struct {
		pps, bps, gen, loss []float64
		busy                [][]float64 // per CPU
	}
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
		for i, b := range s.CPUBusy {
			if i >= len(a.busy) {
				a.busy = append(a.busy, nil)
			}
			a.busy[i] = append(a.busy[i], b)
		}
		st.byRep[s.Rep] = s.SinkPPS
		st.Late += s.Late
	}
	for v, m := range out {
		for c, st := range m {
			a := accs[v][c]
			st.N = len(a.pps)
			st.Median, st.Min, st.Max = Median(a.pps), slices.Min(a.pps), slices.Max(a.pps)
			st.MedianBPS, st.GenPPS, st.Loss = Median(a.bps), Median(a.gen), Median(a.loss)
			for _, b := range a.busy {
				st.Busy = append(st.Busy, Median(b))
			}
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
	return Median(rs), true
}

// GenLimited is the loss under which a result is marked generator-limited:
// the generator, not the device under test, set the rate.
const GenLimited = 0.05

// WriteSection replaces the section of the markdown file at path between
// the markers begin and end (section includes them), appending it when
// absent and creating the file when missing.
func WriteSection(path, begin, end, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	s := string(old)
	if s == "" {
		s = "# samepath benchmarks\n\nMethod: ../shared/BENCH.md rules; every section is rewritten by `make perf`.\n"
	}
	i, j := strings.Index(s, begin), strings.Index(s, end)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + section + s[j+len(end):]
	case i >= 0 || j >= 0:
		return fmt.Errorf("%s: unbalanced %s markers", path, begin)
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

// SVG draws a grouped bar chart titled "title: packets per second at the
// sink ...": one group per case, one bar per variant (median sink Mpps)
// with a min-max whisker.
func (r *Result) SVG(title string) string {
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
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="15" font-weight="bold">%s: packets per second at the sink (median, min-max), %s, %s</text>`+"\n", left, html.EscapeString(title), html.EscapeString(r.Env.Date), html.EscapeString(r.Env.Commit))
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

// Write writes the chart (titled title) to chartPath, the samples next to
// it (same name, .json) and the section markdown(chart path relative to
// the markdown file) between the markers begin and end of mdPath.
func (r *Result) Write(mdPath, chartPath, title, begin, end string, markdown func(r *Result, chart string) string) error {
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
	if err := os.WriteFile(chartPath, []byte(r.SVG(title)), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	rel, err := RelPath(mdPath, chartPath)
	if err != nil {
		return err
	}
	return WriteSection(mdPath, begin, end, markdown(r, rel))
}

// RelPath is the path of file relative to the directory of the markdown
// file md, with slashes (for links in it).
func RelPath(md, file string) (string, error) {
	absMD, err := filepath.Abs(filepath.Dir(md))
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absMD, abs)
	if err != nil {
		rel = abs
	}
	return filepath.ToSlash(rel), nil
}

// saved is the JSON form of a Result: the samples and what describes them.
type saved struct {
	Scenario    string
	Env         Env
	Reps        int
	Warm        string
	Measure     string
	Cases       []Case
	Variants    []string
	GenCPU      int
	SinkCPU     int
	Batch       int
	NAPIFifo    int
	SinkSoftirq bool   `json:",omitempty"`
	Engine      string `json:",omitempty"`
	Samples     []Sample
	Skipped     map[string]string
	Placement   map[string][]string
}

// MarshalJSON saves the run (variants by name).
func (r *Result) MarshalJSON() ([]byte, error) {
	c := r.Config
	s := saved{Scenario: c.Scenario, Env: r.Env, Reps: c.Reps, Warm: c.Warm.String(), Measure: c.Measure.String(), Cases: c.Cases,
		GenCPU: c.GenCPU, SinkCPU: c.SinkCPU, Batch: c.Batch, NAPIFifo: c.NAPIFifo, SinkSoftirq: c.SinkSoftirq, Engine: c.Engine,
		Samples: r.Samples, Skipped: r.Skipped, Placement: r.Placement}
	for _, v := range c.Variants {
		s.Variants = append(s.Variants, v.Name)
	}
	return json.MarshalIndent(s, "", "  ")
}

// LoadResult reads a saved run so that it can be rendered again: the run's
// settings go over base, and variants are looked up by name in base.Variants.
func LoadResult(path string, base Config) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse results %s: %w", path, err)
	}
	c := base
	if s.Scenario != "" && c.Scenario != "" && s.Scenario != c.Scenario {
		return nil, fmt.Errorf("results %s: scenario %s, want %s", path, s.Scenario, c.Scenario)
	}
	c.Reps, c.Cases, c.GenCPU, c.SinkCPU, c.Batch, c.NAPIFifo, c.SinkSoftirq, c.Engine = s.Reps, s.Cases, s.GenCPU, s.SinkCPU, s.Batch, s.NAPIFifo, s.SinkSoftirq, s.Engine
	if c.Warm, err = time.ParseDuration(s.Warm); err != nil {
		return nil, fmt.Errorf("results %s: warm: %w", path, err)
	}
	if c.Measure, err = time.ParseDuration(s.Measure); err != nil {
		return nil, fmt.Errorf("results %s: measure: %w", path, err)
	}
	byName := map[string]Variant{}
	for _, v := range base.Variants {
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

// Row is one row of the environment table: name and value.
type Row struct{ Name, Value string }

// WriteEnv writes the run's environment table (date, commit, machine, NIC,
// generator, sink, scheduling, load average, windows, rows, command).
func (r *Result) WriteEnv(b *strings.Builder, rows ...Row) {
	cfg, e := r.Config, r.Env
	frames := cfg.GenFrames
	if frames == "" {
		frames = "IPv4 UDP"
	}
	fmt.Fprintf(b, "| | |\n|---|---|\n")
	fmt.Fprintf(b, "| date | %s |\n| commit | %s |\n| kernel | %s |\n| CPU | %s (%d CPUs) |\n", e.Date, e.Commit, e.Kernel, e.CPU, e.NCPU)
	fmt.Fprintf(b, "| NIC | veth; XDP native mode (checked on every attachment); AF_XDP copy mode |\n")
	if cfg.Engine == pktgen.EngineAFXDP {
		fmt.Fprintf(b, "| generator | pktgen AF_XDP TX (copy mode: the DUT gets a copy of each frame), batch %d, %s, CPU%d |\n", cfg.Batch, frames, cfg.GenCPU)
	} else {
		fmt.Fprintf(b, "| generator | pktgen live frames (BPF_PROG_RUN, XDP_TX), kernel batch %d, %s, CPU%d |\n", cfg.Batch, frames, cfg.GenCPU)
	}
	if cfg.SinkSoftirq {
		fmt.Fprintf(b, "| sink | XDP counting program (native), NAPI not threaded: softirq on the CPU that transmits into it (the DUT's) |\n")
	} else {
		fmt.Fprintf(b, "| sink | XDP counting program (native), NAPI threaded on CPU%d |\n", cfg.SinkCPU)
	}
	if cfg.NAPIFifo > 0 {
		fmt.Fprintf(b, "| scheduling | NAPI threads and the DUT's pinned pollers SCHED_FIFO priority %d (background work on the box cannot delay them) |\n", cfg.NAPIFifo)
	}
	fmt.Fprintf(b, "| load average | %s before, %s after (2 CPUs shared with other work: read ratios, not absolutes) |\n", e.LoadBefore, e.LoadAfter)
	fmt.Fprintf(b, "| windows | %v warm-up, %v counted, per case |\n", cfg.Warm, cfg.Measure)
	for _, row := range rows {
		fmt.Fprintf(b, "| %s | %s |\n", row.Name, row.Value)
	}
	fmt.Fprintf(b, "| command | `%s` |\n\n", e.Command)
}

// LossNote explains the loss, late and (gen-limited) columns for the
// generator engine of cfg.
func LossNote(cfg Config) string {
	if cfg.Engine == pktgen.EngineAFXDP {
		return "Loss: frames generated but not counted at the sink, median over runs. Late: stamped frames that arrived below a sequence already seen (reordered or duplicated), summed over runs. The AF_XDP generator is held back by the veth when the device under test's ingress ring is full (the kernel stops the queue instead of dropping), so a device that takes frames from its ring more slowly than the generator can send sees the generator slow down to its rate with almost no loss: there, gen Mpps is the device under test's rate, not the generator's limit. Loss shows frames the device under test took from its ring and then dropped.\n\n"
	}
	return fmt.Sprintf("Loss: frames generated but not counted at the sink, median over runs (the generator runs at full speed, so it mostly shows the device under test saturating). Late: stamped frames that arrived below a sequence already seen (reordered or duplicated), summed over runs. (gen-limited): median loss under %.0f%%, so the generator, not the device under test, set the rate: its number is a lower bound and its ratios understate it.\n\n", 100*GenLimited)
}

// WriteTargets writes the target lines: variant >= min x base per case.
func (r *Result) WriteTargets(b *strings.Builder, issue string, targets []Target) {
	stats := r.Stats()
	var tl []string
	for _, tg := range targets {
		for _, c := range r.Config.Cases {
			if x, ok := Ratio(stats[tg.Variant][c], stats[tg.Base][c]); ok {
				mark := "met"
				if x < tg.Min {
					mark = "MISSED"
				}
				tl = append(tl, fmt.Sprintf("- %s >= %.1fx %s, %s: %.3fx %s", tg.Variant, tg.Min, tg.Base, c, x, mark))
			}
		}
	}
	if len(tl) > 0 {
		fmt.Fprintf(b, "Targets (%s):\n\n%s\n\n", issue, strings.Join(tl, "\n"))
	}
}

// WriteReference writes, per case, the AF_XDP reference (L2Fwd) against
// base and variant against the reference: what AF_XDP itself reaches on
// this path, and how much of it the pipeline keeps. Nothing is written
// when the reference was not measured.
func (r *Result) WriteReference(b *strings.Builder, variant, base string) {
	stats := r.Stats()
	const ref = L2FwdName
	var l []string
	for _, c := range r.Config.Cases {
		rb, ok1 := Ratio(stats[ref][c], stats[base][c])
		vr, ok2 := Ratio(stats[variant][c], stats[ref][c])
		if !ok1 || !ok2 {
			continue
		}
		l = append(l, fmt.Sprintf("- %s: %s %.2fx %s; %s %.2fx %s", c, ref, rb, base, variant, vr, ref))
	}
	if len(l) > 0 {
		fmt.Fprintf(b, "AF_XDP reference (`pktgen fwd`: samepath's engine with no pipeline, only the MAC rewrite of an L2 forwarder, placed as samepathd is): what any AF_XDP program gets on this path in copy mode, and the share of it that %s keeps:\n\n%s\n\n", variant, strings.Join(l, "\n"))
	}
}

// Target is a goal: Variant's sink rate at least Min times Base's.
type Target struct {
	Variant, Base string
	Min           float64
}

// LossNotes are one line per sample whose gateway counters or veth
// drop/error counters moved: "- rep N, VARIANT, CASE: gateway NOTE; veth
// DROPS".
func (r *Result) LossNotes() []string {
	var notes []string
	for _, s := range r.Samples {
		if s.Note == "" && s.DevDrops == "" {
			continue
		}
		l := fmt.Sprintf("- rep %d, %s, %s:", s.Rep, s.Variant, s.Case)
		if s.Note != "" {
			l += " gateway " + s.Note + ";"
		}
		if s.DevDrops != "" {
			l += " veth " + s.DevDrops
		} else {
			l += " no veth drop or error counter moved"
		}
		notes = append(notes, l)
	}
	return notes
}

// WriteVariants writes the variants that were not measured (with the
// reason) and every measured variant's detail and CPU placement.
func (r *Result) WriteVariants(b *strings.Builder) {
	cfg := r.Config
	if len(r.Skipped) > 0 {
		fmt.Fprintf(b, "Not measured:\n\n")
		for _, v := range cfg.Variants {
			if why, ok := r.Skipped[v.Name]; ok {
				fmt.Fprintf(b, "- %s: %s\n", v.Name, why)
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "Variants and CPU placement (first run):\n\n")
	for _, v := range cfg.Variants {
		if _, ok := r.Placement[v.Name]; !ok {
			continue
		}
		fmt.Fprintf(b, "- **%s**: %s\n", v.Label, v.Detail)
		for _, l := range r.Placement[v.Name] {
			fmt.Fprintf(b, "  - %s\n", l)
		}
	}
}
