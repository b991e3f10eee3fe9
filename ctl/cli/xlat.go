package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"samepath/ctl/api"
)

// The gateway's IPv4/IPv6 translation config (R-TCP-3) at run time:
// gw xlat shows it with the packets per outcome, gw set-xlat changes it
// (GET/PUT /v1/xlat on samepathd role gw).

const xlatLong = `gw xlat shows a gateway's IPv4/IPv6 translation config (RFC 6052 prefix pool6,
the EAM table of RFC 7757, the RFC 6791 pools, the translator's own addresses,
the MTUs) and the packets per translation outcome since it started.

gw set-xlat changes the flags given and keeps the rest; the gateway applies the
change to the next packet, or refuses it whole naming the bad key. A prefix of
none removes it; -eam replaces the whole EAM table (repeat it for several
entries, -no-eam empties it).`

const xlatExample = `  samepathctl gw xlat -gw http://10.99.0.31:7700
  samepathctl gw set-xlat -gw all -pool6 2001:db8:64::/96
  samepathctl gw set-xlat -eam 192.0.2.0/24=2001:db8:e::/120 -eam 198.51.100.7/32=2001:db8:f::7/128
  samepathctl gw set-xlat -rfc6791v4 192.0.2.250/32 -lowest-ipv6-mtu 1400`

// xlatCmds are gw's translation subcommands; gw is gwCmd's -gw.
func (a *app) xlatCmds(gw *string) []*cobra.Command {
	show := &cobra.Command{Use: "xlat [-gw URL|all]", Short: "IPv4/IPv6 translation config and packets per outcome", Long: xlatLong, Example: xlatExample, Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			return cx.gwShow(*gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				x, err := t.C.Xlat(cx.c)
				return x, xlatTable(x), err
			})
		})}
	var pool6, v4, v6 string
	var eams []string
	var noEAM bool
	var mtu4, mtu6, lowest int
	var set *cobra.Command
	set = &cobra.Command{Use: "set-xlat [-gw URL|all] [-pool6 P] [-eam V4=V6]... [-no-eam] [-rfc6791v4 P] [-rfc6791v6 P] [-ipv4-mtu N] [-ipv6-mtu N] [-lowest-ipv6-mtu N]",
		Short: "change the IPv4/IPv6 translation config", Long: xlatLong, Example: xlatExample, Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			var ch api.XlatChange
			fl := set.Flags()
			prefix := func(name string, v string) *string {
				if !fl.Changed(name) {
					return nil
				}
				if v == "none" {
					v = ""
				}
				return &v
			}
			ch.Pool6, ch.RFC6791v4, ch.RFC6791v6 = prefix("pool6", pool6), prefix("rfc6791v4", v4), prefix("rfc6791v6", v6)
			if fl.Changed("eam") && noEAM {
				return usagef("gw set-xlat: -eam and -no-eam exclude each other")
			}
			if fl.Changed("eam") || noEAM {
				tab := []api.XlatEAM{}
				for _, e := range eams {
					v4, v6, ok := strings.Cut(e, "=")
					if !ok || v4 == "" || v6 == "" {
						return usagef("gw set-xlat: -eam %q: want IPV4PREFIX=IPV6PREFIX", e)
					}
					tab = append(tab, api.XlatEAM{IPv4: v4, IPv6: v6})
				}
				ch.EAM = &tab
			}
			num := func(name string, v int) *int {
				if !fl.Changed(name) {
					return nil
				}
				return &v
			}
			ch.IPv4MTU, ch.IPv6MTU, ch.LowestIPv6MTU = num("ipv4-mtu", mtu4), num("ipv6-mtu", mtu6), num("lowest-ipv6-mtu", lowest)
			if ch == (api.XlatChange{}) {
				return usagef("gw set-xlat: nothing to change (give -pool6, -eam, -no-eam, -rfc6791v4, -rfc6791v6, -ipv4-mtu, -ipv6-mtu or -lowest-ipv6-mtu)")
			}
			targets, err := cx.gateways(*gw)
			if err != nil {
				return err
			}
			return eachGW(targets, func(t gwTarget) error {
				_, err := t.C.SetXlat(cx.c, ch)
				return err
			})
		})}
	f := set.Flags()
	f.StringVar(&pool6, "pool6", "", "RFC 6052 prefix (/32, /40, /48, /56, /64 or /96), or none")
	f.StringArrayVar(&eams, "eam", nil, "an EAM entry IPV4PREFIX=IPV6PREFIX (repeat; replaces the table)")
	f.BoolVar(&noEAM, "no-eam", false, "empty the EAM table")
	f.StringVar(&v4, "rfc6791v4", "", "RFC 6791 IPv4 pool for untranslatable ICMPv6 error sources, or none (the translator's own address)")
	f.StringVar(&v6, "rfc6791v6", "", "RFC 6791 IPv6 pool for untranslatable ICMPv4 error sources, or none")
	f.IntVar(&mtu4, "ipv4-mtu", 0, "MTU of the IPv4 side")
	f.IntVar(&mtu6, "ipv6-mtu", 0, "MTU of the IPv6 side")
	f.IntVar(&lowest, "lowest-ipv6-mtu", 0, "largest IPv6 packet made from a DF-clear IPv4 packet before fragmenting (>= 1280)")
	return []*cobra.Command{show, set}
}

// xlatTable prints the config, then every outcome's count.
func xlatTable(x api.Xlat) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		c := x.Config
		fmt.Fprintf(w, "pool6\t%s\n", dash(c.Pool6))
		if len(c.EAM) == 0 {
			fmt.Fprintln(w, "eam\t-")
		}
		for _, e := range c.EAM {
			fmt.Fprintf(w, "eam\t%s = %s\n", e.IPv4, e.IPv6)
		}
		fmt.Fprintf(w, "rfc6791v4\t%s\n", dash(c.RFC6791v4))
		fmt.Fprintf(w, "rfc6791v6\t%s\n", dash(c.RFC6791v6))
		fmt.Fprintf(w, "ipv4_address\t%s\n", dash(c.IPv4Address))
		fmt.Fprintf(w, "ipv6_address\t%s\n", dash(c.IPv6Address))
		fmt.Fprintf(w, "ipv4_mtu\t%d\n", c.IPv4MTU)
		fmt.Fprintf(w, "ipv6_mtu\t%d\n", c.IPv6MTU)
		fmt.Fprintf(w, "lowest_ipv6_mtu\t%d\n", c.LowestIPv6MTU)
		kvTable(w, "outcome", x.Outcomes)
	}
}
