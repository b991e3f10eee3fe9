package nat

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mac(b byte) MAC { return MAC{0x02, 0, 0, 0, 0, b} }

func TestT4Lookup(t *testing.T) {
	tab, err := NewT4([]T4Row{
		{Range: netip.MustParsePrefix("10.1.0.0/16"), Gateways: []Gateway{{mac(1), true}, {mac(2), true}}},
		{Range: netip.MustParsePrefix("10.2.0.0/24"), Gateways: []Gateway{{mac(2), false}, {mac(1), true}}},
		{Range: netip.MustParsePrefix("10.3.0.0/24"), Gateways: []Gateway{{mac(3), false}}},
		{Range: netip.MustParsePrefix("fd00:101::/64"), Gateways: []Gateway{{mac(1), true}}},
		{Range: netip.MustParsePrefix("0.0.0.0/32"), Gateways: []Gateway{{mac(4), true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		want MAC
		res  Result
	}{
		{"10.1.0.0", mac(1), Found},
		{"10.1.255.255", mac(1), Found},
		{"10.0.255.255", MAC{}, NoRow},
		{"10.2.0.7", mac(1), Found}, // primary down: first substitute
		{"10.2.1.0", MAC{}, NoRow},
		{"10.3.0.1", MAC{}, AllDown},
		{"0.0.0.0", mac(4), Found},
		{"0.0.0.1", MAC{}, NoRow},
		{"255.255.255.255", MAC{}, NoRow},
		{"fd00:101::1", mac(1), Found},
		{"fd00:101:0:0:ffff:ffff:ffff:ffff", mac(1), Found},
		{"fd00:101:0:1::", MAC{}, NoRow},
		{"::ffff:10.1.2.3", mac(1), Found}, // IPv4-mapped matches the IPv4 row
		{"::", MAC{}, NoRow},
	} {
		got, res := tab.Lookup(netip.MustParseAddr(tc.addr))
		if got != tc.want || res != tc.res {
			t.Errorf("Lookup(%s) = %s, %d; want %s, %d", tc.addr, got, res, tc.want, tc.res)
		}
	}
}

func TestT4Updates(t *testing.T) {
	p := netip.MustParsePrefix("10.1.0.0/16")
	tab, err := NewT4([]T4Row{{Range: p, Gateways: []Gateway{{mac(1), true}, {mac(2), true}}}})
	if err != nil {
		t.Fatal(err)
	}
	var mirrored [][]T4Row
	if err := tab.OnChange(func(r []T4Row) error { mirrored = append(mirrored, r); return nil }); err != nil {
		t.Fatal(err)
	}
	a := [4]byte{10, 1, 2, 3}
	if n, err := tab.SetGatewayState(mac(1), false); err != nil || n != 1 {
		t.Fatalf("SetGatewayState = %d, %v", n, err)
	}
	if got, _ := tab.LookupV4(a); got != mac(2) {
		t.Errorf("after primary down got %s, want substitute %s", got, mac(2))
	}
	tab.SetGatewayState(mac(2), false)
	if _, res := tab.LookupV4(a); res != AllDown {
		t.Errorf("all down: got result %d", res)
	}
	tab.SetGatewayState(mac(1), true)
	if got, _ := tab.LookupV4(a); got != mac(1) {
		t.Errorf("restored: got %s", got)
	}
	if _, err := tab.SetGatewayState(mac(9), true); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown gateway: err = %v", err)
	}
	if err := tab.Put(T4Row{Range: netip.MustParsePrefix("10.1.128.0/17"), Gateways: []Gateway{{mac(3), true}}}); !errors.Is(err, ErrOverlap) {
		t.Errorf("overlapping Put: err = %v", err)
	}
	if got, _ := tab.LookupV4(a); got != mac(1) {
		t.Errorf("failed update changed the table: got %s", got)
	}
	if err := tab.Delete(p); err != nil {
		t.Fatal(err)
	}
	if _, res := tab.LookupV4(a); res != NoRow {
		t.Errorf("after delete: result %d", res)
	}
	if err := tab.Delete(p); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if len(mirrored) != 5 || len(mirrored[4]) != 0 {
		t.Errorf("mirror saw %d updates, want 5 ending empty", len(mirrored))
	}
	failing := errors.New("map full")
	tab.OnChange(func([]T4Row) error { return nil })
	tab.onChange = func([]T4Row) error { return failing }
	if err := tab.Put(T4Row{Range: p, Gateways: []Gateway{{mac(1), true}}}); !errors.Is(err, failing) {
		t.Errorf("mirror failure not returned: %v", err)
	}
	if _, res := tab.LookupV4(a); res != NoRow {
		t.Errorf("update applied although the mirror failed")
	}
}

func TestT4Validate(t *testing.T) {
	for _, r := range []T4Row{
		{Range: netip.MustParsePrefix("10.1.2.3/16"), Gateways: []Gateway{{mac(1), true}}},
		{Range: netip.MustParsePrefix("10.1.0.0/16")},
		{Range: netip.MustParsePrefix("10.1.0.0/16"), Gateways: make([]Gateway, MaxGateways+1)},
		{Range: netip.MustParsePrefix("10.1.0.0/16"), Gateways: []Gateway{{MAC{0x01}, true}}},
		{Range: netip.MustParsePrefix("::ffff:10.0.0.0/104"), Gateways: []Gateway{{mac(1), true}}},
		{},
	} {
		if _, err := NewT4([]T4Row{r}); err == nil {
			t.Errorf("NewT4(%+v) accepted an invalid row", r)
		}
	}
}

// TestT4Reference checks lookups against a linear scan of random disjoint
// rows with random states.
func TestT4Reference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		var rows []T4Row
		used := map[netip.Prefix]bool{}
		for len(rows) < 40 {
			var p netip.Prefix
			if rng.IntN(2) == 0 {
				var b [4]byte
				for i := range b {
					b[i] = byte(rng.IntN(4))
				}
				p = netip.PrefixFrom(netip.AddrFrom4(b), 8+rng.IntN(25)).Masked()
			} else {
				var b [16]byte
				b[0] = 0xfd
				for i := 1; i < 16; i++ {
					b[i] = byte(rng.IntN(3))
				}
				p = netip.PrefixFrom(netip.AddrFrom16(b), 8+rng.IntN(121)).Masked()
			}
			overlap := false
			for q := range used {
				if q.Overlaps(p) {
					overlap = true
				}
			}
			if overlap {
				continue
			}
			used[p] = true
			var gws []Gateway
			for i := 0; i < 1+rng.IntN(3); i++ {
				gws = append(gws, Gateway{mac(byte(1 + rng.IntN(5))), rng.IntN(3) != 0})
			}
			rows = append(rows, T4Row{Range: p, Gateways: gws})
		}
		tab, err := NewT4(rows)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 2000; k++ {
			var a netip.Addr
			if rng.IntN(2) == 0 {
				var b [4]byte
				for i := range b {
					b[i] = byte(rng.IntN(4))
				}
				a = netip.AddrFrom4(b)
			} else {
				var b [16]byte
				b[0] = 0xfd
				for i := 1; i < 16; i++ {
					b[i] = byte(rng.IntN(3))
				}
				a = netip.AddrFrom16(b)
			}
			wantRes, want := NoRow, MAC{}
			for _, r := range rows {
				if r.Range.Contains(a) {
					wantRes = AllDown
					for _, g := range r.Gateways {
						if g.Up {
							want, wantRes = g.MAC, Found
							break
						}
					}
				}
			}
			got, res := tab.Lookup(a)
			if got != want || res != wantRes {
				t.Fatalf("Lookup(%s) = %s,%d; reference %s,%d", a, got, res, want, wantRes)
			}
		}
	}
}

func TestT4LookupAllocs(t *testing.T) {
	tab, _ := NewT4([]T4Row{{Range: netip.MustParsePrefix("10.1.0.0/16"), Gateways: []Gateway{{mac(1), true}}}})
	src4 := [4]byte{10, 1, 2, 3}
	var src6 [16]byte
	if n := testing.AllocsPerRun(1000, func() { tab.LookupV4(src4); tab.LookupV6(src6) }); n != 0 {
		t.Errorf("lookup allocates %v per run", n)
	}
}

func BenchmarkT4LookupV4(b *testing.B) {
	var rows []T4Row
	for i := 0; i < 1024; i++ {
		rows = append(rows, T4Row{Range: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), Gateways: []Gateway{{mac(1), true}}})
	}
	tab, err := NewT4(rows)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tab.LookupV4([4]byte{10, byte(i >> 8 & 3), byte(i), 1})
	}
}

// TestT4SteerCounters (issue 18): SteerV4/SteerV6 hand out the counter of
// the row and the gateway chosen (or the row's all-down one), which
// outlives a state change and the update of other rows, and goes with
// its row.
func TestT4SteerCounters(t *testing.T) {
	p1, p2, p6 := netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.2.0.0/24"), netip.MustParsePrefix("fd00:101::/64")
	tab, err := NewT4([]T4Row{
		{Range: p1, Gateways: []Gateway{{mac(1), true}, {mac(2), true}}},
		{Range: p2, Gateways: []Gateway{{mac(2), true}}},
		{Range: p6, Gateways: []Gateway{{mac(1), true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	steer := func(a string, n uint64) Result {
		t.Helper()
		ip := netip.MustParseAddr(a)
		var r Result
		var c *SteerCounter
		if ip.Is4() {
			_, r, c = tab.SteerV4(ip.As4())
		} else {
			_, r, c = tab.SteerV6(ip.As16())
		}
		if (c == nil) != (r == NoRow) {
			t.Fatalf("%s: result %d with counter %v", a, r, c)
		}
		if c != nil {
			c.Add(n)
		}
		return r
	}
	steer("10.1.2.3", 5)
	steer("::ffff:10.1.9.9", 1) // IPv4-mapped: the IPv4 row
	steer("10.2.0.1", 2)
	steer("fd00:101::5", 3)
	steer("10.9.0.1", 100) // no row: no counter
	if _, err := tab.SetGatewayState(mac(1), false); err != nil {
		t.Fatal(err)
	}
	steer("10.1.2.3", 7)    // to the substitute
	steer("fd00:101::5", 4) // all down
	if err := tab.Put(T4Row{Range: p2, Gateways: []Gateway{{mac(3), true}}}); err != nil {
		t.Fatal(err) // p2 now names another gateway: its old counter goes
	}
	if _, err := tab.SetGatewayState(mac(1), true); err != nil {
		t.Fatal(err)
	}
	steer("10.1.2.3", 1) // back to the primary: its count carried over
	type row struct {
		r  string
		gw string
		n  uint64
	}
	var got []row
	for _, c := range tab.SteerCounts() {
		gw := "all-down"
		if c.Gateway != (MAC{}) {
			gw = c.Gateway.String()
		}
		got = append(got, row{c.Range.String(), gw, c.Packets})
	}
	want := []row{
		{"10.1.0.0/16", mac(1).String(), 7},
		{"10.1.0.0/16", mac(2).String(), 7},
		{"10.2.0.0/24", mac(3).String(), 0},
		{"fd00:101::/64", "all-down", 4},
		{"fd00:101::/64", mac(1).String(), 3},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(row{})); d != "" {
		t.Fatalf("steer counts (-want +got):\n%s", d)
	}
}
