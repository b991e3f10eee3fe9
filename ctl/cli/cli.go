package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/session"
	"samepath/internal/version"
)

// Defaults come from cmd/samepathctl (environment is read only there).
type Defaults struct {
	Control   string // samepath-control API
	TokenFile string
}

// ctx is what a command runs with: the global flags resolved.
type ctx struct {
	out    io.Writer
	errw   io.Writer // warnings and notes
	json   bool
	ctl    *api.Client
	token  string
	cancel context.CancelFunc
	c      context.Context
}

// app is one command line: its global flags and where output goes.
type app struct {
	d              Defaults
	stdout, stderr io.Writer

	control, tokenFile, format string
	timeout                    time.Duration
}

const rootLong = `samepathctl shows and changes samepath's tables, states and counters
(R-CTL-1) through samepath-control's API and each samepathd's control API.

Flags go anywhere on the line, in either form: -lb URL and --lb URL are the
same flag. -h or --help anywhere shows a command's help and runs nothing
(a value that is -h goes as -password=-h). Exit status: 0 done, 1 failed,
2 usage error.`

const rootExample = `  samepathctl gateways set -name gw1 -range 10.100.0.0/24 -api http://10.0.0.11:9180 -mac 02:00:00:00:01:01
  samepathctl gateways state gw1 drain
  samepathctl users set -id alice -password s3cret -device IMEI-1 -phone +81-90-1
  samepathctl sessions list -o json
  samepathctl nas -auth 10.0.0.2:1812 -acct 10.0.0.2:1813 -secret s -user mobile -password pw -mobiles 4 -interims 1 -dormant
  samepathctl accounting -log /var/lib/samepath/gw1 -user alice -from 2026-11-26T00:00:00Z
  samepathctl t4 set-row -range 10.100.0.0/24 -gw 02:00:00:00:01:01,02:00:00:00:01:02
  samepathctl capture -daemon http://10.0.0.11:9180 -w web.pcapng -count 50 tcp port 80
  source <(samepathctl completion bash)`

// Main runs samepathctl with args (without the program name) and returns
// the exit status: 0, 1 when the command failed, 2 on a usage error.
func Main(args []string, stdout, stderr io.Writer, d Defaults) int {
	a := &app{d: d, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	args = normalizeFlags(root, args)
	if c := helpTarget(root, args); c != nil {
		a.help(c)
		return 0
	}
	root.SetArgs(args)
	c, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "samepathctl:", err)
	var f failure
	if errors.As(err, &f) {
		return 1
	}
	if c != nil {
		fmt.Fprintf(stderr, "run '%s -h' for usage\n", c.CommandPath())
	}
	return 2
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:     "samepathctl",
		Short:   "samepath's CLI",
		Long:    rootLong,
		Example: rootExample,
		Version: version.Get(),
		RunE: func(c *cobra.Command, args []string) error {
			a.help(c)
			return usagef("want a command")
		},
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate(version.String("samepathctl") + "\n")
	pf := root.PersistentFlags()
	pf.StringVar(&a.control, "control", a.d.Control, "samepath-control API base URL (environment SAMEPATH_CONTROL)")
	pf.StringVar(&a.tokenFile, "token-file", a.d.TokenFile, "bearer token file for the control and daemon APIs (environment SAMEPATH_TOKEN_FILE)")
	pf.StringVarP(&a.format, "output", "o", "table", "output: table or json")
	pf.DurationVar(&a.timeout, "timeout", 15*time.Second, "timeout of the whole command")
	root.RegisterFlagCompletionFunc("output", fixed("table", "json"))
	// Every flag error is a usage error (exit 2).
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { a.help(c) })
	root.AddCommand(
		a.statusCmd(), a.gatewaysCmd(), a.usersCmd(), a.sessionsCmd(), a.assignmentsCmd(),
		a.healthCmd(), a.countersCmd(), a.t4Cmd(), a.daemonCmd(), a.gwCmd(), a.authzCmd(),
		a.accountingCmd(), a.nasCmd(), a.captureCmd())
	// Before the completion command, which takes its writer when made.
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	root.InitDefaultVersionFlag() // now, so that normalizeFlags knows -version
	return root
}

// help prints c's help on standard error (as samepathctl always did).
func (a *app) help(c *cobra.Command) {
	c.InitDefaultHelpFlag()
	if s := strings.TrimSpace(c.Long); s != "" {
		fmt.Fprintf(a.stderr, "%s\n\n", s)
	} else if c.Short != "" {
		fmt.Fprintf(a.stderr, "%s\n\n", c.Short)
	}
	fmt.Fprint(a.stderr, c.UsageString())
}

// normalizeFlags rewrites single-dash long flags (-lb URL, -name=x) to the
// double-dash form (--lb URL, --name=x) before cobra parses the line.
// samepathctl has always taken Go-style single-dash long flags, and the
// testbed, the demo and the docs use them; pflag would read -lb as the
// shorthand cluster -l -b. Single-letter flags (-o, -h) are shorthands
// already, and so is -ojson (a value-taking shorthand's letter first); a
// flag's value (the argument after a flag that takes one, e.g. -limit -1)
// and everything after "--" are left alone.
func normalizeFlags(root *cobra.Command, args []string) []string {
	all := map[string]*pflag.Flag{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalNonPersistentFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if all[f.Name] == nil {
					all[f.Name] = f
				}
			})
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	// lookup prefers the flag as the command reached so far defines it
	// (its own, then its ancestors' persistent ones); a flag of a later
	// subcommand given before it (gw -limit 5 flows) is found in all.
	// Shorthands are one letter (ShorthandLookup panics on more).
	lookup := func(cur *cobra.Command, name string, short bool) *pflag.Flag {
		get := func(fs *pflag.FlagSet) *pflag.Flag {
			if short {
				return fs.ShorthandLookup(name)
			}
			return fs.Lookup(name)
		}
		if f := get(cur.LocalNonPersistentFlags()); f != nil {
			return f
		}
		for p := cur; p != nil; p = p.Parent() {
			if f := get(p.PersistentFlags()); f != nil {
				return f
			}
		}
		if short {
			return nil
		}
		return all[name]
	}
	out := make([]string, 0, len(args))
	cur := root
	for i := 0; i < len(args); i++ {
		s := args[i]
		if s == "--" {
			out = append(out, args[i:]...)
			break
		}
		var f *pflag.Flag
		hasValue := false
		switch {
		case strings.HasPrefix(s, "--"):
			var name string
			name, _, hasValue = strings.Cut(s[2:], "=")
			f = lookup(cur, name, false)
		case len(s) == 2 && s[0] == '-':
			f = lookup(cur, s[1:], true)
		case len(s) > 2 && s[0] == '-':
			var name string
			name, _, hasValue = strings.Cut(s[1:], "=")
			f = lookup(cur, name, false)
			// An unknown name is rewritten too (so the error reads
			// "unknown flag: --name"), unless it is a shorthand with its
			// value attached (-ojson).
			if sh := lookup(cur, s[1:2], true); f != nil || sh == nil || sh.NoOptDefVal != "" {
				s = "-" + s
			}
		default:
			for _, sub := range cur.Commands() {
				if sub.Name() == s || sub.HasAlias(s) {
					cur = sub
					break
				}
			}
		}
		out = append(out, s)
		if f != nil && f.NoOptDefVal == "" && !hasValue && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// helpTarget returns the command whose help the line asks for with -h,
// -help or --help anywhere before "--", even where a flag's value is due
// (users set -id -h): such a line runs nothing. nil: no help asked.
func helpTarget(root *cobra.Command, args []string) *cobra.Command {
	if len(args) > 0 && strings.HasPrefix(args[0], "__complete") {
		return nil
	}
	help := false
	var rest []string
	for i, s := range args {
		if s == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if s == "-h" || s == "-help" || s == "--help" {
			help = true
			continue
		}
		rest = append(rest, s)
	}
	if !help {
		return nil
	}
	c, _, err := root.Find(rest)
	if err != nil || c == nil {
		return root
	}
	return c
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(f string, a ...any) error { return usageError{fmt.Sprintf(f, a...)} }

// failure is a command that ran and failed: exit status 1. Errors cobra
// returns unwrapped (flags, arguments, unknown commands) are usage errors.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

// run adapts a command body to cobra: it resolves the global flags and
// marks what the body returns as a failure unless it is a usage error.
func (a *app) run(f func(cx *ctx, args []string) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		cx, err := a.newCtx(c.Context(), a.timeout)
		if err != nil {
			return err
		}
		defer cx.cancel()
		err = f(cx, args)
		var ue usageError
		if err == nil || errors.As(err, &ue) {
			return err
		}
		return failure{err}
	}
}

func (a *app) newCtx(parent context.Context, timeout time.Duration) (*ctx, error) {
	if a.format != "table" && a.format != "json" {
		return nil, usagef("-o must be table or json")
	}
	token, err := control.ReadToken(a.tokenFile)
	if err != nil {
		return nil, failure{err}
	}
	if parent == nil {
		parent = context.Background()
	}
	cx := &ctx{out: a.stdout, errw: a.stderr, json: a.format == "json", ctl: api.NewClient(a.control), token: token}
	cx.ctl.Token = token
	cx.c, cx.cancel = context.WithTimeout(parent, timeout)
	return cx, nil
}

// nargs wants exactly n positional arguments.
func nargs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("usage: %s", c.UseLine())
		}
		return nil
	}
}

// group is a command with subcommands; without one it runs dflt, or
// fails with a usage error when there is none.
func (a *app) group(g *cobra.Command, dflt *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	g.Args = cobra.ArbitraryArgs
	g.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			if dflt != nil {
				return dflt.RunE(dflt, nil)
			}
			a.help(c)
			return usagef("%s: want a subcommand", c.Name())
		}
		if args[0] == "help" {
			a.help(c)
			return nil
		}
		return usagef("%s: unknown subcommand %q", c.Name(), args[0])
	}
	g.AddCommand(subs...)
	return g
}

func (cx *ctx) get(path string, out any) error {
	return cx.ctl.Do(cx.c, http.MethodGet, path, nil, out)
}

// emit prints v as indented JSON with -o json, else as the table.
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

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{Use: "status", Short: "control process status", Args: nargs(0), RunE: a.run(func(cx *ctx, _ []string) error {
		var s control.Status
		if err := cx.get("/v1/status", &s); err != nil {
			return err
		}
		return cx.emit(s, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "version\t%s\nuptime\t%ds\nradius auth\t%s\nradius acct\t%s\nsessions\t%d\nusers\t%d\ngateways\t%d\n", s.Version, s.UptimeSec, s.Auth, s.Acct, s.Sessions, s.Users, s.Gateways)
		})
	})}
}

func gatewayTable(gs []aaa.Gateway) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tRANGE\tASSIGNED\tSIZE\tRANGE6\tFRAMED6\tASSIGNED6\tSIZE6\tADMIN\tHEALTH\tLB\tMAC\tAPI")
		for _, g := range gs {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", g.Name, dash(g.Range), g.Assigned, g.Size, dash(g.Range6), dash(g.Framed6), g.Assigned6, g.Size6,
				g.Admin, g.Health, aaa.LBState(g), dash(g.MAC), dash(g.API))
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) gatewaysCmd() *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "list T1", Args: nargs(0), RunE: a.run(func(cx *ctx, _ []string) error {
		var gs []aaa.Gateway
		if err := cx.get("/v1/gateways", &gs); err != nil {
			return err
		}
		return cx.emit(gs, gatewayTable(gs))
	})}
	show := &cobra.Command{Use: "show NAME", Short: "show a gateway", Args: nargs(1), ValidArgsFunction: a.completeGateways,
		RunE: a.run(func(cx *ctx, args []string) error {
			var g aaa.Gateway
			if err := cx.get("/v1/gateways/"+url.PathEscape(args[0]), &g); err != nil {
				return err
			}
			return cx.emit(g, gatewayTable([]aaa.Gateway{g}))
		})}
	var g aaa.GatewayConfig
	set := &cobra.Command{Use: "set -name NAME -range CIDR [-range6 CIDR [-framed6 prefix|address]] [-api URL] [-mac MAC] [-admin up|drain|down]", Short: "add or change a gateway", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if g.Name == "" || (g.Range == "" && g.Range6 == "") {
				return usagef("gateways set needs -name and -range or -range6")
			}
			var out aaa.Gateway
			if err := cx.ctl.Do(cx.c, http.MethodPut, "/v1/gateways", g, &out); err != nil {
				return err
			}
			return cx.emit(out, gatewayTable([]aaa.Gateway{out}))
		})}
	set.Flags().StringVar(&g.Name, "name", "", "gateway name")
	set.Flags().StringVar(&g.Range, "range", "", "IPv4 range of mobile addresses (CIDR)")
	set.Flags().StringVar(&g.Range6, "range6", "", "IPv6 pool of mobile prefixes or addresses (CIDR)")
	set.Flags().StringVar(&g.Framed6, "framed6", "", "what a mobile gets from range6: prefix (a /64, Framed-IPv6-Prefix; default) or address (Framed-IPv6-Address)")
	set.RegisterFlagCompletionFunc("framed6", fixed(aaa.Framed6Prefix, aaa.Framed6Address))
	set.Flags().StringVar(&g.API, "api", "", "gateway control API URL (probed at /healthz, receives session events)")
	set.Flags().StringVar(&g.MAC, "mac", "", "gateway MAC as the LBs' T4 knows it")
	set.Flags().StringVar(&g.Admin, "admin", "up", "administrative state")
	set.RegisterFlagCompletionFunc("name", a.completeGateways)
	set.RegisterFlagCompletionFunc("admin", fixed(aaa.AdminUp, aaa.AdminDrain, aaa.AdminDown))
	del := &cobra.Command{Use: "delete NAME", Short: "remove a gateway from T1", Args: nargs(1), ValidArgsFunction: a.completeGateways,
		RunE: a.run(func(cx *ctx, args []string) error {
			return cx.ctl.Do(cx.c, http.MethodDelete, "/v1/gateways/"+url.PathEscape(args[0]), nil, nil)
		})}
	setAdmin := func(cx *ctx, name, st string) error {
		var out aaa.Gateway
		if err := cx.ctl.Do(cx.c, http.MethodPut, "/v1/gateways/"+url.PathEscape(name)+"/admin", control.AdminState{Admin: st}, &out); err != nil {
			return err
		}
		return cx.emit(out, gatewayTable([]aaa.Gateway{out}))
	}
	state := &cobra.Command{Use: "state NAME up|drain|down", Short: "set a gateway's administrative state (and so its state on every LB)", Args: nargs(2),
		ValidArgsFunction: func(c *cobra.Command, args []string, tc string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return a.completeGateways(c, args, tc)
			}
			if len(args) == 1 {
				return []cobra.Completion{aaa.AdminUp, aaa.AdminDrain, aaa.AdminDown}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: a.run(func(cx *ctx, args []string) error { return setAdmin(cx, args[0], args[1]) })}
	drain := &cobra.Command{Use: "drain NAME", Short: "gateways state NAME drain", Args: nargs(1), ValidArgsFunction: a.completeGateways,
		RunE: a.run(func(cx *ctx, args []string) error { return setAdmin(cx, args[0], aaa.AdminDrain) })}
	return a.group(&cobra.Command{Use: "gateways", Aliases: []string{"gateway"}, Short: "T1: gateways, their ranges and states (default: list)"},
		list, list, show, set, del, state, drain)
}

func userTable(us []control.UserView) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tDEVICE\tPHONE\tCREDENTIAL\tSTACK\tDISABLED\tASSIGNED IP\tASSIGNED IP6")
		for _, u := range us {
			cred := "pbkdf2"
			if u.CHAP {
				cred = "chap-secret"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", u.ID, dash(u.DeviceID), dash(u.Phone), cred, dash(u.Stack), u.Disabled, dash(u.AssignedIP), dash(u.AssignedIP6))
		}
	}
}

func (a *app) usersCmd() *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "list T2 (no credentials)", Args: nargs(0), RunE: a.run(func(cx *ctx, _ []string) error {
		var us []control.UserView
		if err := cx.get("/v1/users", &us); err != nil {
			return err
		}
		return cx.emit(us, userTable(us))
	})}
	show := &cobra.Command{Use: "show ID", Short: "show a user", Args: nargs(1), ValidArgsFunction: a.completeUsers,
		RunE: a.run(func(cx *ctx, args []string) error {
			var u control.UserView
			if err := cx.get("/v1/users/"+url.PathEscape(args[0]), &u); err != nil {
				return err
			}
			return cx.emit(u, userTable([]control.UserView{u}))
		})}
	var u aaa.User
	var pwFile string
	set := &cobra.Command{Use: "set -id ID [-password PW | -password-file F] [-chap] [-device ID] [-phone N] [-disabled]", Short: "add or change a user", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if u.ID == "" {
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
		})}
	fs := set.Flags()
	fs.StringVar(&u.ID, "id", "", "user id (User-Name)")
	fs.StringVar(&u.Password, "password", "", "password (stored as a PBKDF2 hash, or as a clear secret with -chap); empty keeps the old one")
	fs.StringVar(&pwFile, "password-file", "", "read the password from a file")
	fs.BoolVar(&u.CHAP, "chap", false, "store the clear password so CHAP works (PAP only otherwise)")
	fs.StringVar(&u.DeviceID, "device", "", "mobile device id (Calling-Station-Id)")
	fs.StringVar(&u.Phone, "phone", "", "phone number")
	fs.BoolVar(&u.Disabled, "disabled", false, "refuse logins")
	fs.StringVar(&u.Stack, "stack", "", "address families the device gets: ipv4, ipv6 or dual (empty: as the Access-Request hints, else ipv4)")
	set.RegisterFlagCompletionFunc("stack", fixed("ipv4", "ipv6", "dual"))
	set.RegisterFlagCompletionFunc("id", a.completeUsers)
	del := &cobra.Command{Use: "delete ID", Short: "remove a user", Args: nargs(1), ValidArgsFunction: a.completeUsers,
		RunE: a.run(func(cx *ctx, args []string) error {
			return cx.ctl.Do(cx.c, http.MethodDelete, "/v1/users/"+url.PathEscape(args[0]), nil, nil)
		})}
	return a.group(&cobra.Command{Use: "users", Aliases: []string{"user"}, Short: "T2: subscribers and their credentials (default: list)"},
		list, list, show, set, del)
}

func sessionTable(ss []session.Session) func(w *tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SESSION\tSTATE\tDEVICE\tUSER\tIP\tIP6\tGATEWAY\tSINCE\tDEADLINE\tIN\tOUT")
		for _, s := range ss {
			dl := "-"
			if !s.Deadline.IsZero() {
				dl = s.Deadline.UTC().Format(time.RFC3339)
			}
			ip4 := "-"
			if s.IP.Is4() {
				ip4 = s.IP.String()
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.ID, s.State, s.Device, dash(s.User), ip4, dash(session.EventIP6(s.IP6)), s.Gateway, s.StateSince.UTC().Format(time.RFC3339), dl, s.InOctets, s.OutOctets)
		}
	}
}

func (a *app) sessionsCmd() *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "list T3", Args: nargs(0), RunE: a.run(func(cx *ctx, _ []string) error {
		var ss []session.Session
		if err := cx.get("/v1/sessions", &ss); err != nil {
			return err
		}
		return cx.emit(ss, sessionTable(ss))
	})}
	show := &cobra.Command{Use: "show ID", Short: "show a session", Args: nargs(1), ValidArgsFunction: a.completeSessions,
		RunE: a.run(func(cx *ctx, args []string) error {
			var s session.Session
			if err := cx.get("/v1/sessions/"+url.PathEscape(args[0]), &s); err != nil {
				return err
			}
			return cx.emit(s, sessionTable([]session.Session{s}))
		})}
	term := &cobra.Command{Use: "terminate ID", Short: "end a session (Admin-Reset) and send its NAS a Disconnect-Request",
		Long: `Ends the session in samepath-control (Admin-Reset), which tells its gateway to
drop it, and sends the NAS the session started at a Disconnect-Request (RFC 5176).
Fails (exit 1) when the NAS refused (Disconnect-NAK) or did not answer: the session
is ended here and at the gateway all the same, but the subscriber may still be
attached at the NAS. With -o json it prints samepath-control's answer.`,
		Args: nargs(1), ValidArgsFunction: a.completeSessions,
		RunE: a.run(func(cx *ctx, args []string) error {
			var res control.Terminated
			if err := cx.ctl.Do(cx.c, http.MethodDelete, "/v1/sessions/"+url.PathEscape(args[0]), nil, &res); err != nil {
				return err
			}
			switch res.Disconnect {
			case control.DisconnectNAK, control.DisconnectFailed:
				return fmt.Errorf("session %s is terminated in samepath-control and its gateway drops it, but the NAS %s did not end it (%s: %s): the subscriber may still be attached at the NAS",
					args[0], res.NAS, res.Disconnect, res.DisconnectError)
			}
			if cx.json {
				return cx.emit(res, nil)
			}
			return nil
		})}
	return a.group(&cobra.Command{Use: "sessions", Aliases: []string{"session"}, Short: "T3: sessions (default: list)"},
		list, list, show, term)
}

func (a *app) assignmentsCmd() *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "list assigned addresses", Args: nargs(0), RunE: a.run(func(cx *ctx, _ []string) error {
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
	})}
	return a.group(&cobra.Command{Use: "assignments", Short: "assigned addresses (default: list)"}, list, list)
}

func (a *app) healthCmd() *cobra.Command {
	return &cobra.Command{Use: "health", Short: "probe and LB sync state", Args: nargs(0), RunE: a.run(func(cx *ctx, _ []string) error {
		var h control.HealthReport
		if err := cx.get("/v1/health", &h); err != nil {
			return err
		}
		return cx.emit(h, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "KIND\tNAME\tUP\tPROBES\tOK-IN-ROW\tFAIL-IN-ROW\tSYNC\tLAST ERROR")
			for _, s := range h.Targets {
				up := "?"
				if s.Up != nil {
					up = fmt.Sprint(*s.Up)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.Kind, s.Name, up, s.Probes, s.Successes, s.Failures, syncWord(s), dash(s.LastError))
			}
			healthSyncTable(w, h.Targets)
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
	})}
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

func (a *app) countersCmd() *cobra.Command {
	var daemon string
	c := &cobra.Command{Use: "counters [-daemon URL]", Short: "control counters, or a samepathd's per-queue counters", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
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
		})}
	c.Flags().StringVar(&daemon, "daemon", "", "a samepathd control API: show its per-queue counters instead")
	c.RegisterFlagCompletionFunc("daemon", a.completeDaemons)
	return c
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
		return nil, fmt.Errorf("-lb all: list the control process's LBs: %w", err)
	}
	if len(ls) == 0 {
		return nil, errors.New("-lb all: the control process has no LBs configured")
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

func (a *app) t4Cmd() *cobra.Command {
	var lb, rng, gws, mac, state, file string
	t4 := &cobra.Command{Use: "t4", Short: "LB balancing policy (T4) on samepathd role lb",
		Long: `T4 on the LBs (samepathd role lb), through their control API. -lb is an LB's
control API URL, or all (the default): every LB of the control process.`}
	t4.PersistentFlags().StringVar(&lb, "lb", "all", "samepathd (role lb) API URL, or all for every LB of the control process")
	t4.RegisterFlagCompletionFunc("lb", a.completeLBs)
	show := &cobra.Command{Use: "show [-lb URL|all]", Short: "show T4", Args: nargs(0), RunE: a.run(func(cx *ctx, _ []string) error {
		clients, err := cx.lbs(lb)
		if err != nil {
			return err
		}
		var all []api.T4
		for _, c := range clients {
			t, err := c.T4(cx.c)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Base, err)
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
	})}
	setRow := &cobra.Command{Use: "set-row [-lb URL|all] -range CIDR -gw MAC[=STATE],...", Short: "add or replace a row", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
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
			clients, err := cx.lbs(lb)
			if err != nil {
				return err
			}
			return each(clients, func(c *api.Client) error { return c.PutT4Row(cx.c, row) })
		})}
	setRow.Flags().StringVar(&rng, "range", "", "source range (CIDR)")
	setRow.Flags().StringVar(&gws, "gw", "", "gateway MACs, primary first, comma separated; MAC=down sets a state")
	deleteRow := &cobra.Command{Use: "delete-row [-lb URL|all] -range CIDR", Short: "remove a row", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if rng == "" {
				return usagef("t4 delete-row needs -range")
			}
			clients, err := cx.lbs(lb)
			if err != nil {
				return err
			}
			return each(clients, func(c *api.Client) error { return c.DeleteT4Row(cx.c, rng) })
		})}
	deleteRow.Flags().StringVar(&rng, "range", "", "source range (CIDR)")
	gwState := &cobra.Command{Use: "gateway-state [-lb URL|all] -mac MAC -state up|down", Short: "set a gateway's state in every row",
		Long: `Sets a gateway's state in every T4 row of the LBs. A gateway of samepath-control's
T1 with this MAC has its LB state owned by samepath-control, which re-asserts
it on every LB (health lb_resync, 30 s by default): such a change is undone, and
samepathctl warns and names the command that changes it at the source
(samepathctl gateways state NAME up|drain|down).`,
		Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if mac == "" || (state != api.StateUp && state != api.StateDown) {
				return usagef("t4 gateway-state needs -mac and -state up|down")
			}
			clients, err := cx.lbs(lb)
			if err != nil {
				return err
			}
			if err := each(clients, func(c *api.Client) error { return c.SetGatewayState(cx.c, mac, state) }); err != nil {
				return err
			}
			cx.warnOwnedState(lb, mac, state)
			return nil
		})}
	gwState.Flags().StringVar(&mac, "mac", "", "gateway MAC")
	gwState.Flags().StringVar(&state, "state", "", "up or down")
	gwState.RegisterFlagCompletionFunc("state", fixed(api.StateUp, api.StateDown))
	gwState.RegisterFlagCompletionFunc("mac", a.completeMACs)
	load := &cobra.Command{Use: "load [-lb URL|all] -file F", Short: "replace the whole T4 atomically", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if file == "" {
				return usagef("t4 load needs -file")
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var t api.T4
			if err := json.Unmarshal(b, &t); err != nil {
				return fmt.Errorf("parse %s: %w", file, err)
			}
			clients, err := cx.lbs(lb)
			if err != nil {
				return err
			}
			return each(clients, func(c *api.Client) error { return c.SetT4(cx.c, t) })
		})}
	load.Flags().StringVar(&file, "file", "", "JSON file with a whole T4 ({\"rows\":[...]}), replaced atomically")
	return a.group(t4, nil, show, setRow, deleteRow, gwState, load)
}

// warnOwnedState warns when samepath-control owns the LB state of the
// gateway with this MAC and holds another state than the one just set:
// its LB sync re-asserts its own and undoes the change. The warning
// names the command that changes the state at the source. An LB the
// control process does not sync (or no control process) gets none.
func (cx *ctx) warnOwnedState(lb, mac, state string) {
	var desired []api.GatewayState
	if err := cx.get("/v1/lbs/gateway-states", &desired); err != nil {
		return
	}
	if lb != "all" {
		var ls []control.LBInfo
		if err := cx.get("/v1/lbs", &ls); err != nil {
			return
		}
		synced := false
		for _, l := range ls {
			synced = synced || strings.TrimRight(l.API, "/") == strings.TrimRight(lb, "/")
		}
		if !synced {
			return
		}
	}
	for _, d := range desired {
		if !strings.EqualFold(d.MAC, mac) || d.State == state {
			continue
		}
		name := "NAME"
		var gs []aaa.Gateway
		if cx.get("/v1/gateways", &gs) == nil {
			for _, g := range gs {
				if strings.EqualFold(g.MAC, mac) {
					name = g.Name
				}
			}
		}
		admin := aaa.AdminDown
		if state == api.StateUp {
			admin = aaa.AdminUp
		}
		fmt.Fprintf(cx.errw, "samepathctl: warning: gateway %s is %s in samepath-control's T1, which owns its LB state (%s) and re-asserts it on every LB it syncs (health lb_resync, 30s by default), undoing this change; change it at the source: samepathctl gateways state %s %s\n",
			mac, name, d.State, name, admin)
	}
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

func (a *app) daemonCmd() *cobra.Command {
	var u string
	status := &cobra.Command{Use: "status -daemon URL", Short: "a samepathd's status", Args: nargs(0), RunE: a.run(func(cx *ctx, _ []string) error {
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
	})}
	status.Flags().StringVar(&u, "daemon", "", "samepathd control API URL")
	status.RegisterFlagCompletionFunc("daemon", a.completeDaemons)
	rt := a.daemonRuntimeCmd(&u)
	rt.Flags().StringVar(&u, "daemon", "", "samepathd control API URL")
	rt.RegisterFlagCompletionFunc("daemon", a.completeDaemons)
	return a.group(&cobra.Command{Use: "daemon", Short: "a samepathd's status and per-worker runtime"}, nil, status, rt)
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
