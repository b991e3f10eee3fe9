package topo

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"samepath/testbed/privtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Two namespaces joined by one veth pair:
//
//	[tpA] a0 10.9.0.1/24 fd00:9::1/64 ---- veth ---- b0 10.9.0.2/24 fd00:9::2/64 [tpB]
func TestVethPingGROProcs(t *testing.T) {
	privtest.Require(t)
	prefix := privtest.Name("sptt", "")
	a, b := prefix+"-a", prefix+"-b"
	for _, n := range []string{a, b} {
		if err := CreateNetns(n); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		KillProcs(prefix, time.Second)
		DeleteNetns(a)
		DeleteNetns(b)
	})
	if err := CreateNetns(a); err == nil {
		t.Fatal("creating an existing namespace succeeded")
	}
	na, err := Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer na.Close()
	nb, err := Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if err := Veth(na, "a0", nil, nb, "b0", nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		n    *NS
		link string
		ps   []string
	}{{na, "a0", []string{"10.9.0.1/24", "fd00:9::1/64"}}, {nb, "b0", []string{"10.9.0.2/24", "fd00:9::2/64"}}} {
		for _, p := range s.ps {
			if err := s.n.AddrReplace(s.link, netip.MustParsePrefix(p)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.n.Up(s.link); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []struct {
		n    *NS
		link string
	}{{na, "a0"}, {nb, "b0"}} {
		if err := l.n.WaitOperUp(l.link, 3*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, dst := range []string{"10.9.0.2", "fd00:9::2"} {
		r, err := Ping(a, netip.MustParseAddr(dst), 3, 10*time.Millisecond, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Received != 3 {
			t.Errorf("ping %s: %d/%d replies", dst, r.Received, r.Sent)
		}
	}
	// Unreachable address: no reply, no error.
	r, err := Ping(a, netip.MustParseAddr("10.9.0.77"), 2, 10*time.Millisecond, 200*time.Millisecond)
	if err != nil || r.Received != 0 {
		t.Errorf("ping to nobody: %+v %v", r, err)
	}

	for _, on := range []bool{true, false} {
		if err := SetGRO(b, "b0", on); err != nil {
			t.Fatal(err)
		}
		got, err := GRO(b, "b0")
		if err != nil || got != on {
			t.Errorf("GRO after set %v: %v %v", on, got, err)
		}
	}

	cmd := Command(a, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	var ps []Proc
	for i := 0; i < 100; i++ { // ip netns exec replaces itself with sleep
		if ps, err = Procs(prefix); err == nil && len(ps) == 1 && ps[0].Comm == "sleep" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(ps) != 1 || ps[0].NS != a || ps[0].PID != cmd.Process.Pid {
		t.Fatalf("Procs = %+v, want the sleep (pid %d) in %s", ps, cmd.Process.Pid, a)
	}
	if err := KillProcs(prefix, time.Second); err != nil {
		t.Fatal(err)
	}
	if ps, _ := Procs(prefix); len(ps) != 0 {
		t.Errorf("after KillProcs: %+v", ps)
	}
	if v, err := ReadSysctl(a, "net/ipv6/conf/all/accept_dad"); err != nil || v != "0" {
		t.Errorf("accept_dad in new namespace = %q %v", v, err)
	}
	DeleteNetns(a)
	DeleteNetns(b)
	if left, _ := ListNetns(prefix); len(left) != 0 {
		t.Errorf("namespaces left: %v", left)
	}
}
