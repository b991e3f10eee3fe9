package xlatgw

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"samepath/dp/xlat"
	"samepath/perf/bench"
	"samepath/perf/gwnat"
	"samepath/perf/pktgen"
	"samepath/testbed/topo"
)

// Addresses of the scenario (the topology's own are in bench.Topology).
var (
	// RepIP is the IPv4 representative address both variants reach,
	// gw-nat's (the gateway config is gw-nat's, gwnat.ConfigWith).
	RepIP = gwnat.RepIP
	// Pool6 is the RFC 6052 prefix; RepIP6 is RepIP's address under it,
	// where the IPv6 mobile sends.
	Pool6  = netip.MustParsePrefix("64:ff9b::/96")
	RepIP6 = netip.AddrFrom16(xlat.Embed(Pool6, RepIP.As4()))
	// Src6 is the IPv6 mobile's first source address.
	Src6 = netip.MustParseAddr("fd00:1::1")
	// Own6 is the translator's own IPv6 address (the source of the ICMPv6
	// errors it would answer with; none are expected here).
	Own6 = netip.MustParseAddr("fd00:1::fffe")
	// NATAddrs are samepathd's key-port addresses on the server side.
	NATAddrs = gwnat.NATAddrs
)

// ServicePort is the UDP port of the representative service and server.
const ServicePort = gwnat.ServicePort

// APIAddr is samepathd's control API inside the DUT namespace.
const APIAddr = gwnat.APIAddr

// MobileMTU is the MTU of the mobile-side link (generator veth and DUT
// ingress) in both variants: the 1500 B case's IPv6 frames are 1520 B.
const MobileMTU = 1520

// Variant names.
const (
	V4   = "gw-v4"   // untranslated: IPv4 mobile -> IPv4 server
	Xlat = "gw-xlat" // translated: IPv6 mobile -> IPv4 server (NAT64)
)

// Markers delimit the scenario's section of BENCHMARKS.md.
const (
	BeginMarker = "<!-- perf:xlat begin -->"
	EndMarker   = "<!-- perf:xlat end -->"
)

// DefaultConfig is the full `make perf` run: 3 alternating reps of both
// variants, 64 B and 1500 B frames, 1 000 flows.
func DefaultConfig(samepathd string) bench.Config {
	return bench.Config{
		Scenario: "xlat",
		Reps:     3, Warm: 500 * time.Millisecond, Measure: 2 * time.Second,
		Cases:    []bench.Case{{Size: 64, Flows: 1000}, {Size: 1500, Flows: 1000}},
		Variants: AllVariants(samepathd),
		GenCPU:   0, SinkCPU: 0, Batch: 64, Prefix: "spxlat", NAPIFifo: 50,
		// As gw-nat: the sink's NAPI in softirq on the DUT's core.
		SinkSoftirq: true,
		DevDrops:    true,
		Frame:       Frame,
		GenFrames:   "IPv4 UDP (v4 -> v4) or IPv6 UDP (NAT64)",
	}
}

// QuickConfig is a development run: 1 rep, short windows.
func QuickConfig(samepathd string) bench.Config {
	c := DefaultConfig(samepathd)
	c.Reps, c.Warm, c.Measure = 1, 200*time.Millisecond, 500*time.Millisecond
	return c
}

// AllVariants lists the untranslated and the translated variant, in run
// order (A B A B per case).
func AllVariants(samepathd string) []bench.Variant {
	return []bench.Variant{Samepathd(samepathd, false), Samepathd(samepathd, true)}
}

// Frame sends the case's IPv4 frames to the representative address.
func Frame(t *bench.Topology, c bench.Case, f *pktgen.FrameSpec) {
	f.DstIP, f.DstPort = RepIP, ServicePort
}

// Frame6 makes the translated variant's frames: the same flows (source
// ports and the low 32 bits of the source addresses) from the IPv6
// mobile to RepIP6, 20 bytes longer than the IPv4 frame the sink counts.
func Frame6(t *bench.Topology, c bench.Case, f *pktgen.FrameSpec) {
	lo := t.SrcIP.As4()
	s := Src6.As16()
	copy(s[12:], lo[:])
	f.SrcIP, f.DstIP = netip.AddrFrom16(s), RepIP6
	f.Size = c.Size + 20
}

// Config is the gateway config the harness gives samepathd, the same
// for both variants: translation on (64:ff9b::/96), one IPv4 service.
func Config(t *bench.Topology) string {
	return gwnat.ConfigWith(t, fmt.Sprintf("  xlat: {pool6: %q, ipv6_address: %q}\n", Pool6.String(), Own6.String()))
}

// setMTU sets the mobile-side link's MTU (both ends).
func setMTU(t *bench.Topology, mtu int) error {
	for _, d := range [][2]string{{t.Gen, t.GenDev}, {t.DUT, t.In}} {
		if out, err := topo.Command(d[0], "ip", "link", "set", "dev", d[1], "mtu", fmt.Sprint(mtu)).CombinedOutput(); err != nil {
			return fmt.Errorf("mtu %d on %s/%s: %w: %s", mtu, d[0], d[1], err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// Samepathd runs `bin/samepathd --config FILE` as the gateway in the DUT
// namespace, its one worker pinned to CPU1 (the ingress NAPI on CPU0),
// fed IPv4 frames or, with translate, IPv6 ones, and records its
// counters after every case.
func Samepathd(bin string, translate bool) bench.Variant {
	v := gwnat.SamepathdVariant(bin, bench.Variant{
		Name: V4, Label: "samepathd gw, v4 -> v4", SinkOn: bench.SinkFar, InNAPICPU: 0,
		Detail: "samepathd gw (port-key NAT, service " + RepIP.String() + ":9 -> server, translation configured but unused), IPv4 mobile, require_session: false, 1 AF_XDP worker pinned to CPU1; In NAPI threaded on CPU0",
	}, Config, func(t *bench.Topology) error { return setMTU(t, MobileMTU) })
	if translate {
		v.Name, v.Label = Xlat, "samepathd gw, v6 -> v4 (NAT64)"
		v.Detail = "samepathd gw, the same config: IPv6 mobile to " + RepIP6.String() + ":9, NAT64 (RFC 7915 + RFC 6146) to the IPv4 server, 1 AF_XDP worker pinned to CPU1; In NAPI threaded on CPU0"
		v.Frame = Frame6
	}
	return v
}

// Markdown renders the BENCHMARKS.md section (markers included); chart is
// the chart's path relative to BENCHMARKS.md.
func Markdown(r *bench.Result, chart string) string {
	var b strings.Builder
	cfg := r.Config
	stats := r.Stats()
	fmt.Fprintf(&b, "%s\n## xlat\n\n", BeginMarker)
	fmt.Fprintf(&b, "_Written by `make perf` (perf/xlatgw); do not edit by hand._\n\n")
	fmt.Fprintf(&b, "The same UDP flows from the pktgen namespace through one gateway (samepathd, one config for both variants) to the sink namespace, veth all the way: untranslated, an IPv4 mobile to the representative address %s:%d; translated, an IPv6 mobile to its RFC 6052 address [%s]:%d, NAT64 (RFC 7915 headers, RFC 6146 port-key NAT) to the IPv4 server. ", RepIP, ServicePort, RepIP6, ServicePort)
	fmt.Fprintf(&b, "Frame sizes name the IPv4 frame the sink counts in both variants; the IPv6 mobile's frames carry the same payload in 20 bytes more (84 B, 1520 B; the mobile-side link's MTU is %d for both variants). ", MobileMTU)
	fmt.Fprintf(&b, "Sink packets per second, median of %d runs per variant [min-max], the variants alternating case by case (A B A B for each frame size); ratios are medians of run-by-run ratios.\n\n", cfg.Reps)
	r.WriteEnv(&b, bench.Row{Name: "flows", Value: "N distinct UDP flows: source ports from 1024 on one source address (10.1.0.1, or fd00:1::a01:1 for IPv6: the same low 32 bits)"},
		bench.Row{Name: "sessions", Value: "samepathd runs with `require_session: false` (no AAA here)"},
		bench.Row{Name: "translation", Value: "gw.xlat pool6 " + Pool6.String() + "; the translated frame is built in the worker's buffer and copied into the packet's frame (dp/gw_xlat.go)"})
	fmt.Fprintf(&b, "| frame | flows | variant | sink Mpps | Gbit/s | gen Mpps | loss | late | CPU0 / CPU1 busy | x v4 -> v4 |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cfg.Cases {
		for _, v := range cfg.Variants {
			st := stats[v.Name][c]
			if st == nil {
				continue
			}
			ratio := "-"
			if v.Name == V4 {
				ratio = "1"
			} else if x, ok := bench.Ratio(st, stats[V4][c]); ok {
				ratio = fmt.Sprintf("%.2f", x)
			}
			fmt.Fprintf(&b, "| %d B | %d | %s | %.3f [%.3f-%.3f] | %.2f | %.2f | %.1f%% | %d | %s | %s |\n",
				c.Size, c.Flows, v.Label, st.Median/1e6, st.Min/1e6, st.Max/1e6, st.MedianBPS/1e9,
				st.GenPPS/1e6, 100*st.Loss, st.Late, st.BusyString(), ratio)
		}
	}
	b.WriteString("\n" + bench.LossNote(cfg))
	b.WriteString("CPU busy: the share of the counting window each CPU was not idle (/proc/stat, median over runs), whoever ran there. Softirq work may be undercounted on this kernel (../shared/BENCH.md).\n\n")
	var tl []string
	for _, c := range cfg.Cases {
		if x, ok := bench.Ratio(stats[Xlat][c], stats[V4][c]); ok {
			tl = append(tl, fmt.Sprintf("- %s: translated %.2fx untranslated (%.3f vs %.3f Mpps, medians)", c, x, stats[Xlat][c].Median/1e6, stats[V4][c].Median/1e6))
		}
	}
	if len(tl) > 0 {
		fmt.Fprintf(&b, "Cost of translation (issue 14: translated packets per second against the same flows untranslated, same run):\n\n%s\n\n", strings.Join(tl, "\n"))
	}
	notes := r.LossNotes()
	if len(notes) > 0 {
		fmt.Fprintf(&b, "Where frames were lost, per case (warm-up included): the gateway's counters (GET /v1/counters deltas per queue) and the veth drop/error counters (ethtool -S) that moved.\n\n%s\n\n", strings.Join(notes, "\n"))
	}
	r.WriteVariants(&b)
	fmt.Fprintf(&b, "\n![xlat: sink Mpps per variant](%s)\n%s\n", chart, EndMarker)
	return b.String()
}

// Write writes the chart, the samples beside it and the section of mdPath.
func Write(r *bench.Result, mdPath, chartPath string) error {
	return r.Write(mdPath, chartPath, "xlat", BeginMarker, EndMarker, Markdown)
}

// LoadResult reads a saved run so that it can be rendered again.
func LoadResult(path string) (*bench.Result, error) { return bench.LoadResult(path, DefaultConfig("")) }
