package dp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"samepath/dp"
	"samepath/dp/capture"
	"samepath/dp/dptest"
	"samepath/dp/header"
)

// startCapture arms a capture of cfg (workers, reasons filled in) on w;
// wait ends it and returns its file.
func startCapture(t testing.TB, w *dp.Worker, cfg capture.Config) (wait func() (capture.Stats, []byte)) {
	t.Helper()
	var names []string
	for _, p := range w.Ports() {
		names = append(names, p.Name())
	}
	cfg.Workers = [][]string{names}
	cfg.Reason = func(r uint8) string { return dp.Reason(r).String() }
	s, err := capture.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	var st capture.Stats
	var wg sync.WaitGroup
	armed := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		st, err = s.Run(ctx, []capture.Armer{armNotify{w, armed}}, &out, nil)
	}()
	<-armed
	return func() (capture.Stats, []byte) {
		cancel()
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		return st, out.Bytes()
	}
}

// armNotify tells when the session armed the worker.
type armNotify struct {
	w     *dp.Worker
	armed chan struct{}
}

func (a armNotify) SetTap(t *capture.Tap) {
	a.w.SetTap(t)
	if t != nil {
		close(a.armed)
	}
}

type capPkt struct {
	iface, comment string
	data           []byte
}

func readCapture(t *testing.T, b []byte) []capPkt {
	t.Helper()
	r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out []capPkt
	for {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		ifc, _ := r.Interface(ci.InterfaceIndex)
		out = append(out, capPkt{ifc.Name, strings.Join(opts.Comments, "|"), data})
	}
}

// TestWorkerCapture: a capture armed on the gateway's worker holds each
// frame as received and as sent (NATed), and dropped frames with their
// reason; disarmed, the worker takes nothing more.
func TestWorkerCapture(t *testing.T) {
	r := newGW(t, 65535)
	cfg := capture.DefaultConfig()
	tp, _ := capture.ParseTuple("tcp * *")
	cfg.Filter.Tuple = &tp // the ARP below is not taken
	wait := startCapture(t, r.w, cfg)

	syn := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagSYN).Bytes()
	synOut, p, _ := r.send(0, syn)
	if p != 1 {
		t.Fatal("SYN not forwarded")
	}
	b := r.binding(6, mob, rep, 40000, 80)
	synack := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TCP(8080, b.GwPort).Flags(header.FlagSYN | header.FlagACK).Bytes()
	synackOut, _, _ := r.send(1, synack)
	stray := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TCP(8080, 5555).Flags(header.FlagACK).Bytes()
	r.mustDrop(1, stray, dp.ReasonNoFlow)
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).ARP(1, lb1MAC, mob, [6]byte{}, rep).Bytes(), dp.ReasonNotIP)
	st, file := wait()
	// After the session: disarmed, nothing is taken.
	r.send(0, syn)

	got := readCapture(t, file)
	want := []capPkt{
		{"lan/q0", "worker 0 rx lan/q0, before rewriting: forwarded to srv/q0", syn},
		{"srv/q0", "worker 0 tx srv/q0, after rewriting: received on lan/q0, forwarded to srv/q0", synOut},
		{"srv/q0", "worker 0 rx srv/q0, before rewriting: forwarded to lan/q0", synack},
		{"lan/q0", "worker 0 tx lan/q0, after rewriting: received on srv/q0, forwarded to lan/q0", synackOut},
		{"srv/q0", "worker 0 rx srv/q0, before rewriting: dropped: no_flow", stray},
	}
	if len(got) != len(want) {
		t.Fatalf("%d packets, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].iface != want[i].iface || got[i].comment != want[i].comment || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("packet %d: got %s %q, want %s %q; %s", i, got[i].iface, got[i].comment, want[i].iface, want[i].comment, dptest.Diff(want[i].data, got[i].data))
		}
	}
	if st.Frames != 3 || st.Lost != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestWorkerCaptureAllocs: an armed capture costs the worker no
// allocation, taking frames or not (TestGWProcessAllocs: unarmed).
func TestWorkerCaptureAllocs(t *testing.T) {
	r := newGW(t, 65535)
	up := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagSYN).Bytes()
	r.send(0, up)
	b := r.binding(6, mob, rep, 40000, 80)
	upAck := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK).Bytes()
	down := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TCP(8080, b.GwPort).Flags(header.FlagACK).Bytes()
	// The tap armed without its session's goroutine, whose writing
	// allocates and which AllocsPerRun would count: the ring has room for
	// every frame of the 201 runs, so each is copied before and after.
	cfg := capture.DefaultConfig()
	cfg.Count, cfg.Ring, cfg.Workers = capture.MaxCount, 512, [][]string{{"lan/q0", "srv/q0"}}
	s, err := capture.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.w.SetTap(s.Tap(0))
	drain := func([]byte) {}
	n := testing.AllocsPerRun(200, func() {
		r.ports[0].Inject(upAck)
		r.ports[1].Inject(down)
		r.w.Poll()
		for r.ports[0].Take(drain) {
		}
		for r.ports[1].Take(drain) {
		}
	})
	if n != 0 {
		t.Errorf("armed gateway allocates %v per round", n)
	}
	if lost := s.Tap(0).Lost(0) + s.Tap(0).Lost(1); lost != 0 {
		t.Errorf("%d frames lost: the test measured no copy", lost)
	}
}
