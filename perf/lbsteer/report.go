package lbsteer

import (
	"fmt"
	"strings"

	"samepath/perf/bench"
)

// Markers delimit the scenario's section of BENCHMARKS.md.
const (
	BeginMarker = "<!-- perf:lb-steer begin -->"
	EndMarker   = "<!-- perf:lb-steer end -->"
)

// targets are issue 3's goals for samepathd on this 2-core box.
var targets = []bench.Target{
	{Variant: "samepathd-afxdp", Base: "kernel-fwd", Min: 1.5},
	{Variant: "samepathd-afxdp", Base: "xdp-redirect", Min: 0.3},
	{Variant: "samepathd-xdp", Base: "xdp-redirect", Min: 0.9},
}

// Markdown renders the BENCHMARKS.md section (markers included); chart is
// the chart's path relative to BENCHMARKS.md.
func Markdown(r *Result, chart string) string {
	var b strings.Builder
	cfg := r.Config
	stats := r.Stats()
	fmt.Fprintf(&b, "%s\n## lb-steer\n\n", BeginMarker)
	fmt.Fprintf(&b, "_Written by `make perf` (perf/lbsteer); do not edit by hand._\n\n")
	fmt.Fprintf(&b, "pktgen namespace -> device under test -> sink namespace, veth all the way. ")
	fmt.Fprintf(&b, "Sink packets per second, median of %d runs per variant [min-max], the variants alternating case by case (A B A B for each frame size and flow count); ratios are medians of run-by-run ratios.\n\n", cfg.Reps)
	r.WriteEnv(&b)

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
				if x, ok := bench.Ratio(st, stats[base][c]); ok {
					return fmt.Sprintf("%.2f", x)
				}
				return "-"
			}
			label := v.Label
			if st.Loss < bench.GenLimited {
				label += " (gen-limited)"
			}
			fmt.Fprintf(&b, "| %d B | %d | %s | %.3f [%.3f-%.3f] | %.2f | %.2f | %.1f%% | %d | %s | %s |\n",
				c.Size, c.Flows, label, st.Median/1e6, st.Min/1e6, st.Max/1e6, st.MedianBPS/1e9,
				st.GenPPS/1e6, 100*st.Loss, st.Late, ratio("xdp-redirect"), ratio("kernel-fwd"))
		}
	}
	b.WriteString("\n" + bench.LossNote(cfg))
	r.WriteTargets(&b, "issue 3", targets)
	r.WriteReference(&b, "samepathd-afxdp", "kernel-fwd")
	r.WriteVariants(&b)
	fmt.Fprintf(&b, "\n![lb-steer: sink Mpps per variant](%s)\n%s\n", chart, EndMarker)
	return b.String()
}

// Write writes the chart, the samples beside it and the section of mdPath.
func Write(r *Result, mdPath, chartPath string) error {
	return r.Write(mdPath, chartPath, "lb-steer", BeginMarker, EndMarker, Markdown)
}

// LoadResult reads a saved run so that it can be rendered again.
func LoadResult(path string) (*Result, error) { return bench.LoadResult(path, DefaultConfig("")) }

// WriteSection replaces the lb-steer section of the markdown file at path.
func WriteSection(path, section string) error {
	return bench.WriteSection(path, BeginMarker, EndMarker, section)
}
