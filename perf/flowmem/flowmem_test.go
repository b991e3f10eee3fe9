package flowmem

import (
	"context"
	"strings"
	"testing"
)

// A table of 100 000 flows (two key-port addresses) is filled, found and
// reported; memory per flow is positive and bounded.
func TestMeasureSmall(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Flows, cfg.Go = 100_000, ""
	r, err := Measure(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Live != cfg.Flows || r.GwAddrs != 2 {
		t.Errorf("live %d, %d addresses; want %d and 2", r.Live, r.GwAddrs, cfg.Flows)
	}
	if r.BytesPerFlow <= 0 || r.BytesPerFlow > 4096 || r.HeapFull < r.HeapEmpty/2 {
		t.Errorf("memory: %+v", r)
	}
	md := r.Markdown()
	for _, want := range []string{BeginMarker, EndMarker, "| 100000 |", "bytes per flow"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if _, err := Measure(context.Background(), Config{Flows: 0}); err == nil {
		t.Error("0 flows accepted")
	}
}
