package nat

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// bigConfig is the configuration of the 1 M flow table: 16 IPv4
// gateway addresses (16 x 64 512 keys per protocol), no reuse delay so
// that benchmarks can churn ports without a clock.
func bigConfig(capacity int) PortTableConfig {
	cfg := DefaultPortTableConfig()
	cfg.GwAddrs = nil
	for i := range 16 {
		cfg.GwAddrs = append(cfg.GwAddrs, netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)}))
	}
	cfg.Capacity = capacity
	cfg.PortReuseDelay = 0
	return cfg
}

// benchKey returns flow i of a population: 16 flows per mobile, half
// TCP, half UDP, to two servers.
func benchKey(i int) FlowKey {
	m := uint32(i / 16)
	k := FlowKey{
		Src:   Addr16V4([4]byte{10, byte(m >> 16), byte(m >> 8), byte(m)}),
		Dst:   Addr16V4([4]byte{198, 51, 100, byte(1 + i%2)}),
		SPort: uint16(30000 + i%16),
		DPort: 443,
		Proto: ProtoTCP,
	}
	if i%4 >= 2 {
		k.Proto = ProtoUDP
	}
	return k
}

// fill creates flows 0..n-1 and returns their keys and ids.
func fill(tb testing.TB, tab *PortTable, n int) ([]FlowKey, []uint32) {
	keys := make([]FlowKey, n)
	ids := make([]uint32, n)
	for i := range n {
		keys[i] = benchKey(i)
		id, err := tab.Create(&keys[i], keys[i].Dst, 443, uint64(i/16+1), 0, 1)
		if err != nil {
			tb.Fatalf("flow %d: %v", i, err)
		}
		ids[i] = id
	}
	return keys, ids
}

func TestZeroAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters allocate")
	}
	tab, err := NewPortTable(bigConfig(4096))
	if err != nil {
		t.Fatal(err)
	}
	keys, ids := fill(t, tab, 1024)
	b := tab.Binding(ids[7])
	gw, port := b.GwAddr, b.GwPort
	now := int64(time.Second)
	spare := benchKey(5000)
	var sink uint32
	onEnd := func(b *Binding, c Cause) { sink += uint32(c) }
	i := 0
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Up", func() { id, _ := tab.Up(&keys[i%len(keys)]); sink += id; i++ }},
		{"Down", func() { id, _ := tab.Down(gw, port, ProtoTCP); sink += id }},
		{"DownFrom", func() { id, _ := tab.DownFrom(gw, port, ProtoTCP, keys[7].Dst, 443); sink += id }},
		{"Touch", func() { tab.Touch(ids[i%len(ids)], i%2 == 0, 1500, FlagACK, now); i++ }},
		{"Binding", func() { sink += uint32(tab.Binding(ids[3]).GwPort) }},
		{"SetServer", func() {
			if !tab.SetServer(ids[5], keys[5].Dst, uint16(443+i%2)) {
				t.Fatal("SetServer refused")
			}
			i++
		}},
		{"Create+Delete", func() {
			id, err := tab.Create(&spare, spare.Dst, 443, 99, 1, now)
			if err != nil {
				t.Fatal(err)
			}
			tab.Delete(id, Released)
		}},
		{"Create error", func() { _, err := tab.Create(&keys[0], keys[0].Dst, 443, 1, 0, now); sink += uint32(len(err.Error())) }},
		{"Expire", func() { now += int64(time.Millisecond); sink += uint32(tab.Expire(now, 64, onEnd)) }},
		{"Expire removing", func() {
			id, _ := tab.Create(&spare, spare.Dst, 443, 0, 0, now)
			tab.Touch(id, false, 60, FlagRST, now)
			now += int64(time.Hour)
			for tab.Binding(id) != nil {
				tab.Expire(now, 64, onEnd)
			}
		}},
		{"DeleteSession", func() {
			for j := range 4 {
				k := spare
				k.SPort += uint16(j)
				if _, err := tab.Create(&k, k.Dst, 443, 777, 0, now); err != nil {
					t.Fatal(err)
				}
			}
			if n := tab.DeleteSession(777, now, onEnd); n != 4 {
				t.Fatalf("DeleteSession removed %d", n)
			}
		}},
		{"Stats", func() { sink += uint32(tab.Stats().Live) }},
	} {
		if a := testing.AllocsPerRun(200, tc.f); a != 0 {
			t.Errorf("%s: %v allocs per run, want 0", tc.name, a)
		}
	}
	_ = sink
}

var sinkID uint32

// step moves j by a prime stride through [0, n): a scattered order that
// visits every index.
func step(j, n int) int {
	j += 7919 % n
	if j >= n {
		j -= n
	}
	return j
}

func benchTable(b *testing.B, flows int) (*PortTable, []FlowKey, []uint32) {
	tab, err := NewPortTable(bigConfig(max(flows+16, 1024)))
	if err != nil {
		b.Fatal(err)
	}
	keys, ids := fill(b, tab, flows)
	return tab, keys, ids
}

var benchSizes = []int{1, 1_000_000}

func sizeName(n int) string {
	if n >= 1_000_000 {
		return fmt.Sprintf("flows=%dM", n/1_000_000)
	}
	return fmt.Sprint("flows=", n)
}

// BenchmarkUp is the up packet's lookup. With 1 M flows the keys are
// visited in a scattered order, so most lookups miss the CPU caches.
func BenchmarkUp(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			tab, keys, _ := benchTable(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			j := 0
			for range b.N {
				id, ok := tab.Up(&keys[j])
				if !ok {
					b.Fatal("miss")
				}
				sinkID += id
				j = step(j, len(keys)) // a prime stride: scattered, covers every key
			}
		})
	}
}

func BenchmarkDown(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			tab, keys, ids := benchTable(b, n)
			type dk struct {
				gw    Addr16
				port  uint16
				proto uint8
			}
			dks := make([]dk, len(ids))
			for i, id := range ids {
				bd := tab.Binding(id)
				dks[i] = dk{bd.GwAddr, bd.GwPort, keys[i].Proto}
			}
			b.ReportAllocs()
			b.ResetTimer()
			j := 0
			for range b.N {
				d := &dks[j]
				id, ok := tab.Down(d.gw, d.port, d.proto)
				if !ok {
					b.Fatal("miss")
				}
				sinkID += id
				j = step(j, len(dks))
			}
		})
	}
}

// BenchmarkTouch is the per-packet accounting and TCP state update.
func BenchmarkTouch(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			tab, _, ids := benchTable(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			j := 0
			for i := range b.N {
				tab.Touch(ids[j], i&1 == 0, 1500, FlagACK, int64(i))
				j = step(j, len(ids))
			}
		})
	}
}

// BenchmarkCreateDelete is a flow's setup and teardown beside n others:
// port allocation, index inserts and deletes, publication to readers.
func BenchmarkCreateDelete(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			tab, _, _ := benchTable(b, n)
			k := benchKey(n + 1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k.SPort = uint16(i)
				id, err := tab.Create(&k, k.Dst, 443, 5, 0, 2)
				if err != nil {
					b.Fatal(err)
				}
				tab.Delete(id, Released)
			}
		})
	}
}

// BenchmarkExpire is one poll round's sweep (budget 64) over a table
// where nothing expires; half the visited bindings saw packets since the
// last pass and are republished.
func BenchmarkExpire(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			tab, _, ids := benchTable(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			j := 0
			for i := range b.N {
				for range 32 {
					tab.Touch(ids[j], true, 100, FlagACK, 3)
					j = step(j, len(ids))
				}
				if tab.Expire(int64(3+i), 64, nil) != 0 {
					b.Fatal("expired")
				}
			}
		})
	}
}

// holdFlows builds a table holding n flows and returns the heap bytes it
// took (runtime.MemStats.HeapAlloc after a GC, before and after).
func holdFlows(tb testing.TB, n int) (*PortTable, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab, err := NewPortTable(bigConfig(n))
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		k := benchKey(i)
		if _, err := tab.Create(&k, k.Dst, 443, uint64(i/16+1), 0, 1); err != nil {
			tb.Fatalf("flow %d: %v", i, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return tab, after.HeapAlloc - before.HeapAlloc
}

// BenchmarkHold1M holds 1 000 000 flows (capacity 1 000 000, 16 IPv4
// gateway addresses) and reports the heap bytes per flow and the time to
// build the table. It builds once whatever b.N is, so -benchtime does
// not multiply the work.
func BenchmarkHold1M(b *testing.B) {
	const n = 1_000_000
	start := time.Now()
	tab, bytes := holdFlows(b, n)
	build := time.Since(start)
	if tab.Len() != n {
		b.Fatalf("Len = %d", tab.Len())
	}
	for range b.N {
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(bytes)/n, "B/flow")
	b.ReportMetric(float64(bytes)/(1<<20), "MiB")
	b.ReportMetric(build.Seconds(), "s/build")
	runtime.KeepAlive(tab)
}

// TestHold1M holds 1 000 000 flows, checks every lookup, reports the
// memory per flow, then reclaims them all.
func TestHold1M(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("1 M flows: run without -short and -race")
	}
	const n = 1_000_000
	start := time.Now()
	tab, bytes := holdFlows(t, n)
	built := time.Since(start)
	for i := range n {
		k := benchKey(i)
		id, ok := tab.Up(&k)
		if !ok {
			t.Fatalf("flow %d not found", i)
		}
		b := tab.Binding(id)
		if d, ok := tab.Down(b.GwAddr, b.GwPort, k.Proto); !ok || d != id {
			t.Fatalf("flow %d: Down = %d, %v", i, d, ok)
		}
	}
	t.Logf("%d flows: %d MiB heap, %.0f B/flow; built in %v", n, bytes>>20, float64(bytes)/n, built)
	now := int64(3 * time.Hour)
	for tab.Len() > 0 {
		tab.Expire(now, 1<<16, nil)
	}
	assertEmpty(t, tab, now)
}
