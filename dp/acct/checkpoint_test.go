package acct

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"samepath/testbed/privtest"
)

// ckptRecord is a checkpoint of flow seq in slot, its counters from n.
func ckptRecord(seq uint64, slot uint32, n uint64) Record {
	r := testRecord(seq)
	r.Kind, r.Cause = Checkpoint, CauseInterim
	r.Boot, r.Seq, r.Slot = 0xfeedc0de00000001, seq, slot
	r.UpPackets, r.UpBytes, r.DownPackets, r.DownBytes = n, 100*n, 2*n, 1000*n
	r.HasPayload, r.UpPayload, r.DownPayload = true, 50*n, 900*n
	return r
}

// ckptConfig is a log that fsyncs only when a test makes it (or on
// Close): SyncInterval an hour.
func ckptConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.SyncInterval, cfg.SyncRecords = time.Hour, 0
	return cfg
}

// waitTaken waits until the writer took everything pushed.
func waitTaken(t *testing.T, l *Log) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); l.Stats().Queued != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the writer does not drain")
		}
	}
}

func checkpoints(t *testing.T, name string) map[uint64]Record {
	t.Helper()
	rs, err := ReadCheckpoints(name)
	if err != nil {
		t.Fatal(err)
	}
	m := map[uint64]Record{}
	for _, r := range rs {
		if _, dup := m[r.Seq]; dup {
			t.Errorf("flow %d twice in %s", r.Seq, name)
		}
		m[r.Seq] = r
	}
	return m
}

// crashImage copies the log's directory as the kernel holds it now
// (what SIGKILL leaves) and returns the copy's log path.
func crashImage(t *testing.T, log string) string {
	t.Helper()
	dir := t.TempDir()
	files, _ := filepath.Glob(log + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, filepath.Base(log))
}

func TestCheckpointEncoding(t *testing.T) {
	r := ckptRecord(77, 12345, 9)
	r.SetAttr(AttrSNI, "sni.example")
	r.SetAcctSession("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") // AcctSessionSize bytes
	r.Start, r.End = -5, 1<<62
	var b [recSize]byte
	encodeRecord(b[:], &r)
	var got Record
	decodeRecord(b[:], &got)
	if got != r {
		t.Errorf("decoded %+v, want %+v", got, r)
	}
}

// TestCheckpointRestart: flows checkpointed, one ending with its final
// record, one superseded by an interim record; the log is closed without
// the others ending (a gateway that stops without EndAll). The next Open
// writes a gateway-restart final record for each flow still open, from
// its newest checkpoint or interim record, removes the checkpoint file,
// and an Open after it writes nothing more.
func TestCheckpointRestart(t *testing.T) {
	cfg := ckptConfig(t)
	l := openLog(t, cfg)
	p, err := l.Register()
	if err != nil {
		t.Fatal(err)
	}
	if p.CheckpointInterval() != cfg.SyncInterval {
		t.Errorf("checkpoint interval %v, want the sync interval", p.CheckpointInterval())
	}
	for seq := uint64(1); seq <= 3; seq++ {
		r := ckptRecord(seq, uint32(seq), 1)
		if !p.Checkpoint(&r) {
			t.Fatal("checkpoint refused")
		}
	}
	r := ckptRecord(1, 1, 2)
	p.Checkpoint(&r) // flow 1 again: the slot's other half
	fin := ckptRecord(2, 2, 3)
	fin.Kind, fin.Cause = Final, CauseTCPClose
	pushWait(p, &fin)
	in := ckptRecord(3, 3, 4)
	in.Kind = Interim
	pushWait(p, &in)
	waitTaken(t, l)
	ckpt := cfg.Path + ".ckpt.0"
	// Flow 2's final record is not fsync'd yet: its checkpoint stays.
	if got := checkpoints(t, ckpt); len(got) != 3 || got[1].UpPackets != 2 || got[3].Kind != Interim || got[3].UpPackets != 4 {
		t.Errorf("checkpoint file before the fsync: %+v", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := checkpoints(t, ckpt)
	if len(got) != 2 || got[1].UpPackets != 2 || got[3].UpPackets != 4 {
		t.Errorf("checkpoint file after Close: %+v", got)
	}
	if st := l.Stats(); st.Checkpoints != 5 || st.Written != 2 || st.CheckpointErrors != 0 {
		t.Errorf("stats %+v", st)
	}

	l2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := l2.Stats().Recovered; n != 2 {
		t.Errorf("recovered %d flows, want 2", n)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ckpt); !os.IsNotExist(err) {
		t.Errorf("checkpoint file after the restart: %v", err)
	}
	entries, _, err := Query(cfg.Path, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var causes []string
	for _, e := range entries {
		causes = append(causes, e.Kind+"/"+e.Cause+"/"+e.Flow)
	}
	want := []string{"final/tcp-close/feedc0de00000001-2", "interim/interim/feedc0de00000001-3",
		"final/gateway-restart/feedc0de00000001-1", "final/gateway-restart/feedc0de00000001-3"}
	if d := cmp.Diff(want, causes); d != "" {
		t.Fatalf("records (-want +got):\n%s", d)
	}
	w := ckptRecord(1, 1, 2)
	e := entries[2]
	if e.UpPackets != w.UpPackets || e.DownBytes != w.DownBytes || *e.UpPayload != w.UpPayload || e.User != w.UserID() ||
		e.URL != w.Attribute() || !e.End.Equal(time.Unix(0, w.End)) {
		t.Errorf("restart record %+v, want flow 1's last checkpoint %+v", e, w)
	}
	if e := entries[3]; e.UpPackets != 4 {
		t.Errorf("flow 3's restart record %+v, want its interim record's counters", e)
	}

	l3, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l3.Close(); err != nil || l3.Stats().Recovered != 0 {
		t.Errorf("a second restart: %v, recovered %d", err, l3.Stats().Recovered)
	}
}

// TestCheckpointCleanStop: flows that all ended leave no checkpoint file.
func TestCheckpointCleanStop(t *testing.T) {
	cfg := ckptConfig(t)
	l := openLog(t, cfg)
	p, _ := l.Register()
	for seq := uint64(1); seq <= 3; seq++ {
		r := ckptRecord(seq, uint32(seq), 1)
		p.Checkpoint(&r)
		r.Kind, r.Cause = Final, CauseShutdown
		pushWait(p, &r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(cfg.Path + ".ckpt.*"); len(left) != 0 {
		t.Errorf("checkpoint files after a clean stop: %v", left)
	}
}

// TestCheckpointCrashAfterFinalSync: a crash after the final record was
// fsync'd but before its checkpoint was cleared (or while a restart was
// writing its records) yields no second final record: Open matches the
// checkpoints against the final records in the log by flow id.
func TestCheckpointCrashAfterFinalSync(t *testing.T) {
	cfg := ckptConfig(t)
	l := openLog(t, cfg)
	p, _ := l.Register()
	for seq := uint64(1); seq <= 2; seq++ {
		r := ckptRecord(seq, uint32(seq), 1)
		p.Checkpoint(&r)
	}
	waitTaken(t, l)
	image := crashImage(t, cfg.Path)
	l.Close()
	// Flow 1's final record reached the log, its clear did not.
	fin := ckptRecord(1, 1, 5)
	fin.Kind, fin.Cause = Final, CauseIdleTimeout
	f, err := os.OpenFile(image, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(AppendJSON(nil, &fin))
	f.Close()
	c := cfg
	c.Path = image
	l2, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	entries, _, _ := Query(image, Filter{})
	if len(entries) != 2 || entries[0].Cause != "idle-timeout" || entries[1].Cause != "gateway-restart" || entries[1].Flow != "feedc0de00000001-2" {
		t.Fatalf("records %+v: want flow 1's idle-timeout and flow 2's gateway-restart", entries)
	}
}

// TestCheckpointTornHalf: a checkpoint write torn by a crash leaves the
// flow's previous checkpoint, in the slot's other half, to be read.
func TestCheckpointTornHalf(t *testing.T) {
	cfg := ckptConfig(t)
	l := openLog(t, cfg)
	p, _ := l.Register()
	for n := uint64(1); n <= 2; n++ {
		r := ckptRecord(9, 4, n) // halves 8 then 9
		p.Checkpoint(&r)
	}
	waitTaken(t, l)
	name := cfg.Path + ".ckpt.0"
	if got := checkpoints(t, name); got[9].UpPackets != 2 {
		t.Fatalf("checkpoint %+v, want the second", got[9])
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[ckptHeader+9*ckptHalf+100] ^= 0xff // the second write, torn
	torn := name + ".torn"
	os.WriteFile(torn, b, 0o600)
	if got := checkpoints(t, torn); len(got) != 1 || got[9].UpPackets != 1 {
		t.Errorf("after a torn write: %+v, want the first checkpoint", got)
	}
	os.WriteFile(torn, b[:ckptHeader+9*ckptHalf+30], 0o600) // torn while extending the file
	if got := checkpoints(t, torn); len(got) != 1 || got[9].UpPackets != 1 {
		t.Errorf("after a torn extending write: %+v, want the first checkpoint", got)
	}
}

// TestCheckpointSlotReuse: a flow ends and a new one takes its slot
// before the final record is fsync'd: the ended flow's checkpoint stays
// until then (a crash now still gets it its record), the new flow's
// second checkpoint makes the writer fsync first and clear it.
func TestCheckpointSlotReuse(t *testing.T) {
	cfg := ckptConfig(t)
	l := openLog(t, cfg)
	p, _ := l.Register()
	old := ckptRecord(1, 7, 1)
	p.Checkpoint(&old)
	old.Kind, old.Cause = Final, CauseTCPReset
	pushWait(p, &old)
	nw := ckptRecord(2, 7, 1)
	p.Checkpoint(&nw)
	waitTaken(t, l)
	name := cfg.Path + ".ckpt.0"
	if got := checkpoints(t, name); len(got) != 2 || got[1].UpPackets != 1 || got[2].UpPackets != 1 {
		t.Fatalf("slot 7 before the fsync: %+v, want both flows", got)
	}
	if s := l.Stats().Syncs; s != 0 {
		t.Fatalf("%d syncs already", s)
	}
	nw = ckptRecord(2, 7, 2)
	p.Checkpoint(&nw)
	waitTaken(t, l)
	if got := checkpoints(t, name); len(got) != 1 || got[2].UpPackets != 2 {
		t.Errorf("slot 7 after the new flow's second checkpoint: %+v, want only it", got)
	}
	if st := l.Stats(); st.Syncs != 1 || st.Synced != 1 {
		t.Errorf("stats %+v: want one fsync, of the final record", st)
	}
}

// TestNoCheckpoints: checkpoints off: no file, nothing taken.
func TestNoCheckpoints(t *testing.T) {
	cfg := testConfig(t)
	cfg.NoCheckpoints = true
	l := openLog(t, cfg)
	p, _ := l.Register()
	r := ckptRecord(1, 1, 1)
	if p.Checkpoint(&r) || p.CheckpointInterval() != 0 {
		t.Error("checkpoints taken with NoCheckpoints")
	}
	if left, _ := filepath.Glob(cfg.Path + ".ckpt.*"); len(left) != 0 {
		t.Errorf("checkpoint files: %v", left)
	}
}

// TestCheckpointBadFile: a file that is not a checkpoint file stops Open
// with an error naming it, and is left alone.
func TestCheckpointBadFile(t *testing.T) {
	cfg := testConfig(t)
	bad := cfg.Path + ".ckpt.3"
	os.WriteFile(bad, []byte("hello"), 0o600)
	_, err := Open(cfg)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Open: %v, want an error naming %s", err, bad)
	}
	if _, err := os.Stat(bad); err != nil {
		t.Error(err)
	}
}

func TestCheckpointAllocs(t *testing.T) {
	l := openLog(t, testConfig(t))
	p, _ := l.Register()
	r := ckptRecord(1, 1, 1)
	if n := testing.AllocsPerRun(1000, func() { p.Checkpoint(&r) }); n != 0 {
		t.Errorf("Checkpoint: %v allocs", n)
	}
}

// TestCheckpointFinalWriteFails: a final record that fails to be
// written leaves its flow's checkpoint in place (not waiting to be
// cleared), so the next start writes the flow a gateway-restart record.
func TestCheckpointFinalWriteFails(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		privtest.Missing(t, "/dev/full")
	}
	cfg := ckptConfig(t)
	if err := os.Symlink("/dev/full", cfg.Path); err != nil {
		t.Fatal(err)
	}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := l.Register()
	r := ckptRecord(1, 1, 1)
	p.Checkpoint(&r)
	r = ckptRecord(1, 1, 2)
	r.Kind, r.Cause = Final, CauseTCPClose
	pushWait(p, &r)
	if err := l.Close(); err == nil {
		t.Fatal("close: no error from /dev/full")
	}
	if st := l.Stats(); st.Failed != 1 || st.Checkpoints != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := checkpoints(t, cfg.Path+".ckpt.0"); len(got) != 1 || got[1].UpPackets != 1 {
		t.Fatalf("checkpoints after the failed final record: %+v", got)
	}
	os.Remove(cfg.Path)
	l2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	entries, _, _ := Query(cfg.Path, Filter{})
	if len(entries) != 1 || entries[0].Cause != "gateway-restart" || entries[0].UpPackets != 1 {
		t.Errorf("records after the restart: %+v, want flow 1's gateway-restart record", entries)
	}
}
