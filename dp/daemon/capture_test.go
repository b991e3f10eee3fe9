package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"samepath/ctl/api"
	"samepath/dp"
)

type capTestBackend struct {
	gwTestBackend
	ct *captureTarget
}

func (b capTestBackend) captureTarget() *captureTarget { return b.ct }

// newCaptureAPI serves gwRig's gateway with POST /v1/capture over its
// worker; the test's goroutine stays the worker.
func newCaptureAPI(t *testing.T, workers ...*dp.Worker) (*gwRig, *api.Client) {
	t.Helper()
	r := newGWRig(t)
	if workers == nil {
		workers = []*dp.Worker{r.w}
	}
	ct := &captureTarget{workers: workers, frameSize: 2048}
	if len(workers) == 1 && workers[0] == nil {
		ct.workers = nil
	}
	hs := httptest.NewServer(NewHandler(capTestBackend{gwTestBackend{r.s}, ct}, NewRegistry(func() api.Counters { return api.Counters{} }), "", slog.Default()))
	t.Cleanup(hs.Close)
	return r, api.NewClient(hs.URL)
}

type captureRun struct {
	res api.CaptureResult
	err error
	out []byte
}

// startCapture posts req; the answer arrives on the channel.
func startCapture(c *api.Client, req api.CaptureRequest) chan captureRun {
	done, _ := startCaptureSignal(c, req)
	return done
}

// startCaptureSignal also closes started when the file's first bytes
// arrive: the daemon holds the capture by then.
func startCaptureSignal(c *api.Client, req api.CaptureRequest) (done chan captureRun, started chan struct{}) {
	done, started = make(chan captureRun, 1), make(chan struct{})
	go func() {
		out := &signalWriter{started: started}
		res, err := c.Capture(context.Background(), req, out)
		done <- captureRun{res, err, out.Bytes()}
	}()
	return done, started
}

// signalWriter holds its buffer as a field, not embedded: bytes.Buffer's
// ReadFrom would let io.Copy bypass Write.
type signalWriter struct {
	buf     bytes.Buffer
	started chan struct{}
}

func (w *signalWriter) Write(b []byte) (int, error) {
	if w.buf.Len() == 0 && len(b) > 0 {
		close(w.started)
	}
	return w.buf.Write(b)
}

func (w *signalWriter) Bytes() []byte { return w.buf.Bytes() }

// TestAPICapture: a capture over the API streams pcapng holding the
// frames the filter takes, before and after the gateway rewrote them, and
// ends with its count in the trailers.
func TestAPICapture(t *testing.T) {
	r, c := newCaptureAPI(t)
	r.event(api.EventStart, "s1", addrA, 1)
	done := startCapture(c, api.CaptureRequest{Direction: "up", Tuple: "udp 10.101.0.5 *", Count: 2, DurationMS: 60_000})
	var run captureRun
	// The test is the worker: it sends until the capture has its two
	// frames (the first ones may go by before the session arms).
	for sent := 0; ; sent++ {
		select {
		case run = <-done:
		default:
			if got := r.up(addrA); got != "forwarded" {
				t.Fatalf("up packet %d: %s", sent, got)
			}
			r.up(addrB) // no session: dropped, and not the tuple's
			time.Sleep(time.Millisecond)
			continue
		}
		break
	}
	if run.err != nil {
		t.Fatal(run.err)
	}
	if run.res != (api.CaptureResult{Frames: 2, End: "count"}) {
		t.Errorf("result %+v", run.res)
	}
	rd, err := pcapgo.NewNgReader(bytes.NewReader(run.out), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if si := rd.SectionInfo(); si.Comment != `samepathd capture: direction="up" tuple="udp 10.101.0.5 *"; count 2, duration 1m0s` {
		t.Errorf("section comment %q", si.Comment)
	}
	var comments []string
	for {
		_, _, opts, err := rd.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		comments = append(comments, strings.Join(opts.Comments, "|"))
	}
	want := []string{
		"worker 0 rx lan/q0, before rewriting: forwarded to srv/q0",
		"worker 0 tx srv/q0, after rewriting: received on lan/q0, forwarded to srv/q0",
	}
	if len(comments) != 4 || comments[0] != want[0] || comments[1] != want[1] || comments[2] != want[0] {
		t.Errorf("comments %q, want twice %q", comments, want)
	}
}

// TestAPICaptureDrops: drops of one reason only, ended by the duration.
func TestAPICaptureDrops(t *testing.T) {
	r, c := newCaptureAPI(t)
	done := startCapture(c, api.CaptureRequest{Drops: true, Reason: "no_session", Count: 1000, DurationMS: 300})
	var run captureRun
	for {
		select {
		case run = <-done:
		default:
			r.up(addrB)
			time.Sleep(time.Millisecond)
			continue
		}
		break
	}
	if run.err != nil || run.res.End != "duration" || run.res.Frames == 0 {
		t.Fatalf("result %+v, err %v: want frames, ended by duration", run.res, run.err)
	}
	if !bytes.Contains(run.out, []byte("dropped: no_session")) {
		t.Error("no frame dropped for no_session in the file")
	}
}

func TestAPICaptureErrors(t *testing.T) {
	r, c := newCaptureAPI(t)
	ctx := context.Background()
	for _, tc := range []struct {
		req  api.CaptureRequest
		want string
	}{
		{api.CaptureRequest{Direction: "sideways"}, `direction "sideways"`},
		{api.CaptureRequest{Iface: "eth9"}, `iface "eth9": not a dataplane interface (have lan, srv)`},
		{api.CaptureRequest{Iface: "lan", Direction: "down"}, `iface "lan" receives no down frames`},
		{api.CaptureRequest{Reason: "bored"}, `reason "bored": want one of malformed,`},
		{api.CaptureRequest{Expr: "tcp port 80"}, `expr "tcp port 80" comes with its bpf program`},
		{api.CaptureRequest{BPF: "1\n6 0 0"}, `bpf: capture filter: bpf program: instruction 0`},
		{api.CaptureRequest{BPF: "1\n40 0 0 12"}, `bpf program: BPF program must end with RetA or RetConstant`},
		{api.CaptureRequest{Tuple: "tcp x *"}, `tuple: tuple "tcp x *"`},
		{api.CaptureRequest{Count: -1}, `count -1`},
		{api.CaptureRequest{Count: 2_000_000}, `capture count 2000000: want 1..1000000`},
		{api.CaptureRequest{DurationMS: -5}, `duration_ms -5`},
		{api.CaptureRequest{DurationMS: 7_200_000}, `capture duration 2h0m0s`},
		{api.CaptureRequest{SnapLen: 10}, `capture snaplen 10`},
	} {
		_, err := c.Capture(ctx, tc.req, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want 400 with %q", tc.req, err, tc.want)
		}
	}
	var ack api.Ack
	err := c.Do(ctx, "POST", "/v1/capture", map[string]any{"count": 1, "color": "blue"}, &ack)
	if err == nil || !strings.Contains(err.Error(), "color") {
		t.Errorf("unknown key: err %v", err)
	}

	// One capture at a time.
	done, started := startCaptureSignal(c, api.CaptureRequest{Count: 1, DurationMS: 60_000})
	<-started
	_, busy := c.Capture(ctx, api.CaptureRequest{Count: 1}, io.Discard)
	if busy == nil || !strings.Contains(busy.Error(), "409 Conflict") || !strings.Contains(busy.Error(), "another capture is running") {
		t.Errorf("second capture: %v, want 409", busy)
	}
	for {
		select {
		case run := <-done:
			if run.err != nil {
				t.Fatal(run.err)
			}
			return
		default:
			r.up(addrA)
			time.Sleep(time.Millisecond)
		}
	}
}

func TestAPICaptureNoWorkers(t *testing.T) {
	_, c := newCaptureAPI(t, nil)
	_, err := c.Capture(context.Background(), api.CaptureRequest{}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "409 Conflict") || !strings.Contains(err.Error(), "steering xdp") {
		t.Errorf("err %v, want 409 naming steering xdp", err)
	}
}
