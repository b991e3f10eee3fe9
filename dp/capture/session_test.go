package capture_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket/pcapgo"
	"go.uber.org/goleak"

	"samepath/dp/capture"
	"samepath/dp/dptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// armer stands in for a worker: it holds what SetTap gave it.
type armer struct{ tap atomic.Pointer[capture.Tap] }

func (a *armer) SetTap(t *capture.Tap) { a.tap.Store(t) }

// waitArmed waits until the session armed a.
func (a *armer) waitArmed(t *testing.T) *capture.Tap {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if tp := a.tap.Load(); tp != nil {
			return tp
		}
	}
	t.Fatal("session never armed the worker")
	return nil
}

// verdict is what the pipeline did with one frame of a batch.
type verdict struct {
	out   int
	drop  uint8
	after []byte
}

// batch runs one batch through tap as dp.Worker does.
func batch(tap *capture.Tap, in int, frames [][]byte, vs []verdict) {
	if !tap.Begin(in) {
		return
	}
	for i, f := range frames {
		tap.Before(i, f)
	}
	for k := range tap.Pending() {
		v := vs[tap.Index(k)]
		tap.After(k, v.out, v.drop, v.after)
	}
	tap.Commit()
}

var reasons = map[uint8]string{12: "no_flow", 13: "denied"}

func newSession(t *testing.T, mod func(*capture.Config)) *capture.Session {
	t.Helper()
	cfg := capture.DefaultConfig()
	cfg.Workers = [][]string{{"lan/q0", "srv/q0"}}
	cfg.Reason = func(r uint8) string { return reasons[r] }
	cfg.Comment = "test capture"
	if mod != nil {
		mod(&cfg)
	}
	s, err := capture.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs s over one armer, calling feed once the armer is armed.
func run(t *testing.T, s *capture.Session, feed func(*capture.Tap)) (capture.Stats, []byte) {
	t.Helper()
	var a armer
	var out bytes.Buffer
	done := make(chan struct{})
	var st capture.Stats
	var err error
	go func() {
		defer close(done)
		st, err = s.Run(context.Background(), []capture.Armer{&a}, &out, nil)
	}()
	if feed != nil {
		feed(a.waitArmed(t))
	}
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if a.tap.Load() != nil {
		t.Error("the session left the worker armed")
	}
	return st, out.Bytes()
}

// pkt is one pcapng packet as read back.
type pkt struct {
	Iface   string
	Dir     pcapgo.NgEpbFlag
	ID      uint64
	Comment string
	Data    []byte
	Len     int
}

func readBack(t *testing.T, b []byte) ([]pkt, *pcapgo.NgReader) {
	t.Helper()
	r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out []pkt
	for {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ifc, err := r.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatal(err)
		}
		p := pkt{Iface: ifc.Name, Data: data, Len: ci.Length, Comment: strings.Join(opts.Comments, "|")}
		if opts.Flags != nil {
			p.Dir = opts.Flags.Direction
		}
		if opts.PacketID != nil {
			p.ID = *opts.PacketID
		}
		out = append(out, p)
	}
	return out, r
}

func TestSessionWrites(t *testing.T) {
	up := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(40000, 80).Bytes()
	upNAT := dptest.Frame().Eth(macB, macA).IPv4(srv, srv).TCP(1024, 8080).Bytes()
	bad := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(40001, 80).Bytes()
	refused := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(40002, 80).Bytes()
	rst := dptest.Frame().Eth(macB, macA).IPv4(rep, mob).TCP(80, 40002).Bytes()
	s := newSession(t, func(c *capture.Config) { c.Count = 3 })
	st, b := run(t, s, func(tap *capture.Tap) {
		batch(tap, 0, [][]byte{up, bad, refused}, []verdict{{1, 0, upNAT}, {-1, 12, bad}, {0, 13, rst}})
	})
	if st.Frames != 3 || st.Packets != 5 || st.Lost != 0 || st.End != "count" {
		t.Errorf("stats %+v, want 3 frames, 5 packets, ended by count", st)
	}
	got, r := readBack(t, b)
	in, outb := pcapgo.NgEpbFlagDirectionInbound, pcapgo.NgEpbFlagDirectionOutbound
	want := []pkt{
		{"lan/q0", in, 1, "worker 0 rx lan/q0, before rewriting: forwarded to srv/q0", up, len(up)},
		{"srv/q0", outb, 1, "worker 0 tx srv/q0, after rewriting: received on lan/q0, forwarded to srv/q0", upNAT, len(upNAT)},
		{"lan/q0", in, 2, "worker 0 rx lan/q0, before rewriting: dropped: no_flow", bad, len(bad)},
		{"lan/q0", in, 3, "worker 0 rx lan/q0, before rewriting: refused: denied, answered to lan/q0", refused, len(refused)},
		{"lan/q0", outb, 3, "worker 0 tx lan/q0, the answer to the refused frame: received on lan/q0, refused: denied, answered to lan/q0", rst, len(rst)},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("packets (-want +got):\n%s", d)
	}
	if si := r.SectionInfo(); si.Comment != "test capture" || si.Application != "samepathd capture" {
		t.Errorf("section %+v", si)
	}
	if r.NInterfaces() != 2 {
		t.Errorf("%d interfaces, want 2", r.NInterfaces())
	}
	// tcpdump reads the file, where it is installed (the privileged e2e
	// in testbed/gwe2e requires it).
	if tcpdump, err := exec.LookPath("tcpdump"); err == nil {
		f := filepath.Join(t.TempDir(), "c.pcapng")
		os.WriteFile(f, b, 0o644)
		out, err := exec.Command(tcpdump, "-nn", "-r", f).CombinedOutput()
		if err != nil {
			t.Fatalf("tcpdump -r: %v\n%s", err, out)
		}
		for _, w := range []string{"10.101.0.5.40000 > 10.30.0.1.80", "10.20.0.11.1024 > 10.20.0.11.8080", "10.30.0.1.80 > 10.101.0.5.40002"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("tcpdump -r shows no %q:\n%s", w, out)
			}
		}
	}
}

func TestSessionDropsOnly(t *testing.T) {
	f := func(port uint16) []byte { return dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(port, 80).Bytes() }
	frames := [][]byte{f(1), f(2), f(3), f(4), f(5)}
	vs := []verdict{{1, 0, f(1)}, {-1, 12, nil}, {1, 0, f(3)}, {0, 13, f(4)}, {-1, 13, nil}}
	for _, tc := range []struct {
		name   string
		filter capture.Filter
		want   []string // comments of the first packet of each frame
	}{
		{"drops", capture.Filter{Drops: true}, []string{"dropped: no_flow", "refused: denied", "dropped: denied"}},
		{"reason", capture.Filter{Reason: 13}, []string{"refused: denied", "dropped: denied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, func(c *capture.Config) { c.Filter, c.Count, c.Ring = tc.filter, len(tc.want), 8 })
			st, b := run(t, s, func(tap *capture.Tap) {
				batch(tap, 0, frames, vs)
				batch(tap, 0, frames, vs) // the count is reached: not taken
			})
			got, _ := readBack(t, b)
			var comments []string
			var ports []byte
			for _, p := range got {
				if p.Dir == pcapgo.NgEpbFlagDirectionInbound {
					_, v, _ := strings.Cut(p.Comment, "before rewriting: ")
					v, _, _ = strings.Cut(v, ",")
					comments = append(comments, v)
					ports = append(ports, p.Data[35]) // TCP source port's low byte
				}
			}
			if d := cmp.Diff(tc.want, comments); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if st.Frames != len(tc.want) {
				t.Errorf("%d frames, want %d", st.Frames, len(tc.want))
			}
			// Kept records were moved down over discarded ones: each
			// carries its own frame.
			wantPorts := map[string][]byte{"drops": {2, 4, 5}, "reason": {4, 5}}[tc.name]
			if !bytes.Equal(ports, wantPorts) {
				t.Errorf("frames of source ports %v, want %v", ports, wantPorts)
			}
		})
	}
}

// TestSessionRingFull: a worker never waits for the session: matched
// frames past the ring's room are counted lost, and the file says how
// many in its interface statistics.
func TestSessionRingFull(t *testing.T) {
	f := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(1, 80).Bytes()
	s := newSession(t, func(c *capture.Config) { c.Count, c.Ring, c.Duration = 100, 2, 50*time.Millisecond })
	// Before the session runs, nothing drains: two of five fit.
	batch(s.Tap(0), 1, [][]byte{f, f, f, f, f}, make([]verdict, 5))
	if got := s.Tap(0).Lost(1); got != 3 {
		t.Errorf("lost %d, want 3", got)
	}
	st, b := run(t, s, nil)
	if st.Frames != 2 || st.Lost != 3 || st.End != "duration" {
		t.Errorf("stats %+v, want 2 frames, 3 lost, ended by duration", st)
	}
	_, r := readBack(t, b)
	ifc, _ := r.Interface(1)
	if ifc.Statistics.PacketsDropped != 3 {
		t.Errorf("srv/q0 statistics %+v, want 3 dropped", ifc.Statistics)
	}
}

// TestSessionCountOvershoot: a batch may keep more frames than the count
// has left (with Drops, as the verdicts come after the matches; or two
// workers at once); the file holds the count, not more.
func TestSessionCountOvershoot(t *testing.T) {
	f := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(1, 80).Bytes()
	s := newSession(t, func(c *capture.Config) { c.Count, c.Filter.Drops = 3, true })
	st, b := run(t, s, func(tap *capture.Tap) {
		batch(tap, 0, [][]byte{f, f, f, f}, []verdict{{-1, 12, nil}, {-1, 12, nil}, {-1, 12, nil}, {-1, 12, nil}})
	})
	got, _ := readBack(t, b)
	if s.Tap(0).Lost(0) != 0 {
		t.Errorf("%d lost", s.Tap(0).Lost(0))
	}
	if st.Frames != 3 || len(got) != 3 {
		t.Errorf("%d frames, %d packets, want 3 and 3", st.Frames, len(got))
	}
}

func TestSessionCanceled(t *testing.T) {
	s := newSession(t, nil)
	var a armer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan capture.Stats)
	go func() {
		st, err := s.Run(ctx, []capture.Armer{&a}, io.Discard, nil)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	a.waitArmed(t)
	cancel()
	if st := <-done; st.End != "canceled" || a.tap.Load() != nil {
		t.Errorf("stats %+v, armed %v", st, a.tap.Load() != nil)
	}
}

func TestSessionWriteError(t *testing.T) {
	s := newSession(t, nil)
	var a armer
	_, err := s.Run(context.Background(), []capture.Armer{&a}, failWriter{}, nil)
	if err == nil || !strings.Contains(err.Error(), "capture: write header") {
		t.Errorf("err %v, want a header write error", err)
	}
	if a.tap.Load() != nil {
		t.Error("armed after a failed start")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestConfigValidate(t *testing.T) {
	for name, mod := range map[string]func(*capture.Config){
		"count":    func(c *capture.Config) { c.Count = 0 },
		"big":      func(c *capture.Config) { c.Count = capture.MaxCount + 1 },
		"duration": func(c *capture.Config) { c.Duration = 0 },
		"snaplen":  func(c *capture.Config) { c.SnapLen = 10 },
		"ring":     func(c *capture.Config) { c.Ring = 0 },
		"drain":    func(c *capture.Config) { c.DrainInterval = 0 },
		"workers":  func(c *capture.Config) { c.Workers = nil },
		"ports":    func(c *capture.Config) { c.Workers = [][]string{{}} },
	} {
		cfg := capture.DefaultConfig()
		cfg.Workers = [][]string{{"a"}}
		mod(&cfg)
		if _, err := capture.New(cfg); err == nil || !strings.HasPrefix(err.Error(), "capture") {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

// TestTapAllocs: the worker's calls allocate nothing, matching or not.
func TestTapAllocs(t *testing.T) {
	bpf80, _ := capture.ParseBPF(tcpPort80)
	tp, _ := capture.ParseTuple("tcp * *:80")
	s := newSession(t, func(c *capture.Config) { c.Filter = capture.Filter{BPF: bpf80, Tuple: &tp}; c.Ring = 64 })
	tap := s.Tap(0)
	f := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(1, 80).Bytes()
	other := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).UDP(1, 53).Bytes()
	frames := [][]byte{f, other, f, other}
	vs := []verdict{{1, 0, f}, {1, 0, other}, {-1, 12, nil}, {1, 0, other}}
	n := testing.AllocsPerRun(100, func() {
		batch(tap, 0, frames, vs) // the ring fills after 32 runs: lost from there on
	})
	if n != 0 {
		t.Errorf("%v allocations per batch", n)
	}
}

// TestSessionCountBudget: without Drops a tap takes no more frames than
// the count has left, and the ones it leaves are not counted lost.
func TestSessionCountBudget(t *testing.T) {
	f := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(1, 80).Bytes()
	s := newSession(t, func(c *capture.Config) { c.Count = 3 })
	frames := make([][]byte, 10)
	vs := make([]verdict, 10)
	for i := range frames {
		frames[i], vs[i] = f, verdict{1, 0, f}
	}
	st, _ := run(t, s, func(tap *capture.Tap) { batch(tap, 0, frames, vs) })
	if st.Frames != 3 || st.Lost != 0 || st.End != "count" {
		t.Errorf("stats %+v, want 3 frames, none lost, ended by count", st)
	}
}
