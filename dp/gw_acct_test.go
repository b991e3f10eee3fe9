package dp_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"samepath/dp"
	"samepath/dp/acct"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/nat"
)

// TestGWAccountingCheckpointCrash (R-ACCT-2, issue 11 defect 4): with
// the default config (no interim records) a gateway that crashes loses
// at most what its flows moved since their last checkpoint. Flows A and
// B (alice, IPv4) and C (her IPv6 session) carry traffic and are
// checkpointed; C's session ends (final record, its checkpoint cleared);
// A moves more packets; then the gateway crashes: the test copies the
// accounting directory as the kernel holds it (what SIGKILL leaves) and
// the worker is dropped without EndAll. Opening the log on the copy, as
// the restarted gateway does, writes a final record with cause
// gateway-restart for A and B carrying exactly their last checkpoint's
// counters, none for C (which has its session-end record); the bytes in
// no record are A's since its checkpoint, at most what phase 2 sent.
func TestGWAccountingCheckpointCrash(t *testing.T) {
	log, prod, path := openAcct(t, func(c *acct.Config) { c.SyncInterval = 20 * time.Millisecond })
	t.Cleanup(func() { log.Close() })
	r := newGWFull(t, 65535, nil, prod, 0)
	ckpt := path + ".ckpt.0"

	upA := func(flags uint8, pl []byte) []byte {
		return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(43000, 80).Flags(flags).Payload(pl).Bytes()
	}
	upB := func(flags uint8, pl []byte) []byte {
		return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(43001, 80).Flags(flags).Payload(pl).Bytes()
	}
	upC := func(flags uint8) []byte {
		return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6).TCP(43002, 80).Flags(flags).Bytes()
	}
	for _, f := range [][]byte{upA(header.FlagSYN, nil), upB(header.FlagSYN, nil), upC(header.FlagSYN)} {
		if _, p, drop := r.send(0, f); p != 1 {
			t.Fatalf("SYN dropped: %v", drop)
		}
	}
	bA := r.binding(6, mob, rep, 43000, 80)
	downA := func(pl []byte) []byte {
		return dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(bA.Server.Addr(), key4).TCP(8080, bA.GwPort).Flags(header.FlagACK).Payload(pl).Bytes()
	}
	r.send(0, upA(header.FlagACK|header.FlagPSH, []byte("GET /a HTTP/1.1\r\nHost: a.example\r\n\r\n")))
	r.send(1, downA(make([]byte, 900)))
	r.send(0, upB(header.FlagACK, nil))
	r.send(0, upC(header.FlagACK))

	// Phase 1 is checkpointed: the checkpoint file holds each flow's
	// current counters.
	live := func() map[string]acct.Record {
		recs, err := acct.ReadCheckpoints(ckpt)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]acct.Record{}
		for _, rec := range recs {
			m[rec.FlowID()] = rec
		}
		return m
	}
	waitFor(t, r, "all three flows checkpointed with their counters", func() bool {
		m := live()
		if len(m) != 3 {
			return false
		}
		want := map[uint64]bool{}
		for _, b := range []nat.Binding{r.binding(6, mob, rep, 43000, 80), r.binding(6, mob, rep, 43001, 80), r.binding(6, mob6, rep6, 43002, 80)} {
			want[b.UpPackets+b.DownPackets<<32] = true
		}
		for _, rec := range m {
			if !want[rec.UpPackets+rec.DownPackets<<32] || rec.Kind != acct.Checkpoint || rec.UserID() != "alice" {
				return false
			}
		}
		return true
	})

	// C's session ends: a final record, and its checkpoint is cleared
	// once that is fsync'd.
	s6 := testSession
	s6.ID, s6.IP = 8, mob6.As16()
	r.gw.Apply(dp.SessionEvent{End: true, Session: s6})
	waitFor(t, r, "C's checkpoint cleared", func() bool { return len(live()) == 2 })
	ckA := r.binding(6, mob, rep, 43000, 80)
	ckB := r.binding(6, mob, rep, 43001, 80)

	// Phase 2: A moves more; the last packet comes after the last sweep
	// could run (the sweep runs first in a poll round).
	var phase2 uint64
	for i, f := range [][]byte{downA(make([]byte, 1200)), downA(make([]byte, 1200)), upA(header.FlagACK, nil)} {
		port := 1
		if i == 2 {
			port = 0
		}
		if _, p, drop := r.send(port, f); p != 1-port {
			t.Fatalf("phase 2 packet %d dropped: %v", i, drop)
		}
		phase2 += uint64(len(f) - 14)
	}
	endA := r.binding(6, mob, rep, 43000, 80)
	endB := r.binding(6, mob, rep, 43001, 80)
	for log.Stats().Queued != 0 {
		time.Sleep(time.Millisecond) // the writer has taken (and written) all the worker pushed
	}

	// The crash: the directory as the kernel has it; the worker is gone
	// without EndAll.
	crash := t.TempDir()
	crashLog := filepath.Join(crash, acct.FileName)
	for from, to := range map[string]string{path: crashLog, ckpt: crashLog + ".ckpt.0"} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	last, err := acct.ReadCheckpoints(crashLog + ".ckpt.0")
	if err != nil {
		t.Fatal(err)
	}

	// The restart.
	restarted, err := acct.Open(acct.DefaultConfig(crash))
	if err != nil {
		t.Fatal(err)
	}
	if got := restarted.Stats().Recovered; got != 2 {
		t.Errorf("restart wrote %d gateway-restart records, want 2 (A and B)", got)
	}
	if err := restarted.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(crash, "*.ckpt.*")); len(left) != 0 {
		t.Errorf("checkpoint files left after the restart: %v", left)
	}
	entries, st, err := acct.Query(crash, acct.Filter{})
	if err != nil || st.Bad != 0 || st.Torn != 0 {
		t.Fatalf("query: %v %+v", err, st)
	}
	byFlow := map[string][]acct.Entry{}
	for _, e := range entries {
		if e.Flow == "" {
			t.Errorf("record without a flow id: %+v", e)
		}
		byFlow[e.Flow] = append(byFlow[e.Flow], e)
	}
	if len(entries) != 3 || len(byFlow) != 3 {
		t.Fatalf("%d records of %d flows after the restart, want one final record for each of A, B, C: %+v", len(entries), len(byFlow), entries)
	}
	restart := 0
	for _, e := range entries {
		if e.Kind != "final" || e.User != "alice" || e.Service == "" {
			t.Errorf("record %+v", e)
		}
		switch e.Cause {
		case "session-end":
			if e.Rep != "[fd00:30::1]:80" {
				t.Errorf("session-end record of %s, want C's", e.Rep)
			}
		case "gateway-restart":
			restart++
			var ck *acct.Record
			for i := range last {
				if last[i].FlowID() == e.Flow {
					ck = &last[i]
				}
			}
			if ck == nil {
				t.Fatalf("gateway-restart record of %s, not in the checkpoint file", e.Flow)
			}
			if e.UpBytes != ck.UpBytes || e.DownBytes != ck.DownBytes || e.UpPackets != ck.UpPackets || e.DownPackets != ck.DownPackets ||
				!e.Start.Equal(time.Unix(0, ck.Start)) || !e.End.Equal(time.Unix(0, ck.End)) || *e.UpPayload != ck.UpPayload {
				t.Errorf("gateway-restart record %+v, last checkpoint %+v", e, ck)
			}
		default:
			t.Errorf("cause %q", e.Cause)
		}
	}
	if restart != 2 {
		t.Errorf("%d gateway-restart records, want 2", restart)
	}

	// What no record holds: A's bytes since its last checkpoint, B's none.
	flowOf := func(b nat.Binding) string {
		id, ok := r.flows.Up(&b.Flow)
		if !ok {
			t.Fatalf("no flow %v", b.Flow)
		}
		for _, ck := range last {
			if ck.Slot == id {
				return ck.FlowID()
			}
		}
		t.Fatalf("flow %v not in the checkpoint file", b.Flow)
		return ""
	}
	recorded := func(b nat.Binding) uint64 {
		es := byFlow[flowOf(b)]
		if len(es) != 1 || es[0].Cause != "gateway-restart" {
			t.Fatalf("records of %v: %+v, want one gateway-restart record", b.Flow, es)
		}
		return es[0].UpBytes + es[0].DownBytes
	}
	if got, moved := recorded(endB), endB.UpBytes+endB.DownBytes; got != moved || got != ckB.UpBytes+ckB.DownBytes {
		t.Errorf("B (idle since its checkpoint): %d bytes recorded, it moved %d", got, moved)
	}
	inNone := endA.UpBytes + endA.DownBytes - recorded(endA)
	if inNone == 0 || inNone > phase2 || recorded(endA) < ckA.UpBytes+ckA.DownBytes {
		t.Errorf("A: %d bytes in no record, want > 0 and at most the %d it moved after phase 1", inNone, phase2)
	}
	t.Logf("A moved %d bytes after phase 1's checkpoint, %d of them are in no record", phase2, inNone)
}

// waitFor polls the gateway (its checkpoint sweep runs in the poll
// round) until cond holds, failing after 10 s.
func waitFor(t *testing.T, r *gwRig, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		r.w.Poll()
		time.Sleep(time.Millisecond)
	}
}

// TestGWAccountingAllocs: accounting with checkpoints allocates nothing
// on the worker: rounds of an up and a down packet while the checkpoint
// sweep (every microsecond here) keeps pushing the flow's checkpoint.
func TestGWAccountingAllocs(t *testing.T) {
	log, prod, _ := openAcct(t, func(c *acct.Config) { c.SyncInterval = time.Microsecond })
	t.Cleanup(func() { log.Close() })
	r := newGWFull(t, 65535, nil, prod, time.Hour)
	up := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(44000, 80).Flags(header.FlagSYN).Bytes()
	r.send(0, up)
	b := r.binding(6, mob, rep, 44000, 80)
	upAck := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(44000, 80).Flags(header.FlagACK).Payload([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")).Bytes()
	down := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(b.Server.Addr(), key4).TCP(8080, b.GwPort).Flags(header.FlagACK).Payload(make([]byte, 100)).Bytes()
	drain := func([]byte) {}
	before := log.Stats()
	// A sweep of the 1024-slot table takes 4 rounds: a run of 8 rounds
	// holds at least one checkpoint (AllocsPerRun rounds down).
	n := testing.AllocsPerRun(100, func() {
		for range 8 {
			r.ports[0].Inject(upAck)
			r.ports[1].Inject(down)
			r.w.Poll()
			for r.ports[0].Take(drain) {
			}
			for r.ports[1].Take(drain) {
			}
		}
	})
	if n != 0 {
		t.Errorf("gateway with accounting allocates %v per 8 rounds", n)
	}
	for log.Stats().Queued != 0 {
		time.Sleep(time.Millisecond)
	}
	if st := log.Stats(); st.Checkpoints+st.CheckpointsDeferred-before.Checkpoints-before.CheckpointsDeferred < 100 {
		t.Errorf("%d checkpoints during the rounds: the sweep did not run", st.Checkpoints-before.Checkpoints)
	}
}
