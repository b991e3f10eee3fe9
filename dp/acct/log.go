package acct

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// FileName is the log's file name when Config.Path or a query names a
// directory.
const FileName = "accounting.log"

// Config configures a Log.
type Config struct {
	// Path is the current log file, or a directory holding FileName.
	// Rotated files are Path.1 (newest) .. Path.Keep (oldest).
	Path string
	// SyncInterval: records written are fsync'd at least this often
	// while any are unsynced. It bounds what a crash can lose.
	SyncInterval time.Duration
	// SyncRecords, if > 0, also fsyncs as soon as this many records are
	// unsynced.
	SyncRecords int
	// MaxSize: the file is rotated before a record would take it past
	// this many bytes.
	MaxSize int64
	// Keep is how many rotated files are kept (>= 1).
	Keep int
	// RingSize is the number of records each producer's ring holds (a
	// power of two). A producer loses records when its ring is full, so
	// it must hold what the producer makes in PollInterval plus the
	// time of one fsync.
	RingSize int
	// MaxProducers bounds Register.
	MaxProducers int
	// PollInterval is how long the writer sleeps when every ring is empty.
	PollInterval time.Duration
	// BufferSize is the writer's buffer; it is written out when full and
	// whenever the rings are drained.
	BufferSize int
	// Mode is the permission of new log files.
	Mode os.FileMode
	// NoCheckpoints turns the checkpoint files off: Register makes none
	// and Producer.CheckpointInterval is 0, so a crash loses all usage
	// of the flows it ends since their last interim record.
	NoCheckpoints bool
}

// DefaultConfig returns the defaults for the log at path.
func DefaultConfig(path string) Config {
	return Config{
		Path:         path,
		SyncInterval: 200 * time.Millisecond,
		SyncRecords:  8192,
		MaxSize:      64 << 20,
		Keep:         8,
		RingSize:     4096,
		MaxProducers: 256,
		PollInterval: 2 * time.Millisecond,
		BufferSize:   256 << 10,
		Mode:         0o640,
	}
}

// Validate checks c.
func (c *Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("acct: empty log path")
	case c.SyncInterval <= 0:
		return fmt.Errorf("acct: sync interval %v", c.SyncInterval)
	case c.SyncRecords < 0:
		return fmt.Errorf("acct: sync records %d", c.SyncRecords)
	case c.MaxSize < MaxLine:
		return fmt.Errorf("acct: max size %d below one record (%d)", c.MaxSize, MaxLine)
	case c.Keep < 1 || c.Keep > 100000:
		return fmt.Errorf("acct: keep %d: want 1..100000", c.Keep)
	case c.RingSize <= 0 || c.RingSize&(c.RingSize-1) != 0 || c.RingSize > 1<<24:
		return fmt.Errorf("acct: ring size %d: want a power of two up to 1<<24", c.RingSize)
	case c.MaxProducers <= 0:
		return fmt.Errorf("acct: max producers %d", c.MaxProducers)
	case c.PollInterval <= 0:
		return fmt.Errorf("acct: poll interval %v", c.PollInterval)
	case c.BufferSize < MaxLine:
		return fmt.Errorf("acct: buffer size %d below one record (%d)", c.BufferSize, MaxLine)
	case c.Mode&^os.ModePerm != 0 || c.Mode == 0:
		return fmt.Errorf("acct: file mode %v", c.Mode)
	}
	return nil
}

// ErrClosed is returned by Register after Close.
var ErrClosed = errors.New("acct: log closed")

// Stats are the log's counters as plain numbers (see Log.Stats).
type Stats struct {
	Producers int
	Pushed    uint64 // records accepted by Push (checkpoints included)
	Lost      uint64 // records refused by Push: ring full or log closed
	Queued    uint64 // records in the rings now
	Written   uint64 // records written to the file
	Synced    uint64 // records written and fsync'd
	Failed    uint64 // records dropped because a write failed
	Syncs     uint64 // fsyncs done
	Rotations uint64
	// WriteErrors counts failed writes, fsyncs, truncates and opens.
	WriteErrors uint64
	// Repaired is the bytes of torn records cut off the file's end at Open.
	Repaired uint64
	Bytes    uint64 // bytes written since Open
	// Checkpoints counts checkpoint records written to the checkpoint
	// files; CheckpointsDeferred those refused by Producer.Checkpoint
	// (the ring was half full); CheckpointErrors failed checkpoint
	// writes and fsyncs (also in WriteErrors).
	Checkpoints, CheckpointsDeferred, CheckpointErrors uint64
	// Recovered is the final records (cause gateway-restart) Open wrote
	// from the checkpoints of flows a crash ended.
	Recovered uint64
}

// Log is the durable accounting log (R-ACCT-2): producers push records
// into their own SPSC rings, one writer goroutine drains them into the
// file.
type Log struct {
	cfg  Config
	path string

	mu        sync.Mutex // Register and Close
	producers atomic.Pointer[[]*Producer]
	closed    atomic.Bool
	quit      chan struct{}
	done      chan struct{}
	closeErr  error

	lost atomic.Uint64 // shared, touched only on loss

	// written by the writer goroutine, read by Stats
	written, synced, failed, syncs, rotations, werrs, repaired, bytes atomic.Uint64
	checkpoints, ckptErrs, recovered                                  atomic.Uint64

	w writer // writer-goroutine state
}

// Open opens (or creates) the log, repairs a torn last record left by a
// crash (truncating the file to its last newline) and starts the writer.
func Open(cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	path, err := logPath(cfg.Path)
	if err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg, path: path, quit: make(chan struct{}), done: make(chan struct{})}
	l.producers.Store(&[]*Producer{})
	if err := l.w.open(l); err != nil {
		return nil, err
	}
	if err := l.w.recover(l); err != nil {
		l.w.f.Close()
		return nil, err
	}
	go l.routineWriter()
	return l, nil
}

// Path is the current log file.
func (l *Log) Path() string { return l.path }

// logPath resolves a path that may name a directory.
func logPath(p string) (string, error) {
	fi, err := os.Stat(p)
	if err == nil && fi.IsDir() {
		return filepath.Join(p, FileName), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("acct: %w", err)
	}
	return p, nil
}

// Register makes a producer: a ring for one goroutine (a gateway worker)
// to push into. It may be called while the log runs.
func (l *Log) Register() (*Producer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return nil, ErrClosed
	}
	old := *l.producers.Load()
	if len(old) >= l.cfg.MaxProducers {
		return nil, fmt.Errorf("acct: %d producers registered already", len(old))
	}
	p := &Producer{
		slots: make([]Record, l.cfg.RingSize),
		mask:  uint64(l.cfg.RingSize - 1),
		size:  uint64(l.cfg.RingSize),
		log:   l,
	}
	if !l.cfg.NoCheckpoints {
		ck, err := createCkpt(l.path, len(old), l.cfg.Mode)
		if err != nil {
			return nil, err
		}
		p.ck = ck
	}
	ps := make([]*Producer, len(old), len(old)+1)
	copy(ps, old)
	ps = append(ps, p)
	l.producers.Store(&ps)
	return p, nil
}

// Stats reads the counters; any goroutine may call it.
func (l *Log) Stats() Stats {
	ps := *l.producers.Load()
	s := Stats{
		Producers: len(ps), Lost: l.lost.Load(),
		Written: l.written.Load(), Synced: l.synced.Load(), Failed: l.failed.Load(),
		Syncs: l.syncs.Load(), Rotations: l.rotations.Load(), WriteErrors: l.werrs.Load(),
		Repaired: l.repaired.Load(), Bytes: l.bytes.Load(),
		Checkpoints: l.checkpoints.Load(), CheckpointErrors: l.ckptErrs.Load(), Recovered: l.recovered.Load(),
	}
	for _, p := range ps {
		s.CheckpointsDeferred += p.deferred.Load()
		t := p.tail.Load()
		s.Pushed += t
		s.Queued += t - p.head.Load()
	}
	return s
}

// Close stops the writer after it has drained every ring, written and
// fsync'd everything, and closed the file. Producers must have stopped
// pushing: a Push after Close returns false and is counted lost; one that
// races with Close may be counted lost although the record was written
// out, never the reverse.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return l.closeErr
	}
	l.closed.Store(true)
	close(l.quit)
	<-l.done
	// Whatever a racing producer got in after the last drain is lost.
	for _, p := range *l.producers.Load() {
		if q := p.tail.Load() - p.head.Load(); q > 0 {
			l.lost.Add(q)
			p.head.Store(p.tail.Load())
		}
	}
	l.closeErr = l.w.closeErr
	return l.closeErr
}

// Producer is one goroutine's end of the log: a single-producer
// single-consumer ring of Records. Only one goroutine may call Push.
type Producer struct {
	slots []Record
	mask  uint64
	size  uint64
	log   *Log

	_    [64]byte
	head atomic.Uint64 // next slot the writer reads; written by the writer
	_    [56]byte
	tail atomic.Uint64 // next slot to fill; written by the producer
	_    [56]byte

	// producer-local
	cachedHead uint64
	lost       atomic.Uint64
	deferred   atomic.Uint64
	_          [40]byte

	ck *ckptFile // the writer's; nil when checkpoints are off
}

// Push copies r into the ring and returns true, or returns false and
// counts the record lost when the ring is full (the writer is behind) or
// the log is closed. It never blocks and never allocates. The record is
// copied: the caller may reuse r at once.
func (p *Producer) Push(r *Record) bool {
	t := p.tail.Load()
	if t-p.cachedHead >= p.size {
		p.cachedHead = p.head.Load()
		if t-p.cachedHead >= p.size {
			p.lose()
			return false
		}
	}
	if p.log.closed.Load() {
		p.lose()
		return false
	}
	p.slots[t&p.mask] = *r
	p.tail.Store(t + 1)
	return true
}

// PushWait is Push for a caller that may wait, never the poll loop (a
// gateway writing the final records of its open flows as it stops):
// while the ring is full it waits for the writer, until deadline, and
// only then counts the record lost.
func (p *Producer) PushWait(r *Record, deadline time.Time) bool {
	for p.tail.Load()-p.head.Load() >= p.size && !p.log.closed.Load() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	return p.Push(r)
}

// Checkpoint pushes r, a live flow's Checkpoint record (r.Boot set), if
// the ring is at most half full, keeping the other half for final and
// interim records; otherwise, or when checkpoints are off, it returns
// false and counts the record deferred, not lost: the caller tries
// again later. Never blocks, never allocates.
func (p *Producer) Checkpoint(r *Record) bool {
	if p.ck == nil || r.Boot == 0 {
		return false
	}
	t := p.tail.Load()
	if t-p.cachedHead > p.size/2 {
		p.cachedHead = p.head.Load()
		if t-p.cachedHead > p.size/2 {
			p.deferred.Add(1)
			return false
		}
	}
	return p.Push(r)
}

// CheckpointInterval is how often the producer should checkpoint each
// live flow whose counters changed: the log's SyncInterval, one
// checkpoint per fsync batch; 0 when checkpoints are off.
func (p *Producer) CheckpointInterval() time.Duration {
	if p.ck == nil {
		return 0
	}
	return p.log.cfg.SyncInterval
}

func (p *Producer) lose() {
	p.lost.Add(1)
	p.log.lost.Add(1)
}

// Lost is the number of records this producer could not push.
func (p *Producer) Lost() uint64 { return p.lost.Load() }

// routineWriter is the writer goroutine: it drains the rings, writes,
// fsyncs in batches and rotates. It owns the file.
func (l *Log) routineWriter() {
	defer close(l.done)
	w := &l.w
	timer := time.NewTimer(l.cfg.PollInterval)
	defer timer.Stop()
	for {
		n := l.drain()
		if w.unsynced > 0 || w.ckDirty {
			if l.cfg.SyncRecords > 0 && w.unsynced >= uint64(l.cfg.SyncRecords) ||
				time.Since(w.lastSync) >= l.cfg.SyncInterval {
				w.sync(l)
			}
		} else {
			w.lastSync = time.Now()
		}
		if n > 0 {
			continue
		}
		select {
		case <-l.quit:
			// Producers have stopped (Close's contract): a last drain
			// picks up what was pushed before quit.
			for l.drain() > 0 {
			}
			w.close(l)
			return
		case <-timer.C:
			timer.Reset(l.cfg.PollInterval)
		}
	}
}

// drainBatch bounds how many records one ring gives per round, so one
// busy producer cannot starve the others.
const drainBatch = 512

// drain moves what the rings hold into the file and returns how many
// records it took.
func (l *Log) drain() int {
	w := &l.w
	total := 0
	for _, p := range *l.producers.Load() {
		h := p.head.Load()
		t := p.tail.Load()
		if t-h > drainBatch {
			t = h + drainBatch
		}
		total += int(t - h)
		for ; h != t; h++ {
			w.take(l, p, &p.slots[h&p.mask])
		}
		// The slots are copied out: give them back to the producer.
		p.head.Store(h)
	}
	if total > 0 {
		w.flush(l)
	}
	return total
}

// take routes a record from p's ring: checkpoints to p's checkpoint
// file, the rest to the log; an interim record of a named flow is its
// checkpoint too, a final record's clears its checkpoint once fsync'd.
func (w *writer) take(l *Log, p *Producer, r *Record) {
	ck := p.ck
	if r.Kind != Checkpoint {
		w.add(l, r)
	}
	if ck == nil || r.Boot == 0 {
		return
	}
	switch r.Kind {
	case Checkpoint, Interim:
		w.ckDirty = true
		if !ck.checkpoint(l, r) {
			// Both halves of the slot are still needed: an ended flow's
			// final record is not fsync'd yet. Fsync, clear, retry.
			w.sync(l)
			w.ckDirty = true
			if !ck.checkpoint(l, r) {
				l.ckptErrs.Add(1)
			}
		}
	case Final:
		ck.end(r)
		w.ckDirty = true
	}
}

// syncCheckpoints runs after the log's fsync: it clears the checkpoints
// of flows whose final records are now durable and fsyncs the
// checkpoint files.
func (w *writer) syncCheckpoints(l *Log, logSynced bool) {
	if !w.ckDirty {
		return
	}
	w.ckDirty = false
	for _, p := range *l.producers.Load() {
		if p.ck == nil {
			continue
		}
		if logSynced {
			p.ck.clearEnded(l)
			if len(p.ck.ends) > 0 {
				w.ckDirty = true // clears to try again
			}
		} else {
			// The final records are not known durable: their flows'
			// checkpoints stay, for a restart to dedup or write.
			p.ck.written = 0
			p.ck.flushed(false)
		}
		p.ck.sync(l)
	}
}
