package gwnat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"samepath/ctl/api"
	"samepath/perf/bench"
	"samepath/perf/pktgen"
	"samepath/testbed/topo"
)

// Addresses of the scenario (the topology's own are in bench.Topology).
var (
	// RepIP is the representative address the generator sends to.
	RepIP = netip.MustParseAddr("10.30.0.1")
	// NATAddrs are samepathd's key-port addresses on the server side.
	NATAddrs = []netip.Addr{netip.MustParseAddr("10.2.255.101"), netip.MustParseAddr("10.2.255.102")}
)

// ServicePort is the UDP port of the representative service and server.
const ServicePort = 9

// APIAddr is samepathd's control API inside the DUT namespace.
const APIAddr = "127.0.0.1:9180"

// Markers delimit the scenario's section of BENCHMARKS.md.
const (
	BeginMarker = "<!-- perf:gw-nat begin -->"
	EndMarker   = "<!-- perf:gw-nat end -->"
)

var targets = []bench.Target{{Variant: "samepathd-gw", Base: "nft-nat", Min: 2}}

// DefaultConfig is the full `make perf` run: 3 alternating reps of both
// variants, 64 B and 1500 B frames, 1 000 and 60 000 flows.
func DefaultConfig(samepathd string) bench.Config {
	return bench.Config{
		Scenario: "gw-nat",
		Reps:     3, Warm: 500 * time.Millisecond, Measure: 2 * time.Second,
		Cases: []bench.Case{{Size: 64, Flows: 1000}, {Size: 64, Flows: 60000},
			{Size: 1500, Flows: 1000}, {Size: 1500, Flows: 60000}},
		Variants: AllVariants(samepathd),
		GenCPU:   0, SinkCPU: 0, Batch: 64, Prefix: "spgwnat", NAPIFifo: 50,
		// The sink's NAPI runs in softirq where the DUT transmits (its
		// CPU, for both variants): CPU0 already carries the generator and,
		// for samepathd, the ingress NAPI that copies frames to its socket.
		SinkSoftirq: true,
		DevDrops:    true,
		Frame:       Frame,
		// Live frames (the default): the generator restores every header
		// it sends, so frames the variants rewrote in place come back
		// whole, and XDP_TX hands them to In's NAPI for both variants.
		// AF_XDP TX would run the baseline's whole forwarding path in
		// the generator's own syscalls on CPU0 (veth takes such skbs
		// through netif_rx on the sending CPU).
	}
}

// QuickConfig is a development run: 1 rep, short windows.
func QuickConfig(samepathd string) bench.Config {
	c := DefaultConfig(samepathd)
	c.Reps, c.Warm, c.Measure = 1, 200*time.Millisecond, 500*time.Millisecond
	return c
}

// AllVariants lists the baseline, samepathd and the AF_XDP reference
// (bench.L2Fwd) in run order.
func AllVariants(samepathd string) []bench.Variant {
	return []bench.Variant{NFTNAT(), Samepathd(samepathd), bench.L2Fwd(bench.PktgenBeside(samepathd))}
}

// Frame sends the case's frames to the representative address.
func Frame(t *bench.Topology, c bench.Case, f *pktgen.FrameSpec) {
	f.DstIP, f.DstPort = RepIP, ServicePort
}

// NFTRules is the baseline's ruleset: DNAT of the representative address
// to the server, masquerade of everything leaving toward the servers.
func NFTRules(t *bench.Topology) string {
	return fmt.Sprintf(`table ip spgwnat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %s udp dport %d dnat to %s
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "%s" masquerade
	}
}
`, RepIP, ServicePort, t.DstIP, t.Out)
}

// NFTNAT is the baseline: kernel IPv4 forwarding with GRO on the ingress
// veth and the nftables NAT of NFTRules (conntrack).
func NFTNAT() bench.Variant {
	return bench.Variant{
		Name: "nft-nat", Label: "kernel fwd + nftables NAT", Baseline: true, SinkOn: bench.SinkFar, InNAPICPU: 1,
		Detail: "ip_forward=1, GRO on In, nftables dnat " + RepIP.String() + " -> server + masquerade toward the servers (conntrack, flushed after each run); In NAPI threaded on CPU1",
		Setup: func(t *bench.Topology) (func() error, error) {
			undo := func() error {
				var errs []error
				if out, err := topo.Command(t.DUT, "nft", "delete", "table", "ip", "spgwnat").CombinedOutput(); err != nil &&
					!strings.Contains(string(out), "No such file") {
					errs = append(errs, fmt.Errorf("nft delete table: %w: %s", err, strings.TrimSpace(string(out))))
				}
				errs = append(errs, topo.Do(t.DUT, func() error {
					if err := netlink.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
						return fmt.Errorf("flush conntrack: %w", err)
					}
					return nil
				}))
				errs = append(errs, topo.SetGRO(t.DUT, t.In, false), topo.Sysctl(t.DUT, "net/ipv4/ip_forward", "0"))
				return errors.Join(errs...)
			}
			if err := topo.Sysctl(t.DUT, "net/ipv4/ip_forward", "1"); err != nil {
				return nil, err
			}
			if err := topo.SetGRO(t.DUT, t.In, true); err != nil {
				return nil, errors.Join(err, undo())
			}
			cmd := topo.Command(t.DUT, "nft", "-f", "-")
			cmd.Stdin = strings.NewReader(NFTRules(t))
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, errors.Join(fmt.Errorf("nft -f: %w: %s", err, strings.TrimSpace(string(out))), undo())
			}
			return undo, nil
		},
	}
}

// Config is the gateway config the harness gives samepathd.
func Config(t *bench.Topology) string { return ConfigWith(t, "") }

// ConfigWith is Config with gwExtra (lines of the gw: block, indented by
// two spaces, each ending in a newline) before its services.
func ConfigWith(t *bench.Topology, gwExtra string) string {
	var addrs []string
	for _, a := range NATAddrs {
		addrs = append(addrs, a.String())
	}
	return fmt.Sprintf(`role: gw
api: %s
workers: {queues: 1, cpus: [1]}
gw:
  lan: {iface: %s}
  servers: {iface: %s}
  nat:
    addrs: [%s]
    port_min: 1024
    port_max: 65535
    capacity: 262144
  require_session: false   # no AAA in the benchmark: every source may open flows
%s  services:
    - name: sink
      rep: %s:%d
      proto: udp
      type: connection
      policy: rr
      servers: [{addr: "%s:%d", state: up}]
`, APIAddr, t.In, t.Out, strings.Join(addrs, ", "), gwExtra, RepIP, ServicePort, t.DstIP, ServicePort)
}

// Samepathd runs `bin/samepathd --config FILE` as the gateway in the DUT
// namespace, its one worker pinned to CPU1 (the ingress NAPI on CPU0),
// and records its counters after every case.
func Samepathd(bin string) bench.Variant {
	return SamepathdVariant(bin, bench.Variant{
		Name: "samepathd-gw", Label: "samepathd gw", SinkOn: bench.SinkFar, InNAPICPU: 0,
		Detail: "samepathd gw (port-key NAT, service " + RepIP.String() + ":9 -> server), require_session: false, 1 AF_XDP worker pinned to CPU1; In NAPI threaded on CPU0",
	}, Config, nil)
}

// SamepathdVariant completes v (its names, sink and NAPI placement set)
// as a samepathd gateway variant: it skips while bin is not built, runs
// prepare (nil: nothing) and then samepathd with config's YAML in Setup,
// reports samepathd's thread placement, and notes the counters' moves
// after every case.
func SamepathdVariant(bin string, v bench.Variant, config func(*bench.Topology) string, prepare func(*bench.Topology) error) bench.Variant {
	var pid int
	var dut string
	var last api.Counters
	v.Skip = func() error {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s not built yet (%w)", bin, err)
		}
		return nil
	}
	v.Setup = func(t *bench.Topology) (func() error, error) {
		dut, last = t.DUT, api.Counters{}
		if prepare != nil {
			if err := prepare(t); err != nil {
				return nil, err
			}
		}
		return bench.StartSamepathd(t, bin, config(t), &pid)
	}
	v.Placement = func(fifo int) []string { return bench.ThreadPlacement("samepathd", pid, fifo) }
	v.Observe = func(bench.Case) string {
		c, err := Counters(dut, APIAddr)
		if err != nil {
			return "counters: " + err.Error()
		}
		note := CounterDelta(last, c)
		last = c
		return note
	}
	return v
}

// Counters reads GET /v1/counters from the samepathd API at addr inside
// namespace ns.
func Counters(ns, addr string) (api.Counters, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return topo.Dial(ctx, ns, network, addr)
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	resp, err := cl.Get("http://" + addr + "/v1/counters")
	if err != nil {
		return api.Counters{}, fmt.Errorf("get counters: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return api.Counters{}, fmt.Errorf("get counters: %s", resp.Status)
	}
	var c api.Counters
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return api.Counters{}, fmt.Errorf("decode counters: %w", err)
	}
	return c, nil
}

// CounterDelta formats what each queue counted between a and b: packets
// in and out and the drops by reason that moved.
func CounterDelta(a, b api.Counters) string {
	prev := map[string]api.QueueCounters{}
	for _, q := range a.Queues {
		prev[q.Port] = q
	}
	var parts []string
	for _, q := range b.Queues {
		p := prev[q.Port]
		s := fmt.Sprintf("%s rx %d tx %d", q.Port, q.RxPackets-p.RxPackets, q.TxPackets-p.TxPackets)
		var reasons []string
		for r := range q.Drops {
			reasons = append(reasons, r)
		}
		slices.Sort(reasons)
		var drops []string
		for _, r := range reasons {
			if d := q.Drops[r] - p.Drops[r]; d > 0 {
				drops = append(drops, fmt.Sprintf("%s %d", r, d))
			}
		}
		if len(drops) > 0 {
			s += " drops: " + strings.Join(drops, ", ")
		} else {
			s += " no drops"
		}
		var sock []string
		for _, k := range api.SocketDrops {
			if d := q.Socket[k] - p.Socket[k]; d > 0 {
				sock = append(sock, fmt.Sprintf("%s %d", k, d))
			}
		}
		if len(sock) > 0 {
			s += ", socket: " + strings.Join(sock, ", ")
		}
		s += fmt.Sprintf(" (idle polls %.0f%% since start)", 100*q.IdleRatio)
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// Markdown renders the BENCHMARKS.md section (markers included); chart is
// the chart's path relative to BENCHMARKS.md.
func Markdown(r *bench.Result, chart string) string {
	var b strings.Builder
	cfg := r.Config
	stats := r.Stats()
	fmt.Fprintf(&b, "%s\n## gw-nat\n\n", BeginMarker)
	fmt.Fprintf(&b, "_Written by `make perf` (perf/gwnat); do not edit by hand._\n\n")
	fmt.Fprintf(&b, "Many UDP flows from the pktgen namespace to the representative address %s:%d -> device under test (one gateway) -> sink namespace, veth all the way. ", RepIP, ServicePort)
	var nat []string
	for _, a := range NATAddrs {
		nat = append(nat, a.String())
	}
	fmt.Fprintf(&b, "Both variants rewrite the destination to the server (the sink's address %s) and the source (samepathd: a key port on %s; nftables: masquerade to the DUT's server-side address). ",
		bench.NewTopology("x").DstIP, strings.Join(nat, " or "))
	fmt.Fprintf(&b, "Sink packets per second, median of %d runs per variant [min-max], the variants alternating case by case (A B A B for each frame size and flow count); ratios are medians of run-by-run ratios.\n\n", cfg.Reps)
	r.WriteEnv(&b, bench.Row{Name: "flows", Value: "N distinct UDP flows: source ports from 1024, 50 000 per source address from 10.1.0.1 (60 000 = 2 addresses x 30 000 ports)"},
		bench.Row{Name: "sessions", Value: "samepathd runs with `require_session: false` (no AAA here; with it, session events would be pushed on its API first)"})
	fmt.Fprintf(&b, "| frame | flows | variant | sink Mpps | Gbit/s | gen Mpps | loss | late | CPU0 / CPU1 busy | x nftables NAT |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cfg.Cases {
		for _, v := range cfg.Variants {
			st := stats[v.Name][c]
			if st == nil {
				continue
			}
			ratio := "-"
			if v.Name == "nft-nat" {
				ratio = "1"
			} else if x, ok := bench.Ratio(st, stats["nft-nat"][c]); ok {
				ratio = fmt.Sprintf("%.2f", x)
			}
			fmt.Fprintf(&b, "| %d B | %d | %s | %.3f [%.3f-%.3f] | %.2f | %.2f | %.1f%% | %d | %s | %s |\n",
				c.Size, c.Flows, v.Label, st.Median/1e6, st.Min/1e6, st.Max/1e6, st.MedianBPS/1e9,
				st.GenPPS/1e6, 100*st.Loss, st.Late, st.BusyString(), ratio)
		}
	}
	b.WriteString("\n" + bench.LossNote(cfg))
	b.WriteString("CPU busy: the share of the counting window each CPU was not idle (/proc/stat, median over runs), whoever ran there: the generator and the DUT's threads, but also other work on this shared box. A device under test whose CPU is not busy while its generator is slowed was not the limit. Softirq work may be undercounted on this kernel (../shared/BENCH.md).\n\n")
	r.WriteTargets(&b, "issue 4", targets)
	r.WriteReference(&b, "samepathd-gw", "nft-nat")
	notes := r.LossNotes()
	if len(notes) > 0 {
		fmt.Fprintf(&b, "Where frames were lost, per case (warm-up included): the gateway's own counters (GET /v1/counters deltas per queue: packets in and out, drops by reason) and the veth drop/error counters (ethtool -S) that moved on the generator, DUT and sink devices. Frames the generator sent that the gateway's queue never counted were lost before its socket (the ingress veth, or the XDP redirect into a full AF_XDP RX ring).\n\n%s\n\n", strings.Join(notes, "\n"))
	}
	r.WriteVariants(&b)
	fmt.Fprintf(&b, "\n![gw-nat: sink Mpps per variant](%s)\n%s\n", chart, EndMarker)
	return b.String()
}

// Write writes the chart, the samples beside it and the section of mdPath.
func Write(r *bench.Result, mdPath, chartPath string) error {
	return r.Write(mdPath, chartPath, "gw-nat", BeginMarker, EndMarker, Markdown)
}

// LoadResult reads a saved run so that it can be rendered again.
func LoadResult(path string) (*bench.Result, error) { return bench.LoadResult(path, DefaultConfig("")) }
