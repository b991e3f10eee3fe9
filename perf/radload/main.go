// Command radload measures RADIUS Access-Request throughput and latency:
// against an in-process samepath-control (default) or a running server
// (-addr). Used by `make perf` (BENCHMARKS.md "radius").
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"samepath/ctl/nas"
	"samepath/internal/version"
	"samepath/perf/radius"
)

func main() {
	addr := flag.String("addr", "", "RADIUS auth server host:port (default: start an in-process samepath-control)")
	secret := flag.String("secret", "testing123", "shared secret (with -addr)")
	user := flag.String("user", "", "user name (with -addr): users USER0..USERn-1, password -password, devices IMEI<n>")
	password := flag.String("password", "", "password (with -addr)")
	users := flag.Int("users", 1000, "distinct users/devices")
	conns := flag.Int("conns", 4, "UDP sockets")
	window := flag.Int("window", 64, "requests in flight per socket")
	dur := flag.Duration("duration", 3*time.Second, "measurement time")
	asJSON := flag.Bool("json", false, "print JSON")
	newDev := flag.Bool("new-devices", false, "every request from a new device (each Accept waits for a durable assignment)")
	iter := flag.Int("iter", 10000, "PBKDF2 iterations of the in-process users (paid once per user in the warm-up)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: radload [flags]\n\nexamples:\n  radload -duration 3s\n  radload -addr 127.0.0.1:1812 -secret s -user u -password pw -users 100\n\nflags:\n")
		flag.PrintDefaults()
	}
	version.AddFlag(flag.CommandLine, "radload", os.Stdout, os.Exit)
	flag.Parse()
	ctx := context.Background()
	var r nas.LoadResult
	var err error
	if *addr == "" {
		r, err = radius.BenchAccess(ctx, radius.BenchConfig{Users: *users, Conns: *conns, Window: *window, Duration: *dur, Iter: *iter, NewDevices: *newDev})
	} else {
		ms := make([]nas.Mobile, *users)
		for i := range ms {
			ms[i] = nas.Mobile{User: fmt.Sprintf("%s%d", *user, i), Password: *password, Device: fmt.Sprintf("IMEI%08d", i)}
		}
		r, err = nas.LoadGen(ctx, nas.LoadConfig{Addr: *addr, Secret: []byte(*secret), Mobiles: ms, Conns: *conns, Window: *window, Duration: *dur})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "radload:", err)
		os.Exit(1)
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	fmt.Println(r)
}
