package cli

import (
	"encoding/json"
	"fmt"
	"slices"
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
	var paths []string
	var from, to string
	c := &cobra.Command{Use: "accounting -log PATH [-log PATH...] [-user U] [-device D] [-service S] [-service-type T] [-acct-session-id ID] [-flow ID] [-kind final|interim] [-from RFC3339] [-to RFC3339] [-o table|json]",
		Short: "query gateways' accounting logs (T10)", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error { return cx.accounting(f, paths, from, to) })}
	fs := c.Flags()
	fs.StringArrayVar(&paths, "log", nil, "accounting log: a file (its rotated FILE.N are read too) or a directory holding accounting.log; repeat for several gateways' logs")
	fs.StringVar(&f.Flow, "flow", "", "one flow's records (its id, the records' flow), on every gateway whose -log is given")
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

func (cx *ctx) accounting(f acct.Filter, paths []string, from, to string) error {
	if len(paths) == 0 || slices.Contains(paths, "") {
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

	// Several logs (one per gateway): each line names its log and flow,
	// so one flow's records across a takeover read side by side.
	many := len(paths) > 1 || f.Flow != ""
	var st acct.ScanStats
	var err error
	if cx.json {
		enc := json.NewEncoder(cx.out)
		for _, path := range paths {
			var s acct.ScanStats
			s, err = acct.Scan(path, f, func(e *acct.Entry) error { return enc.Encode(e) })
			st = addScan(st, s)
			if err != nil {
				break
			}
		}
	} else {
		w := tabwriter.NewWriter(cx.out, 0, 4, 2, ' ', 0)
		head := "KIND\tSUBSCRIBER\tDEVICE\tSERVICE\tTYPE\tURL/SNI\tUP_BYTES\tDOWN_BYTES\tPACKETS(UP/DOWN)\tSTART\tDURATION\tCAUSE"
		if many {
			head = "LOG\t" + head + "\tFLOW"
		}
		fmt.Fprintln(w, head)
		for _, path := range paths {
			var s acct.ScanStats
			s, err = acct.Scan(path, f, func(e *acct.Entry) error {
				if many {
					fmt.Fprintf(w, "%s\t", path)
				}
				_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d/%d\t%s\t%s\t%s",
					e.Kind, dash(e.User), dash(e.Device), dash(e.Service), dash(e.ServiceType), dash(e.Attribute()),
					e.UpBytes, e.DownBytes, e.UpPackets, e.DownPackets,
					e.Start.UTC().Format(time.RFC3339), e.End.Sub(e.Start).Round(time.Millisecond), e.Cause)
				if many {
					fmt.Fprintf(w, "\t%s", dash(e.Flow))
				}
				fmt.Fprintln(w)
				return err
			})
			st = addScan(st, s)
			if err != nil {
				break
			}
		}
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

func addScan(a, b acct.ScanStats) acct.ScanStats {
	a.Files = append(a.Files, b.Files...)
	a.Lines += b.Lines
	a.Matched += b.Matched
	a.Torn += b.Torn
	a.Bad += b.Bad
	return a
}

func acctPlural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return strconv.Itoa(n) + " " + s + "s"
}
