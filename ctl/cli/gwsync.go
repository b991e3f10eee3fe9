package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"samepath/ctl/api"
	"samepath/ctl/health"
)

// gwSyncCmd is `samepathctl gw sync`: each gateway's state sync with its
// peers (R-GW-9): lag, bindings held for others, takeovers, failbacks.
func (a *app) gwSyncCmd(gw *string) *cobra.Command {
	return &cobra.Command{Use: "sync [-gw URL|all]", Short: "T5 state sync with peer gateways: lag, records held for others, takeovers, failbacks", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			return cx.gwShow(*gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				s, err := t.C.GWSync(cx.c)
				return s, gwSyncTable(s), err
			})
		})}
}

func gwSyncTable(s api.GWSync) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "ready %v\theld for peers %d\tinstalled %d\tconflicts %d\tsent %d\treceived %d\tdropped %d\ttakeovers %d\tfailbacks %d\n",
			s.Ready, s.Held, s.Installed, s.Conflicts, s.Sent, s.Received, s.Dropped, s.Takeovers, s.Failbacks)
		fmt.Fprintln(w, "PEER\tCONNECTED\tREADY\tSTATE RECEIVED\tADDRESSES HERE\tLAG\tSENT\tRECEIVED")
		for _, p := range s.Peers {
			fmt.Fprintf(w, "%s\t%v\t%v\t%v\t%v\t%v\t%d\t%d\n", p.Name, p.Connected, p.Ready, p.Dumped, p.TakenOver,
				time.Duration(p.LagNS).Round(time.Microsecond), p.Sent, p.Received)
		}
	}
}

// syncWord is a health target's state sync in one word: "ready",
// "syncing" (a returning gateway kept down until its peers' state
// arrived), "-" without gw.sync.
func syncWord(s health.Status) string {
	switch {
	case s.Sync == nil && s.SyncError != "":
		return "?"
	case s.Sync == nil:
		return "-"
	case s.Sync.Ready:
		return "ready"
	}
	return "syncing"
}

// healthSyncTable is `health`'s state sync section: per gateway with
// gw.sync, what the health monitor last read from it (issue 17): the
// bindings it holds for peers, its takeovers and failbacks, and per
// peer its stream, lag and whether this gateway holds its addresses.
func healthSyncTable(w *tabwriter.Writer, ts []health.Status) {
	head := false
	for _, s := range ts {
		if s.Sync == nil {
			continue
		}
		if !head {
			fmt.Fprintln(w, "\nGATEWAY\tSYNC\tHELD FOR PEERS\tTAKEOVERS\tFAILBACKS\tPEER\tCONNECTED\tPEER READY\tLAG\tADDRESSES HERE\tREAD ERROR")
			head = true
		}
		y := s.Sync
		row := fmt.Sprintf("%s\t%s\t%d\t%d\t%d", s.Name, syncWord(s), y.Held, y.Takeovers, y.Failbacks)
		if len(y.Peers) == 0 {
			fmt.Fprintf(w, "%s\t-\t-\t-\t-\t-\t%s\n", row, dash(s.SyncError))
		}
		for _, p := range y.Peers {
			fmt.Fprintf(w, "%s\t%s\t%v\t%v\t%v\t%v\t%s\n", row, p.Name, p.Connected, p.Ready,
				time.Duration(p.LagNS).Round(time.Microsecond), p.TakenOver, dash(s.SyncError))
		}
	}
}
