package demo

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"samepath/perf/tcpsplit"
)

// splitSize is the demo's download through NAT and through the
// terminator: at NAT's ~4 Mbit/s over the window-limited path it takes
// about 15 s, through the terminator 2-3 s.
const splitSize = 8 << 20

// splitDemo downloads the same splitSize bytes over an emulated wireless
// link (linkem: 100 ms RTT, 50 Mbit/s, the server's TCP window capped at
// 64 KiB, case (a) of the tcp-split benchmark) through samepathd's
// port-key NAT and through its TCP terminator, and prints both goodputs
// side by side. It builds a small topology of its own (perf/tcpsplit),
// beside the FIG. 2 one.
func splitDemo(ctx context.Context, o Options) (*tcpsplit.Result, error) {
	c := tcpsplit.Cases()[0]
	fmt.Fprintf(o.Out, "== TCP termination: %d bytes from a server over an emulated wireless link, through NAT and through the terminator\n   %s\n", splitSize, c.Title)
	cfg := tcpsplit.DefaultConfig(o.Samepathd)
	cfg.Size, cfg.Reps, cfg.Cases, cfg.Go, cfg.NoPin, cfg.Timeout = splitSize, 1, []tcpsplit.Case{c}, "", true, 2*time.Minute
	cfg.Out = io.Discard
	res, err := tcpsplit.Run(ctx, cfg)
	if err != nil {
		return res, fmt.Errorf("tcp split demo: %w", err)
	}
	return res, printSplit(o.Out, res)
}

func printSplit(w io.Writer, res *tcpsplit.Result) error {
	got := map[string]tcpsplit.Sample{}
	for _, s := range res.Samples {
		if s.Err != "" {
			return fmt.Errorf("tcp split demo: %s: %s", s.Variant, s.Err)
		}
		got[s.Variant] = s
	}
	nat, term := got[tcpsplit.NAT], got[tcpsplit.Term]
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "   \tport-key NAT (end-to-end TCP)\tterminator (wireless | wired profiles)\n")
	fmt.Fprintf(tw, "   bytes\t%d\t%d\n", nat.Bytes, term.Bytes)
	fmt.Fprintf(tw, "   time\t%.2f s\t%.2f s\n", nat.Seconds, term.Seconds)
	fmt.Fprintf(tw, "   goodput\t%.2f Mbit/s\t%.2f Mbit/s\n", nat.Mbps, term.Mbps)
	tw.Flush()
	if nat.Mbps > 0 {
		fmt.Fprintf(w, "   the terminator is %.1fx NAT: the server's 64 KiB window covers only the short wired leg, the gateway's wireless profile fills the 100 ms one\n", term.Mbps/nat.Mbps)
	}
	return nil
}
