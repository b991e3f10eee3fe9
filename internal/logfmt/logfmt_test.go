package logfmt

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	var b bytes.Buffer
	l, err := New(&b, JSON, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hello", "k", 1)
	m := map[string]any{}
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m["msg"] != "hello" || m["k"] != float64(1) {
		t.Fatalf("json line %q: %v %v", b.String(), m, err)
	}
	b.Reset()
	if l, err = New(&b, Text, slog.LevelInfo); err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Info("hello", "k", 1)
	if got := b.String(); !strings.Contains(got, "msg=hello k=1") || strings.Contains(got, "hidden") {
		t.Fatalf("text line %q", got)
	}
	if _, err := New(&b, "xml", slog.LevelInfo); err == nil || !strings.Contains(err.Error(), "-log-format") {
		t.Fatalf("xml: %v, want an error naming -log-format", err)
	}
}
