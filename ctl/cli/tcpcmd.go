package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"samepath/ctl/api"
)

// tcpCmds are the gateway terminator's commands (R-TCP-2): its TCP
// profiles, each side's, and its counters. They share gw's -gw flag.
func (a *app) tcpCmds(gw *string) []*cobra.Command {
	profiles := &cobra.Command{Use: "tcp-profiles [-gw URL|all]", Short: "the TCP terminator's profiles and the one each side (mobile, server) uses", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			return cx.gwShow(*gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				p, err := t.C.TCPProfiles(cx.c)
				return p, tcpProfilesTable(p), err
			})
		})}
	var from string
	set := &cobra.Command{Use: "tcp-profile [-gw URL|all] [-from BASE] NAME KEY=VALUE...",
		Short: "change a TCP profile's keys (or make NAME from BASE); a side using it applies it to its new connections",
		Long: "Changes the keys given of profile NAME, the others kept, on each gateway of -gw; with -from, NAME is made\n" +
			"(or replaced) from BASE's keys. A side that uses NAME applies it to the connections it accepts or makes\n" +
			"afterwards; established ones keep what they negotiated (see tcpproxy.Profile). Keys:\n  " +
			strings.Join(api.TCPProfileKeys, ", "),
		Example: "  samepathctl gw tcp-profile wireless mss=1360 min_rto=250ms\n  samepathctl gw tcp-profile -from wireless lossy congestion=reno",
		Args:    cobra.ArbitraryArgs,
		RunE: a.run(func(cx *ctx, args []string) error {
			if len(args) < 2 {
				return usagef("usage: samepathctl gw tcp-profile [-gw URL|all] [-from BASE] NAME KEY=VALUE...")
			}
			name := args[0]
			var kvs [][2]string
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("gw tcp-profile: %q: want KEY=VALUE", kv)
				}
				kvs = append(kvs, [2]string{k, v})
			}
			// Check the keys and values before any gateway is changed.
			var probe api.TCPProfile
			probe.Name = name
			for _, kv := range kvs {
				if err := probe.Set(kv[0], kv[1]); err != nil {
					return usageError{err.Error()}
				}
			}
			targets, err := cx.gateways(*gw)
			if err != nil {
				return err
			}
			return eachGW(targets, func(t gwTarget) error {
				ps, err := t.C.TCPProfiles(cx.c)
				if err != nil {
					return err
				}
				base := name
				if from != "" {
					base = from
				}
				var p *api.TCPProfile
				for i := range ps.Profiles {
					if ps.Profiles[i].Name == base {
						p = &ps.Profiles[i]
					}
				}
				if p == nil {
					return fmt.Errorf("no tcp profile %q (have %s)", base, profileNames(ps))
				}
				p.Name = name
				for _, kv := range kvs {
					if err := p.Set(kv[0], kv[1]); err != nil {
						return err
					}
				}
				return t.C.PutTCPProfile(cx.c, *p)
			})
		})}
	set.Flags().StringVar(&from, "from", "", "make NAME from this profile's keys")
	side := &cobra.Command{Use: "tcp-side [-gw URL|all] mobile|server PROFILE", Short: "make a terminator side use a TCP profile for its new connections", Args: nargs(2),
		ValidArgsFunction: func(c *cobra.Command, args []string, tc string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []cobra.Completion{api.SideMobile, api.SideServer}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: a.run(func(cx *ctx, args []string) error {
			if args[0] != api.SideMobile && args[0] != api.SideServer {
				return usagef("gw tcp-side: side %q: want mobile or server", args[0])
			}
			targets, err := cx.gateways(*gw)
			if err != nil {
				return err
			}
			return eachGW(targets, func(t gwTarget) error { return t.C.SetTCPSide(cx.c, args[0], args[1]) })
		})}
	counters := &cobra.Command{Use: "tcp-counters [-gw URL|all]", Short: "the TCP terminator's counters: connections, refusals, drops, spliced bytes", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			return cx.gwShow(*gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				c, err := t.C.TCPCounters(cx.c)
				return c, tcpCountersTable(c), err
			})
		})}
	return []*cobra.Command{profiles, set, side, counters}
}

func profileNames(ps api.TCPProfiles) string {
	var n []string
	for _, p := range ps.Profiles {
		n = append(n, p.Name)
	}
	return strings.Join(n, ", ")
}

func tcpProfilesTable(ps api.TCPProfiles) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "PROFILE\tSIDES\tMSS\tRECV BUF\tSEND BUF\tMODERATE\tCC\tSACK\tRACK\tNAGLE\tKEEPALIVE\tRTO\tRETRIES")
		for _, p := range ps.Profiles {
			ka := "off"
			if p.Keepalive {
				ka = fmt.Sprintf("%s/%s x%d", p.KeepaliveIdle, p.KeepaliveInterval, p.KeepaliveCount)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d/%d/%d\t%d/%d/%d\t%v\t%s\t%v\t%v\t%v\t%s\t%s-%s\t%d\n", p.Name, dash(strings.Join(p.Sides, ",")), p.MSS,
				p.RecvBufMin, p.RecvBufDefault, p.RecvBufMax, p.SendBufMin, p.SendBufDefault, p.SendBufMax, p.ModerateRecvBuf,
				p.Congestion, p.SACK, p.RACK, p.Nagle, ka, p.MinRTO, p.MaxRTO, p.MaxRetries)
		}
	}
}

func tcpCountersTable(c api.TCPCounters) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "active connections\t%d\n", c.Active)
		fmt.Fprintf(w, "bytes mobile rx/tx\t%d/%d\n", c.Bytes.MobileRx, c.Bytes.MobileTx)
		fmt.Fprintf(w, "bytes server rx/tx\t%d/%d\n", c.Bytes.ServerRx, c.Bytes.ServerTx)
		for _, sec := range []struct {
			name string
			m    map[string]uint64
		}{{"conns", c.Conns}, {"link mobile", c.Link[api.SideMobile]}, {"link server", c.Link[api.SideServer]},
			{"stack mobile", c.Stack[api.SideMobile]}, {"stack server", c.Stack[api.SideServer]}} {
			keys := make([]string, 0, len(sec.m))
			for k := range sec.m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "%s %s\t%d\n", sec.name, k, sec.m[k])
			}
		}
	}
}
