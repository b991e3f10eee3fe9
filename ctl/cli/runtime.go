package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"samepath/ctl/api"
)

const runtimeLong = `Per poll-mode worker of a samepathd, as vppctl's show runtime: poll rounds
(busy: found or made a frame; idle: found nothing), batches (a port's frames of
one round), vectors (packets received) per batch, busy time per packet, the
idle share of rounds and of time, and the idle waits. Figures are since the
worker started or, with -interval D, over D (read twice, the difference shown).`

// daemonRuntimeCmd is daemon runtime (any samepathd, -daemon u); gwRuntimeCmd
// gw runtime (-gw).
func (a *app) daemonRuntimeCmd(u *string) *cobra.Command {
	var interval time.Duration
	c := &cobra.Command{Use: "runtime -daemon URL [-interval D]", Short: "per-worker rounds, vectors per batch, ns per packet, idle share (vppctl show runtime)",
		Long: runtimeLong, Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if *u == "" {
				return usagef("-daemon URL is required")
			}
			if interval < 0 {
				return usagef("-interval must be >= 0")
			}
			r, err := readRuntime(cx, cx.daemon(*u), interval)
			if err != nil {
				return err
			}
			return cx.emit(r, runtimeTable(r))
		})}
	c.Flags().DurationVar(&interval, "interval", 0, "show the figures over this interval instead of since the start")
	return c
}

func (a *app) gwRuntimeCmd(gw *string) *cobra.Command {
	var interval time.Duration
	c := &cobra.Command{Use: "runtime [-gw URL|all] [-interval D]", Short: "per-worker rounds, vectors per batch, ns per packet, idle share (vppctl show runtime)",
		Long: runtimeLong, Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if interval < 0 {
				return usagef("-interval must be >= 0")
			}
			return cx.gwShow(*gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				r, err := readRuntime(cx, t.C, interval)
				return r, runtimeTable(r), err
			})
		})}
	c.Flags().DurationVar(&interval, "interval", 0, "show the figures over this interval instead of since the start")
	return c
}

// readRuntime reads c's figures, or their change over interval.
func readRuntime(cx *ctx, c *api.Client, interval time.Duration) (api.Runtime, error) {
	r, err := c.Runtime(cx.c)
	if err != nil || interval == 0 {
		return r, err
	}
	select {
	case <-time.After(interval):
	case <-cx.c.Done():
		return r, fmt.Errorf("-interval %v: %w (see -timeout)", interval, cx.c.Err())
	}
	r2, err := c.Runtime(cx.c)
	if err != nil {
		return r2, err
	}
	prev := map[int]api.WorkerRuntime{}
	for _, w := range r.Workers {
		prev[w.Worker] = w
	}
	for i, w := range r2.Workers {
		r2.Workers[i] = w.Delta(prev[w.Worker])
	}
	return r2, nil
}

func runtimeTable(r api.Runtime) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "WORKER\tCPU\tPORTS\tROUNDS\tBUSY\tIDLE\tBATCHES\tVECTORS\tVEC/BATCH\tNS/PKT\tIDLE ROUNDS\tIDLE TIME\tWAITS\tTIME")
		for _, x := range r.Workers {
			cpu := "-"
			if x.CPU >= 0 {
				cpu = fmt.Sprint(x.CPU)
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.0f\t%.1f%%\t%.1f%%\t%d\t%s\n", x.Worker, cpu, strings.Join(x.Ports, ","),
				x.Rounds, x.BusyRounds, x.IdleRounds, x.Batches, x.Vectors, x.VectorsPerBatch, x.NsPerPacket,
				100*x.IdleRoundShare, 100*x.IdleTimeShare, x.Waits, time.Duration(x.UptimeNs).Round(time.Millisecond))
		}
		if len(r.Workers) == 0 {
			fmt.Fprintln(w, "(no workers: steering xdp forwards in the kernel)")
		}
	}
}
