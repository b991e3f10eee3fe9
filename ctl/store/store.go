package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names.
const (
	BucketGateways = "gateways" // T1: name -> JSON
	BucketUsers    = "users"    // T2: user id -> JSON
	BucketSessions = "sessions" // T3: session id -> JSON
	BucketAssign   = "assign"   // address assignments: IP -> JSON
	BucketOutbox   = "outbox"   // pending gateway events: 8-byte id -> JSON
	BucketMeta     = "meta"
)

var buckets = []string{BucketGateways, BucketUsers, BucketSessions, BucketAssign, BucketOutbox, BucketMeta}

// ErrClosed is returned by Wait and Enqueue after Close.
var ErrClosed = errors.New("store closed")

// Op is one change: Put when Val is not nil, Delete otherwise.
type Op struct {
	Bucket string
	Key    []byte
	Val    []byte
}

// Put returns a put operation.
func Put(bucket string, key, val []byte) Op { return Op{Bucket: bucket, Key: key, Val: val} }

// Del returns a delete operation.
func Del(bucket string, key []byte) Op { return Op{Bucket: bucket, Key: key} }

// Config configures Open.
type Config struct {
	// Dir holds state.db and the session log (sessions.log) unless LogPath is set.
	Dir string
	// LogPath is the session log file; default Dir/sessions.log.
	LogPath string
	// MaxBatch bounds the operations applied in one transaction.
	MaxBatch int
}

// DefaultConfig returns a Config for dir.
func DefaultConfig(dir string) Config { return Config{Dir: dir, MaxBatch: 4096} }

// Validate checks c.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("store: dir is empty")
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 4096
	}
	return nil
}

type entry struct {
	seq      uint64
	ops      []Op
	log      [][]byte
	onCommit func()
}

// Stats are the committer's counters.
type Stats struct {
	Commits    uint64 `json:"commits"`
	Ops        uint64 `json:"ops"`
	LogLines   uint64 `json:"log_lines"`
	Committed  uint64 `json:"committed_seq"`
	LastError  string `json:"last_error,omitempty"`
	MaxBatchOp int    `json:"max_batch_ops"`
}

// Store is the durable state. Safe for concurrent use.
type Store struct {
	cfg Config
	db  *bolt.DB
	log *os.File

	mu        sync.Mutex
	queue     []entry
	next      uint64 // last seq handed out
	committed uint64
	err       error
	closed    bool
	kick      chan struct{}
	done      chan struct{} // closed on each commit, replaced
	stopped   chan struct{}
	stats     Stats
}

// Open opens (creating if needed) the database and the session log and
// starts the commit goroutine.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", cfg.Dir, err)
	}
	if cfg.LogPath == "" {
		cfg.LogPath = filepath.Join(cfg.Dir, "sessions.log")
	}
	db, err := bolt.Open(filepath.Join(cfg.Dir, "state.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("store: open db: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: create buckets: %w", err)
	}
	lf, err := os.OpenFile(cfg.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open session log: %w", err)
	}
	s := &Store{cfg: cfg, db: db, log: lf, kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go s.RoutineCommit()
	return s, nil
}

// LogPath is the session log's path.
func (s *Store) LogPath() string { return s.cfg.LogPath }

// Enqueue queues ops and log lines for the next commit and returns the
// sequence number to Wait for. onCommit (may be nil) runs after the batch is
// durable. It never blocks on disk.
func (s *Store) Enqueue(ops []Op, log [][]byte, onCommit func()) uint64 {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ^uint64(0) // Wait answers ErrClosed
	}
	s.next++
	seq := s.next
	s.queue = append(s.queue, entry{seq: seq, ops: ops, log: log, onCommit: onCommit})
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return seq
}

// Last returns the last sequence number handed out: waiting for it makes
// everything enqueued so far durable.
func (s *Store) Last() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// Wait blocks until seq is durable, the store fails, or ctx ends.
func (s *Store) Wait(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		if s.committed >= seq {
			s.mu.Unlock()
			return nil
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return err
		}
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		ch := s.done
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Sync enqueues nothing and waits until everything queued so far is durable.
func (s *Store) Sync(ctx context.Context) error { return s.Wait(ctx, s.Last()) }

// RoutineCommit is the commit goroutine started by Open.
func (s *Store) RoutineCommit() {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.mu.Unlock()
			<-s.kick
			s.mu.Lock()
		}
		if len(s.queue) == 0 && s.closed {
			close(s.done)
			s.mu.Unlock()
			return
		}
		// Take up to MaxBatch ops worth of entries.
		n, nops := 0, 0
		for n < len(s.queue) && (n == 0 || nops+len(s.queue[n].ops) <= s.cfg.MaxBatch) {
			nops += len(s.queue[n].ops)
			n++
		}
		batch := make([]entry, n)
		copy(batch, s.queue[:n])
		s.queue = append(s.queue[:0], s.queue[n:]...)
		failed := s.err != nil
		s.mu.Unlock()

		var err error
		if !failed {
			err = s.commit(batch, nops)
		}
		if err == nil && !failed {
			// Callbacks run before Wait returns for this batch, so a waiter
			// sees their effects (e.g. Close -> None).
			for _, e := range batch {
				if e.onCommit != nil {
					e.onCommit()
				}
			}
		}
		s.mu.Lock()
		if err != nil && s.err == nil {
			s.err = err
			s.stats.LastError = err.Error()
		}
		if s.err == nil {
			s.committed = batch[len(batch)-1].seq
			s.stats.Committed = s.committed
		}
		close(s.done)
		s.done = make(chan struct{})
		s.mu.Unlock()
	}
}

func (s *Store) commit(batch []entry, nops int) error {
	var lines uint64
	var buf []byte
	for _, e := range batch {
		for _, l := range e.log {
			buf = append(buf, l...)
			buf = append(buf, '\n')
			lines++
		}
	}
	if len(buf) > 0 {
		if _, err := s.log.Write(buf); err != nil {
			return fmt.Errorf("store: write session log: %w", err)
		}
		if err := s.log.Sync(); err != nil {
			return fmt.Errorf("store: sync session log: %w", err)
		}
	}
	if nops > 0 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, e := range batch {
				for _, op := range e.ops {
					b := tx.Bucket([]byte(op.Bucket))
					if b == nil {
						return fmt.Errorf("no bucket %q", op.Bucket)
					}
					var err error
					if op.Val != nil {
						err = b.Put(op.Key, op.Val)
					} else {
						err = b.Delete(op.Key)
					}
					if err != nil {
						return fmt.Errorf("%s/%x: %w", op.Bucket, op.Key, err)
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: commit: %w", err)
		}
	}
	s.mu.Lock()
	s.stats.Commits++
	s.stats.Ops += uint64(nops)
	s.stats.LogLines += lines
	if nops > s.stats.MaxBatchOp {
		s.stats.MaxBatchOp = nops
	}
	s.mu.Unlock()
	return nil
}

// Stats returns the committer's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ForEach calls fn for every key in bucket from the committed state. The
// slices are valid only during fn.
func (s *Store) ForEach(bucket string, fn func(k, v []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return fmt.Errorf("store: no bucket %q", bucket)
		}
		return b.ForEach(fn)
	})
}

// Get returns a copy of bucket/key from the committed state, or nil.
func (s *Store) Get(bucket string, key []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return fmt.Errorf("store: no bucket %q", bucket)
		}
		if v := b.Get(key); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// Close drains the queue, stops the committer and closes the files.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	<-s.stopped
	err1 := s.log.Close()
	err2 := s.db.Close()
	if err1 != nil {
		return fmt.Errorf("store: close log: %w", err1)
	}
	if err2 != nil {
		return fmt.Errorf("store: close db: %w", err2)
	}
	return nil
}

// Committed reports whether seq is already durable.
func (s *Store) Committed(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committed >= seq
}
