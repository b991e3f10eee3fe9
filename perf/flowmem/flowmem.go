// Package flowmem is the `make perf` section "flows-1m" (issue 4 check
// "1 M flows held"): a nat.PortTable holding 1 000 000 live bindings, its
// heap per flow (Go heap in use after a GC, before the table and with
// every flow bound), the time to bind them, and up/down lookups with the
// table full. When package nat has BenchmarkHold1M (its author's own
// measurement) that benchmark is run too and its figures are shown
// beside these.
//
// Measure allocates the whole table (hundreds of MB) in this process and
// releases it before returning; nothing here is on a hot path.
package flowmem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"samepath/nat"
	"samepath/perf/bench"
	"samepath/perf/micro"
)

// Markers delimit the section of BENCHMARKS.md.
const (
	BeginMarker = "<!-- perf:flows-1m begin -->"
	EndMarker   = "<!-- perf:flows-1m end -->"
)

// Config configures a measurement.
type Config struct {
	Flows   int    // live bindings to hold
	Go      string // go command for BenchmarkHold1M; "" = skip it
	Out     io.Writer
	Command string
}

// DefaultConfig holds 1 000 000 flows.
func DefaultConfig() Config { return Config{Flows: 1_000_000, Go: "go"} }

// Result is a finished measurement.
type Result struct {
	Config       Config
	Env          bench.Env
	GwAddrs      int     // key-port addresses needed for the flows
	Capacity     int     // the table's capacity (= Flows)
	HeapEmpty    uint64  // heap of the empty table (all memory is allocated up front)
	HeapFull     uint64  // heap with Flows bindings
	BytesPerFlow float64 // HeapFull / Flows
	CreateNs     float64 // mean ns per Create while filling
	UpNs, DownNs float64 // mean ns per lookup with the table full
	Live         int
	Hold1M       []micro.Row // nat's BenchmarkHold1M, when it exists
	Hold1MErr    string
}

func heap() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Measure fills a table with cfg.Flows UDP bindings (distinct mobiles and
// ports to one server) and measures it.
func Measure(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Flows < 1 || cfg.Flows > nat.MaxCapacity {
		return nil, fmt.Errorf("flowmem: flows %d out of 1..%d", cfg.Flows, nat.MaxCapacity)
	}
	res := &Result{Config: cfg, Env: bench.Environment(cfg.Command), Capacity: cfg.Flows}
	pc := nat.DefaultPortTableConfig()
	perAddr := int(pc.PortMax) - int(pc.PortMin) + 1
	res.GwAddrs = (cfg.Flows + perAddr - 1) / perAddr
	for i := range res.GwAddrs {
		pc.GwAddrs = append(pc.GwAddrs, netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)}))
	}
	pc.Capacity = cfg.Flows
	base := heap()
	tab, err := nat.NewPortTable(pc)
	if err != nil {
		return nil, err
	}
	res.HeapEmpty = heap() - base
	server := nat.Addr16From(netip.MustParseAddr("198.51.100.1"))
	key := func(i int) nat.FlowKey {
		// 10.0.0.0/8 mobiles, 16 flows each.
		m := i / 16
		return nat.FlowKey{Src: nat.Addr16V4([4]byte{10, byte(m >> 16), byte(m >> 8), byte(m)}), Dst: server,
			SPort: uint16(1024 + i%16), DPort: 443, Proto: nat.ProtoUDP}
	}
	now := int64(time.Second)
	start := time.Now()
	for i := range cfg.Flows {
		if i&0xffff == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		k := key(i)
		if _, err := tab.Create(&k, server, 443, uint64(i/16+1), 0, now); err != nil {
			return nil, fmt.Errorf("flowmem: create flow %d: %w", i, err)
		}
	}
	res.CreateNs = float64(time.Since(start).Nanoseconds()) / float64(cfg.Flows)
	res.Live = tab.Stats().Live
	res.HeapFull = heap() - base
	res.BytesPerFlow = float64(res.HeapFull) / float64(cfg.Flows)
	// Lookups with the table full, in a scattered order.
	const lookups = 1 << 20
	var ids []uint32
	start = time.Now()
	for i := range lookups {
		k := key(int(uint64(i) * 2654435761 % uint64(cfg.Flows)))
		id, ok := tab.Up(&k)
		if !ok {
			return nil, fmt.Errorf("flowmem: flow %v not found", k)
		}
		if i < 4096 {
			ids = append(ids, id)
		}
	}
	res.UpNs = float64(time.Since(start).Nanoseconds()) / lookups
	var downs []nat.Binding
	for _, id := range ids {
		downs = append(downs, *tab.Binding(id))
	}
	start = time.Now()
	for i := range lookups {
		b := &downs[i%len(downs)]
		if _, ok := tab.Down(b.GwAddr, b.GwPort, b.Flow.Proto); !ok {
			return nil, errors.New("flowmem: down lookup failed")
		}
	}
	res.DownNs = float64(time.Since(start).Nanoseconds()) / lookups
	runtime.KeepAlive(tab)
	tab = nil
	heap()
	if cfg.Go != "" {
		res.Hold1M, res.Hold1MErr = hold1M(ctx, cfg.Go)
	}
	res.Env.LoadAfter = bench.Loadavg()
	return res, nil
}

// hold1M runs nat's BenchmarkHold1M once, if the package has it.
func hold1M(ctx context.Context, goCmd string) ([]micro.Row, string) {
	names, err := micro.List(ctx, goCmd, "./nat")
	if err != nil {
		return nil, err.Error()
	}
	found := false
	for _, n := range names {
		found = found || n == "BenchmarkHold1M"
	}
	if !found {
		return nil, "nat has no BenchmarkHold1M yet"
	}
	out, err := exec.CommandContext(ctx, goCmd, "test", "-run", "^$", "-bench", "^BenchmarkHold1M$", "-benchmem", "-benchtime", "1x", "./nat").CombinedOutput()
	if err != nil {
		return nil, fmt.Sprintf("go test -bench Hold1M ./nat: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return micro.Parse(string(out)), ""
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Markdown renders the section (markers included).
func (r *Result) Markdown() string {
	var b strings.Builder
	e := r.Env
	fmt.Fprintf(&b, "%s\n## flows-1m\n\n_Written by `make perf` (perf/flowmem); do not edit by hand._\n\n", BeginMarker)
	fmt.Fprintf(&b, "The gateway's port-key NAT table (nat.PortTable, T5) holding %d live UDP bindings (%d mobiles x 16 ports to one server, key ports 1024-65535 on %d gateway addresses), capacity %d. ",
		r.Live, r.Config.Flows/16, r.GwAddrs, r.Capacity)
	fmt.Fprintf(&b, "Memory is Go heap in use after a GC (runtime.MemStats.HeapAlloc), relative to before the table; the table allocates everything for its capacity up front, so the empty and the full table weigh the same. Create includes the first touch of that memory (page faults); the lookups run with every page touched, in a scattered order over the 1 M flows (cache and TLB misses). One run, in the perfrun process.\n\n")
	fmt.Fprintf(&b, "| | |\n|---|---|\n| date | %s |\n| commit | %s |\n| kernel | %s |\n| CPU | %s (%d CPUs) |\n", e.Date, e.Commit, e.Kernel, e.CPU, e.NCPU)
	fmt.Fprintf(&b, "| CPU placement | not pinned (one goroutine) |\n| load average | %s before, %s after |\n| command | `%s` |\n\n", e.LoadBefore, e.LoadAfter, e.Command)
	fmt.Fprintf(&b, "| live flows | heap, empty table | heap, full table | bytes per flow | create (ns/flow, filling) | up lookup (ns, full) | down lookup (ns, full) |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %s | %s | %.0f | %.0f | %.0f | %.0f |\n\n", r.Live, mib(r.HeapEmpty), mib(r.HeapFull), r.BytesPerFlow, r.CreateNs, r.UpNs, r.DownNs)
	switch {
	case len(r.Hold1M) > 0:
		fmt.Fprintf(&b, "nat's own BenchmarkHold1M (`go test -run '^$' -bench '^BenchmarkHold1M$' -benchmem -benchtime 1x ./nat`):\n\n")
		for _, row := range r.Hold1M {
			var parts []string
			for u, s := range row.Metrics {
				parts = append(parts, fmt.Sprintf("%s %s", micro.Num(s.Median), u))
			}
			slices.Sort(parts)
			fmt.Fprintf(&b, "- %s: %s\n", row.Name, strings.Join(parts, ", "))
		}
		b.WriteString("\n")
	case r.Hold1MErr != "":
		fmt.Fprintf(&b, "nat's BenchmarkHold1M: not run (%s).\n\n", r.Hold1MErr)
	}
	fmt.Fprintf(&b, "%s\n", EndMarker)
	return b.String()
}

// Write writes the section into mdPath.
func (r *Result) Write(mdPath string) error {
	return bench.WriteSection(mdPath, BeginMarker, EndMarker, r.Markdown())
}
