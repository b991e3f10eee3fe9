// Command samepath-demo runs the FIG. 2 demo (`make demo`): the testbed
// network in namespaces, samepathd load balancers at the three ingress
// points and gateways, samepath-control (RADIUS AAA, sessions, health),
// mobiles logging in through NAS emulators, a download to a mobile that
// moves across the ingress points, a summary with the session table, and
// the gateways' proxy accounting after the mobiles log out.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"samepath/internal/version"
	"samepath/testbed/demo"
	"samepath/testbed/linkem"
	"samepath/testbed/servers"
)

func main() {
	// The testbed runs this binary inside its namespaces as the servers
	// and link emulators.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve":
			os.Exit(servers.Main(os.Args[2:], os.Stderr))
		case "linkem":
			os.Exit(linkem.Main(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	exe, _ := os.Executable()
	def := filepath.Join(filepath.Dir(exe), "samepathd")
	samepathd := flag.String("samepathd", def, "samepathd binary")
	control := flag.String("control", "", "samepath-control binary (default: beside samepathd)")
	ctl := flag.String("samepathctl", "", "samepathctl binary, shows the tables at the end (default: beside samepathd)")
	steering := flag.String("steering", "afxdp", "LB steering: afxdp (Go pipeline on AF_XDP) or xdp (in-kernel offload)")
	size := flag.Int64("size", 20<<20, "bytes to download")
	hakill := flag.Bool("hakill", true, "kill gw1 (SIGKILL) under a download that completes through gw2 (gateway state sync), then restart it")
	dual := flag.Bool("dual-stack", true, "make mob2 dual-stack and download over IPv6 from group A's IPv6 address and, terminated, from its IPv4 servers too, moving between ingress points")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: samepath-demo [flags]   (as root)\n\nBuilds the FIG. 2 network in namespaces, starts samepathd LBs and gateways and\nsamepath-control, logs the mobiles in over RADIUS through NAS emulators (addresses from\nthe AAA), downloads from a server to a mobile that moves nas1 -> nas2 -> nas3 (the old\nNAS suspends the session, the new one resumes it), prints which LB and gateway carried\neach phase and the session tables, logs the mobiles out and shows the gateways' proxy\naccounting per subscriber, service and URL, and tears everything down (also on Ctrl-C).\n\nexample: samepath-demo -steering xdp -size 50000000\n\nflags:\n")
		flag.PrintDefaults()
	}
	version.AddFlag(flag.CommandLine, "samepath-demo", os.Stdout, os.Exit)
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "samepath-demo: run as root (network namespaces, XDP)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sum, err := demo.Run(ctx, demo.Options{Samepathd: *samepathd, Control: *control, Samepathctl: *ctl, Steering: *steering, Size: *size, HAKill: *hakill, Out: os.Stdout, DualStack: *dual})
	if err != nil {
		fmt.Fprintln(os.Stderr, "samepath-demo:", err)
		os.Exit(1)
	}
	if !sum.ChecksumOK {
		fmt.Fprintln(os.Stderr, "samepath-demo: downloaded bytes do not match")
		os.Exit(1)
	}
}
