package lograte

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

type statusErr int

func (e statusErr) Error() string   { return fmt.Sprintf("PUT /x: %d", int(e)) }
func (e statusErr) HTTPStatus() int { return int(e) }

func TestPushes(t *testing.T) {
	var buf bytes.Buffer
	p := NewPushes(slog.New(slog.NewJSONHandler(&buf, nil)), "T4 gateway state")
	p.Record("lb1", nil) // success without failures: silent
	for i := 0; i < 5; i++ {
		p.Record("lb1", fmt.Errorf("push: %w", statusErr(401)))
	}
	p.Record("lb2", errors.New("connection refused"))
	p.Record("lb1", nil)
	p.Record("lb1", nil)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%v %v %v status=%v failures=%v", m["level"], m["msg"], m["target"], m["status"], m["failures"]))
	}
	want := []string{
		"WARN T4 gateway state push failed lb1 status=401 failures=<nil>",
		"WARN T4 gateway state push failed lb2 status=<nil> failures=<nil>",
		"INFO T4 gateway state push recovered lb1 status=<nil> failures=5",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
