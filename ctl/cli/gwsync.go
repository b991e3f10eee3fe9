package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"samepath/ctl/api"
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
