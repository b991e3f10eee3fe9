package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
)

const gwUsage = `usage: samepathctl gw SUBCOMMAND [-gw URL|all] ...   (each answers -h)

Tables on the packet gateways (samepathd role gw), through their control API:
  gw services                       T6 balancing policy with T11 session type and T9 service type,
                                    per server: state, health, RTT, CPU load, active flows
  gw set-services -file F           replace the service table with a JSON file ({"services":[...]},
                                    the format of gw services -o json)
  gw policy SERVICE POLICY          set a service's policy: rr, wrr, lc, fastest or cpu
  gw server SERVICE ADDR up|down    set an actual server's administrative state
  gw sessions                       the gateway's T3 copy
  gw flows [-limit N]               port-key NAT records (T5), N at most (default 100)
  gw authz                          T9 and T8 as the gateway holds them, refusals per service type

-gw is a gateway's control API URL, or all (the default): every gateway of the
control process's T1 that has an API. Changes with all go to every gateway.

Examples:
  samepathctl gw services -gw http://10.99.0.31:7700
  samepathctl gw policy -gw all web-a lc
  samepathctl gw server web-a 10.20.0.11:80 down
  samepathctl -o json gw flows -limit 10
`

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

// cmdGW runs the gateway table commands (R-CTL-1 for T3 copies, T5, T6,
// T9, T11 and server states).
func cmdGW(cx *ctx, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, gwUsage)
		if len(args) == 0 {
			return usagef("gw: want a subcommand")
		}
		return flag.ErrHelp
	}
	if args[0] == "authz" {
		return cmdGWAuthz(cx, args[1:])
	}
	name, rest := args[0], args[1:]
	var gw, file string
	limit := 100
	var help string
	var nargs int
	switch name {
	case "services":
		help = "gw services [-gw URL|all]"
	case "set-services":
		help = "gw set-services [-gw URL|all] -file F"
	case "policy":
		help, nargs = "gw policy [-gw URL|all] SERVICE rr|wrr|lc|fastest|cpu", 2
	case "server":
		help, nargs = "gw server [-gw URL|all] SERVICE IP:PORT up|down", 3
	case "sessions":
		help = "gw sessions [-gw URL|all]"
	case "flows":
		help = "gw flows [-gw URL|all] [-limit N]"
	default:
		fmt.Fprint(os.Stderr, gwUsage)
		return usagef("gw: unknown subcommand %q", name)
	}
	pos, err := subInterleaved("gw "+name, help, rest, func(fs *flag.FlagSet) {
		fs.StringVar(&gw, "gw", "all", "gateway control API URL, or all for every gateway of the control process")
		switch name {
		case "set-services":
			fs.StringVar(&file, "file", "", "JSON file with the whole service table")
		case "flows":
			fs.IntVar(&limit, "limit", limit, "show at most this many records per gateway")
		}
	})
	if err != nil {
		return err
	}
	if len(pos) != nargs {
		return usagef("usage: samepathctl %s", help)
	}
	if name == "flows" && limit < 0 {
		return usagef("gw flows: -limit must be >= 0")
	}
	var svcs api.Services
	switch name {
	case "set-services":
		if file == "" {
			return usagef("gw set-services needs -file")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&svcs); err != nil {
			return fmt.Errorf("parse %s: %w", file, err)
		}
	case "server":
		if pos[2] != api.StateUp && pos[2] != api.StateDown {
			return usagef("gw server: state %q: want up or down", pos[2])
		}
	}
	targets, err := cx.gateways(gw)
	if err != nil {
		return err
	}
	switch name {
	case "set-services":
		return eachGW(targets, func(t gwTarget) error { return t.C.SetServices(cx.c, svcs) })
	case "policy":
		return eachGW(targets, func(t gwTarget) error { return t.C.SetPolicy(cx.c, pos[0], pos[1]) })
	case "server":
		return eachGW(targets, func(t gwTarget) error { return t.C.SetServerState(cx.c, pos[0], pos[1], pos[2]) })
	}
	// The show commands: one answer per gateway.
	var vals []any
	var tables []func(w *tabwriter.Writer)
	for _, t := range targets {
		switch name {
		case "services":
			s, err := t.C.Services(cx.c)
			if err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
			vals, tables = append(vals, s), append(tables, servicesTable(s))
		case "sessions":
			s, err := t.C.GWSessions(cx.c)
			if err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
			vals, tables = append(vals, s), append(tables, gwSessionsTable(s))
		case "flows":
			f, err := t.C.Flows(cx.c, limit)
			if err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
			vals, tables = append(vals, f), append(tables, flowsTable(f))
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

// subInterleaved parses flags anywhere among the positional arguments
// (samepathctl gw policy web-a lc -gw URL) and returns the positionals.
func subInterleaved(name, help string, args []string, setup func(fs *flag.FlagSet)) ([]string, error) {
	fs, err := sub(name, help, args, setup)
	if err != nil {
		return nil, err
	}
	var pos []string
	for fs.NArg() > 0 {
		pos = append(pos, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, err
		}
	}
	return pos, nil
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
		fmt.Fprintln(w, "SERVICE\tREP\tPROTO\tTYPE\tPOLICY\tSVC TYPE\tSERVER\tWEIGHT\tSTATE\tHEALTH\tRTT\tCPU\tACTIVE")
		for _, sv := range s.Services {
			head := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", sv.Name, sv.Rep, sv.Proto, sv.Type, sv.Policy, dash(sv.ServiceType))
			blank := "\t\t\t\t\t"
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
