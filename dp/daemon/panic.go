package daemon

import (
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"samepath/dp"
)

// panicLog logs the batches whose pipeline panicked (dp.WorkerConfig's
// OnPanic): the panic, the stack and every frame of the batch in hex, so
// the frame that found the bug can be replayed. At most one report a
// second is logged in full; the others are counted and their number is
// logged with the next full one. The worker has already dropped and
// counted the batch (drop reason "panic") and goes on.
type panicLog struct {
	log *slog.Logger

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// maxFrameHex bounds how much of each frame is logged.
const maxFrameHex = 2048

func (p *panicLog) report(r dp.PanicReport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if !p.last.IsZero() && now.Sub(p.last) < time.Second {
		p.suppressed++
		return
	}
	p.last = now
	frames := make([]string, len(r.Frames))
	for i, f := range r.Frames {
		frames[i] = hex.EncodeToString(f[:min(len(f), maxFrameHex)])
	}
	p.log.Error("pipeline panic: batch dropped, worker continues",
		"port", r.Port, "panic", r.Value, "frames", frames, "stack", string(r.Stack),
		"suppressed_since_last", p.suppressed)
	p.suppressed = 0
}
