package radius

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"samepath/ctl/aaa"
	"samepath/ctl/control"
	"samepath/ctl/nas"
)

// BenchConfig sets up an in-process samepath-control for the radius
// benchmark (radload without -addr, BenchmarkAccessRequest).
type BenchConfig struct {
	Users    int // distinct users/devices, logging in again and again
	Conns    int
	Window   int
	Duration time.Duration
	Count    int
	Iter     int // PBKDF2 iterations of the users' hashes
	// NewDevices: every Access-Request comes from a device never seen
	// before (one user, many devices), so every Accept waits for a durable
	// address assignment. Otherwise Users devices log in again and again.
	NewDevices bool
}

// BenchAccess starts a control process on loopback with two gateways and
// Users users in a temporary state directory, warms it (one password check
// per user, paying PBKDF2 once), then measures Access-Request throughput and
// latency with nas.LoadGen. Every Accept is durable before it is sent.
func BenchAccess(ctx context.Context, bc BenchConfig) (nas.LoadResult, error) {
	if bc.Users <= 0 {
		bc.Users = 1000
	}
	dir, err := os.MkdirTemp("", "samepath-radbench-")
	if err != nil {
		return nas.LoadResult{}, err
	}
	defer os.RemoveAll(dir)
	cfg := control.DefaultConfig()
	cfg.StateDir = dir
	cfg.Radius.Auth, cfg.Radius.Acct = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Radius.Clients = []aaa.ClientConfig{{Prefix: "127.0.0.1", Secret: "bench-secret"}}
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Health.Disabled = true
	if bc.Iter > 0 {
		cfg.PBKDF2Iter = bc.Iter
	}
	cfg.Gateways = []aaa.GatewayConfig{{Name: "gw1", Range: "10.64.0.0/16"}, {Name: "gw2", Range: "10.65.0.0/16"}}
	c, err := control.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nas.LoadResult{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	defer func() { cancel(); <-done }()
	if bc.NewDevices {
		if _, err := c.Users.Put(aaa.User{ID: "bench", Password: "bench-pw"}); err != nil {
			return nas.LoadResult{}, err
		}
		if _, err := c.Users.CheckPAP("bench", []byte("bench-pw")); err != nil {
			return nas.LoadResult{}, err
		}
		ms := make([]nas.Mobile, 120000) // the two /16 ranges hold 131068
		for i := range ms {
			ms[i] = nas.Mobile{User: "bench", Password: "bench-pw", Device: fmt.Sprintf("NEW%08d", i)}
		}
		count := bc.Count
		if count <= 0 || count > len(ms) {
			count = len(ms)
		}
		return nas.LoadGen(ctx, nas.LoadConfig{Addr: c.AuthAddr().String(), Secret: []byte("bench-secret"), Mobiles: ms, Conns: bc.Conns, Window: bc.Window, Duration: bc.Duration, Count: count})
	}
	ms := make([]nas.Mobile, bc.Users)
	for i := range ms {
		ms[i] = nas.Mobile{User: fmt.Sprintf("user%d", i), Password: fmt.Sprintf("pw%d", i), Device: fmt.Sprintf("IMEI%08d", i)}
		if _, err := c.Users.Put(aaa.User{ID: ms[i].User, Password: ms[i].Password}); err != nil {
			return nas.LoadResult{}, err
		}
	}
	// Warm-up: one PAP check per user pays PBKDF2 once (then the HMAC memo
	// applies, as in a long-running server), two at a time.
	errc := make(chan error, 2)
	for w := 0; w < 2; w++ {
		go func() {
			for i := w; i < len(ms); i += 2 {
				if _, err := c.Users.CheckPAP(ms[i].User, []byte(ms[i].Password)); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for w := 0; w < 2; w++ {
		if err := <-errc; err != nil {
			return nas.LoadResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	return nas.LoadGen(ctx, nas.LoadConfig{Addr: c.AuthAddr().String(), Secret: []byte("bench-secret"), Mobiles: ms, Conns: bc.Conns, Window: bc.Window, Duration: bc.Duration, Count: bc.Count})
}
