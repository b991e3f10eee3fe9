package nsthread

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

func TestPinAndStay(t *testing.T) {
	var got unix.CPUSet
	err := Run("", 0, func() error { return unix.SchedGetaffinity(0, &got) })
	if err != nil {
		t.Fatal(err)
	}
	if got.Count() != 1 || !got.IsSet(0) {
		t.Fatalf("affinity inside Run: %d CPUs, cpu0 %v", got.Count(), got.IsSet(0))
	}
}

func TestMissingNamespace(t *testing.T) {
	ran := false
	if err := Run("/nonexistent/netns", -1, func() error { ran = true; return nil }); err == nil || ran {
		t.Fatalf("err %v, ran %v: want an error and no call", err, ran)
	}
}

// The function runs inside the namespace; the caller's thread stays out.
func TestEntersNamespace(t *testing.T) {
	privtest.Require(t)
	ns := privtest.Name("nst", "")
	if err := topo.CreateNetns(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.DeleteNetns(ns) })
	want, err := os.Stat(Path(ns))
	if err != nil {
		t.Fatal(err)
	}
	var inside os.FileInfo
	if err := Run(ns, -1, func() error {
		var err error
		inside, err = os.Stat("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(want, inside) {
		t.Fatal("function did not run in the namespace")
	}
	here, err := os.Stat("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(want, here) {
		t.Fatal("the caller's thread was moved into the namespace")
	}
}
