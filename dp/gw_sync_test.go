package dp_test

import (
	"net/netip"
	"testing"
	"time"

	"samepath/dp/acct"

	"samepath/dp"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/nat"
)

// syncRig is a gateway rig whose table owns own and holds peer as a
// peer's address, journaled.
func syncRig(t *testing.T, own, peer netip.Addr) (*gwRig, *nat.Journal) {
	return syncRigWith(t, own, peer, nil)
}

func syncRigWith(t *testing.T, own, peer netip.Addr, prod *acct.Producer) (*gwRig, *nat.Journal) {
	t.Helper()
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs, pc.PeerAddrs = []netip.Addr{own}, []netip.Addr{peer}
	pc.PortMin, pc.PortMax = 1024, 65535
	pc.Capacity = 1024
	flows, err := nat.NewPortTable(pc)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := nat.NewJournal(64)
	flows.SetJournal(j)
	r := newGWConfig(t, 65535, func(c *dp.GWConfig) { c.Flows, c.Acct = flows, prod })
	r.flows = flows
	return r, j
}

func drainJournal(j *nat.Journal) []nat.Change {
	var out []nat.Change
	buf := make([]nat.Change, 16)
	for n := j.Drain(buf); n > 0; n = j.Drain(buf) {
		out = append(out, buf[:n]...)
	}
	return out
}

// TestGWSyncTakeover (R-GW-9): a TCP connection opened on the primary
// and synced to the substitute continues there both ways with the same
// key port and server and under the substitute's copy of the session;
// its first up packet there says the peer's range arrived (PeerHit);
// the primary's end removes the copy; what cannot be installed is
// counted.
func TestGWSyncTakeover(t *testing.T) {
	key2 := addr("10.20.0.102")
	prim, pj := syncRig(t, key4, key2)
	sub, _ := syncRig(t, key2, key4)

	syn := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TTL(63).TCP(40000, 80).Flags(header.FlagSYN).Seq(100).Bytes()
	if _, p, drop := prim.send(0, syn); p != 1 {
		t.Fatalf("SYN on the primary: port %d drop %v", p, drop)
	}
	b := prim.binding(6, mob, rep, 40000, 80)
	prim.mustForward(1, dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TCP(8080, b.GwPort).Flags(header.FlagSYN|header.FlagACK).Seq(5000).Ack(101).Bytes(), 0,
		dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(rep, mob).TCP(80, 40000).Flags(header.FlagSYN|header.FlagACK).Seq(5000).Ack(101).Bytes())
	if _, p, _ := prim.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK).Seq(101).Ack(5001).Bytes()); p != 1 {
		t.Fatal("ACK on the primary not forwarded")
	}
	cs := drainJournal(pj)
	if len(cs) < 2 || cs[0].Op != nat.OpCreate || cs[len(cs)-1].B.State != nat.TCPEstablished {
		t.Fatalf("primary's journal: %+v, want a create, then states up to established", cs)
	}
	sub.gw.InstallSync(cs)
	sub.w.Poll()
	if got := sub.gw.SyncStats().Installed.Load(); got != 1 {
		t.Fatalf("installed %d, want 1 (later changes refresh it)", got)
	}
	sb := sub.binding(6, mob, rep, 40000, 80)
	if sb.GwAddr != b.GwAddr || sb.GwPort != b.GwPort || sb.Server != b.Server || sb.SPort != b.SPort ||
		sb.Session != testSession.ID || sb.State != nat.TCPEstablished || sb.UpPackets != 0 {
		t.Fatalf("substitute's copy %+v, primary's %+v", sb, b)
	}
	if sub.gw.PeerHit(false) {
		t.Fatal("PeerHit before any packet")
	}
	// The LBs switch: the mobile's next segment reaches the substitute,
	// which sends it from the primary's key.
	data := dptest.Frame().Eth(lb2MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK).Seq(101).Ack(6001).Bytes()
	sub.mustForward(0, data, 1,
		dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv4(key4, a1).TCP(b.GwPort, 8080).Flags(header.FlagACK).Seq(101).Ack(6001).Bytes())
	if !sub.gw.PeerHit(true) || sub.gw.PeerHit(false) {
		t.Fatal("PeerHit: want set by the peer's flow, then cleared")
	}
	// The server's reply to the primary's key address (taken over).
	sub.mustForward(1, dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TCP(8080, b.GwPort).Flags(header.FlagACK).Seq(6001).Ack(101).Bytes(), 0,
		dptest.Frame().Eth(gwLanMAC, lb2MAC).IPv4(rep, mob).TCP(80, 40000).Flags(header.FlagACK).Seq(6001).Ack(101).Bytes())

	// A second flow synced and ended at the primary before it carried
	// anything on the substitute.
	syn2 := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40001, 80).Flags(header.FlagSYN).Bytes()
	prim.send(0, syn2)
	sub.gw.InstallSync(drainJournal(pj))
	sub.w.Poll()
	sub.binding(6, mob, rep, 40001, 80)
	k2 := nat.FlowKey{Src: nat.Addr16From(mob), Dst: nat.Addr16From(rep), SPort: 40001, DPort: 80, Proto: 6}
	id2, _ := prim.flows.Up(&k2)
	prim.flows.Delete(id2, nat.Admin)
	ends := drainJournal(pj)
	if len(ends) != 1 || ends[0].Op != nat.OpEnd {
		t.Fatalf("journal after the end: %+v", ends)
	}
	before := sub.gw.Stats().FlowsEnded.Load()
	sub.gw.InstallSync(ends)
	sub.w.Poll()
	if _, ok := sub.flows.Up(&k2); ok || sub.gw.Stats().FlowsEnded.Load() != before+1 {
		t.Fatal("substitute kept a flow its primary ended")
	}
	// A terminate-mode flow, a flow on an unknown address and a port
	// taken by another flow are not installed.
	bad := cs[0]
	bad.B.Flow.SPort, bad.B.GwAddr = 40002, nat.Addr16From(addr("10.20.0.199"))
	taken := cs[0]
	taken.B.Flow.SPort = 40003
	sub.gw.InstallSync([]nat.Change{bad, taken})
	sub.w.Poll()
	if st := sub.gw.SyncStats(); st.Skipped.Load() != 1 || st.Conflicts.Load() != 1 {
		t.Fatalf("skipped %d conflicts %d, want 1 and 1", st.Skipped.Load(), st.Conflicts.Load())
	}
}

// TestGWSyncAccounting (issue 17, part 4): each gateway writes records
// for what it carried of a flow that moved between them, under the
// primary's flow name and the same session, so the bytes add up and
// none count twice; a copy that carried nothing writes no record.
func TestGWSyncAccounting(t *testing.T) {
	key2 := addr("10.20.0.102")
	log1, prod1, path1 := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
	log2, prod2, path2 := openAcct(t, func(c *acct.Config) { c.SyncInterval = 10 * time.Millisecond })
	prim, pj := syncRigWith(t, key4, key2, prod1)
	sub, _ := syncRigWith(t, key2, key4, prod2)

	up := func(sport uint16, flags uint8, n int) []byte {
		return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(sport, 80).Flags(flags).Payload(make([]byte, n)).Bytes()
	}
	prim.send(0, up(40000, header.FlagSYN, 0))
	prim.send(0, up(40001, header.FlagSYN, 0))
	b := prim.binding(6, mob, rep, 40000, 80)
	down := func(n int) []byte {
		return dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TCP(8080, b.GwPort).Flags(header.FlagACK).Payload(make([]byte, n)).Bytes()
	}
	prim.send(1, down(1000))
	sub.gw.InstallSync(drainJournal(pj))
	sub.w.Poll()
	// The takeover: gw2 carries two up and one down packet.
	sub.send(0, up(40000, header.FlagACK, 10))
	sub.send(0, up(40000, header.FlagACK, 20))
	sub.send(1, down(500))
	primB, subB := prim.binding(6, mob, rep, 40000, 80), sub.binding(6, mob, rep, 40000, 80)
	if subB.UpPackets != 2 || subB.DownPackets != 1 {
		t.Fatalf("substitute counted %+v", subB)
	}
	prim.gw.EndAll(time.Second)
	sub.gw.EndAll(time.Second)
	log1.Close()
	log2.Close()
	read := func(path string) []acct.Entry {
		var out []acct.Entry
		if _, err := acct.Scan(path, acct.Filter{}, func(e *acct.Entry) error { out = append(out, *e); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	r1, r2 := read(path1), read(path2)
	if len(r1) != 2 || len(r2) != 1 {
		t.Fatalf("records: gw1 %+v, gw2 %+v; want gw1's two flows, gw2's one carried flow", r1, r2)
	}
	var mine acct.Entry
	for _, e := range r1 {
		if e.UpPackets == primB.UpPackets && e.DownPackets == primB.DownPackets {
			mine = e
		}
	}
	got := r2[0]
	if mine.Flow == "" || got.Flow != mine.Flow || got.Session != mine.Session || got.AcctSessionID != mine.AcctSessionID {
		t.Fatalf("flow names: gw1 %q session %d %q, gw2 %q session %d %q; want one flow, one session", mine.Flow, mine.Session, mine.AcctSessionID, got.Flow, got.Session, got.AcctSessionID)
	}
	if got.UpBytes != subB.UpBytes || got.DownBytes != subB.DownBytes || mine.DownBytes != primB.DownBytes {
		t.Fatalf("bytes: gw1 record %d/%d of %d/%d, gw2 record %d/%d of %d/%d", mine.UpBytes, mine.DownBytes, primB.UpBytes, primB.DownBytes, got.UpBytes, got.DownBytes, subB.UpBytes, subB.DownBytes)
	}
}
