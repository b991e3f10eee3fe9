package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"samepath/dp/balance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFlags(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"-listen", "-fixed", "example:", "curl -s http://SERVER:9990/load"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h output lacks %q:\n%s", want, out.String())
		}
	}
	for _, bad := range [][]string{{"-fixed", "101"}, {"-interval", "0s"}, {"extra"}, {"-nope"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	c, err := parseFlags(nil, io.Discard)
	if err != nil || c.listen != ":9990" || c.fixed >= 0 {
		t.Errorf("defaults %+v, %v", c, err)
	}
}

func serve(t *testing.T, c config) (url string, stop func() error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, c, l, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	return "http://" + l.Addr().String() + balance.AgentPath, func() error { cancel(); return <-done }
}

func getLoad(t *testing.T, url string) (int, float64) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, 0
	}
	v, err := balance.ParseLoad(b)
	if err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	return 200, v
}

func TestFixed(t *testing.T) {
	url, stop := serve(t, config{interval: time.Second, fixed: 42})
	if code, v := getLoad(t, url); code != 200 || v != 42 {
		t.Errorf("GET = %d %v, want 42", code, v)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestMeasured feeds the agent a stat file that changes between samples.
func TestMeasured(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stat")
	os.WriteFile(p, []byte("cpu 100 0 0 900 0 0 0 0\n"), 0o644)
	url, stop := serve(t, config{interval: 10 * time.Millisecond, fixed: -1, procStat: p})
	if code, _ := getLoad(t, url); code != http.StatusServiceUnavailable {
		// Possible only if a second sample already ran on the same counters: no ticks, no load.
		t.Errorf("before any change: status %d, want 503", code)
	}
	// Replace atomically, as the kernel's file never reads half-written.
	os.WriteFile(p+".new", []byte("cpu 160 0 0 940 0 0 0 0\n"), 0o644) // 60 busy of 100
	os.Rename(p+".new", p)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, v := getLoad(t, url)
		if code == 200 {
			if v != 60 {
				t.Errorf("load %v, want 60", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no load after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestRealProcStat(t *testing.T) {
	url, stop := serve(t, config{interval: 20 * time.Millisecond, fixed: -1, procStat: "/proc/stat"})
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, v := getLoad(t, url)
		if code == 200 {
			if v < 0 || v > 100 {
				t.Errorf("load %v out of range", v)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no load from /proc/stat after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBadProcStat(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = run(context.Background(), config{interval: time.Second, fixed: -1, procStat: filepath.Join(t.TempDir(), "none")}, l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("missing /proc/stat accepted")
	}
}
