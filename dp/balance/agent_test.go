package balance

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const stat1 = `cpu  100 10 50 800 40 0 0 0 0 0
cpu0 50 5 25 400 20 0 0 0 0 0
intr 12345
`

// 25 busy ticks (20 user + 5 system) of 100 (75 idle).
const stat2 = `cpu  120 10 55 870 45 0 0 0 0 0
cpu0 60 5 27 435 22 0 0 0 0 0
`

func TestParseProcStat(t *testing.T) {
	a, err := ParseProcStat([]byte(stat1))
	if err != nil {
		t.Fatal(err)
	}
	if a != (CPUTimes{Busy: 160, Total: 1000}) {
		t.Errorf("stat1 = %+v", a)
	}
	b, _ := ParseProcStat([]byte(stat2))
	if l, ok := LoadBetween(a, b); !ok || l != 25 {
		t.Errorf("load = %v,%v; want 25", l, ok)
	}
	if _, ok := LoadBetween(b, b); ok {
		t.Error("no ticks: ok")
	}
	// Old kernels have only 4 fields.
	if c, err := ParseProcStat([]byte("cpu 1 2 3 4\n")); err != nil || c != (CPUTimes{Busy: 6, Total: 10}) {
		t.Errorf("4 fields = %+v, %v", c, err)
	}
	for _, bad := range []string{"", "intr 1\n", "cpu 1 2\n", "cpu 1 2 x 4\n"} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("ParseProcStat(%q) accepted", bad)
		}
	}
}

func TestCPUSampler(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stat")
	os.WriteFile(p, []byte(stat1), 0o644)
	s := NewCPUSampler(p)
	if err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Load(); ok {
		t.Error("load known after one sample")
	}
	os.WriteFile(p, []byte(stat2), 0o644)
	if err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	if l, ok := s.Load(); !ok || l != 25 {
		t.Errorf("load = %v,%v", l, ok)
	}
	// A failed read makes the load unknown until two good samples.
	os.Remove(p)
	if err := s.Sample(); err == nil {
		t.Fatal("missing file: no error")
	}
	if _, ok := s.Load(); ok {
		t.Error("load still known after a failed sample")
	}
	os.WriteFile(p, []byte(stat1), 0o644)
	s.Sample()
	if _, ok := s.Load(); ok {
		t.Error("load known after one good sample")
	}
	os.WriteFile(p, []byte(stat2), 0o644)
	s.Sample()
	if l, ok := s.Load(); !ok || l != 25 {
		t.Errorf("after recovery load = %v,%v", l, ok)
	}
	// Run reports errors and returns on cancel.
	os.Remove(p)
	ctx, cancel := context.WithCancel(context.Background())
	var errs int
	done := make(chan struct{})
	go func() {
		s.Run(ctx, time.Millisecond, func(error) {
			if errs++; errs == 3 {
				cancel()
			}
		})
		close(done)
	}()
	<-done
	if errs < 3 {
		t.Errorf("Run reported %d errors", errs)
	}
	// The real /proc/stat parses and gives a value in range.
	r := NewCPUSampler("")
	if err := r.Sample(); err != nil {
		t.Fatal(err)
	}
	if err := NewCPUSampler(filepath.Join(t.TempDir(), "none")).Sample(); err == nil {
		t.Error("missing file accepted")
	}
}

func TestAgentHandler(t *testing.T) {
	v, ok := 37.54, false
	srv := httptest.NewServer(AgentHandler(func() (float64, bool) { return v, ok }))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/load"); code != http.StatusServiceUnavailable {
		t.Errorf("unknown load: status %d", code)
	}
	ok = true
	tests := []struct{ path, want string }{
		{"/load", "{\"cpu\":37.5}\n"},
		{"/load?format=text", "37.5%\n"},
	}
	for _, tt := range tests {
		code, body := get(tt.path)
		if code != 200 || body != tt.want {
			t.Errorf("GET %s = %d %q, want %q", tt.path, code, body, tt.want)
		}
		if l, err := ParseLoad([]byte(body)); err != nil || l != 37.5 {
			t.Errorf("ParseLoad(%q) = %v, %v", body, l, err)
		}
	}
	if code, _ := get("/other"); code != http.StatusNotFound {
		t.Errorf("/other: %d", code)
	}
}
