package tcpsplit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"samepath/perf/bench"
	"samepath/testbed/linkem"
)

// Markers delimit the scenario's section of BENCHMARKS.md.
const (
	BeginMarker = "<!-- perf:tcp-split begin -->"
	EndMarker   = "<!-- perf:tcp-split end -->"
)

// DefaultChart is where the chart goes (the samples beside it, .json).
const DefaultChart = "perf/results/tcp-split.svg"

// Stat is one variant's goodput over the reps of a case (Mbit/s).
type Stat struct {
	Median, Min, Max float64
	N, Failed        int
}

// Stats summarizes the samples per case and variant.
func (r *Result) Stats() map[string]map[string]*Stat {
	vals := map[string]map[string][]float64{}
	out := map[string]map[string]*Stat{}
	for _, s := range r.Samples {
		if out[s.Case] == nil {
			out[s.Case], vals[s.Case] = map[string]*Stat{}, map[string][]float64{}
		}
		st := out[s.Case][s.Variant]
		if st == nil {
			st = &Stat{}
			out[s.Case][s.Variant] = st
		}
		if s.Err != "" {
			st.Failed++
			continue
		}
		vals[s.Case][s.Variant] = append(vals[s.Case][s.Variant], s.Mbps)
	}
	for c, m := range out {
		for v, st := range m {
			x := vals[c][v]
			st.N = len(x)
			if len(x) > 0 {
				st.Median, st.Min, st.Max = bench.Median(x), slices.Min(x), slices.Max(x)
			}
		}
	}
	return out
}

// Ratio is the median over reps of variant's goodput over base's in the
// same rep, with min and max; ok is false when no rep has both.
func (r *Result) Ratio(c, variant, base string) (med, lo, hi float64, ok bool) {
	by := map[int]map[string]float64{}
	for _, s := range r.Samples {
		if s.Case != c || s.Err != "" || s.Mbps <= 0 {
			continue
		}
		if by[s.Rep] == nil {
			by[s.Rep] = map[string]float64{}
		}
		by[s.Rep][s.Variant] = s.Mbps
	}
	var x []float64
	for _, m := range by {
		v, ok1 := m[variant]
		b, ok2 := m[base]
		if ok1 && ok2 {
			x = append(x, v/b)
		}
	}
	if len(x) == 0 {
		return 0, 0, 0, false
	}
	return bench.Median(x), slices.Min(x), slices.Max(x), true
}

var labels = map[string]string{
	NAT:     "samepathd port-key NAT (end-to-end kernel TCP)",
	Term:    "samepathd terminator (tcpproxy)",
	HAProxy: "HAProxy 2.x, mode tcp, 1 thread",
	// The references connect to the server itself (no service).
	L2Fwd:     "reference: AF_XDP l2fwd (engine only), straight to the server",
	KernelFwd: "reference: kernel IP forwarding (no XDP), straight to the server",
}

// Markdown renders the section; chart is relative to BENCHMARKS.md.
func Markdown(r *Result, chart string) string {
	var b strings.Builder
	cfg := r.Config
	stats := r.Stats()
	fmt.Fprintf(&b, "%s\n## tcp-split\n\n_Written by `make perf` (perf/tcpsplit); do not edit by hand._\n\n", BeginMarker)
	fmt.Fprintf(&b, "A bulk download of %d bytes (%.1f MB; ten times that on the clean path, where 20 MiB take a fraction of a second) from a kernel TCP server to a kernel TCP client (the mobile), veth all the way: "+
		"mob -> air (wireless: linkem or a bridge) -> DUT -> wan (wired: linkem or a bridge) -> srv. "+
		"Through samepathd's gateway with the service in port-key NAT mode (the mobile's TCP runs end to end to the server), "+
		"through the same gateway with the service in terminate mode (tcpproxy: the mobile's TCP ends at the gateway's wireless-profile netstack, a second connection runs from the wired-profile netstack to the server), "+
		"and on the clean path through HAProxy in the same DUT namespace, and two references that connect the mobile to the server itself (no service; see below the targets). Goodput = payload bytes the client read / time from connect to the last byte; "+
		"median of %d downloads per variant [min-max], variants alternating per rep (A B A B); ratios are medians of the per-rep ratios.\n\n", cfg.Size, float64(cfg.Size)/1e6, cfg.Reps)
	fmt.Fprintf(&b, "| | |\n|---|---|\n| date | %s |\n| commit | %s |\n| kernel | %s |\n| CPU | %s (%d CPUs) |\n| load average before / after | %s / %s |\n| run time | %.0f s |\n| command | `%s` |\n\n",
		r.Env.Date, r.Env.Commit, r.Env.Kernel, r.Env.CPU, r.Env.NCPU, r.Env.LoadBefore, r.Env.LoadAfter, r.Duration, r.Env.Command)
	fmt.Fprintf(&b, "| case | variant | goodput Mbit/s | s per download | x base | target |\n|---|---|---|---|---|---|\n")
	for _, c := range cfg.Cases {
		for _, v := range c.Variants {
			st := stats[c.Name][v]
			if st == nil {
				continue
			}
			g := "-"
			secs := "-"
			if st.N > 0 {
				g = fmt.Sprintf("%.2f [%.2f-%.2f]", st.Median, st.Min, st.Max)
				secs = fmt.Sprintf("%.1f", float64(c.Bytes(cfg.Size))*8/1e6/st.Median)
			}
			if st.Failed > 0 {
				g += fmt.Sprintf(" (%d failed)", st.Failed)
			}
			ratio, target := "-", ""
			if v == c.Base {
				ratio = "1 (base)"
			} else if m, lo, hi, ok := r.Ratio(c.Name, v, c.Base); ok {
				ratio = fmt.Sprintf("%.2f [%.2f-%.2f]", m, lo, hi)
			}
			if v == Term {
				target = fmt.Sprintf(">= %gx %s", c.Min, c.Base)
				if m, _, _, ok := r.Ratio(c.Name, v, c.Base); ok {
					if m >= c.Min {
						target += ": **met**"
					} else {
						target += ": **missed**"
					}
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.Name, labels[v], g, secs, ratio, target)
		}
	}
	b.WriteString("\nTargets (issue 13 item 5), the terminator's goodput against the base of its case in the same rep:\n\n")
	for _, c := range cfg.Cases {
		fmt.Fprintf(&b, "- %s: >= %gx %s: ", c.Name, c.Min, c.Base)
		if m, lo, hi, ok := r.Ratio(c.Name, Term, c.Base); !ok {
			b.WriteString("not measured\n")
		} else if m >= c.Min {
			fmt.Fprintf(&b, "**met**, %.2fx [%.2f-%.2f]\n", m, lo, hi)
		} else {
			fmt.Fprintf(&b, "**missed**, %.2fx [%.2f-%.2f]\n", m, lo, hi)
		}
	}
	b.WriteString(referenceMarkdown(r))
	b.WriteString("\nCases (issue 13 item 5), linkem settings per direction (both directions of a side get the same; `testbed linkem` flags):\n\n")
	for _, c := range cfg.Cases {
		fmt.Fprintf(&b, "- **%s**: %s. Wireless: %s. Wired: %s.", c.Name, c.Title, fmtLinkCfg(c.Wireless), fmtLinkCfg(c.Wired))
		if c.ServerWindow > 0 {
			fmt.Fprintf(&b, " Server: net.ipv4.tcp_wmem and tcp_rmem = `4096 %d %d` in its namespace, and it writes only while fewer than %d B are unacknowledged in its socket (SIOCOUTQ), since on this kernel the buffer cap alone let a bulk writer keep about 170 KB in flight.", c.ServerWindow, c.ServerWindow, c.ServerWindow)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nThe wireless queue (linkem's backlog behind the rate cap) is one BDP of the 50 Mbit/s, 100 ms link (625 000 B), as a radio's buffers are; linkem's 256 KiB default would drop slow start's overshoot at 42 ms of queue.\n\n")
	b.WriteString("Terminator profiles (tcpproxy defaults; the gateway's built-in `wireless` toward the mobile, `wired` toward the server):\n\n")
	b.WriteString("| profile | MSS | recv buf min/default/max | send buf min/default/max | auto-tune | CC | SACK | RACK | Nagle | min/max RTO |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Profiles {
		fmt.Fprintf(&b, "| %s | %d | %d / %d / %d | %d / %d / %d | %v | %s | %v | %v | %v | %s / %s |\n", p.Name, p.MSS,
			p.RecvBuf.Min, p.RecvBuf.Default, p.RecvBuf.Max, p.SendBuf.Min, p.SendBuf.Default, p.SendBuf.Max, p.ModerateRecvBuf, p.Congestion, p.SACK, p.RACK, p.Nagle, p.MinRTO, p.MaxRTO)
	}
	b.WriteString("\nCPU placement:\n\n")
	for _, l := range r.Placement {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	if cfg.KernelCC != "" {
		fmt.Fprintf(&b, "- Kernel ends' congestion control: %s on the client's and the server's sockets (TCP_CONGESTION; this host's default is bbr, which does not back off on random loss, and netstack has only reno and cubic). HAProxy's sockets keep the DUT namespace's default.\n", cfg.KernelCC)
	}
	b.WriteString("- The kernel ends' TCP (mobile, server) runs in softirq on the CPU that transmits into their veth: CPU0 where linkem or the bridge relays. The client and server applications are goroutines of perfrun on CPU0.\n")
	b.WriteString("\n" + memoryMarkdown(r.Memory))
	b.WriteString("\nWhere the time and the window go, per download (`ss -tin` of the kernel ends at half the download: the mobile's connection and the server's; linkem counters during the download; samepathd's queue counters):\n\n")
	for _, s := range r.Samples {
		fmt.Fprintf(&b, "<details><summary>%s, %s, rep %d: %s</summary>\n\n", s.Case, s.Variant, s.Rep, sampleLine(s))
		if s.Err != "" {
			fmt.Fprintf(&b, "error: %s\n\n", s.Err)
		}
		fmt.Fprintf(&b, "- linkem toward the server: %s; toward the mobile: %s\n", relayLine(s.RelayUp), relayLine(s.RelayDown))
		if s.Gateway != "" {
			fmt.Fprintf(&b, "- gateway: %s\n", s.Gateway)
		}
		if len(s.CPUBusy) > 0 {
			var bs []string
			for i, x := range s.CPUBusy {
				bs = append(bs, fmt.Sprintf("CPU%d %.0f%%", i, 100*x))
			}
			fmt.Fprintf(&b, "- busy: %s\n", strings.Join(bs, ", "))
		}
		fmt.Fprintf(&b, "\n```\nmobile: %s\nserver: %s\n```\n</details>\n\n", oneLine(s.SSMobile), oneLine(s.SSServer))
	}
	fmt.Fprintf(&b, "![tcp-split: goodput per case and variant](%s)\n%s\n", chart, EndMarker)
	return b.String()
}

// referenceMarkdown explains the reference rows of every case that has
// them: what the l2fwd one bounds, and where the terminator and NAT stand
// against it and the target.
func referenceMarkdown(r *Result) string {
	var b strings.Builder
	stats := r.Stats()
	for _, c := range r.Config.Cases {
		if !slices.Contains(c.Variants, L2Fwd) && !slices.Contains(c.Variants, KernelFwd) {
			continue
		}
		fmt.Fprintf(&b, "\nReferences of the %s case (no target): the mobile downloads from the server's own address (%s:%d), which its default route and the server's send through the DUT over the same veths and bridges; nothing in the DUT namespace listens or translates.\n\n", c.Name, ServerIP, ServerPort)
		if slices.Contains(c.Variants, L2Fwd) {
			fmt.Fprintf(&b, "- **%s**: `pktgen fwd` (perf/l2fwd), samepath's engine and nothing else, forwarding both ways (In -> Out to the server's MAC, Out -> In to the mobile's) with only the MAC rewrite of an L2 forwarder, under taskset on the DUT CPU as samepathd is. "+
				"Each frame of the download and of its ACKs takes the copy-mode AF_XDP receive and transmit on veth that NAT's take (an skb per frame of at most 1500 B), and the terminator receives and sends every frame of both legs the same way (up to how many ACKs each end sends) and runs two netstacks besides, so this row is **the ceiling for any copy-mode AF_XDP program on this path**", L2Fwd)
			if st := stats[c.Name][L2Fwd]; st != nil && st.N > 0 {
				fmt.Fprintf(&b, ": %.2f Mbit/s", st.Median)
				if m, lo, hi, ok := r.Ratio(c.Name, L2Fwd, c.Base); ok {
					fmt.Fprintf(&b, ", %.2fx %s [%.2f-%.2f]", m, c.Base, lo, hi)
					switch {
					case hi < c.Min:
						fmt.Fprintf(&b, ", below the terminator's target of %gx %s in every rep: no AF_XDP program in copy mode on veth meets it here, whatever its pipeline costs", c.Min, c.Base)
					case lo < c.Min:
						fmt.Fprintf(&b, ", at the terminator's target of %gx %s (its reps fall on both sides): in copy mode on veth only a program that costs nothing beyond the bare engine would meet it", c.Min, c.Base)
					default:
						fmt.Fprintf(&b, ", above the terminator's target of %gx %s in every rep: copy mode alone does not rule the target out; the rest of the gap is the pipeline's", c.Min, c.Base)
					}
				}
				var of []string
				for _, v := range []string{NAT, Term} {
					if m, lo, hi, ok := r.Ratio(c.Name, v, L2Fwd); ok {
						of = append(of, fmt.Sprintf("%s %.2fx [%.2f-%.2f]", v, m, lo, hi))
					}
				}
				if len(of) > 0 {
					fmt.Fprintf(&b, ". Against it, in the same rep: %s", strings.Join(of, ", "))
				}
			} else {
				b.WriteString(": not measured in this run")
			}
			b.WriteString(".\n")
		}
		if slices.Contains(c.Variants, KernelFwd) {
			fmt.Fprintf(&b, "- **%s**: plain Linux IPv4 forwarding in the DUT namespace (ip_forward=1, no XDP, no process), GRO on In and Out with their NAPI threaded on the DUT CPU and TSO off on their peers (as an XDP program on In or Out makes it): the kernel's own path, which merges the same frames of at most 1500 B by GRO and forwards them as GSO packets where AF_XDP copies every frame to user space and back alone", KernelFwd)
			if st := stats[c.Name][KernelFwd]; st != nil && st.N > 0 {
				fmt.Fprintf(&b, ": %.2f Mbit/s", st.Median)
				if m, lo, hi, ok := r.Ratio(c.Name, KernelFwd, c.Base); ok {
					fmt.Fprintf(&b, ", %.2fx %s [%.2f-%.2f]", m, c.Base, lo, hi)
				}
				if m, lo, hi, ok := r.Ratio(c.Name, L2Fwd, KernelFwd); ok {
					fmt.Fprintf(&b, "; %s keeps %.2fx of it [%.2f-%.2f]", L2Fwd, m, lo, hi)
				}
			} else {
				b.WriteString(": not measured in this run")
			}
			b.WriteString(".\n")
		}
	}
	return b.String()
}

// fmtLinkCfg describes one side's emulation.
func fmtLinkCfg(c *linkem.Config) string {
	if c == nil {
		return "none (kernel bridge)"
	}
	return fmt.Sprintf("RTT %s (`%s`)", 2*c.Delay, strings.Join(c.Args(), " "))
}

func sampleLine(s Sample) string {
	if s.Err != "" {
		return "failed"
	}
	return fmt.Sprintf("%.2f Mbit/s, %.2f s", s.Mbps, s.Seconds)
}

func relayLine(st linkem.Stats) string {
	if st.Frames == 0 {
		return "-"
	}
	return fmt.Sprintf("%d frames, %d forwarded, %d lost (loss setting), %d queue drops, %d kernel drops", st.Frames, st.Forwarded, st.Lost, st.QueueDrop, st.RxDrops)
}

var spaces = regexp.MustCompile(`\s+`)

func oneLine(s string) string {
	if s == "" {
		return "-"
	}
	return spaces.ReplaceAllString(s, " ")
}

func memoryMarkdown(m Memory) string {
	if m.Err != "" {
		return "Memory per idle terminated connection: not measured (" + m.Err + ").\n"
	}
	if len(m.Terminator) == 0 {
		return "Memory per idle terminated connection: not measured in this run.\n"
	}
	med := func(x []float64) string {
		return fmt.Sprintf("%.0f [%.0f-%.0f]", bench.Median(x), slices.Min(x), slices.Max(x))
	}
	return fmt.Sprintf("**Memory per idle terminated connection** (`go test -bench ^BenchmarkIdleConnMemory$ ./tcpproxy`, %d runs of 1 000 idle connections, heap + goroutine stacks after GC, bytes per connection, median [min-max]): "+
		"%s B through the terminator, %s B for the same two test netstacks connected directly, so **%s B** are the terminator's own (its two netstack endpoints, the connection's goroutine, timer and state; splice buffers are pooled and held only while bytes wait).\n",
		len(m.Terminator), med(m.Through), med(m.Direct), med(m.Terminator))
}

var metricRe = regexp.MustCompile(`([0-9.e+]+) (B/conn-through|B/conn-direct|B/conn-terminator)`)

// idleMemory runs tcpproxy's BenchmarkIdleConnMemory 3 times.
func idleMemory(ctx context.Context, cfg Config) Memory {
	cmd := exec.CommandContext(ctx, cfg.Go, "test", "-run", "^$", "-bench", "^BenchmarkIdleConnMemory$", "-benchtime", "1x", "-count", "3", "./tcpproxy")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Memory{Err: fmt.Sprintf("%v: %s", err, strings.TrimSpace(lastLines(out.String(), 5)))}
	}
	m := ParseMemory(out.String())
	if len(m.Terminator) == 0 {
		m.Err = "no B/conn metrics in the output"
	}
	cfg.logf("  %s", strings.TrimSpace(memoryMarkdown(m)))
	return m
}

// ParseMemory reads the B/conn metrics of go test -bench output.
func ParseMemory(out string) Memory {
	var m Memory
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "BenchmarkIdleConnMemory") {
			continue
		}
		for _, g := range metricRe.FindAllStringSubmatch(l, -1) {
			v, err := strconv.ParseFloat(g[1], 64)
			if err != nil {
				continue
			}
			switch g[2] {
			case "B/conn-through":
				m.Through = append(m.Through, v)
			case "B/conn-direct":
				m.Direct = append(m.Direct, v)
			case "B/conn-terminator":
				m.Terminator = append(m.Terminator, v)
			}
		}
	}
	return m
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#9c755f"}

// legend is every variant of the run's cases, in the order they first
// appear; a variant keeps its colour across panels.
func legend(cases []Case) []string {
	var out []string
	for _, c := range cases {
		for _, v := range c.Variants {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// SVG draws one panel per case (each with its own scale): median goodput
// per variant with a min-max whisker and the ratio to the case's base.
func SVG(r *Result) string {
	stats := r.Stats()
	cases := r.Config.Cases
	const W, H, top, bottom = 900.0, 460.0, 50.0, 110.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="20" y="22" font-size="15" font-weight="bold">tcp-split: download goodput, Mbit/s (median, min-max), %s, %s</text>`+"\n", html.EscapeString(r.Env.Date), html.EscapeString(r.Env.Commit))
	if len(cases) == 0 {
		b.WriteString("</svg>\n")
		return b.String()
	}
	vars := legend(cases)
	color := func(v string) string { return palette[slices.Index(vars, v)%len(palette)] }
	pw := W / float64(len(cases))
	plotH := H - top - bottom
	for ci, c := range cases {
		x0 := pw*float64(ci) + 55
		plotW := pw - 75
		maxY := 0.0
		for _, v := range c.Variants {
			if st := stats[c.Name][v]; st != nil {
				maxY = max(maxY, st.Max)
			}
		}
		maxY = niceCeil(maxY)
		y := func(v float64) float64 { return top + plotH - v/maxY*plotH }
		for i := 0; i <= 4; i++ {
			v := maxY * float64(i) / 4
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%g</text>`+"\n",
				x0, x0+plotW, y(v), y(v), x0-5, y(v)+4, v)
		}
		bw := plotW / float64(len(c.Variants))
		for vi, v := range c.Variants {
			st := stats[c.Name][v]
			if st == nil || st.N == 0 {
				continue
			}
			x := x0 + bw*float64(vi)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.2f Mbit/s</title></rect>`+"\n",
				x+4, y(st.Median), bw-8, y(0)-y(st.Median), color(v), c.Name, v, st.Median)
			cx := x + bw/2
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black"/>`+"\n", cx, cx, y(st.Min), y(st.Max))
			// Narrow bars (a case with many variants) put the ratio on a
			// line of its own and stagger the names below.
			narrow := bw < 60
			lbl, ratio := fmt.Sprintf("%.1f", st.Median), ""
			if v != c.Base {
				if m, _, _, ok := r.Ratio(c.Name, v, c.Base); ok {
					ratio = fmt.Sprintf("(%.2fx)", m)
				}
			}
			ly, ny := y(st.Max)-4, y(0)+14
			if narrow && ratio != "" {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", cx, ly, ratio)
				ly -= 12
			} else if ratio != "" {
				lbl += " " + ratio
			}
			if narrow {
				ny += float64(vi%2) * 11
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", cx, ly, lbl)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", cx, ny, v)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold">%s (target %s &gt;= %gx %s)</text>`+"\n", x0+plotW/2, y(0)+40, c.Name, Term, c.Min, c.Base)
	}
	for vi, v := range vars {
		lx, ly := 20+float64(vi%2)*440, H-58+float64(vi/2)*18
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text x="%.1f" y="%.1f" font-size="11">%s</text>`+"\n", lx, ly, color(v), lx+16, ly+10, html.EscapeString(labels[v]))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for p > v*10 {
		p /= 10
	}
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// saved is the JSON beside the chart.
type saved struct {
	Result
	Cases []Case
	Size  int64
	Reps  int
}

// Write writes the chart, the samples beside it (.json) and the section.
func Write(r *Result, mdPath, chartPath string) error {
	if err := os.MkdirAll(filepath.Dir(chartPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(chartPath, []byte(SVG(r)), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(saved{Result: *r, Cases: r.Config.Cases, Size: r.Config.Size, Reps: r.Config.Reps}, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(strings.TrimSuffix(chartPath, filepath.Ext(chartPath))+".json", js, 0o644); err != nil {
		return err
	}
	rel, err := bench.RelPath(mdPath, chartPath)
	if err != nil {
		return err
	}
	return bench.WriteSection(mdPath, BeginMarker, EndMarker, Markdown(r, rel))
}

// LoadResult reads a saved run so that it can be rendered again.
func LoadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r := s.Result
	r.Config = DefaultConfig("")
	r.Config.Cases, r.Config.Size, r.Config.Reps = s.Cases, s.Size, s.Reps
	return &r, nil
}
