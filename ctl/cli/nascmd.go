package cli

import (
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"samepath/ctl/nas"
)

// cmdNAS runs the NAS emulator: it logs mobiles in over real RADIUS and
// drives their accounting (FIG. 3, 30, 31). The testbed runs it inside the
// NAS namespace.
func cmdNAS(cx *ctx, args []string) error {
	var cl nas.Client
	var secret, prefix, password string
	var n, first int
	var ec nas.EmulateConfig
	fs, err := sub("nas", "nas -auth HOST:PORT -acct HOST:PORT -secret S -user PREFIX -password PW -mobiles N [-interims K] [-dormant] [-logout]", args, func(fs *flag.FlagSet) {
		fs.StringVar(&cl.Auth, "auth", "127.0.0.1:1812", "RADIUS authentication server")
		fs.StringVar(&cl.Acct, "acct", "127.0.0.1:1813", "RADIUS accounting server")
		fs.StringVar(&secret, "secret", "", "shared secret")
		fs.StringVar(&cl.NASID, "nas-id", "samepath-nas", "NAS-Identifier")
		fs.StringVar(&prefix, "user", "mobile", "user names are PREFIX<i>, devices IMEI-PREFIX<i>")
		fs.StringVar(&password, "password", "", "password of every user")
		fs.IntVar(&n, "mobiles", 1, "number of mobiles")
		fs.IntVar(&first, "first", 0, "index of the first mobile")
		fs.IntVar(&ec.Interims, "interims", 1, "Interim-Updates per mobile")
		fs.BoolVar(&ec.Dormant, "dormant", false, "go dormant (Stop Idle-Timeout) and back (Start) once")
		fs.BoolVar(&ec.Logout, "logout", false, "end with Stop User-Request")
		fs.DurationVar(&cl.Timeout, "timeout", 2*time.Second, "per try")
		fs.IntVar(&cl.Retries, "retries", 2, "retries per request")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 || secret == "" || n <= 0 {
		return usagef("nas needs -secret and -mobiles > 0")
	}
	cl.Secret = []byte(secret)
	ms := make([]nas.Mobile, n)
	for i := range ms {
		ms[i] = nas.Mobile{User: fmt.Sprintf("%s%d", prefix, first+i), Password: password, Device: fmt.Sprintf("IMEI-%s%d", prefix, first+i)}
	}
	steps := cl.Emulate(cx.c, ms, ec)
	failed := 0
	for _, s := range steps {
		if s.Err != "" {
			failed++
		}
	}
	err = cx.emit(steps, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "DEVICE\tIP\tSESSION\tERROR")
		for _, s := range steps {
			ip := "-"
			if s.IP.IsValid() {
				ip = s.IP.String()
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.Device, ip, s.Session, dash(s.Err))
		}
	})
	if err != nil {
		return err
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "samepathctl nas: %d of %d mobiles failed\n", failed, n)
		return fmt.Errorf("%d mobiles failed", failed)
	}
	return nil
}
