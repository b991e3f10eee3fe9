package neigh

import "testing"

func TestCache(t *testing.T) {
	a := [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}
	b := [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 2}
	macA, macB, macA2 := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, [6]byte{2, 0, 0, 0, 0, 3}
	tab := New()
	tab.Set(map[[16]byte][6]byte{a: macA, b: macB})
	c := tab.NewCache()
	for i, tc := range []struct {
		ip   [16]byte
		want [6]byte
	}{{a, macA}, {a, macA}, {b, macB}, {a, macA}} {
		if got, ok := c.Lookup(tc.ip); !ok || got != tc.want {
			t.Fatalf("lookup %d: %v %v, want %v", i, got, ok, tc.want)
		}
	}
	// A refreshed table is seen at once, also for the memoized address.
	tab.Set(map[[16]byte][6]byte{a: macA2})
	if got, ok := c.Lookup(a); !ok || got != macA2 {
		t.Errorf("after refresh: %v %v, want %v", got, ok, macA2)
	}
	if got, ok := c.Lookup(b); ok {
		t.Errorf("b is gone from the table, lookup gave %v", got)
	}
	// The miss was handed to the resolver.
	select {
	case ip := <-tab.misses:
		if ip != b {
			t.Errorf("resolver asked for %v, want %v", ip, b)
		}
	default:
		t.Error("miss not handed to the resolver")
	}
	// A miss leaves the memo as it was.
	if got, ok := c.Lookup(a); !ok || got != macA2 {
		t.Errorf("after a miss: %v %v, want %v", got, ok, macA2)
	}
}

func TestCacheAllocs(t *testing.T) {
	ip := [16]byte{15: 1}
	tab := New()
	tab.Set(map[[16]byte][6]byte{ip: {2, 0, 0, 0, 0, 1}})
	c := tab.NewCache()
	if n := testing.AllocsPerRun(100, func() { c.Lookup(ip) }); n != 0 {
		t.Errorf("%v allocations per lookup", n)
	}
}
