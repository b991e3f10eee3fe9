package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/session"
)

// Defaults come from cmd/samepathctl (environment is read only there).
type Defaults struct {
	Control   string // samepath-control API
	TokenFile string
}

type ctx struct {
	out    io.Writer
	json   bool
	ctl    *api.Client
	token  string
	cancel context.CancelFunc
	c      context.Context
}

const usage = `samepathctl [-control URL] [-token-file F] [-o table|json] COMMAND ...

Commands (each answers -h):
  status                                   control process status
  gateways list|show NAME|set|delete NAME|state NAME up|drain|down    T1
  users list|show ID|set|delete ID                                     T2
  sessions list|show ID|terminate ID       T3; terminate also sends the NAS a Disconnect-Request
  assignments list                         assigned addresses
  health                                   probe and LB sync state
  counters [-daemon URL]                   control counters, or a samepathd's per-queue counters
  t4 show|set-row|delete-row|gateway-state|load  -lb URL|all          LB balancing policy (T4) on samepathd
  daemon status -daemon URL                a samepathd's status
  gw services|set-services|policy|server|sessions|flows [-gw URL|all]  gateway tables (T6/T11/T9, T3 copy, T5)
  authz [show]|status|set -file F|allow|deny|forget DEVICE TYPE|t9 REP TYPE   service authorization (T9/T8), pushed to the gateways
  accounting -log FILE|DIR [-user U] [-device D] [-service S] [-service-type T] [-kind K] [-from T] [-to T]
                                           query a gateway's accounting log (T10)
  nas -auth H:P -acct H:P -secret S ...    NAS emulator: RADIUS login + accounting Start/Interim/Stop

Examples:
  samepathctl gateways set -name gw1 -range 10.100.0.0/24 -api http://10.0.0.11:9180 -mac 02:00:00:00:01:01
  samepathctl gateways state gw1 drain
  samepathctl users set -id alice -password s3cret -device IMEI-1 -phone +81-90-1
  samepathctl -o json sessions list
  samepathctl nas -auth 10.0.0.2:1812 -acct 10.0.0.2:1813 -secret s -user mobile -password pw -mobiles 4 -interims 1 -dormant
  samepathctl accounting -log /var/lib/samepath/gw1 -user alice -from 2026-11-26T00:00:00Z
  samepathctl t4 set-row -lb all -range 10.100.0.0/24 -gw 02:00:00:00:01:01,02:00:00:00:01:02
`

// Main runs samepathctl with args (without the program name).
func Main(args []string, stdout, stderr io.Writer, d Defaults) int {
	fs := flag.NewFlagSet("samepathctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	ctlURL := fs.String("control", d.Control, "samepath-control API base URL")
	tokenFile := fs.String("token-file", d.TokenFile, "bearer token file for the control and daemon APIs")
	format := fs.String("o", "table", "output: table or json")
	timeout := fs.Duration("timeout", 15*time.Second, "timeout of the whole command")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintln(stderr, "samepathctl: -o must be table or json")
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	token, err := control.ReadToken(*tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "samepathctl:", err)
		return 1
	}
	cx := &ctx{out: stdout, json: *format == "json", ctl: api.NewClient(*ctlURL), token: token}
	cx.ctl.Token = token
	cx.c, cx.cancel = context.WithTimeout(context.Background(), *timeout)
	defer cx.cancel()
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	cmds := map[string]func(*ctx, []string) error{
		"status": cmdStatus, "gateways": cmdGateways, "users": cmdUsers, "sessions": cmdSessions,
		"assignments": cmdAssignments, "health": cmdHealth, "counters": cmdCounters, "t4": cmdT4, "daemon": cmdDaemon,
		"nas": cmdNAS,
		"gw":  cmdGW,

		"authz": cmdAuthz,

		"accounting": cmdAccounting,
	}
	f := cmds[cmd]
	if f == nil {
		fmt.Fprintf(stderr, "samepathctl: unknown command %q\n", cmd)
		fs.Usage()
		return 2
	}
	if err := f(cx, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "samepathctl:", err)
			return 2
		}
		fmt.Fprintln(stderr, "samepathctl:", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(f string, a ...any) error { return usageError{fmt.Sprintf(f, a...)} }

func sub(name, help string, args []string, setup func(fs *flag.FlagSet)) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "usage: samepathctl %s\n", help); fs.PrintDefaults() }
	if setup != nil {
		setup(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return fs, nil
}

func (cx *ctx) get(path string, out any) error {
	return cx.ctl.Do(cx.c, http.MethodGet, path, nil, out)
}

func (cx *ctx) emit(v any, table func(w *tabwriter.Writer)) error {
	if cx.json {
		enc := json.NewEncoder(cx.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(cx.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func cmdStatus(cx *ctx, args []string) error {
	if _, err := sub("status", "status", args, nil); err != nil {
		return err
	}
	var s control.Status
	if err := cx.get("/v1/status", &s); err != nil {
		return err
	}
	return cx.emit(s, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "version\t%s\nuptime\t%ds\nradius auth\t%s\nradius acct\t%s\nsessions\t%d\nusers\t%d\ngateways\t%d\n", s.Version, s.UptimeSec, s.Auth, s.Acct, s.Sessions, s.Users, s.Gateways)
	})
}

func gatewayTable(gs []aaa.Gateway) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tRANGE\tASSIGNED\tSIZE\tADMIN\tHEALTH\tLB\tMAC\tAPI")
		for _, g := range gs {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", g.Name, g.Range, g.Assigned, g.Size, g.Admin, g.Health, aaa.LBState(g), dash(g.MAC), dash(g.API))
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdGateways(cx *ctx, args []string) error {
	if len(args) == 0 {
		args = []string{"list"}
	}
	switch args[0] {
	case "list":
		var gs []aaa.Gateway
		if err := cx.get("/v1/gateways", &gs); err != nil {
			return err
		}
		return cx.emit(gs, gatewayTable(gs))
	case "show":
		if len(args) != 2 {
			return usagef("gateways show NAME")
		}
		var g aaa.Gateway
		if err := cx.get("/v1/gateways/"+url.PathEscape(args[1]), &g); err != nil {
			return err
		}
		return cx.emit(g, gatewayTable([]aaa.Gateway{g}))
	case "set":
		var g aaa.GatewayConfig
		fs, err := sub("gateways set", "gateways set -name NAME -range CIDR [-api URL] [-mac MAC] [-admin up|drain|down]", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&g.Name, "name", "", "gateway name")
			fs.StringVar(&g.Range, "range", "", "IPv4 range of mobile addresses (CIDR)")
			fs.StringVar(&g.API, "api", "", "gateway control API URL (probed at /healthz, receives session events)")
			fs.StringVar(&g.MAC, "mac", "", "gateway MAC as the LBs' T4 knows it")
			fs.StringVar(&g.Admin, "admin", "up", "administrative state")
		})
		if err != nil {
			return err
		}
		if fs.NArg() != 0 || g.Name == "" || g.Range == "" {
			return usagef("gateways set needs -name and -range")
		}
		var out aaa.Gateway
		if err := cx.ctl.Do(cx.c, http.MethodPut, "/v1/gateways", g, &out); err != nil {
			return err
		}
		return cx.emit(out, gatewayTable([]aaa.Gateway{out}))
	case "delete":
		if len(args) != 2 {
			return usagef("gateways delete NAME")
		}
		return cx.ctl.Do(cx.c, http.MethodDelete, "/v1/gateways/"+url.PathEscape(args[1]), nil, nil)
	case "state", "drain":
		name, st := "", ""
		switch {
		case args[0] == "drain" && len(args) == 2:
			name, st = args[1], aaa.AdminDrain
		case args[0] == "state" && len(args) == 3:
			name, st = args[1], args[2]
		default:
			return usagef("gateways state NAME up|drain|down")
		}
		var out aaa.Gateway
		if err := cx.ctl.Do(cx.c, http.MethodPut, "/v1/gateways/"+url.PathEscape(name)+"/admin", control.AdminState{Admin: st}, &out); err != nil {
			return err
		}
		return cx.emit(out, gatewayTable([]aaa.Gateway{out}))
	case "-h", "--help", "help":
		fmt.Fprintln(os.Stderr, "usage: samepathctl gateways list|show NAME|set -h|delete NAME|state NAME up|drain|down|drain NAME")
		return flag.ErrHelp
	}
	return usagef("gateways: unknown subcommand %q", args[0])
}

func userTable(us []control.UserView) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tDEVICE\tPHONE\tCREDENTIAL\tDISABLED\tASSIGNED IP")
		for _, u := range us {
			cred := "pbkdf2"
			if u.CHAP {
				cred = "chap-secret"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\t%s\n", u.ID, dash(u.DeviceID), dash(u.Phone), cred, u.Disabled, dash(u.AssignedIP))
		}
	}
}

func cmdUsers(cx *ctx, args []string) error {
	if len(args) == 0 {
		args = []string{"list"}
	}
	switch args[0] {
	case "list":
		var us []control.UserView
		if err := cx.get("/v1/users", &us); err != nil {
			return err
		}
		return cx.emit(us, userTable(us))
	case "show":
		if len(args) != 2 {
			return usagef("users show ID")
		}
		var u control.UserView
		if err := cx.get("/v1/users/"+url.PathEscape(args[1]), &u); err != nil {
			return err
		}
		return cx.emit(u, userTable([]control.UserView{u}))
	case "set":
		var u aaa.User
		var pwFile string
		fs, err := sub("users set", "users set -id ID [-password PW | -password-file F] [-chap] [-device ID] [-phone N] [-disabled]", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&u.ID, "id", "", "user id (User-Name)")
			fs.StringVar(&u.Password, "password", "", "password (stored as a PBKDF2 hash, or as a clear secret with -chap); empty keeps the old one")
			fs.StringVar(&pwFile, "password-file", "", "read the password from a file")
			fs.BoolVar(&u.CHAP, "chap", false, "store the clear password so CHAP works (PAP only otherwise)")
			fs.StringVar(&u.DeviceID, "device", "", "mobile device id (Calling-Station-Id)")
			fs.StringVar(&u.Phone, "phone", "", "phone number")
			fs.BoolVar(&u.Disabled, "disabled", false, "refuse logins")
		})
		if err != nil {
			return err
		}
		if fs.NArg() != 0 || u.ID == "" {
			return usagef("users set needs -id")
		}
		if pwFile != "" {
			b, err := os.ReadFile(pwFile)
			if err != nil {
				return err
			}
			u.Password = strings.TrimRight(string(b), "\r\n")
		}
		var out control.UserView
		if err := cx.ctl.Do(cx.c, http.MethodPut, "/v1/users", u, &out); err != nil {
			return err
		}
		return cx.emit(out, userTable([]control.UserView{out}))
	case "delete":
		if len(args) != 2 {
			return usagef("users delete ID")
		}
		return cx.ctl.Do(cx.c, http.MethodDelete, "/v1/users/"+url.PathEscape(args[1]), nil, nil)
	case "-h", "--help", "help":
		fmt.Fprintln(os.Stderr, "usage: samepathctl users list|show ID|set -h|delete ID")
		return flag.ErrHelp
	}
	return usagef("users: unknown subcommand %q", args[0])
}

func sessionTable(ss []session.Session) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SESSION\tSTATE\tDEVICE\tUSER\tIP\tGATEWAY\tSINCE\tDEADLINE\tIN\tOUT")
		for _, s := range ss {
			dl := "-"
			if !s.Deadline.IsZero() {
				dl = s.Deadline.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.ID, s.State, s.Device, dash(s.User), s.IP, s.Gateway, s.StateSince.UTC().Format(time.RFC3339), dl, s.InOctets, s.OutOctets)
		}
	}
}

func cmdSessions(cx *ctx, args []string) error {
	if len(args) == 0 {
		args = []string{"list"}
	}
	switch args[0] {
	case "list":
		var ss []session.Session
		if err := cx.get("/v1/sessions", &ss); err != nil {
			return err
		}
		return cx.emit(ss, sessionTable(ss))
	case "show":
		if len(args) != 2 {
			return usagef("sessions show ID")
		}
		var s session.Session
		if err := cx.get("/v1/sessions/"+url.PathEscape(args[1]), &s); err != nil {
			return err
		}
		return cx.emit(s, sessionTable([]session.Session{s}))
	case "terminate":
		if len(args) != 2 {
			return usagef("sessions terminate ID")
		}
		return cx.ctl.Do(cx.c, http.MethodDelete, "/v1/sessions/"+url.PathEscape(args[1]), nil, nil)
	case "-h", "--help", "help":
		fmt.Fprintln(os.Stderr, "usage: samepathctl sessions list|show ID|terminate ID")
		return flag.ErrHelp
	}
	return usagef("sessions: unknown subcommand %q", args[0])
}

func cmdAssignments(cx *ctx, args []string) error {
	if len(args) > 0 && args[0] != "list" {
		fmt.Fprintln(os.Stderr, "usage: samepathctl assignments [list]")
		if args[0] == "-h" || args[0] == "help" {
			return flag.ErrHelp
		}
		return usagef("assignments: unknown subcommand %q", args[0])
	}
	var as []aaa.Assignment
	if err := cx.get("/v1/assignments", &as); err != nil {
		return err
	}
	return cx.emit(as, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "IP\tGATEWAY\tDEVICE\tUSER\tBOUND\tSESSION\tPENDING UNTIL")
		for _, a := range as {
			p := "-"
			if !a.PendingUntil.IsZero() {
				p = a.PendingUntil.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\t%s\t%s\n", a.IP, a.Gateway, a.Device, dash(a.User), a.Bound, dash(a.Session), p)
		}
	})
}

func cmdHealth(cx *ctx, args []string) error {
	if _, err := sub("health", "health", args, nil); err != nil {
		return err
	}
	var h control.HealthReport
	if err := cx.get("/v1/health", &h); err != nil {
		return err
	}
	return cx.emit(h, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "KIND\tNAME\tUP\tPROBES\tOK-IN-ROW\tFAIL-IN-ROW\tLAST ERROR")
		for _, s := range h.Targets {
			up := "?"
			if s.Up != nil {
				up = fmt.Sprint(*s.Up)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Kind, s.Name, up, s.Probes, s.Successes, s.Failures, dash(s.LastError))
		}
		fmt.Fprintln(w, "\nLB\tURL\tPUSHED\tOK\tFAILURES\tLAST ERROR")
		for _, l := range h.LBs {
			var p []string
			for mac, st := range l.Pushed {
				p = append(p, mac+"="+st)
			}
			sort.Strings(p)
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", l.Name, l.URL, dash(strings.Join(p, ",")), l.OK, l.Failures, dash(l.LastError))
		}
	})
}

func kvTable(w *tabwriter.Writer, section string, m map[string]uint64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\t%d\n", section, k, m[k])
	}
}

func cmdCounters(cx *ctx, args []string) error {
	var daemon string
	if _, err := sub("counters", "counters [-daemon URL]", args, func(fs *flag.FlagSet) {
		fs.StringVar(&daemon, "daemon", "", "a samepathd control API: show its per-queue counters instead")
	}); err != nil {
		return err
	}
	if daemon != "" {
		c := cx.daemon(daemon)
		cs, err := c.Counters(cx.c)
		if err != nil {
			return err
		}
		return cx.emit(cs, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "PORT\tCPU\tRX PKTS\tRX BYTES\tTX PKTS\tTX BYTES\tIDLE\tDROPS\tSOCKET (KERNEL)")
			for _, q := range cs.Queues {
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%s\t%s\n", q.Port, q.CPU, q.RxPackets, q.RxBytes, q.TxPackets, q.TxBytes, q.IdleRatio,
					dash(nonZero(q.Drops)), dash(nonZero(q.Socket)))
			}
		})
	}
	var c control.Counters
	if err := cx.get("/v1/counters", &c); err != nil {
		return err
	}
	return cx.emit(c, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SECTION\tCOUNTER\tVALUE")
		kvTable(w, "radius", c.Radius)
		p := c.Pool
		kvTable(w, "address", map[string]uint64{"assigned": p.Assigned, "reused": p.Reused, "reject_no_gateway": p.RejectNoGW, "reject_full": p.RejectFull, "released": p.Released, "expired_pending": p.Expired, "bind_claimed": p.BindClaimed, "bind_conflict": p.BindConflict, "bind_not_in_range": p.BindNotInPool})
		kvTable(w, "transition", c.Sessions.Transitions)
		kvTable(w, "invalid", c.Sessions.Invalid)
		kvTable(w, "unknown", c.Sessions.Unknown)
		kvTable(w, "session", c.Sessions.Other)
		kvTable(w, "outbox", map[string]uint64{"queued": c.Outbox.Queued, "acked": c.Outbox.Acked, "failures": c.Outbox.Failures, "no_api": c.Outbox.NoAPI, "pending": uint64(c.Outbox.Pending)})
		kvTable(w, "store", map[string]uint64{"commits": c.Store.Commits, "ops": c.Store.Ops, "log_lines": c.Store.LogLines})
	})
}

func (cx *ctx) daemon(u string) *api.Client {
	c := api.NewClient(u)
	c.Token = cx.token
	return c
}

// lbs resolves -lb: "all" means every LB the control process knows.
func (cx *ctx) lbs(lb string) ([]*api.Client, error) {
	if lb == "" {
		return nil, usagef("-lb URL (or all) is required")
	}
	if lb != "all" {
		return []*api.Client{cx.daemon(lb)}, nil
	}
	var ls []control.LBInfo
	if err := cx.get("/v1/lbs", &ls); err != nil {
		return nil, err
	}
	if len(ls) == 0 {
		return nil, errors.New("the control process has no LBs configured")
	}
	var out []*api.Client
	for _, l := range ls {
		out = append(out, cx.daemon(l.API))
	}
	return out, nil
}

func t4Table(t api.T4) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "RANGE\tPRIMARY\tSUBSTITUTES")
		for _, r := range t.Rows {
			var gs []string
			for _, g := range r.Gateways {
				gs = append(gs, g.MAC+"("+g.State+")")
			}
			if len(gs) == 0 {
				fmt.Fprintf(w, "%s\t-\t-\n", r.Range)
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Range, gs[0], dash(strings.Join(gs[1:], " ")))
		}
	}
}

func cmdT4(cx *ctx, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, "usage: samepathctl t4 show|set-row|delete-row|gateway-state|load -lb URL|all ... (each answers -h)")
		return flag.ErrHelp
	}
	var lb, rng, gws, mac, state, file string
	fs, err := sub("t4 "+args[0], "t4 "+args[0]+" -lb URL|all ...", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&lb, "lb", "", "samepathd (role lb) API URL, or all for every LB of the control process")
		switch args[0] {
		case "set-row":
			fs.StringVar(&rng, "range", "", "source range (CIDR)")
			fs.StringVar(&gws, "gw", "", "gateway MACs, primary first, comma separated; MAC=down sets a state")
		case "delete-row":
			fs.StringVar(&rng, "range", "", "source range (CIDR)")
		case "gateway-state":
			fs.StringVar(&mac, "mac", "", "gateway MAC")
			fs.StringVar(&state, "state", "", "up or down")
		case "load":
			fs.StringVar(&file, "file", "", "JSON file with a whole T4 ({\"rows\":[...]}), replaced atomically")
		}
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("t4 %s: unexpected %q", args[0], fs.Arg(0))
	}
	clients, err := cx.lbs(lb)
	if err != nil {
		return err
	}
	switch args[0] {
	case "show":
		var all []api.T4
		for _, c := range clients {
			t, err := c.T4(cx.c)
			if err != nil {
				return err
			}
			all = append(all, t)
		}
		if cx.json {
			if len(all) == 1 {
				return cx.emit(all[0], nil)
			}
			return cx.emit(all, nil)
		}
		for i, t := range all {
			if len(all) > 1 {
				fmt.Fprintf(cx.out, "# %s\n", clients[i].Base)
			}
			if err := cx.emit(t, t4Table(t)); err != nil {
				return err
			}
		}
		return nil
	case "set-row":
		if rng == "" || gws == "" {
			return usagef("t4 set-row needs -range and -gw")
		}
		row := api.T4Row{Range: rng}
		for _, g := range strings.Split(gws, ",") {
			m, st, _ := strings.Cut(strings.TrimSpace(g), "=")
			if st == "" {
				st = api.StateUp
			}
			row.Gateways = append(row.Gateways, api.T4Gateway{MAC: m, State: st})
		}
		return each(clients, func(c *api.Client) error { return c.PutT4Row(cx.c, row) })
	case "delete-row":
		if rng == "" {
			return usagef("t4 delete-row needs -range")
		}
		return each(clients, func(c *api.Client) error { return c.DeleteT4Row(cx.c, rng) })
	case "gateway-state":
		if mac == "" || (state != api.StateUp && state != api.StateDown) {
			return usagef("t4 gateway-state needs -mac and -state up|down")
		}
		return each(clients, func(c *api.Client) error { return c.SetGatewayState(cx.c, mac, state) })
	case "load":
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var t api.T4
		if err := json.Unmarshal(b, &t); err != nil {
			return fmt.Errorf("parse %s: %w", file, err)
		}
		return each(clients, func(c *api.Client) error { return c.SetT4(cx.c, t) })
	}
	return usagef("t4: unknown subcommand %q", args[0])
}

func each(cs []*api.Client, f func(*api.Client) error) error {
	var errs []error
	for _, c := range cs {
		if err := f(c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Base, err))
		}
	}
	return errors.Join(errs...)
}

func cmdDaemon(cx *ctx, args []string) error {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(os.Stderr, "usage: samepathctl daemon status -daemon URL")
		return usagef("daemon: want status")
	}
	var u string
	if _, err := sub("daemon status", "daemon status -daemon URL", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&u, "daemon", "", "samepathd control API URL")
	}); err != nil {
		return err
	}
	if u == "" {
		return usagef("-daemon URL is required")
	}
	s, err := cx.daemon(u).Status(cx.c)
	if err != nil {
		return err
	}
	return cx.emit(s, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "role\t%s\nversion\t%s\nuptime\t%ds\nsteering\t%s\n", s.Role, s.Version, s.UptimeSec, dash(s.Steering))
	})
}

// nonZero lists the non-zero counts of m as "k=v" sorted by key.
func nonZero(m map[string]uint64) string {
	var d []string
	for k, v := range m {
		if v != 0 {
			d = append(d, fmt.Sprintf("%s=%d", k, v))
		}
	}
	sort.Strings(d)
	return strings.Join(d, " ")
}
