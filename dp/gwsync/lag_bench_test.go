package gwsync

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"samepath/nat"
)

// BenchmarkSyncDelivery measures the loss window of a crash: the time
// from a binding's creation on the primary (its journal entry) to its
// arrival at the substitute, over loopback with the default 50 ms batch.
// A flow younger than this when the primary dies is not at the
// substitute. Reported: mean-lag-ms and max-lag-ms per b.N creations,
// one every millisecond.
func BenchmarkSyncDelivery(b *testing.B) {
	l1, l2 := freePortB(b), freePortB(b)
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs, pc.PeerAddrs = []netip.Addr{addr1}, []netip.Addr{addr2}
	pc.PortMin, pc.PortMax, pc.Capacity = 1024, 65535, 1<<16
	tab, _ := nat.NewPortTable(pc)
	j, _ := nat.NewJournal(1 << 16)
	tab.SetJournal(j)
	pc2 := pc
	pc2.GwAddrs, pc2.PeerAddrs = pc.PeerAddrs, pc.GwAddrs
	tab2, _ := nat.NewPortTable(pc2)
	j2, _ := nat.NewJournal(1 << 10)
	tab2.SetJournal(j2)

	var mu sync.Mutex
	created := map[uint16]time.Time{}
	var total, worst time.Duration
	var n int
	arrived := make(chan struct{}, 1)
	mk := func(name, listen, peer, peerListen string, t *nat.PortTable, jr *nat.Journal, apply func([]nat.Change)) *Syncer {
		c := DefaultConfig()
		c.Name, c.Listen, c.Token = name, listen, "secret"
		c.Peers = []Peer{{Name: peer, Addr: peerListen}}
		c.Journal, c.Table, c.Apply = jr, t, apply
		s, err := New(c)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	s1 := mk("gw1", l1, "gw2", l2, tab, j, func([]nat.Change) {})
	s2 := mk("gw2", l2, "gw1", l1, tab2, j2, func(cs []nat.Change) {
		now := time.Now()
		mu.Lock()
		for _, c := range cs {
			if t0, ok := created[c.B.Flow.SPort]; ok && c.Op == nat.OpCreate {
				d := now.Sub(t0)
				total += d
				worst = max(worst, d)
				n++
				delete(created, c.B.Flow.SPort)
			}
		}
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s1.Run(ctx)
	go s2.Run(ctx)
	for !s1.Ready() || !s2.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	b.ResetTimer()
	for i := range b.N {
		k := key(uint16(1 + i%60000))
		mu.Lock()
		created[k.SPort] = time.Now()
		mu.Unlock()
		id, err := tab.Create(&k, srv, 80, 0, 0, int64(i+1))
		if err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 { // keep the table small: ends travel too
			tab.Delete(id, nat.TCPClose)
		}
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		left := len(created)
		mu.Unlock()
		if left == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-arrived:
		case <-time.After(10 * time.Millisecond):
		}
	}
	b.StopTimer()
	if n > 0 {
		b.ReportMetric(float64(total.Microseconds())/float64(n)/1000, "mean-lag-ms")
		b.ReportMetric(float64(worst.Microseconds())/1000, "max-lag-ms")
	}
}

func freePortB(b *testing.B) string { b.Helper(); return freePortTB(b) }
