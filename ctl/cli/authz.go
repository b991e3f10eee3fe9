package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"samepath/ctl/api"
	"samepath/ctl/control"
)

const authzLong = `Service authorization (R-AUTH-1, FIG. 25-27) held by the control process and
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
A gateway's own copy and its refusals per service type: samepathctl gw authz.`

const authzExample = `  samepathctl authz t9 10.30.0.2 video
  samepathctl authz allow IMEI-490154203237518 video
  samepathctl -o json authz > authz.json; samepathctl authz set -file authz.json`

// authzCmd shows and edits the control process's T8/T9.
func (a *app) authzCmd() *cobra.Command {
	// change runs an edit and shows both tables as the control process
	// holds them after it.
	change := func(f func(cx *ctx, args []string, out *api.Authz) error) func(*cobra.Command, []string) error {
		return a.run(func(cx *ctx, args []string) error {
			var out api.Authz
			if err := f(cx, args, &out); err != nil {
				return err
			}
			return cx.emit(out, authzTable(out, false))
		})
	}
	show := &cobra.Command{Use: "show", Short: "T9 and T8", Args: nargs(0), RunE: change(func(cx *ctx, _ []string, out *api.Authz) error {
		return cx.get("/v1/authz", out)
	})}
	status := &cobra.Command{Use: "status", Short: "push state per gateway", Args: nargs(0), RunE: a.run(func(cx *ctx, _ []string) error {
		var s control.AuthzStatus
		if err := cx.get("/v1/authz/status", &s); err != nil {
			return err
		}
		return cx.emit(s, authzStatusTable(s))
	})}
	var file string
	set := &cobra.Command{Use: "set -file F", Short: "replace both tables from YAML or JSON", Args: nargs(0),
		RunE: change(func(cx *ctx, _ []string, out *api.Authz) error {
			if file == "" {
				return usagef("authz set needs -file")
			}
			in, err := readAuthzFile(file)
			if err != nil {
				return err
			}
			return cx.ctl.Do(cx.c, http.MethodPut, "/v1/authz", in, out)
		})}
	set.Flags().StringVar(&file, "file", "", "YAML or JSON file with both tables")
	t8 := func(name, short string, f func(cx *ctx, args []string, out *api.Authz) error) *cobra.Command {
		return &cobra.Command{Use: name + " DEVICE SERVICE_TYPE", Short: short, Args: nargs(2), RunE: change(f)}
	}
	allow := t8("allow", "T8 row: allowed", func(cx *ctx, args []string, out *api.Authz) error {
		return cx.ctl.Do(cx.c, http.MethodPut, "/v1/authz/t8", api.T8Row{Device: args[0], ServiceType: args[1], Allowed: true}, out)
	})
	deny := t8("deny", "T8 row: not allowed", func(cx *ctx, args []string, out *api.Authz) error {
		return cx.ctl.Do(cx.c, http.MethodPut, "/v1/authz/t8", api.T8Row{Device: args[0], ServiceType: args[1]}, out)
	})
	forget := t8("forget", "remove the T8 row", func(cx *ctx, args []string, out *api.Authz) error {
		q := url.Values{"device": {args[0]}, "service_type": {args[1]}}
		return cx.ctl.Do(cx.c, http.MethodDelete, "/v1/authz/t8?"+q.Encode(), nil, out)
	})
	var del bool
	t9 := &cobra.Command{Use: "t9 REP SERVICE_TYPE | t9 -delete REP", Short: "set or remove a T9 row",
		Args: func(c *cobra.Command, args []string) error {
			if n := map[bool]int{false: 2, true: 1}[del]; len(args) != n {
				return usagef("usage: samepathctl authz t9 REP SERVICE_TYPE | authz t9 -delete REP")
			}
			return nil
		},
		RunE: change(func(cx *ctx, args []string, out *api.Authz) error {
			if del {
				return cx.ctl.Do(cx.c, http.MethodDelete, "/v1/authz/t9?"+url.Values{"rep": {args[0]}}.Encode(), nil, out)
			}
			return cx.ctl.Do(cx.c, http.MethodPut, "/v1/authz/t9", api.T9Row{Rep: args[0], ServiceType: args[1]}, out)
		})}
	t9.Flags().BoolVar(&del, "delete", false, "remove REP's row")
	return a.group(&cobra.Command{Use: "authz", Short: "service authorization (T9/T8), pushed to the gateways (default: show)", Long: authzLong, Example: authzExample},
		show, show, status, set, allow, deny, forget, t9)
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
