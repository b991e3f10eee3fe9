package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"samepath/ctl/api"
	"samepath/ctl/control"
)

const authzUsage = `usage: samepathctl authz SUBCOMMAND ...   (each answers -h)

Service authorization (R-AUTH-1, FIG. 25-27) held by the control process and
pushed to every gateway of T1: T9 maps a representative IP to a service type,
T8 says whether a mobile device may use a service type (no row: it may not).
  authz [show]                          T9 and T8
  authz status                          push state per gateway (acknowledged version, failures)
  authz set -file F                     replace both tables from YAML or JSON: {t9: [{rep, service_type}],
                                        t8: [{device, service_type, allowed}]} (the format of authz -o json)
  authz allow DEVICE SERVICE_TYPE       T8 row: allowed
  authz deny DEVICE SERVICE_TYPE        T8 row: not allowed
  authz forget DEVICE SERVICE_TYPE      remove the T8 row
  authz t9 REP SERVICE_TYPE             T9 row: REP's service type
  authz t9 -delete REP                  remove the T9 row
A gateway's own copy and its refusals per service type: samepathctl gw authz.

Examples:
  samepathctl authz t9 10.30.0.2 video
  samepathctl authz allow IMEI-490154203237518 video
  samepathctl -o json authz > authz.json; samepathctl authz set -file authz.json
`

// cmdAuthz shows and edits the control process's T8/T9.
func cmdAuthz(cx *ctx, args []string) error {
	if len(args) == 0 {
		args = []string{"show"}
	}
	name, rest := args[0], args[1:]
	var help, file string
	var del bool
	nargs := 0
	switch name {
	case "show":
		help = "authz show"
	case "status":
		help = "authz status"
	case "set":
		help = "authz set -file F"
	case "allow", "deny", "forget":
		help, nargs = "authz "+name+" DEVICE SERVICE_TYPE", 2
	case "t9":
		help, nargs = "authz t9 REP SERVICE_TYPE | authz t9 -delete REP", 2
	case "-h", "--help", "help":
		fmt.Fprint(os.Stderr, authzUsage)
		return flag.ErrHelp
	default:
		fmt.Fprint(os.Stderr, authzUsage)
		return usagef("authz: unknown subcommand %q", name)
	}
	pos, err := subInterleaved("authz "+name, help, rest, func(fs *flag.FlagSet) {
		switch name {
		case "set":
			fs.StringVar(&file, "file", "", "YAML or JSON file with both tables")
		case "t9":
			fs.BoolVar(&del, "delete", false, "remove REP's row")
		}
	})
	if err != nil {
		return err
	}
	if del {
		nargs = 1
	}
	if len(pos) != nargs {
		return usagef("usage: samepathctl %s", help)
	}
	var out api.Authz
	switch name {
	case "show":
		err = cx.get("/v1/authz", &out)
	case "status":
		var s control.AuthzStatus
		if err := cx.get("/v1/authz/status", &s); err != nil {
			return err
		}
		return cx.emit(s, authzStatusTable(s))
	case "set":
		if file == "" {
			return usagef("authz set needs -file")
		}
		var a api.Authz
		if a, err = readAuthzFile(file); err == nil {
			err = cx.ctl.Do(cx.c, http.MethodPut, "/v1/authz", a, &out)
		}
	case "allow", "deny":
		err = cx.ctl.Do(cx.c, http.MethodPut, "/v1/authz/t8", api.T8Row{Device: pos[0], ServiceType: pos[1], Allowed: name == "allow"}, &out)
	case "forget":
		q := url.Values{"device": {pos[0]}, "service_type": {pos[1]}}
		err = cx.ctl.Do(cx.c, http.MethodDelete, "/v1/authz/t8?"+q.Encode(), nil, &out)
	case "t9":
		if del {
			err = cx.ctl.Do(cx.c, http.MethodDelete, "/v1/authz/t9?"+url.Values{"rep": {pos[0]}}.Encode(), nil, &out)
		} else {
			err = cx.ctl.Do(cx.c, http.MethodPut, "/v1/authz/t9", api.T9Row{Rep: pos[0], ServiceType: pos[1]}, &out)
		}
	}
	if err != nil {
		return err
	}
	return cx.emit(out, authzTable(out, false))
}

// readAuthzFile reads both tables from YAML or JSON. A gateway's answer
// (gw authz -o json) may be given: its refusal counters are ignored.
func readAuthzFile(path string) (api.Authz, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return api.Authz{}, err
	}
	var in struct {
		T9     []api.T9Row       `yaml:"t9"`
		T8     []api.T8Row       `yaml:"t8"`
		Denied map[string]uint64 `yaml:"denied"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&in); err != nil {
		if errors.Is(err, io.EOF) {
			// Emptying the tables takes an explicit {t9: [], t8: []}.
			return api.Authz{}, fmt.Errorf("parse %s: the file is empty", path)
		}
		return api.Authz{}, fmt.Errorf("parse %s: %w", path, err)
	}
	a := api.Authz{T9: in.T9, T8: in.T8}
	if a.T9 == nil {
		a.T9 = []api.T9Row{}
	}
	if a.T8 == nil {
		a.T8 = []api.T8Row{}
	}
	return a, nil
}

// authzTable prints T9, T8 and, for a gateway, its refusals per service
// type.
func authzTable(a api.Authz, denied bool) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "T9 REP\tSERVICE TYPE")
		for _, r := range a.T9 {
			fmt.Fprintf(w, "%s\t%s\n", r.Rep, r.ServiceType)
		}
		if len(a.T9) == 0 {
			fmt.Fprintln(w, "(none: no destination is controlled)\t")
		}
		fmt.Fprintln(w, "\nT8 DEVICE\tSERVICE TYPE\tALLOWED")
		for _, r := range a.T8 {
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Device, r.ServiceType, map[bool]string{true: "yes", false: "no"}[r.Allowed])
		}
		if len(a.T8) == 0 {
			fmt.Fprintln(w, "(none)\t\t")
		}
		if !denied {
			return
		}
		fmt.Fprintln(w, "\nSERVICE TYPE\tREFUSED")
		keys := make([]string, 0, len(a.Denied))
		for k := range a.Denied {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%d\n", k, a.Denied[k])
		}
		if len(keys) == 0 {
			fmt.Fprintln(w, "(none)\t")
		}
	}
}

func authzStatusTable(s control.AuthzStatus) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		if !s.Managed {
			fmt.Fprintln(w, "the control process holds no T8/T9: the gateways keep their own (nothing is pushed)")
		}
		fmt.Fprintf(w, "version %d\n", s.Version)
		fmt.Fprintln(w, "GATEWAY\tURL\tACKED\tIN SYNC\tPUSHES\tFAILURES\tLAST ACK\tLAST ERROR")
		for _, g := range s.Gateways {
			last := "-"
			if !g.LastAck.IsZero() {
				last = g.LastAck.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%v\t%d\t%d\t%s\t%s\n", g.Name, g.URL, g.Acked, g.InSync, g.Pushes, g.Failures, last, dash(g.LastError))
		}
	}
}

// cmdGWAuthz shows a gateway's T9/T8 and refusal counters (samepathctl gw
// authz).
func cmdGWAuthz(cx *ctx, args []string) error {
	var gw string
	help := "gw authz [-gw URL|all]"
	pos, err := subInterleaved("gw authz", help, args, func(fs *flag.FlagSet) {
		fs.StringVar(&gw, "gw", "all", "gateway control API URL, or all for every gateway of the control process")
	})
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("usage: samepathctl %s", help)
	}
	targets, err := cx.gateways(gw)
	if err != nil {
		return err
	}
	vals := make([]api.Authz, len(targets))
	for i, t := range targets {
		if vals[i], err = t.C.Authz(cx.c); err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	if len(targets) == 1 {
		return cx.emit(vals[0], authzTable(vals[0], true))
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
		if err := cx.emit(vals[i], authzTable(vals[i], true)); err != nil {
			return err
		}
	}
	return nil
}
