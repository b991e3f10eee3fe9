package balance

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// picks counts n choices per server index.
func picks(t *Table, id uint32, n int) map[int]int {
	got := map[int]int{}
	for range n {
		_, i, ok := t.Pick(id)
		if !ok {
			got[-1]++
			continue
		}
		got[i]++
	}
	return got
}

func TestAdminStates(t *testing.T) {
	tb := newTable(t, svcCfg("web", "10.30.0.1:80", RoundRobin, ConnectionUnit, group(3)))
	id, _ := tb.ID("web")
	s1, s2 := ap("10.1.0.2:80"), ap("10.1.0.3:80")
	if was, err := tb.SetAdmin("web", s1, AdminDrain); err != nil || was != AdminUp {
		t.Fatalf("drain: was %v, %v", was, err)
	}
	if was, err := tb.SetAdmin("web", s2, AdminMaint); err != nil || was != AdminUp {
		t.Fatalf("maint: was %v, %v", was, err)
	}
	if d := cmp.Diff(map[int]int{0: 6}, picks(tb, id, 6)); d != "" {
		t.Errorf("picks with 1 drained and 2 in maint (-want +got):\n%s", d)
	}
	// Health is the Prober's and stays apart: a failing and recovering
	// check leaves the drain alone, and the admin state leaves health.
	if err := tb.SetServerHealth("web", s1, false); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetServerHealth("web", s1, true); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetServerHealth("web", s2, false); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.SetAdmin("web", s2, AdminUp); err != nil {
		t.Fatal(err)
	}
	type st struct {
		Admin       AdminState
		Up, Healthy bool
	}
	var got []st
	for _, v := range tb.Status()[0].Servers {
		got = append(got, st{v.Admin, v.Up, v.Healthy})
	}
	want := []st{{AdminUp, true, true}, {AdminDrain, true, true}, {AdminUp, true, false}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("status after health changes (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[int]int{0: 4}, picks(tb, id, 4)); d != "" {
		t.Errorf("picks: server 2 is up but failing (-want +got):\n%s", d)
	}
	// The configuration view carries the state, and Put takes it back.
	cfg := tb.Services()[0]
	if !cfg.Servers[1].Up || !cfg.Servers[1].Drain || cfg.Servers[0].Drain {
		t.Errorf("Services(): %+v", cfg.Servers)
	}
	cfg.Servers[0].Up = false
	if _, err := tb.Put(cfg); err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, v := range tb.Status()[0].Servers {
		got = append(got, st{v.Admin, v.Up, v.Healthy})
	}
	want = []st{{AdminMaint, false, true}, {AdminDrain, true, true}, {AdminUp, true, false}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("status after Put (-want +got):\n%s", d)
	}
	if _, err := tb.SetAdmin("web", ap("10.9.9.9:80"), AdminDrain); !errors.Is(err, ErrNoServer) {
		t.Errorf("unknown server: %v", err)
	}
	if _, err := tb.SetAdmin("web", s1, NumAdminStates); !errors.Is(err, ErrBadAdminState) {
		t.Errorf("bad state: %v", err)
	}
}

func TestParseAdminState(t *testing.T) {
	for in, want := range map[string]AdminState{"": AdminUp, "up": AdminUp, "Ready": AdminUp, "drain": AdminDrain, "maint": AdminMaint, "down": AdminMaint} {
		if got, err := ParseAdminState(in); err != nil || got != want {
			t.Errorf("ParseAdminState(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseAdminState("sideways"); !errors.Is(err, ErrBadAdminState) {
		t.Errorf("sideways: %v", err)
	}
}

// TestDrainKeepsFlowsMovesNewOnes: a flow started on a server that then
// drains keeps it (its index stays valid, FlowEnd gives the count back);
// the session's next flow goes elsewhere, also for a login-unit record
// kept on the drained server.
func TestDrainKeepsFlowsMovesNewOnes(t *testing.T) {
	for _, typ := range []UnitType{ConnectionUnit, LoginUnit, ServiceUnit} {
		t.Run(typ.String(), func(t *testing.T) {
			tb := newTable(t, svcCfg("web", "10.30.0.1:80", RoundRobin, typ, group(2)))
			d, err := NewDist(tb, 16)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := tb.ID("web")
			first, ok := d.Decide(1, id, FlowStart)
			if !ok {
				t.Fatal("no server")
			}
			addr, _, _ := tb.Server(id, first)
			if _, err := tb.SetAdmin("web", addr, AdminDrain); err != nil {
				t.Fatal(err)
			}
			if a, _, ok := tb.Server(id, first); !ok || a != addr {
				t.Fatalf("the drained server's index moved: %v %v", a, ok)
			}
			next, ok := d.Decide(1, id, FlowStart)
			if !ok || next == first {
				t.Fatalf("new flow after drain: server %d (%v), want the other one", next, ok)
			}
			conns := func(i int) int64 { return tb.Status()[0].Servers[i].Conns }
			if conns(first) != 1 || conns(next) != 1 {
				t.Errorf("active flows %d/%d, want 1/1", conns(first), conns(next))
			}
			d.FlowEnd(1, id, first) // the old flow finishes on the drained server
			if conns(first) != 0 {
				t.Errorf("drained server's flows after FlowEnd: %d", conns(first))
			}
		})
	}
}

func TestSetWeightWas(t *testing.T) {
	tb := newTable(t, svcCfg("web", "10.30.0.1:80", WeightedRoundRobin, ConnectionUnit, group(2)))
	id, _ := tb.ID("web")
	if was, err := tb.SetWeightWas("web", ap("10.1.0.1:80"), 3); err != nil || was != 1 {
		t.Fatalf("set weight: was %d, %v", was, err)
	}
	if d := cmp.Diff(map[int]int{0: 30, 1: 10}, picks(tb, id, 40)); d != "" {
		t.Errorf("picks after weight 3:1 (-want +got):\n%s", d)
	}
	if _, err := tb.SetWeightWas("web", ap("10.1.0.1:80"), 0); !errors.Is(err, ErrBadConfig) {
		t.Errorf("weight 0: %v", err)
	}
}

// TestAdminWhilePicking: Pick on other goroutines while the state flips
// (copy-on-write, no lock on the read side): run with -race. A drained
// or maint server is never chosen after SetAdmin returned.
func TestAdminWhilePicking(t *testing.T) {
	tb := newTable(t, svcCfg("web", "10.30.0.1:80", LeastConn, ConnectionUnit, group(4)))
	id, _ := tb.ID("web")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, i, ok := tb.Pick(id); ok {
					tb.Acquire(id, i)
					tb.Release(id, i)
				}
			}
		}()
	}
	for i := range 200 {
		st := AdminState(i % int(NumAdminStates))
		if _, err := tb.SetAdmin("web", ap("10.1.0.4:80"), st); err != nil {
			t.Fatal(err)
		}
		if st != AdminUp {
			for range 8 {
				if _, j, _ := tb.Pick(id); j == 3 {
					t.Fatalf("server in %v chosen", st)
				}
			}
		}
	}
	close(stop)
	wg.Wait()
}
