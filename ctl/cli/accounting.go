package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"samepath/dp/acct"
)

// accountingCmd reads a gateway's accounting log (dp/acct: PATH, its
// rotated files PATH.N, or a directory holding accounting.log) and shows
// the records that match, oldest first. -from/-to select records whose
// [start, end] overlaps [from, to). It reads files only: run it where
// the log is. With -o json it prints one object per line.
func (a *app) accountingCmd() *cobra.Command {
	var f acct.Filter
	var path, from, to string
	c := &cobra.Command{Use: "accounting -log PATH [-user U] [-device D] [-service S] [-service-type T] [-acct-session-id ID] [-kind final|interim] [-from RFC3339] [-to RFC3339] [-o table|json]",
		Short: "query a gateway's accounting log (T10)", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error { return cx.accounting(f, path, from, to) })}
	fs := c.Flags()
	fs.StringVar(&path, "log", "", "accounting log: a file (its rotated FILE.N are read too) or a directory holding accounting.log")
	fs.StringVar(&f.User, "user", "", "subscriber (user id)")
	fs.StringVar(&f.Device, "device", "", "mobile device id")
	fs.StringVar(&f.Service, "service", "", "service name (T6)")
	fs.StringVar(&f.ServiceType, "service-type", "", "service type (T9)")
	fs.StringVar(&f.Kind, "kind", "", "final or interim")
	fs.StringVar(&f.AcctSessionID, "acct-session-id", "", "RADIUS Acct-Session-Id of the user session (joins RADIUS accounting)")
	fs.StringVar(&from, "from", "", "records ending at or after this time (RFC 3339)")
	fs.StringVar(&to, "to", "", "records starting before this time (RFC 3339)")
	c.RegisterFlagCompletionFunc("kind", fixed("final", "interim"))
	return c
}

func (cx *ctx) accounting(f acct.Filter, path, from, to string) error {
	if path == "" {
		return usagef("accounting needs -log")
	}
	if f.Kind != "" && f.Kind != "final" && f.Kind != "interim" {
		return usagef("accounting: -kind must be final or interim")
	}
	for _, t := range []struct {
		s   string
		dst *time.Time
	}{{from, &f.From}, {to, &f.To}} {
		if t.s == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.s)
		if err != nil {
			return usagef("accounting: %v", err)
		}
		*t.dst = v
	}

	var st acct.ScanStats
	var err error
	if cx.json {
		enc := json.NewEncoder(cx.out)
		st, err = acct.Scan(path, f, func(e *acct.Entry) error { return enc.Encode(e) })
	} else {
		w := tabwriter.NewWriter(cx.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "KIND\tSUBSCRIBER\tDEVICE\tSERVICE\tTYPE\tURL/SNI\tUP_BYTES\tDOWN_BYTES\tPACKETS(UP/DOWN)\tSTART\tDURATION\tCAUSE")
		st, err = acct.Scan(path, f, func(e *acct.Entry) error {
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d/%d\t%s\t%s\t%s\n",
				e.Kind, dash(e.User), dash(e.Device), dash(e.Service), dash(e.ServiceType), dash(e.Attribute()),
				e.UpBytes, e.DownBytes, e.UpPackets, e.DownPackets,
				e.Start.UTC().Format(time.RFC3339), e.End.Sub(e.Start).Round(time.Millisecond), e.Cause)
			return err
		})
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
	}
	if err != nil {
		return fmt.Errorf("accounting: %w", err)
	}
	if st.Torn > 0 || st.Bad > 0 {
		fmt.Fprintf(cx.errw, "samepathctl accounting: %s skipped (%d torn, %d not records) in %d files\n",
			acctPlural(st.Torn+st.Bad, "line"), st.Torn, st.Bad, len(st.Files))
	}
	return nil
}

func acctPlural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return strconv.Itoa(n) + " " + s + "s"
}
