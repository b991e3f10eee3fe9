package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/dp/capture"
)

// captureBackend is a Backend with dataplane workers a capture can arm.
type captureBackend interface {
	captureTarget() *captureTarget
}

// captureTarget is what POST /v1/capture arms: the workers (nil when the
// dataplane runs in the kernel, steering xdp), the UMEM frame size and
// whether a capture runs (one at a time).
type captureTarget struct {
	workers   []*dp.Worker
	frameSize int
	busy      atomic.Bool
}

func (d *Daemon) captureTarget() *captureTarget { return d.capture }

// CaptureRoutes adds POST /v1/capture over workers (UMEM frames of
// frameSize bytes) to mux, as samepathd serves it (for tests of clients).
func CaptureRoutes(v1 *http.ServeMux, workers []*dp.Worker, frameSize int) {
	captureRoutes(v1, &captureTarget{workers: workers, frameSize: frameSize})
}

// captureRoutes adds POST /v1/capture: the pcapng file streamed as the
// capture runs, then the trailers api.Capture*Trailer.
func captureRoutes(v1 *http.ServeMux, ct *captureTarget) {
	v1.HandleFunc("POST /v1/capture", func(w http.ResponseWriter, r *http.Request) {
		var req api.CaptureRequest
		if !decode(w, r, &req) {
			return
		}
		if len(ct.workers) == 0 {
			fail(w, http.StatusConflict, errors.New("capture: no dataplane workers here (steering xdp forwards in the kernel)"))
			return
		}
		cfg, err := ct.config(req)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		s, err := capture.New(cfg)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		if !ct.busy.CompareAndSwap(false, true) {
			fail(w, http.StatusConflict, errors.New("capture: another capture is running"))
			return
		}
		defer ct.busy.Store(false)
		h := w.Header()
		h.Set("Content-Type", api.CaptureContentType)
		h.Set("Trailer", strings.Join([]string{api.CaptureFramesTrailer, api.CaptureLostTrailer, api.CaptureEndTrailer, api.CaptureErrorTrailer}, ", "))
		w.WriteHeader(http.StatusOK)
		flush := func() {}
		if f, ok := w.(http.Flusher); ok {
			flush = f.Flush
		}
		armers := make([]capture.Armer, len(ct.workers))
		for i, wk := range ct.workers {
			armers[i] = wk
		}
		st, err := s.Run(r.Context(), armers, w, flush)
		if err != nil {
			h.Set(api.CaptureErrorTrailer, err.Error())
			return
		}
		h.Set(api.CaptureFramesTrailer, strconv.Itoa(st.Frames))
		h.Set(api.CaptureLostTrailer, strconv.FormatUint(st.Lost, 10))
		h.Set(api.CaptureEndTrailer, st.End)
	})
}

// Port indices of both pipelines' workers: 0 receives up, 1 down.
const (
	portUp   = 0
	portDown = 1
)

// config turns a request into a capture config, naming the bad key.
func (ct *captureTarget) config(req api.CaptureRequest) (capture.Config, error) {
	cfg := capture.DefaultConfig()
	cfg.SnapLen = ct.frameSize
	cfg.Reason = func(r uint8) string { return dp.Reason(r).String() }
	for _, w := range ct.workers {
		var names []string
		for _, p := range w.Ports() {
			names = append(names, p.Name())
		}
		cfg.Workers = append(cfg.Workers, names)
	}
	f := &cfg.Filter
	switch req.Direction {
	case "":
	case "up":
		f.InPorts = 1 << portUp
	case "down":
		f.InPorts = 1 << portDown
	default:
		return cfg, fmt.Errorf("direction %q: want up, down or empty for both", req.Direction)
	}
	if req.Iface != "" {
		var mask uint64
		var have []string
		for _, w := range ct.workers {
			for i, p := range w.Ports() {
				iface, _, _ := strings.Cut(p.Name(), "/")
				if iface == req.Iface {
					mask |= 1 << i
				}
				have = append(have, iface)
			}
		}
		if mask == 0 {
			return cfg, fmt.Errorf("iface %q: not a dataplane interface (have %s)", req.Iface, strings.Join(have, ", "))
		}
		if f.InPorts != 0 && f.InPorts&mask == 0 {
			return cfg, fmt.Errorf("iface %q receives no %s frames", req.Iface, req.Direction)
		}
		if f.InPorts == 0 {
			f.InPorts = mask
		} else {
			f.InPorts &= mask
		}
	}
	if req.BPF != "" {
		prog, err := capture.ParseBPF(req.BPF)
		if err != nil {
			return cfg, fmt.Errorf("bpf: %w", err)
		}
		f.BPF = prog
	} else if req.Expr != "" {
		return cfg, fmt.Errorf("expr %q comes with its bpf program (tcpdump -ddd -y EN10MB EXPR; samepathctl capture compiles it)", req.Expr)
	}
	if req.Tuple != "" {
		t, err := capture.ParseTuple(req.Tuple)
		if err != nil {
			return cfg, fmt.Errorf("tuple: %w", err)
		}
		f.Tuple = &t
	}
	f.Drops = req.Drops
	if req.Reason != "" {
		found := false
		var names []string
		for _, r := range dp.Reasons() {
			names = append(names, r.String())
			if r.String() == req.Reason {
				f.Reason, found = uint8(r), true
			}
		}
		if !found {
			return cfg, fmt.Errorf("reason %q: want one of %s", req.Reason, strings.Join(names, ", "))
		}
	}
	switch {
	case req.Count < 0:
		return cfg, fmt.Errorf("count %d: want 1..%d (0: %d)", req.Count, capture.MaxCount, cfg.Count)
	case req.Count > 0:
		cfg.Count = req.Count
	}
	switch {
	case req.DurationMS < 0:
		return cfg, fmt.Errorf("duration_ms %d: want more than 0, at most %d (0: %d)", req.DurationMS, capture.MaxDuration.Milliseconds(), cfg.Duration.Milliseconds())
	case req.DurationMS > 0:
		cfg.Duration = time.Duration(req.DurationMS) * time.Millisecond
	}
	switch {
	case req.SnapLen < 0:
		return cfg, fmt.Errorf("snaplen %d: want 64..%d (0: the frame size)", req.SnapLen, capture.MaxSnapLen)
	case req.SnapLen > 0:
		// No frame is longer than a UMEM frame: more would only grow
		// the buffers New preallocates.
		cfg.SnapLen = min(req.SnapLen, ct.frameSize)
	}
	desc := []string{}
	for _, kv := range [][2]string{{"direction", req.Direction}, {"iface", req.Iface}, {"expr", req.Expr}, {"tuple", req.Tuple}, {"reason", req.Reason}} {
		if kv[1] != "" {
			desc = append(desc, kv[0]+"="+strconv.Quote(kv[1]))
		}
	}
	if req.Drops {
		desc = append(desc, "drops")
	}
	if req.BPF != "" && req.Expr == "" {
		desc = append(desc, "bpf program")
	}
	if len(desc) == 0 {
		desc = append(desc, "every frame")
	}
	cfg.Comment = fmt.Sprintf("samepathd capture: %s; count %d, duration %v", strings.Join(desc, " "), cfg.Count, cfg.Duration)
	return cfg, nil
}
