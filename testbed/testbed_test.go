package testbed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"samepath/testbed/fig2"
	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

func TestNewPrefix(t *testing.T) {
	a, b := NewPrefix(), NewPrefix()
	if !strings.HasPrefix(a, Family) || len(a) != len(Family)+4 || a == b {
		t.Errorf("NewPrefix gave %q and %q", a, b)
	}
	if _, err := fig2.NewPlan(a, 2, false); err != nil {
		t.Errorf("prefix %q not usable: %v", a, err)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	if _, err := Resolve(dir, ""); err == nil {
		t.Error("resolved a run with none")
	}
	os.WriteFile(filepath.Join(dir, "sptbaaaa.json"), []byte("{}"), 0o644)
	if p, err := Resolve(dir, "fig2"); err != nil || p != "sptbaaaa" {
		t.Errorf("Resolve(fig2) = %q %v", p, err)
	}
	os.WriteFile(filepath.Join(dir, "sptbbbbb.json"), []byte("{}"), 0o644)
	if _, err := Resolve(dir, ""); err == nil {
		t.Error("resolved one of two runs without a name")
	}
	if p, err := Resolve(dir, "sptbbbbb"); err != nil || p != "sptbbbbb" {
		t.Errorf("Resolve(sptbbbbb) = %q %v", p, err)
	}
	if _, err := Resolve(dir, "nope"); err == nil {
		t.Error("resolved an unknown run")
	}
}

// A crashed run leaves a namespace with a process in it and no state file:
// list reports it as a leftover and clean removes both. The family is unique
// to this test so that parallel runs of other tests are not touched.
func TestListCleanLeftovers(t *testing.T) {
	privtest.Require(t)
	family := privtest.Name("sptq", "")
	ns := family + "x-mob1"
	if err := topo.CreateNetns(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.KillProcs(family, time.Second); topo.DeleteNetns(ns) })
	cmd := topo.Command(ns, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	dir := t.TempDir()
	var runs []Run
	var err error
	for i := 0; i < 100; i++ {
		runs, err = list(dir, family)
		if err == nil && len(runs) == 1 && runs[0].Processes == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(runs) != 1 || runs[0].Prefix != family+"x" || runs[0].Topology != "" || len(runs[0].Namespaces) != 1 || runs[0].Processes != 1 {
		t.Fatalf("list = %+v", runs)
	}
	if err := clean(dir, family); err != nil {
		t.Fatal(err)
	}
	if runs, _ := list(dir, family); len(runs) != 0 {
		t.Errorf("after clean: %+v", runs)
	}
	if ps, _ := topo.Procs(family); len(ps) != 0 {
		t.Errorf("processes after clean: %+v", ps)
	}
}
