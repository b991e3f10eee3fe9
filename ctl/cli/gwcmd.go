package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
)

const gwLong = `Tables on the packet gateways (samepathd role gw), through their control API:
  gw services                       T6 balancing policy with T11 session type and T9 service type,
                                    per server: state, health, RTT, CPU load, active flows
  gw set-services -file F           replace the service table with a JSON file ({"services":[...]},
                                    the format of gw services -o json)
  gw policy SERVICE POLICY          set a service's policy: rr, wrr, lc, fastest or cpu
  gw server SERVICE ADDR up|drain|maint
                                    set an actual server's administrative state, apart from its health:
                                    drain takes no new flows and lets its flows finish, maint (or down)
                                    takes none and ends its flows (HAProxy's ready, drain, maint)
  gw weight SERVICE ADDR N          set an actual server's weight (1..256) for wrr and lc
  gw sessions                       the gateway's T3 copy
  gw flows [-limit N] [-mobile A] [-session ID] [-service S] [-server A]
                                    port-key NAT records (T5), N at most (default 100)
  gw authz                          T9 and T8 as the gateway holds them, refusals per service type
  gw xlat                           IPv4/IPv6 translation config (pool6, EAM, RFC 6791 pools, MTUs)
                                    and packets per translation outcome
  gw set-xlat [-pool6 P] [-eam V4=V6]... [-no-eam] [-rfc6791v4 P] [-rfc6791v6 P] [-ipv4-mtu N]
            [-ipv6-mtu N] [-lowest-ipv6-mtu N]
                                    change the translation config at run time
  gw dist [-session ID] [-service S] [-limit N]
                                    T7 distribution records: server chosen per session and service
  gw lbcache [-mobile A] [-limit N] T12 LB MAC cache: per mobile its LB, learned by event or packet, age
  gw runtime [-interval D]          per worker: rounds, vectors per batch, ns per packet, idle share
  gw tcp-profiles                   the TCP terminator's profiles (R-TCP-2) and each side's
  gw tcp-profile [-from B] NAME K=V...
                                    change a profile's keys (or make NAME from B); the sides using it
                                    apply it to their new connections
  gw tcp-side mobile|server NAME    make a terminator side use a profile for its new connections
  gw tcp-counters                   the terminator's connections, refusals, drops and spliced bytes

-gw is a gateway's control API URL, or all (the default): every gateway of the
control process's T1 that has an API. Changes with all go to every gateway.
Server states and weights set here last until the gateway restarts: it starts
from its configuration file's services, so write a lasting change there too.`

const gwExample = `  samepathctl gw services -gw http://10.99.0.31:7700
  samepathctl gw policy -gw all web-a lc
  samepathctl gw server web-a 10.20.0.11:80 drain
  samepathctl gw weight web-a 10.20.0.12:80 3
  samepathctl -o json gw flows -limit 10`

// gwTarget is one gateway a gw subcommand talks to.
type gwTarget struct {
	Name string
	C    *api.Client
}

// gwResult is one gateway's answer in JSON output for several gateways.
type gwResult struct {
	Gateway string `json:"gateway"`
	URL     string `json:"url"`
	Value   any    `json:"value"`
}

// policies are the balancing policies a service takes.
var policies = []string{"rr", "wrr", "lc", "fastest", "cpu"}

// gwCmd is the gateway table commands (R-CTL-1 for T3 copies, T5, T6,
// T9, T11 and server states).
func (a *app) gwCmd() *cobra.Command {
	var gw, file string
	limit := 100
	gwc := &cobra.Command{Use: "gw", Short: "gateway tables (T6/T11/T9, T3 copy, T5) on samepathd role gw", Long: gwLong, Example: gwExample}
	gwc.PersistentFlags().StringVar(&gw, "gw", "all", "gateway control API URL, or all for every gateway of the control process")
	gwc.RegisterFlagCompletionFunc("gw", a.completeGWAPIs)
	services := &cobra.Command{Use: "services [-gw URL|all]", Short: "T6 with T11 and T9, per server state, health, RTT, CPU, active flows", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			return cx.gwShow(gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				s, err := t.C.Services(cx.c)
				return s, servicesTable(s), err
			})
		})}
	setServices := &cobra.Command{Use: "set-services [-gw URL|all] -file F", Short: "replace the service table from a JSON file", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if file == "" {
				return usagef("gw set-services needs -file")
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var svcs api.Services
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&svcs); err != nil {
				return fmt.Errorf("parse %s: %w", file, err)
			}
			targets, err := cx.gateways(gw)
			if err != nil {
				return err
			}
			return eachGW(targets, func(t gwTarget) error { return t.C.SetServices(cx.c, svcs) })
		})}
	setServices.Flags().StringVar(&file, "file", "", "JSON file with the whole service table")
	policy := &cobra.Command{Use: "policy [-gw URL|all] SERVICE rr|wrr|lc|fastest|cpu", Short: "set a service's balancing policy", Args: nargs(2),
		ValidArgsFunction: func(c *cobra.Command, args []string, tc string) ([]cobra.Completion, cobra.ShellCompDirective) {
			switch len(args) {
			case 0:
				return a.completeServices(gw, "")
			case 1:
				return policies, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: a.run(func(cx *ctx, args []string) error {
			targets, err := cx.gateways(gw)
			if err != nil {
				return err
			}
			return eachGW(targets, func(t gwTarget) error { return t.C.SetPolicy(cx.c, args[0], args[1]) })
		})}
	server := &cobra.Command{Use: "server [-gw URL|all] SERVICE IP:PORT up|drain|maint", Short: "set an actual server's administrative state (drain: no new flows; maint: no traffic)", Args: nargs(3),
		ValidArgsFunction: func(c *cobra.Command, args []string, tc string) ([]cobra.Completion, cobra.ShellCompDirective) {
			switch len(args) {
			case 0:
				return a.completeServices(gw, "")
			case 1:
				return a.completeServices(gw, args[0])
			case 2:
				return serverStates, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: a.run(func(cx *ctx, args []string) error {
			if !slices.Contains(serverStates, args[2]) && args[2] != api.StateDown {
				return usagef("gw server: state %q: want up, drain or maint", args[2])
			}
			targets, err := cx.gateways(gw)
			if err != nil {
				return err
			}
			return eachGW(targets, func(t gwTarget) error { return t.C.SetServerState(cx.c, args[0], args[1], args[2]) })
		})}
	sessions := &cobra.Command{Use: "sessions [-gw URL|all]", Short: "the gateway's T3 copy", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			return cx.gwShow(gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				s, err := t.C.GWSessions(cx.c)
				return s, gwSessionsTable(s), err
			})
		})}
	var ff api.FlowFilter
	flows := &cobra.Command{Use: "flows [-gw URL|all] [-limit N] [-mobile A] [-session ID] [-service NAME] [-server A]", Short: "port-key NAT records (T5), filtered by mobile, session, service or server", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if limit < 0 {
				return usagef("gw flows: -limit must be >= 0")
			}
			return cx.gwShow(gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				f, err := t.C.FlowsMatching(cx.c, limit, ff)
				return f, flowsTable(f), err
			})
		})}
	flows.Flags().IntVar(&limit, "limit", limit, "show at most this many records per gateway")
	flows.Flags().StringVar(&ff.Mobile, "mobile", "", "only the mobile's records: an address, or address:port")
	flows.Flags().StringVar(&ff.Session, "session", "", "only the session's records (the control process's session id)")
	flows.Flags().StringVar(&ff.Service, "service", "", "only the service's records (T6 name)")
	flows.Flags().StringVar(&ff.Server, "server", "", "only records toward this actual server: an address, or address:port")
	authz := &cobra.Command{Use: "authz [-gw URL|all]", Short: "T9 and T8 as the gateway holds them, refusals per service type", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			return cx.gwShow(gw, func(t gwTarget) (any, func(*tabwriter.Writer), error) {
				v, err := t.C.Authz(cx.c)
				return v, authzTable(v, true), err
			})
		})}
	return a.group(gwc, nil, append(append(append([]*cobra.Command{services, setServices, policy, server, a.gwWeightCmd(&gw), sessions, flows, authz}, a.xlatCmds(&gw)...), append(a.gwViewCmds(&gw), a.gwRuntimeCmd(&gw))...), append(a.tcpCmds(&gw), a.gwSyncCmd(&gw))...)...)
}

// gwShow prints one answer per gateway of -gw: alone as it is, several
// as sections (table) or as a list of gwResult (JSON).
func (cx *ctx) gwShow(gw string, get func(gwTarget) (any, func(*tabwriter.Writer), error)) error {
	targets, err := cx.gateways(gw)
	if err != nil {
		return err
	}
	vals := make([]any, len(targets))
	tables := make([]func(*tabwriter.Writer), len(targets))
	for i, t := range targets {
		if vals[i], tables[i], err = get(t); err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	if len(targets) == 1 {
		return cx.emit(vals[0], tables[0])
	}
	if cx.json {
		out := make([]gwResult, len(targets))
		for i, t := range targets {
			out[i] = gwResult{Gateway: t.Name, URL: t.C.Base, Value: vals[i]}
		}
		return cx.emit(out, nil)
	}
	for i, t := range targets {
		if i > 0 {
			fmt.Fprintln(cx.out)
		}
		fmt.Fprintf(cx.out, "# %s %s\n", t.Name, t.C.Base)
		if err := cx.emit(vals[i], tables[i]); err != nil {
			return err
		}
	}
	return nil
}

// gateways resolves -gw: a URL, or all for every gateway of T1 with an API.
func (cx *ctx) gateways(gw string) ([]gwTarget, error) {
	if gw == "" {
		return nil, usagef("-gw URL (or all) is required")
	}
	if gw != "all" {
		return []gwTarget{{Name: gw, C: cx.daemon(gw)}}, nil
	}
	var gs []aaa.Gateway
	if err := cx.get("/v1/gateways", &gs); err != nil {
		return nil, fmt.Errorf("-gw all: list the control process's gateways: %w", err)
	}
	var out []gwTarget
	for _, g := range gs {
		if g.API != "" {
			out = append(out, gwTarget{Name: g.Name, C: cx.daemon(g.API)})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-gw all: the control process knows no gateway with a control API")
	}
	return out, nil
}

func eachGW(ts []gwTarget, f func(gwTarget) error) error {
	var errs []error
	for _, t := range ts {
		if err := f(t); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}

// servicesTable prints T6 with T11 and T9: one line per actual server, the
// service's columns on its first server only.
func servicesTable(s api.Services) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SERVICE\tREP\tPROTO\tTYPE\tPOLICY\tMODE\tSVC TYPE\tSERVER\tWEIGHT\tSTATE\tHEALTH\tRTT\tCPU\tACTIVE")
		for _, sv := range s.Services {
			mode := sv.Mode
			if mode == "" {
				mode = "nat"
			}
			head := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", sv.Name, sv.Rep, sv.Proto, sv.Type, sv.Policy, mode, dash(sv.ServiceType))
			blank := "\t\t\t\t\t\t"
			if len(sv.Servers) == 0 {
				fmt.Fprintf(w, "%s\t-\t-\t-\t-\t-\t-\t-\n", head)
			}
			for i, sr := range sv.Servers {
				h := "?"
				if sr.Healthy != nil {
					h = map[bool]string{true: "healthy", false: "failing"}[*sr.Healthy]
				}
				rtt, cpu := "-", "-"
				if sr.RTTMicros > 0 {
					rtt = fmt.Sprintf("%.2fms", float64(sr.RTTMicros)/1000)
				}
				if sr.CPU > 0 {
					cpu = fmt.Sprintf("%.0f%%", sr.CPU)
				}
				weight := "-"
				if sr.Weight > 0 {
					weight = fmt.Sprint(sr.Weight)
				}
				lead := head
				if i > 0 {
					lead = blank
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", lead, sr.Addr, weight, dash(sr.State), h, rtt, cpu, sr.Active)
			}
		}
		riskTable(w, s)
	}
}

func gwSessionsTable(s api.GWSessions) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SESSION\tUSER\tDEVICE\tIP\tSTATE\tSEQ")
		for _, r := range s.Sessions {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", r.SessionID, dash(r.UserID), dash(r.DeviceID), r.IP, r.State, r.Seq)
		}
	}
}

func flowsTable(f api.Flows) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "PROTO\tMOBILE\tDEST\tGATEWAY\tSERVER\tSERVICE\tSTATE\tSESSION\tAGE\tIDLE\tUP PKTS\tUP BYTES\tDOWN PKTS\tDOWN BYTES")
		for _, r := range f.Flows {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%ds\t%ds\t%d\t%d\t%d\t%d\n", r.Proto, r.Mobile, r.Dest, r.Gateway, r.Server,
				dash(r.Service), dash(r.State), dash(r.Session), r.AgeSec, r.IdleSec, r.UpPackets, r.UpBytes, r.DownPackets, r.DownBytes)
		}
		fmt.Fprintf(w, "(%d of %d records)\n", len(f.Flows), f.Total)
	}
}
