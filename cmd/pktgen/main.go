// Command pktgen generates test traffic (tx), counts it at a sink (rx)
// and forwards it with AF_XDP as a reference device under test (fwd).
//
//	pktgen tx -netns gen -i veth0 -dst-mac 02:00:00:00:00:02 -src 10.0.0.1 -dst 10.1.0.1 \
//	          -size 64 -flows 10000 -duration 10s -cpus 0
//	pktgen rx -netns sink -i veth3 -duration 10s
//	ip netns exec dut pktgen fwd -in veth1 -out veth2 -dst-mac 02:00:00:00:00:04 -cpu 1
//
// See perf/pktgen for the engines and BENCH.md for how samepath measures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"samepath/internal/version"
	"samepath/perf/l2fwd"
	"samepath/perf/pktgen"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "tx":
		err = tx(ctx, os.Args[2:])
	case "rx":
		err = rx(ctx, os.Args[2:])
	case "fwd":
		err = fwd(ctx, os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
		return
	case "-version", "--version":
		fmt.Println(version.String("pktgen"))
		return
	default:
		usage()
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pktgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: pktgen tx|rx|fwd [flags]   (pktgen tx -h and so on for flags)

  tx  generate frames: live engine (BPF_PROG_RUN live frames, XDP_TX out of -i)
      or afxdp engine (AF_XDP TX through ring/xsk)
  rx  count frames at a sink (XDP counting program in native mode on -i, or
      an AF_XDP socket with -mode afxdp), with loss and reordering from the
      generator's sequence stamps
  fwd forward every frame from -in to -out with AF_XDP (samepath's engine,
      no pipeline: the MAC rewrite of an L2 forwarder, like xdpsock l2fwd);
      the reference for what AF_XDP reaches on a path (runs in the
      current namespace: use ip netns exec)

example:
  pktgen tx -netns gen -i g0 -dst-mac 02:00:00:00:00:02 -src 10.0.0.1 -dst 10.1.0.1 \
            -size 64 -flows 10000 -rate 1M -duration 10s -cpus 0
  pktgen rx -netns sink -i s0 -duration 12s
`)
}

func tx(ctx context.Context, args []string) error {
	cfg := pktgen.DefaultTxConfig()
	fs := flag.NewFlagSet("pktgen tx", flag.ContinueOnError)
	fs.StringVar(&cfg.Engine, "engine", cfg.Engine, "live or afxdp")
	fs.StringVar(&cfg.Netns, "netns", "", "network namespace (name under /run/netns or a path)")
	fs.StringVar(&cfg.Iface, "i", "", "interface to send on (required)")
	fs.IntVar(&cfg.Frame.Size, "size", cfg.Frame.Size, "frame size in bytes including the 4-byte FCS")
	fs.StringVar(&cfg.Frame.Proto, "proto", cfg.Frame.Proto, "udp or tcp")
	srcMAC := fs.String("src-mac", "", "source MAC (default: the interface's)")
	dstMAC := fs.String("dst-mac", "", "destination MAC (required)")
	src := fs.String("src", "10.0.0.1", "first source address (IPv4 or IPv6)")
	dst := fs.String("dst", "10.1.0.1", "destination address")
	fs.IntVar(&cfg.Frame.SrcAddrs, "src-count", 1, "number of source addresses")
	sport := fs.Uint("sport", uint(cfg.Frame.SrcPort), "first source port")
	fs.IntVar(&cfg.Frame.SrcPorts, "sport-count", 1, "number of source ports")
	dport := fs.Uint("dport", uint(cfg.Frame.DstPort), "destination port")
	flows := fs.Int("flows", 0, "number of flows; sets -sport-count and -src-count (ports first, up to 50000 per address)")
	rateS := fs.String("rate", "0", "packets per second over all threads (k/M suffixes); 0 = full speed")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "run time; 0 = until -count or Ctrl-C")
	fs.Uint64Var(&cfg.Count, "count", 0, "frames to send; 0 = no limit")
	fs.IntVar(&cfg.Threads, "threads", 1, "transmit threads")
	fs.IntVar(&cfg.Queues, "queues", 1, "device queues to spread threads over (thread i uses queue i%queues; must exist)")
	cpus := fs.String("cpus", "", "comma-separated CPUs to pin threads to, e.g. 0 or 0,1")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "kernel batch size (live) or descriptors per send (afxdp)")
	stream := fs.Uint("stream-base", 0, "first stamp stream id; thread i stamps stream+i (runs sharing a sink should differ)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: pktgen tx [flags]\n\nexample:\n  pktgen tx -netns gen -i g0 -dst-mac 02:00:00:00:00:02 -size 1500 -flows 10000 -rate 500k -duration 5s -cpus 0\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if cfg.Frame.DstMAC, err = net.ParseMAC(*dstMAC); err != nil {
		return fmt.Errorf("-dst-mac: %w", err)
	}
	if *srcMAC != "" {
		if cfg.Frame.SrcMAC, err = net.ParseMAC(*srcMAC); err != nil {
			return fmt.Errorf("-src-mac: %w", err)
		}
	}
	if cfg.Frame.SrcIP, err = netip.ParseAddr(*src); err != nil {
		return fmt.Errorf("-src: %w", err)
	}
	if cfg.Frame.DstIP, err = netip.ParseAddr(*dst); err != nil {
		return fmt.Errorf("-dst: %w", err)
	}
	if *sport > 65535 || *dport > 65535 {
		return errors.New("ports must be 0..65535")
	}
	cfg.Frame.SrcPort, cfg.Frame.DstPort = uint16(*sport), uint16(*dport)
	if *flows > 0 {
		cfg.Frame.SrcAddrs, cfg.Frame.SrcPorts = splitFlows(*flows)
	}
	if cfg.Rate, err = parseRate(*rateS); err != nil {
		return err
	}
	if cfg.CPUs, err = parseCPUs(*cpus); err != nil {
		return err
	}
	cfg.StreamBase = uint32(*stream)
	cfg.Out = os.Stdout
	_, err = pktgen.RunTx(ctx, cfg)
	return err
}

// splitFlows turns a flow count into source addresses x ports, ports first.
func splitFlows(n int) (addrs, ports int) {
	addrs = (n + 49999) / 50000
	ports = (n + addrs - 1) / addrs
	return addrs, ports
}

func rx(ctx context.Context, args []string) error {
	var cfg pktgen.RxConfig
	fs := flag.NewFlagSet("pktgen rx", flag.ContinueOnError)
	fs.StringVar(&cfg.Mode, "mode", pktgen.RxXDP, "xdp (counting XDP program) or afxdp (AF_XDP socket, stamps checked in Go)")
	fs.IntVar(&cfg.Queue, "queue", 0, "afxdp: queue to bind")
	fs.IntVar(&cfg.CPU, "cpu", -1, "afxdp: CPU to pin the receive thread to (-1 = not pinned)")
	fs.StringVar(&cfg.Netns, "netns", "", "network namespace (name under /run/netns or a path)")
	fs.StringVar(&cfg.Iface, "i", "", "interface to count on (required)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "run time; 0 = until Ctrl-C")
	fs.BoolVar(&cfg.Pass, "pass", false, "xdp: pass frames to the stack after counting instead of dropping them")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: pktgen rx [flags]\n\nexample:\n  pktgen rx -netns sink -i s0 -duration 10s\n  pktgen rx -mode afxdp -cpu 1 -netns sink -i s0\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Out = os.Stdout
	_, err := pktgen.RunRx(ctx, cfg)
	return err
}

func fwd(ctx context.Context, args []string) error {
	cfg := l2fwd.DefaultConfig("", "", [6]byte{})
	fs := flag.NewFlagSet("pktgen fwd", flag.ContinueOnError)
	fs.StringVar(&cfg.In, "in", "", "interface to receive on, queue 0 (required)")
	fs.StringVar(&cfg.Out, "out", "", "interface to send on, queue 0 (required)")
	dstMAC := fs.String("dst-mac", "", "destination MAC of the forwarded frames (required); the source becomes -out's MAC")
	backMAC := fs.String("back-dst-mac", "", "forward the other way too: frames to -out's MAC received on -out leave on -in to this MAC, source -in's MAC (default: one way)")
	fs.IntVar(&cfg.CPU, "cpu", -1, "CPU to pin the poller to (-1 = not pinned)")
	fs.IntVar(&cfg.Frames, "frames", cfg.Frames, "UMEM frames")
	fs.IntVar(&cfg.RingSize, "ring", cfg.RingSize, "RX/TX/fill/completion ring slots")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "frames per poll round")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: pktgen fwd [flags]\n\nexample:\n  ip netns exec dut pktgen fwd -in i0 -out o0 -dst-mac 02:00:00:00:00:04 -cpu 1\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	mac, err := net.ParseMAC(*dstMAC)
	if err != nil || len(mac) != 6 {
		return fmt.Errorf("-dst-mac %q: want an Ethernet address", *dstMAC)
	}
	cfg.DstMAC = [6]byte(mac)
	if *backMAC != "" {
		mac, err := net.ParseMAC(*backMAC)
		if err != nil || len(mac) != 6 {
			return fmt.Errorf("-back-dst-mac %q: want an Ethernet address", *backMAC)
		}
		cfg.BackDstMAC = [6]byte(mac)
	}
	start := time.Now()
	c, err := l2fwd.Run(ctx, cfg)
	if err != nil && c == (l2fwd.Counters{}) {
		return err
	}
	dir := "->"
	if cfg.BackDstMAC != [6]byte{} {
		dir = "<->"
	}
	fmt.Printf("fwd %s %s %s: %d received, %d sent, %d dropped in %v\n", cfg.In, dir, cfg.Out, c.Rx, c.Tx, c.Dropped, time.Since(start).Round(time.Millisecond))
	return err
}

func parseRate(s string) (float64, error) {
	mul := 1.0
	switch {
	case strings.HasSuffix(s, "M"):
		mul, s = 1e6, s[:len(s)-1]
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mul, s = 1e3, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("-rate %q: want a non-negative number with optional k/M", s)
	}
	return v * mul, nil
}

func parseCPUs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 0 {
			return nil, fmt.Errorf("-cpus %q: want comma-separated CPU numbers", s)
		}
		out = append(out, c)
	}
	return out, nil
}
