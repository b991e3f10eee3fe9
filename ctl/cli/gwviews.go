package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"samepath/ctl/api"
)

// gwViewCmds are the gw views of T7 (dist) and T12 (lbcache); gw is the
// group's -gw flag.
func (a *app) gwViewCmds(gw *string) []*cobra.Command {
	var session, service, mobile string
	distLimit, lbLimit := 100, 100
	dist := &cobra.Command{Use: "dist [-gw URL|all] [-session ID] [-service NAME] [-limit N]", Aliases: []string{"t7"},
		Short: "T7 distribution records: per session and service the server chosen, its open flows, its age", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if distLimit < 0 {
				return usagef("gw dist: -limit must be >= 0")
			}
			return cx.gwShow(*gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				d, err := t.C.Dist(cx.c, distLimit, session, service)
				return d, distTable(d), err
			})
		})}
	dist.Flags().StringVar(&session, "session", "", "only the session's records (the control process's session id)")
	dist.Flags().StringVar(&service, "service", "", "only the service's records (T6 name)")
	dist.Flags().IntVar(&distLimit, "limit", distLimit, "show at most this many records per gateway")
	dist.RegisterFlagCompletionFunc("service", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return a.completeServices(*gw, "")
	})
	lbcache := &cobra.Command{Use: "lbcache [-gw URL|all] [-mobile A] [-limit N]", Aliases: []string{"t12"},
		Short: "T12 LB MAC cache: per mobile the LB its down packets leave through, learned by event or packet, and when", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if lbLimit < 0 {
				return usagef("gw lbcache: -limit must be >= 0")
			}
			return cx.gwShow(*gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				l, err := t.C.LBCache(cx.c, lbLimit, mobile)
				return l, lbCacheTable(l), err
			})
		})}
	lbcache.Flags().StringVar(&mobile, "mobile", "", "only the mobile's entry (its address)")
	lbcache.Flags().IntVar(&lbLimit, "limit", lbLimit, "show at most this many entries per gateway")
	return []*cobra.Command{dist, lbcache}
}

func distTable(d api.Dist) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SESSION\tSERVICE\tTYPE\tSERVER\tFLOWS\tAGE")
		for _, r := range d.Records {
			age := "-"
			if r.AgeSec >= 0 {
				age = (time.Duration(r.AgeSec) * time.Second).String()
			}
			server := r.Server
			if server == "" {
				server = fmt.Sprintf("(stale #%d)", r.ServerIdx)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", dash(r.Session), dash(r.Service), r.Type, server, r.Flows, age)
		}
		s := d.Stats
		fmt.Fprintf(w, "(%d of %d records; recorded %d, released %d, repicked %d, full %d, no server %d)\n",
			len(d.Records), d.Total, s.Recorded, s.Released, s.Repicks, s.Full, s.NoServer)
	}
}

func lbCacheTable(l api.LBCache) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "MOBILE\tLB MAC\tLEARNED\tAGE\tSESSION\tFLOWS")
		for _, e := range l.Entries {
			age := (time.Duration(e.AgeMs) * time.Millisecond).Round(time.Millisecond)
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", e.Mobile, e.LBMAC, e.Learned, age, dash(e.Session), e.Flows)
		}
		fmt.Fprintf(w, "(%d of %d entries; %d known mobiles not cached)\n", len(l.Entries), l.Total, l.Uncached)
	}
}

// serverStates are the administrative states gw server sets ("down" is
// taken too, as maint).
var serverStates = []string{"up", "drain", "maint"}

// gwWeightCmd is gw weight SERVICE ADDR N.
func (a *app) gwWeightCmd(gw *string) *cobra.Command {
	return &cobra.Command{Use: "weight [-gw URL|all] SERVICE IP:PORT N", Short: "set an actual server's weight (1..256)", Args: nargs(3),
		ValidArgsFunction: func(c *cobra.Command, args []string, tc string) ([]cobra.Completion, cobra.ShellCompDirective) {
			switch len(args) {
			case 0:
				return a.completeServices(*gw, "")
			case 1:
				return a.completeServices(*gw, args[0])
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: a.run(func(cx *ctx, args []string) error {
			n, err := strconv.Atoi(args[2])
			if err != nil || n < 1 || n > 256 {
				return usagef("gw weight: weight %q: want 1..256 (gw server ... drain takes a server out of new flows)", args[2])
			}
			targets, err := cx.gateways(*gw)
			if err != nil {
				return err
			}
			return eachGW(targets, func(t gwTarget) error { return t.C.SetServerWeight(cx.c, args[0], args[1], n) })
		})}
}
