package control_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/nas"
	"samepath/ctl/session"
)

type childAddrs struct{ Auth, Acct, API string }

// childMain runs a control process in this (re-executed) test binary.
func childMain(cfgPath string) int {
	cfg, err := control.LoadConfig(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := control.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.Marshal(childAddrs{c.AuthAddr().String(), c.AcctAddr().String(), c.APIAddr().String()})
	os.WriteFile(os.Getenv("SAMEPATH_CONTROL_READY"), b, 0o600)
	if err := c.Run(context.Background()); err != nil { // ends by SIGKILL
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T, cfgPath string) (*exec.Cmd, childAddrs) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SAMEPATH_CONTROL_CHILD="+cfgPath, "SAMEPATH_CONTROL_READY="+ready)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var a childAddrs
	eventually(t, "child ready", func() bool {
		b, err := os.ReadFile(ready)
		return err == nil && json.Unmarshal(b, &a) == nil
	})
	return cmd, a
}

// TestSIGKILLKeepsAcknowledgedSessions kills the control process while
// NASes are starting sessions and checks that every session whose
// Accounting-Response arrived is in T3 after a restart, with its address.
func TestSIGKILLKeepsAcknowledgedSessions(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(filepath.Join(dir, "state"), nil, nil, nil)
	cfg.Health.Disabled = true
	y, err := yaml.Marshal(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "control.yaml")
	os.WriteFile(cfgPath, y, 0o600)

	cmd, addrs := startChild(t, cfgPath)
	cl := &nas.Client{Auth: addrs.Auth, Acct: addrs.Acct, Secret: []byte("testing123"), Timeout: 500 * time.Millisecond, Retries: 0}
	var mu sync.Mutex
	acked := map[string]string{} // session -> ip
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				ip := fmt.Sprintf("10.100.%d.%d", w%2, 1+(w/2)*60+i%60) // distinct per worker
				err := cl.Account(ctx, nas.Acct{Status: rfc2866.AcctStatusType_Value_Start, SessionID: id, Device: "D" + id, IP: mustAddr(ip)})
				if err != nil {
					continue // the process died before answering: not acknowledged
				}
				mu.Lock()
				acked[id] = ip
				mu.Unlock()
				if i%60 == 59 {
					return // address block of this worker used up
				}
			}
		}()
	}
	eventually(t, "some sessions acknowledged", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 100 })
	cmd.Process.Signal(syscall.SIGKILL) // mid-load: the workers are still sending
	cmd.Wait()
	cancel()
	wg.Wait()

	_, addrs = startChild(t, cfgPath)
	c := api.NewClient(addrs.API)
	var ss []session.Session
	if err := c.Do(context.Background(), http.MethodGet, "/v1/sessions", nil, &ss); err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, s := range ss {
		have[s.ID] = s.IP.String()
	}
	var as []aaa.Assignment
	c.Do(context.Background(), http.MethodGet, "/v1/assignments", nil, &as)
	bound := map[string]bool{}
	for _, a := range as {
		bound[a.IP.String()] = a.Bound
	}
	for id, ip := range acked {
		if have[id] != ip {
			t.Errorf("acknowledged session %s (%s) lost after SIGKILL: have %q", id, ip, have[id])
		}
		if !bound[ip] {
			t.Errorf("address %s of acknowledged session %s not bound after restart", ip, id)
		}
	}
	t.Logf("%d acknowledged, %d sessions after restart", len(acked), len(ss))
}
