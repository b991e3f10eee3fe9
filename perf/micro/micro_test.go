package micro

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sample = `goos: linux
goarch: amd64
pkg: samepath/dp
cpu: AMD EPYC
BenchmarkLB/64B/1flows-2         	 1000000	       100.0 ns/op	 640.00 MB/s	       0 B/op	       0 allocs/op
BenchmarkLB/64B/1flows-2         	 1000000	       120.0 ns/op	 533.33 MB/s	       0 B/op	       0 allocs/op
BenchmarkLB/64B/1flows-2         	 1000000	       300.0 ns/op	 213.33 MB/s	       0 B/op	       0 allocs/op
BenchmarkGW/64B/1flows-2         	  968502	       251.5 ns/op	 254.43 MB/s	         3.973 Mpps	       4 B/op	       0 allocs/op
PASS
ok  	samepath/dp	2.537s
pkg: samepath/nat
BenchmarkT4LookupV4-2   	 5000000	        20.5 ns/op
--- FAIL: BenchmarkBroken
not a benchmark line 12 ns/op
`

func TestParse(t *testing.T) {
	rows := Parse(sample)
	if len(rows) != 3 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	lb := rows[0]
	if lb.Pkg != "samepath/dp" || lb.Name != "LB/64B/1flows" || lb.Runs != 3 {
		t.Errorf("row 0: %+v", lb)
	}
	if d := cmp.Diff(Summary{Median: 120, Min: 100, Max: 300}, lb.Metrics["ns/op"]); d != "" {
		t.Errorf("ns/op (-want +got):\n%s", d)
	}
	if rows[1].Metrics["Mpps"].Median != 3.973 || rows[1].Metrics["B/op"].Median != 4 {
		t.Errorf("GW metrics %+v", rows[1].Metrics)
	}
	if rows[2].Pkg != "samepath/nat" || rows[2].Metrics["ns/op"].Median != 20.5 {
		t.Errorf("row 2: %+v", rows[2])
	}
}

func TestMarkdownAndWrite(t *testing.T) {
	r := &Result{Config: DefaultConfig(), Rows: Parse(sample), Raw: sample, Failed: []string{"./dp/steer: exit status 1"}}
	dir := t.TempDir()
	md, raw := filepath.Join(dir, "B.md"), filepath.Join(dir, "res", "micro.txt")
	if err := r.Write(md, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(md)
	for _, want := range []string{BeginMarker, EndMarker, "| dp | LB/64B/1flows | 120 [100-300] | 533 | 0 | 0 |  |",
		"| dp | GW/64B/1flows | 252 | 254 | 4 | 0 | 3.97 Mpps |", "| nat | T4LookupV4 | 20.5 | - | - | - |", "(res/micro.txt)",
		"-count 5 -benchtime 100ms", "./dp/steer: exit status 1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("section lacks %q:\n%s", want, b)
		}
	}
	if got, _ := os.ReadFile(raw); string(got) != sample {
		t.Error("raw output not saved as is")
	}
}
