package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"samepath/perf/tcpsplit"
	"samepath/testbed/privtest"
)

// The demo's TCP termination part downloads the same bytes through NAT
// and through the terminator over the emulated wireless link and prints
// both goodputs side by side.
func TestSplitDemo(t *testing.T) {
	privtest.Require(t)
	bin, err := BuildBinaries(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := splitDemo(ctx, Options{Samepathd: bin, Out: &out})
	t.Logf("\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, s := range res.Samples {
		got[s.Variant] = s.Bytes
	}
	if got[tcpsplit.NAT] != splitSize || got[tcpsplit.Term] != splitSize {
		t.Errorf("downloaded %v, want %d bytes through each", got, splitSize)
	}
	for _, want := range []string{"port-key NAT", "terminator", "goodput", "Mbit/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
