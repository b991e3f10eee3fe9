package nat

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pair returns a primary (own 192.0.2.1) and a substitute (own
// 192.0.2.2, peer 192.0.2.1) table, the primary journaled.
func pair(t *testing.T, ports uint16) (prim, sub *PortTable, j *Journal) {
	t.Helper()
	a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	prim = testTable(t, func(c *PortTableConfig) {
		c.GwAddrs, c.PeerAddrs = []netip.Addr{a1}, []netip.Addr{a2}
		c.PortMax = c.PortMin + ports - 1
		c.PortReuseDelay = 0
	})
	sub = testTable(t, func(c *PortTableConfig) {
		c.GwAddrs, c.PeerAddrs = []netip.Addr{a2}, []netip.Addr{a1}
		c.PortMax = c.PortMin + ports - 1
		c.PortReuseDelay = 0
	})
	j, err := NewJournal(4)
	if err != nil {
		t.Fatal(err)
	}
	prim.SetJournal(j)
	return prim, sub, j
}

func drain(j *Journal) []Change {
	var out []Change
	buf := make([]Change, 8)
	for {
		n := j.Drain(buf)
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

// TestInstallOnPeer: a binding journaled by its primary and installed on
// the substitute keeps its key port, server and session, answers down
// lookups there (from its server only), and its end is journaled too.
func TestInstallOnPeer(t *testing.T) {
	prim, sub, j := pair(t, 100)
	k := MakeFlowKey(ProtoTCP, netip.MustParseAddrPort("10.1.0.5:40000"), netip.MustParseAddrPort("203.0.113.10:80"))
	srv := Addr16From(netip.MustParseAddr("198.51.100.7"))
	id, err := prim.Create(&k, srv, 8080, 42, 3, sec(1))
	if err != nil {
		t.Fatal(err)
	}
	prim.Touch(id, true, 60, FlagSYN, sec(1))
	cs := drain(j)
	if len(cs) != 2 || cs[0].Op != OpCreate || cs[1].Op != OpChange || cs[1].B.State != TCPSynSent {
		t.Fatalf("journal: %+v, want create then change to syn-sent", cs)
	}
	want := *prim.Binding(id)
	sid, err := sub.Install(&cs[1].B, sec(5))
	if err != nil {
		t.Fatal(err)
	}
	if !sub.IsPeer(sid) || prim.IsPeer(id) {
		t.Fatal("IsPeer: want the substitute's copy on a peer address, the primary's own")
	}
	got := *sub.Binding(sid)
	want.Created, want.LastSeen, want.UpPackets, want.UpBytes = sec(5), sec(5), 0, 0
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("installed binding (-want +got):\n%s", d)
	}
	if _, ok := sub.DownFrom(want.GwAddr, want.GwPort, ProtoTCP, srv, 8080); !ok {
		t.Fatal("substitute: no down lookup on the peer's key")
	}
	if _, ok := sub.DownFrom(want.GwAddr, want.GwPort, ProtoTCP, srv, 8081); ok {
		t.Fatal("substitute: down lookup from another server port accepted")
	}
	if _, err := sub.Install(&cs[1].B, sec(6)); !errors.Is(err, ErrExists) {
		t.Fatalf("second install: %v, want ErrExists", err)
	}
	sub.Refresh(sid, TCPEstablished, sec(7))
	if b := sub.Binding(sid); b.State != TCPEstablished || b.LastSeen != sec(7) {
		t.Fatalf("after refresh: %+v", b)
	}
	// The substitute's journal never echoes a peer's binding back.
	sj, _ := NewJournal(4)
	sub.SetJournal(sj)
	sub.Refresh(sid, TCPFinUp, sec(8))
	sub.Delete(sid, Released)
	if cs := drain(sj); len(cs) != 0 {
		t.Fatalf("substitute journaled a peer's binding: %+v", cs)
	}
	// The substitute never allocates on the peer's address.
	for i := range 150 {
		k2 := k
		k2.SPort = uint16(1000 + i)
		id2, err := sub.Create(&k2, srv, 8080, 42, 3, sec(9))
		if err != nil {
			break
		}
		if sub.IsPeer(id2) {
			t.Fatal("Create allocated on a peer address")
		}
	}
	prim.Delete(id, TCPClose)
	if cs := drain(j); len(cs) != 1 || cs[0].Op != OpEnd || cs[0].B.GwPort != want.GwPort {
		t.Fatalf("journal after delete: %+v, want one end", cs)
	}
	if _, err := sub.Install(&Binding{Flow: k, GwAddr: Addr16From(netip.MustParseAddr("192.0.2.99"))}, 0); !errors.Is(err, ErrNoAddr) {
		t.Fatalf("install on an unknown address: %v", err)
	}
}

// TestInstallOwnHoldsPort: a binding installed on the table's own address
// (failback) keeps its port out of allocation until it ends, then the
// port is handed out again.
func TestInstallOwnHoldsPort(t *testing.T) {
	prim, _, _ := pair(t, 4)
	a1 := Addr16From(netip.MustParseAddr("192.0.2.1"))
	srv := Addr16From(netip.MustParseAddr("198.51.100.7"))
	k := MakeFlowKey(ProtoUDP, netip.MustParseAddrPort("10.1.0.5:1"), netip.MustParseAddrPort("203.0.113.10:53"))
	b := Binding{Flow: k, GwAddr: a1, GwPort: prim.portMin + 2, Server: srv, SPort: 53}
	iid, err := prim.Install(&b, sec(1))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint16]bool{}
	for i := range 4 {
		k2 := k
		k2.SPort = uint16(100 + i)
		id, err := prim.Create(&k2, srv, 53, 0, 0, sec(2))
		if i == 3 {
			if !errors.Is(err, ErrExhausted) {
				t.Fatalf("fourth create: %v, want exhausted (3 free ports)", err)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := prim.Binding(id).GwPort
		if p == b.GwPort || seen[p] {
			t.Fatalf("create %d got port %d (held %d, seen %v)", i, p, b.GwPort, seen)
		}
		seen[p] = true
	}
	b2 := b
	b2.Flow.SPort = 9
	if _, err := prim.Install(&b2, sec(3)); !errors.Is(err, ErrPortInUse) {
		t.Fatalf("install on a bound port: %v, want ErrPortInUse", err)
	}
	prim.Delete(iid, Released)
	k3 := k
	k3.SPort = 200
	id, err := prim.Create(&k3, srv, 53, 0, 0, sec(4))
	if err != nil || prim.Binding(id).GwPort != b.GwPort {
		t.Fatalf("after the installed binding ended: %v, port %v, want %d", err, prim.Binding(id), b.GwPort)
	}
}

// TestJournalFullCounted: a full journal drops and counts, the owner
// goes on.
func TestJournalFullCounted(t *testing.T) {
	prim, _, j := pair(t, 100)
	srv := Addr16From(netip.MustParseAddr("198.51.100.7"))
	for i := range 6 {
		k := MakeFlowKey(ProtoUDP, netip.AddrPortFrom(netip.MustParseAddr("10.1.0.5"), uint16(i+1)), netip.MustParseAddrPort("203.0.113.10:53"))
		if _, err := prim.Create(&k, srv, 53, 0, 0, sec(1)); err != nil {
			t.Fatal(err)
		}
	}
	if j.Dropped() != 2 || len(drain(j)) != 4 {
		t.Fatalf("dropped %d, want 2 of 6 in a 4-entry journal", j.Dropped())
	}
}

func TestInstallZeroAllocs(t *testing.T) {
	prim, sub, j := pair(t, 1000)
	srv := Addr16From(netip.MustParseAddr("198.51.100.7"))
	k := MakeFlowKey(ProtoTCP, netip.MustParseAddrPort("10.1.0.5:40000"), netip.MustParseAddrPort("203.0.113.10:80"))
	id, _ := prim.Create(&k, srv, 80, 0, 0, 1)
	b := *prim.Binding(id)
	drain(j)
	sub.SetJournal(j)
	buf := make([]Change, 8)
	n := testing.AllocsPerRun(100, func() {
		sid, err := sub.Install(&b, 2)
		if err != nil {
			t.Fatal(err)
		}
		sub.Refresh(sid, TCPEstablished, 3)
		sub.Delete(sid, Released)
		pid, _ := prim.Create(&k, srv, 80, 0, 0, 4)
		prim.Delete(pid, Released)
		for j.Drain(buf) > 0 {
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per install/refresh/delete", n)
	}
}

// TestSnapshotTags: readers see each binding's tag (SetTag) with it, a
// new binding in a reused slot has none (the state sync's dump and
// refresh carry the flows' accounting names).
func TestSnapshotTags(t *testing.T) {
	prim, _, _ := pair(t, 100)
	k := MakeFlowKey(ProtoTCP, netip.MustParseAddrPort("10.1.0.5:40000"), netip.MustParseAddrPort("203.0.113.10:80"))
	srv := Addr16From(netip.MustParseAddr("198.51.100.7"))
	id, err := prim.Create(&k, srv, 8080, 42, 3, sec(1))
	if err != nil {
		t.Fatal(err)
	}
	prim.SetTag(id, [2]uint64{0xabc, 7})
	var got [][2]uint64
	prim.SnapshotTags(func(_ Binding, tag [2]uint64) bool { got = append(got, tag); return true })
	if len(got) != 1 || got[0] != [2]uint64{0xabc, 7} {
		t.Fatalf("tags %v, want [abc 7]", got)
	}
	prim.Delete(id, Admin)
	if _, err := prim.Create(&k, srv, 8080, 42, 3, sec(2)); err != nil {
		t.Fatal(err)
	}
	got = nil
	prim.SnapshotTags(func(_ Binding, tag [2]uint64) bool { got = append(got, tag); return true })
	if len(got) != 1 || got[0] != ([2]uint64{}) {
		t.Fatalf("tags after reuse %v, want none", got)
	}
}
