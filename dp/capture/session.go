package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Limits on a Config.
const (
	MaxCount    = 1_000_000
	MaxDuration = time.Hour
	MaxSnapLen  = 65535
	MaxRing     = 1 << 16
	MaxPorts    = 64
)

// Config configures a Session.
type Config struct {
	Filter Filter
	// Count is the most frames the capture takes; Duration the longest it
	// runs. It ends at whichever comes first.
	Count    int
	Duration time.Duration
	// SnapLen is the most bytes kept of each frame, before and after.
	SnapLen int
	// Ring is how many frames each worker can hold between two drains;
	// DrainInterval how often the session drains them.
	Ring          int
	DrainInterval time.Duration
	// Workers names, for each worker, its ports in order (e.g.
	// "eth0/q0"): the pcapng file's interfaces.
	Workers [][]string
	// Reason names a drop reason (dp.Reason's String).
	Reason func(uint8) string
	// Comment goes into the file's section header: what was asked.
	Comment string
}

// DefaultConfig is 100 frames in at most 10 s, 2048 bytes of each, 256
// frames per worker drained every 2 ms.
func DefaultConfig() Config {
	return Config{Count: 100, Duration: 10 * time.Second, SnapLen: 2048, Ring: 256, DrainInterval: 2 * time.Millisecond}
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.Count < 1 || c.Count > MaxCount:
		return fmt.Errorf("capture count %d: want 1..%d", c.Count, MaxCount)
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("capture duration %v: want more than 0, at most %v", c.Duration, MaxDuration)
	case c.SnapLen < 64 || c.SnapLen > MaxSnapLen:
		return fmt.Errorf("capture snaplen %d: want 64..%d", c.SnapLen, MaxSnapLen)
	case c.Ring < 1 || c.Ring > MaxRing:
		return fmt.Errorf("capture ring %d: want 1..%d", c.Ring, MaxRing)
	case c.DrainInterval <= 0:
		return fmt.Errorf("capture drain interval %v: want more than 0", c.DrainInterval)
	case len(c.Workers) == 0:
		return errors.New("capture: no workers")
	}
	for i, ps := range c.Workers {
		if len(ps) == 0 || len(ps) > MaxPorts {
			return fmt.Errorf("capture worker %d: %d ports: want 1..%d", i, len(ps), MaxPorts)
		}
	}
	return nil
}

// Armer is a worker a Session arms: dp.Worker. SetTap(nil) disarms.
type Armer interface{ SetTap(*Tap) }

// Session is one capture over a set of workers.
type Session struct {
	cfg       Config
	taps      []*Tap
	remaining atomic.Int64 // frames still to take, over every tap
}

// New makes a session and its taps (every buffer preallocated).
func New(cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMatcher(cfg.Filter)
	if err != nil {
		return nil, err
	}
	if cfg.Reason == nil {
		cfg.Reason = func(r uint8) string { return "reason " + strconv.Itoa(int(r)) }
	}
	s := &Session{cfg: cfg}
	s.remaining.Store(int64(cfg.Count))
	ring := cfg.Ring
	if !m.drops {
		// Without Drops every matched frame is kept, so no more than
		// Count are ever wanted; with it, a batch's matches wait in the
		// ring for their verdicts.
		ring = min(ring, cfg.Count)
	}
	for i, ps := range cfg.Workers {
		// Each tap its own matcher: the VM is read-only, the copy keeps
		// each worker's filter state on its own cache lines.
		mc := *m
		s.taps = append(s.taps, newTap(s, i, len(ps), &mc, cfg.SnapLen, ring))
	}
	return s, nil
}

// Tap returns worker i's tap.
func (s *Session) Tap(i int) *Tap { return s.taps[i] }

// Stats is what a finished session took.
type Stats struct {
	Frames  int    // frames written
	Packets int    // pcapng packets written (a forwarded frame is two)
	Lost    uint64 // matched frames a full ring could not hold
	End     string // why it ended: count, duration or canceled
}

// Run writes the pcapng header to out, arms every worker (ws[i] gets
// Tap(i)), drains the taps into out every DrainInterval until Count frames
// are written, Duration passes or ctx is done, then disarms them, writes
// what they still held and, per interface, an interface statistics block
// whose dropped count is the frames lost to a full ring. flush, if set,
// is called after each write reaches out (an HTTP response's Flush).
// Frames a worker publishes after the final drain (at most one batch
// each, in flight as it was disarmed) are not written.
func (s *Session) Run(ctx context.Context, ws []Armer, out io.Writer, flush func()) (Stats, error) {
	if len(ws) != len(s.taps) {
		return Stats{}, fmt.Errorf("capture: %d workers for %d taps", len(ws), len(s.taps))
	}
	start := time.Now()
	wr, ifs, err := s.header(out)
	if err != nil {
		return Stats{}, err
	}
	flushAll := func() error {
		if err := wr.Flush(); err != nil {
			return err
		}
		if flush != nil {
			flush()
		}
		return nil
	}
	if err := flushAll(); err != nil {
		return Stats{}, fmt.Errorf("capture: write header: %w", err)
	}
	for i, w := range ws {
		w.SetTap(s.taps[i])
	}
	armed := true
	disarm := func() {
		if armed {
			for _, w := range ws {
				w.SetTap(nil)
			}
			armed = false
		}
	}
	defer disarm()

	var st Stats
	var seq uint64
	drainAll := func() error {
		n := st.Frames
		for i, t := range s.taps {
			err := t.drain(func(r *record) error {
				if st.Frames >= s.cfg.Count {
					return nil // a batch may overshoot the count: drop its tail
				}
				seq++
				k, err := s.write(wr, ifs[i], i, r, seq)
				st.Frames++
				st.Packets += k
				return err
			})
			if err != nil {
				return fmt.Errorf("capture: write: %w", err)
			}
		}
		if st.Frames > n {
			return flushAll()
		}
		return nil
	}
	tick := time.NewTicker(s.cfg.DrainInterval)
	defer tick.Stop()
	timer := time.NewTimer(s.cfg.Duration)
	defer timer.Stop()
	for st.End == "" {
		select {
		case <-ctx.Done():
			st.End = "canceled"
		case <-timer.C:
			st.End = "duration"
		case <-tick.C:
			if err := drainAll(); err != nil {
				return st, err
			}
			if st.Frames >= s.cfg.Count {
				st.End = "count"
			}
		}
	}
	disarm()
	if err := drainAll(); err != nil {
		return st, err
	}
	end := time.Now()
	for i, t := range s.taps {
		for p := range t.nports {
			lost := t.Lost(p)
			st.Lost += lost
			err := wr.WriteInterfaceStats(ifs[i][p], pcapgo.NgInterfaceStatistics{
				LastUpdate: end, StartTime: start, EndTime: end,
				PacketsReceived: pcapgo.NgNoValue64, PacketsDropped: lost,
			})
			if err != nil {
				return st, fmt.Errorf("capture: write statistics: %w", err)
			}
		}
	}
	if err := flushAll(); err != nil {
		return st, fmt.Errorf("capture: write statistics: %w", err)
	}
	return st, nil
}

// header writes the section header and one interface per worker port;
// ifs[w][p] is the interface id of worker w's port p.
func (s *Session) header(out io.Writer) (*pcapgo.NgWriter, [][]int, error) {
	intf := func(w, p int) pcapgo.NgInterface {
		return pcapgo.NgInterface{
			Name:                s.cfg.Workers[w][p],
			Description:         fmt.Sprintf("samepathd worker %d port %d", w, p),
			OS:                  runtime.GOOS,
			LinkType:            layers.LinkTypeEthernet,
			SnapLength:          uint32(s.cfg.SnapLen),
			TimestampResolution: 9,
		}
	}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "samepathd capture", Comment: s.cfg.Comment,
	}}
	wr, err := pcapgo.NewNgWriterInterface(out, intf(0, 0), opts)
	if err != nil {
		return nil, nil, fmt.Errorf("capture: write header: %w", err)
	}
	ifs := make([][]int, len(s.cfg.Workers))
	for w, ps := range s.cfg.Workers {
		ifs[w] = make([]int, len(ps))
		for p := range ps {
			if w == 0 && p == 0 {
				continue
			}
			if ifs[w][p], err = wr.AddInterface(intf(w, p)); err != nil {
				return nil, nil, fmt.Errorf("capture: write header: %w", err)
			}
		}
	}
	return wr, ifs, nil
}

// Verdict says in words what the worker did with r.
func (s *Session) verdict(w int, r *record) string {
	ports := s.cfg.Workers[w]
	switch {
	case r.out < 0 && r.drop == 0:
		return "dropped: no egress port"
	case r.out < 0:
		return "dropped: " + s.cfg.Reason(r.drop)
	case r.drop != 0:
		return "refused: " + s.cfg.Reason(r.drop) + ", answered to " + ports[r.out]
	}
	return "forwarded to " + ports[r.out]
}

// write writes r as one pcapng packet (the frame as received) or, when
// it was sent on, two (then also the frame as sent), sharing packet id
// seq. It returns how many it wrote.
func (s *Session) write(wr *pcapgo.NgWriter, ifs []int, w int, r *record, seq uint64) (int, error) {
	ports := s.cfg.Workers[w]
	verdict := s.verdict(w, r)
	id := seq
	ts := time.Unix(0, r.ts)
	in := pcapgo.NgPacketOptions{
		Comments: []string{fmt.Sprintf("worker %d rx %s, before rewriting: %s", w, ports[r.in], verdict)},
		Flags:    &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound},
		PacketID: &id,
	}
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(r.before), Length: r.beforeLen, InterfaceIndex: ifs[r.in]}
	if err := wr.WritePacketWithOptions(ci, r.before, in); err != nil {
		return 0, err
	}
	if r.out < 0 {
		return 1, nil
	}
	what := "after rewriting"
	if r.drop != 0 {
		what = "the answer to the refused frame"
	}
	outOpts := pcapgo.NgPacketOptions{
		Comments: []string{fmt.Sprintf("worker %d tx %s, %s: received on %s, %s", w, ports[r.out], what, ports[r.in], verdict)},
		Flags:    &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound},
		PacketID: &id,
	}
	ci = gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(r.after), Length: r.afterLen, InterfaceIndex: ifs[r.out]}
	if err := wr.WritePacketWithOptions(ci, r.after, outOpts); err != nil {
		return 1, err
	}
	return 2, nil
}
