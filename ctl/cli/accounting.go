package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"samepath/dp/acct"
)

const accountingHelp = "accounting -log PATH [-user U] [-device D] [-service S] [-service-type T] [-kind final|interim] [-from RFC3339] [-to RFC3339] [-o table|json]"

// cmdAccounting reads a gateway's accounting log (dp/acct: PATH, its
// rotated files PATH.N, or a directory holding accounting.log) and shows
// the records that match, oldest first. -from/-to select records whose
// [start, end] overlaps [from, to). It reads files only: run it where
// the log is.
func cmdAccounting(cx *ctx, args []string) error {
	var f acct.Filter
	var path, from, to, format string
	fs, err := sub("accounting", accountingHelp, args, func(fs *flag.FlagSet) {
		fs.StringVar(&path, "log", "", "accounting log: a file (its rotated FILE.N are read too) or a directory holding accounting.log")
		fs.StringVar(&f.User, "user", "", "subscriber (user id)")
		fs.StringVar(&f.Device, "device", "", "mobile device id")
		fs.StringVar(&f.Service, "service", "", "service name (T6)")
		fs.StringVar(&f.ServiceType, "service-type", "", "service type (T9)")
		fs.StringVar(&f.Kind, "kind", "", "final or interim")
		fs.StringVar(&from, "from", "", "records ending at or after this time (RFC 3339)")
		fs.StringVar(&to, "to", "", "records starting before this time (RFC 3339)")
		fs.StringVar(&format, "o", "", "output: table or json (one object per line); default: samepathctl's -o")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 || path == "" {
		return usagef("usage: samepathctl %s", accountingHelp)
	}
	if f.Kind != "" && f.Kind != "final" && f.Kind != "interim" {
		return usagef("accounting: -kind must be final or interim")
	}
	asJSON := cx.json
	switch format {
	case "":
	case "json":
		asJSON = true
	case "table":
		asJSON = false
	default:
		return usagef("accounting: -o must be table or json")
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
	if asJSON {
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
		fmt.Fprintf(os.Stderr, "samepathctl accounting: %s skipped (%d torn, %d not records) in %d files\n",
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
