package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"samepath/ctl/nas"
)

// nasCmd runs the NAS emulator: it logs mobiles in over real RADIUS and
// drives their accounting (FIG. 3, 30, 31). The testbed runs it inside the
// NAS namespace. Its -timeout is per RADIUS try and shadows the global
// -timeout, which stays at its default for nas.
func (a *app) nasCmd() *cobra.Command {
	var cl nas.Client
	var secret, prefix, password string
	var n, first int
	var ec nas.EmulateConfig
	c := &cobra.Command{Use: "nas -auth HOST:PORT -acct HOST:PORT -secret S -user PREFIX -password PW -mobiles N [-interims K] [-dormant] [-logout]",
		Short: "NAS emulator: RADIUS login + accounting Start/Interim/Stop", Args: nargs(0),
		RunE: a.run(func(cx *ctx, _ []string) error {
			if secret == "" || n <= 0 {
				return usagef("nas needs -secret and -mobiles > 0")
			}
			return cx.nas(cl, secret, prefix, password, n, first, ec)
		})}
	fs := c.Flags()
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
	fs.DurationVar(&cl.Timeout, "timeout", 2*time.Second, "per RADIUS try (for nas it replaces the global -timeout, which stays 15s)")
	fs.IntVar(&cl.Retries, "retries", 2, "retries per request")
	return c
}

func (cx *ctx) nas(cl nas.Client, secret, prefix, password string, n, first int, ec nas.EmulateConfig) error {
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
	err := cx.emit(steps, func(w *tabwriter.Writer) {
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
		fmt.Fprintf(cx.errw, "samepathctl nas: %d of %d mobiles failed\n", failed, n)
		return fmt.Errorf("%d mobiles failed", failed)
	}
	return nil
}
