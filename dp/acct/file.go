package acct

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// writer is the writer goroutine's state; nothing else touches it (Open
// fills it before the goroutine starts, Close reads closeErr after it
// ended).
type writer struct {
	f        *os.File
	size     int64  // bytes of whole records in the file
	buf      []byte // records encoded, not yet written
	bufRecs  uint64
	line     []byte
	unsynced uint64 // records written since the last fsync
	// ckDirty: checkpoint files were written, or clears wait, since the
	// last fsync.
	ckDirty  bool
	lastSync time.Time
	closeErr error
}

const openFlags = os.O_RDWR | os.O_CREATE | os.O_APPEND

func (w *writer) open(l *Log) error {
	w.buf = make([]byte, 0, l.cfg.BufferSize)
	w.line = make([]byte, 0, MaxLine)
	w.lastSync = time.Now()
	f, err := os.OpenFile(l.path, openFlags, l.cfg.Mode)
	if err != nil {
		return fmt.Errorf("acct: open log: %w", err)
	}
	cut, size, err := repairTail(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("acct: repair %s: %w", l.path, err)
	}
	if err := syncDir(l.path); err != nil {
		f.Close()
		return fmt.Errorf("acct: %w", err)
	}
	l.repaired.Store(uint64(cut))
	w.f, w.size = f, size
	return nil
}

// repairTail truncates f after its last newline, removing a record torn
// by a crash, and fsyncs if it cut anything. It returns the bytes cut and
// the new size.
func repairTail(f *os.File) (cut, size int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = fi.Size()
	end := size
	buf := make([]byte, 64<<10)
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == size {
		return 0, size, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, 0, err
	}
	return size - end, end, nil
}

// add encodes r into the buffer, writing the buffer out or rotating the
// file first when needed.
func (w *writer) add(l *Log, r *Record) {
	w.line = AppendJSON(w.line[:0], r)
	if pending := w.size + int64(len(w.buf)); pending > 0 && pending+int64(len(w.line)) > l.cfg.MaxSize {
		w.flush(l)
		w.rotate(l)
	}
	if len(w.buf)+len(w.line) > cap(w.buf) {
		w.flush(l)
	}
	w.buf = append(w.buf, w.line...)
	w.bufRecs++
}

// flush writes the buffer. A failed write is cut back off the file so no
// torn record stays in the middle of the log; its records are counted
// as failed.
func (w *writer) flush(l *Log) {
	if len(w.buf) == 0 {
		return
	}
	ok := false
	if w.f == nil && !w.reopen(l) {
		l.failed.Add(w.bufRecs)
	} else if n, err := w.f.Write(w.buf); err != nil {
		l.werrs.Add(1)
		l.failed.Add(w.bufRecs)
		w.noteErr(fmt.Errorf("acct: write: %w", err))
		if n > 0 {
			if err := w.f.Truncate(w.size); err != nil {
				l.werrs.Add(1)
			}
		}
	} else {
		w.size += int64(n)
		w.unsynced += w.bufRecs
		l.written.Add(w.bufRecs)
		l.bytes.Add(uint64(n))
		ok = true
	}
	w.buf, w.bufRecs = w.buf[:0], 0
	for _, p := range *l.producers.Load() {
		if p.ck != nil {
			p.ck.flushed(ok)
		}
	}
}

// sync writes the buffer and fsyncs the file, then the checkpoint files
// (after the log: a checkpoint is cleared only once its flow's final
// record is durable).
func (w *writer) sync(l *Log) {
	w.flush(l)
	w.lastSync = time.Now()
	logSynced := true
	if w.unsynced > 0 && w.f != nil {
		if err := w.f.Sync(); err != nil {
			// After a failed fsync Linux may have dropped the dirty pages:
			// these records are written but not known durable.
			l.werrs.Add(1)
			w.noteErr(fmt.Errorf("acct: fsync: %w", err))
			logSynced = false
		} else {
			l.synced.Add(w.unsynced)
			l.syncs.Add(1)
		}
		w.unsynced = 0
	}
	w.syncCheckpoints(l, logSynced)
}

// rotate renames path.N to path.N+1 (dropping those past Keep), path to
// path.1, and starts a new path.
func (w *writer) rotate(l *Log) {
	w.sync(l)
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			l.werrs.Add(1)
		}
		w.f = nil
	}
	nums, err := rotated(l.path)
	if err != nil {
		l.werrs.Add(1)
	}
	for i := len(nums) - 1; i >= 0; i-- {
		n := nums[i]
		old := l.path + "." + strconv.Itoa(n)
		if n >= l.cfg.Keep {
			if err := os.Remove(old); err != nil {
				l.werrs.Add(1)
			}
			continue
		}
		if err := os.Rename(old, l.path+"."+strconv.Itoa(n+1)); err != nil {
			l.werrs.Add(1)
		}
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		l.werrs.Add(1)
	} else {
		l.rotations.Add(1)
	}
	w.reopen(l)
}

// reopen opens path for appending after a rotation or an earlier failure.
func (w *writer) reopen(l *Log) bool {
	f, err := os.OpenFile(l.path, openFlags, l.cfg.Mode)
	if err != nil {
		l.werrs.Add(1)
		w.noteErr(fmt.Errorf("acct: open log: %w", err))
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		l.werrs.Add(1)
		f.Close()
		return false
	}
	if err := syncDir(l.path); err != nil {
		l.werrs.Add(1)
	}
	w.f, w.size = f, fi.Size()
	return true
}

func (w *writer) close(l *Log) {
	w.sync(l)
	for _, p := range *l.producers.Load() {
		if p.ck != nil {
			p.ck.close(l)
		}
	}
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			l.werrs.Add(1)
			w.noteErr(fmt.Errorf("acct: close log: %w", err))
		}
		w.f = nil
	}
}

// noteErr keeps the first error for Close to return.
func (w *writer) noteErr(err error) {
	if w.closeErr == nil {
		w.closeErr = err
	}
}

func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("open log directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync log directory: %w", err)
	}
	return nil
}

// rotated lists the N of the files path.N, ascending.
func rotated(path string) ([]int, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var nums []int
	for _, e := range ents {
		suf, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || suf == "" || suf[0] == '0' {
			continue
		}
		n, err := strconv.Atoi(suf)
		if err != nil || n <= 0 {
			continue
		}
		nums = append(nums, n)
	}
	sort.Ints(nums)
	return nums, nil
}

// Files lists the log's files oldest first: path.N .. path.1, path. A
// directory stands for dir/FileName. Missing files are left out.
func Files(path string) ([]string, error) {
	p, err := logPath(path)
	if err != nil {
		return nil, err
	}
	nums, err := rotated(p)
	if err != nil {
		return nil, fmt.Errorf("acct: list %s: %w", p, err)
	}
	files := make([]string, 0, len(nums)+1)
	for i := len(nums) - 1; i >= 0; i-- {
		files = append(files, p+"."+strconv.Itoa(nums[i]))
	}
	if _, err := os.Stat(p); err == nil {
		files = append(files, p)
	}
	return files, nil
}
