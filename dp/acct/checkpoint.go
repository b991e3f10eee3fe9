package acct

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// Checkpoints (R-ACCT-2): a gateway worker pushes a Checkpoint record for
// each live flow whose counters changed, once per SyncInterval; the
// writer keeps the latest one of each flow in its producer's checkpoint
// file (path.ckpt.N, N the producer's index), fsync'd in the same batch
// as the log, and clears it once the flow's final record is durable.
// After a crash Open writes, for each flow left in a checkpoint file
// without a final record in the log, a final record from its checkpoint
// (cause gateway-restart), then removes the files.
//
// A file is a header and one slot per flow slot (the gateway's binding
// id), each slot two halves of ckptHalf bytes: a half holds one record
// (a checkpoint, or an interim record, which is one too), the number of
// the write that put it there, and a CRC. Two halves, so that a write
// torn by a crash leaves the slot's previous record whole: the writer
// never overwrites the half that holds a flow's newest record with
// another record of the same flow, nor a half holding an ended flow
// whose final record is not yet fsync'd (it syncs first). Clearing zeroes
// a flow's halves after its final record is fsync'd.

const (
	ckptHeader = 512
	ckptHalf   = 512
	ckptSlot   = 2 * ckptHalf
	ckptMagic  = "samepath acct checkpoints v1\n"
	halfMagic  = 0x31435053 // "SPC1"
	// recSize is Record's encoding (encodeRecord).
	// AcctSession comes last, so a half written before it existed
	// (zeroes there) decodes with none.
	recSize = 10 + 8 + UserSize + DeviceSize + ServiceTypeSize + ServiceSize + 16 + 16 + 2 + 2 + AttrSize + 8 + 8 + 6*8 + 8 + 8 + 4 + 1 + AcctSessionSize
	// MaxCheckpointSlots bounds the slots (binding ids) a checkpoint
	// file holds: nat.MaxCapacity.
	MaxCheckpointSlots = 1 << 24
	ckptSuffix         = ".ckpt."
)

var ckptTable = crc32.MakeTable(crc32.Castagnoli)

func init() {
	if 16+recSize+4 > ckptHalf {
		panic("acct: record does not fit a checkpoint half")
	}
}

// encodeRecord writes r's fields little-endian into b (recSize bytes).
func encodeRecord(b []byte, r *Record) {
	b[0], b[1], b[2] = byte(r.Kind), byte(r.Cause), r.Proto
	b[3] = 0
	if r.HasPayload {
		b[3] = 1
	}
	b[4], b[5], b[6], b[7], b[8], b[9] = r.UserLen, r.DeviceLen, r.ServiceLen, r.ServiceTypeLen, r.AttrLen, r.AttrKind
	o := 10
	put := func(v uint64) { binary.LittleEndian.PutUint64(b[o:], v); o += 8 }
	cp := func(s []byte) { o += copy(b[o:], s) }
	put(r.Session)
	cp(r.User[:])
	cp(r.Device[:])
	cp(r.ServiceType[:])
	cp(r.Service[:])
	cp(r.Rep[:])
	cp(r.Server[:])
	binary.LittleEndian.PutUint16(b[o:], r.RepPort)
	binary.LittleEndian.PutUint16(b[o+2:], r.ServerPort)
	o += 4
	cp(r.Attr[:])
	for _, v := range [...]uint64{uint64(r.Start), uint64(r.End), r.UpPackets, r.UpBytes, r.DownPackets, r.DownBytes,
		r.UpPayload, r.DownPayload, r.Boot, r.Seq} {
		put(v)
	}
	binary.LittleEndian.PutUint32(b[o:], r.Slot)
	o += 4
	b[o] = r.AcctSessionLen
	copy(b[o+1:], r.AcctSession[:])
}

// decodeRecord is encodeRecord's inverse.
func decodeRecord(b []byte, r *Record) {
	r.Kind, r.Cause, r.Proto, r.HasPayload = Kind(b[0]), Cause(b[1]), b[2], b[3] == 1
	r.UserLen, r.DeviceLen, r.ServiceLen, r.ServiceTypeLen, r.AttrLen, r.AttrKind = b[4], b[5], b[6], b[7], b[8], b[9]
	o := 10
	get := func() uint64 { v := binary.LittleEndian.Uint64(b[o:]); o += 8; return v }
	cp := func(d []byte) { o += copy(d, b[o:]) }
	r.Session = get()
	cp(r.User[:])
	cp(r.Device[:])
	cp(r.ServiceType[:])
	cp(r.Service[:])
	cp(r.Rep[:])
	cp(r.Server[:])
	r.RepPort, r.ServerPort = binary.LittleEndian.Uint16(b[o:]), binary.LittleEndian.Uint16(b[o+2:])
	o += 4
	cp(r.Attr[:])
	r.Start, r.End = int64(get()), int64(get())
	r.UpPackets, r.UpBytes, r.DownPackets, r.DownBytes = get(), get(), get(), get()
	r.UpPayload, r.DownPayload, r.Boot, r.Seq = get(), get(), get(), get()
	r.Slot = binary.LittleEndian.Uint32(b[o:])
	o += 4
	r.AcctSessionLen = b[o]
	copy(r.AcctSession[:], b[o+1:])
}

// ckptFile is one producer's checkpoint file, owned by the writer
// goroutine (Register creates it).
type ckptFile struct {
	f    *os.File
	path string
	// Per half (2*slot, 2*slot+1): the Seq of the flow whose record it
	// holds (0: empty) and whether that flow ended with its final record
	// not yet fsync'd (its record is still needed). last has a bit per
	// slot: the half written last.
	seq     []uint64
	pending []uint64 // bit per half
	last    []uint64 // bit per slot
	used    int      // halves holding a record
	// ends are the flows whose final records went to the log since the
	// last fsync, ends[:written] of them written out of the buffer.
	ends    []ckptEnd
	written int
	dirty   bool // written since the last fsync
	op      uint64
	buf     [ckptHalf]byte
	zero    [ckptSlot]byte
}

// ckptEnd is a clear to do once the log is fsync'd.
type ckptEnd struct {
	slot uint32
	seq  uint64
}

func ckptPath(log string, n int) string { return log + ckptSuffix + strconv.Itoa(n) }

// createCkpt makes (truncating) producer n's checkpoint file, its
// header fsync'd.
func createCkpt(log string, n int, mode os.FileMode) (*ckptFile, error) {
	path := ckptPath(log, n)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return nil, fmt.Errorf("acct: checkpoint file: %w", err)
	}
	var hdr [ckptHeader]byte
	copy(hdr[:], ckptMagic)
	if _, err := f.WriteAt(hdr[:], 0); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(path)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("acct: checkpoint file %s: %w", path, err)
	}
	return &ckptFile{f: f, path: path}, nil
}

func bit(b []uint64, i uint32) bool { return b[i>>6]&(1<<(i&63)) != 0 }
func setBit(b []uint64, i uint32, v bool) {
	if v {
		b[i>>6] |= 1 << (i & 63)
	} else {
		b[i>>6] &^= 1 << (i & 63)
	}
}

// grow makes room for slot (allocating on growth only).
func (c *ckptFile) grow(slot uint32) {
	if int(slot) < len(c.seq)/2 {
		return
	}
	n := max(1024, len(c.seq)/2)
	for n <= int(slot) {
		n *= 2
	}
	n = min(n, MaxCheckpointSlots)
	seq := make([]uint64, 2*n)
	copy(seq, c.seq)
	pend := make([]uint64, 2*n/64)
	copy(pend, c.pending)
	last := make([]uint64, n/64)
	copy(last, c.last)
	c.seq, c.pending, c.last = seq, pend, last
}

// checkpoint keeps r as its flow's latest record in slot r.Slot. It
// returns false when the slot's two halves are both still needed (the
// caller fsyncs the log, applying the clears, and calls again).
func (c *ckptFile) checkpoint(l *Log, r *Record) bool {
	s := r.Slot
	if s >= MaxCheckpointSlots {
		l.ckptErrs.Add(1)
		return true
	}
	c.grow(s)
	h0, h1 := 2*s, 2*s+1
	// A half is needed while it holds the flow's newest record, or an
	// ended flow's whose final record is not yet fsync'd. A flow's other
	// record (an older one), an empty half and the record of a flow
	// whose final record was lost (never pending) may be overwritten;
	// an empty half is taken first.
	needed := func(h uint32) bool {
		switch {
		case c.seq[h] == 0:
			return false
		case bit(c.pending, h):
			return true
		case c.seq[h] != r.Seq:
			return false
		case c.seq[h^1] != r.Seq:
			return true
		}
		return bit(c.last, s) == (h == h1)
	}
	var h uint32
	switch {
	case c.seq[h0] == 0:
		h = h0
	case c.seq[h1] == 0:
		h = h1
	case !needed(h0):
		h = h0
	case !needed(h1):
		h = h1
	default:
		return false
	}
	c.op++
	b := c.buf[:]
	clear(b)
	binary.LittleEndian.PutUint32(b, halfMagic)
	binary.LittleEndian.PutUint64(b[4:], c.op)
	encodeRecord(b[16:], r)
	binary.LittleEndian.PutUint32(b[ckptHalf-4:], crc32.Checksum(b[:ckptHalf-4], ckptTable))
	if _, err := c.f.WriteAt(b, ckptHeader+int64(h)*ckptHalf); err != nil {
		l.ckptErrs.Add(1)
		l.werrs.Add(1)
		return true
	}
	if c.seq[h] == 0 {
		c.used++
	}
	c.seq[h] = r.Seq
	setBit(c.last, s, h == h1)
	c.dirty = true
	l.checkpoints.Add(1)
	return true
}

// end notes that the final record of r's flow is in the log: its
// checkpoint is still needed until the log is fsync'd, then cleared.
func (c *ckptFile) end(r *Record) {
	s := r.Slot
	if int(s) >= len(c.seq)/2 {
		return
	}
	held := false
	for _, h := range [2]uint32{2 * s, 2*s + 1} {
		if c.seq[h] == r.Seq && !bit(c.pending, h) {
			setBit(c.pending, h, true)
			held = true
		}
	}
	if held {
		c.ends = append(c.ends, ckptEnd{s, r.Seq})
	}
}

// flushed is told whether the writer's buffer, holding the final records
// of ends[written:], was written. If not, those flows' checkpoints stay
// (no longer pending): a restart writes their final records from them.
func (c *ckptFile) flushed(ok bool) {
	if !ok {
		for _, e := range c.ends[c.written:] {
			for _, h := range [2]uint32{2 * e.slot, 2*e.slot + 1} {
				if c.seq[h] == e.seq {
					setBit(c.pending, h, false)
				}
			}
		}
		c.ends = c.ends[:c.written]
	}
	c.written = len(c.ends)
}

// clearEnded zeroes the halves of flows whose final records are now
// fsync'd in the log. A clear that fails to write stays in ends, to be
// tried again at the next fsync.
func (c *ckptFile) clearEnded(l *Log) {
	kept := c.ends[:0]
	for _, e := range c.ends {
		failed := false
		for _, h := range [2]uint32{2 * e.slot, 2*e.slot + 1} {
			if c.seq[h] != e.seq || !bit(c.pending, h) {
				continue
			}
			if _, err := c.f.WriteAt(c.zero[:ckptHalf], ckptHeader+int64(h)*ckptHalf); err != nil {
				l.ckptErrs.Add(1)
				l.werrs.Add(1)
				failed = true
				continue
			}
			c.seq[h] = 0
			setBit(c.pending, h, false)
			c.used--
			c.dirty = true
		}
		if failed {
			kept = append(kept, e)
		}
	}
	c.ends, c.written = kept, len(kept)
}

func (c *ckptFile) sync(l *Log) {
	if !c.dirty {
		return
	}
	if err := c.f.Sync(); err != nil {
		l.ckptErrs.Add(1)
		l.werrs.Add(1)
		return
	}
	c.dirty = false
}

// close closes the file and removes it when no flow's record is left in
// it (a clean stop: every flow ended with a final record).
func (c *ckptFile) close(l *Log) {
	empty := c.used == 0
	if err := c.f.Close(); err != nil {
		l.werrs.Add(1)
	}
	if empty {
		if err := os.Remove(c.path); err != nil {
			l.werrs.Add(1)
		} else if err := syncDir(c.path); err != nil {
			l.werrs.Add(1)
		}
	}
}

// ckptFiles lists the checkpoint files of the log at path.
func ckptFiles(path string) ([]string, error) {
	m, err := filepath.Glob(path + ckptSuffix + "*")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range m {
		if n, err := strconv.Atoi(f[len(path)+len(ckptSuffix):]); err == nil && n >= 0 {
			out = append(out, f)
		}
	}
	return out, nil
}

// ReadCheckpoints returns the flows' records left in the checkpoint file
// at name: for each flow its newest whole record (Kind Checkpoint or
// Interim). Halves torn by a crash are skipped.
func ReadCheckpoints(name string) ([]Record, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("acct: %w", err)
	}
	defer f.Close()
	return readCheckpoints(f, name)
}

func readCheckpoints(r io.Reader, name string) ([]Record, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [ckptHeader]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || !bytes.HasPrefix(hdr[:], []byte(ckptMagic)) {
		return nil, fmt.Errorf("acct: %s is not a checkpoint file (%q)", name, ckptMagic[:len(ckptMagic)-1])
	}
	var out []Record
	var slot [ckptSlot]byte
	for {
		n, err := io.ReadFull(br, slot[:])
		if n < ckptSlot {
			// A short last slot: what was extended of the file by a
			// write the crash tore.
			clear(slot[n:])
		}
		var rs [2]Record
		var op [2]uint64
		var ok [2]bool
		for i := range 2 {
			b := slot[i*ckptHalf : (i+1)*ckptHalf]
			if binary.LittleEndian.Uint32(b) != halfMagic ||
				binary.LittleEndian.Uint32(b[ckptHalf-4:]) != crc32.Checksum(b[:ckptHalf-4], ckptTable) {
				continue
			}
			decodeRecord(b[16:], &rs[i])
			op[i], ok[i] = binary.LittleEndian.Uint64(b[4:]), rs[i].Boot != 0
		}
		switch {
		case ok[0] && ok[1] && rs[0].Boot == rs[1].Boot && rs[0].Seq == rs[1].Seq:
			if op[1] > op[0] {
				out = append(out, rs[1])
			} else {
				out = append(out, rs[0])
			}
		default:
			for i := range 2 {
				if ok[i] {
					out = append(out, rs[i])
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return out, nil
			}
			return nil, fmt.Errorf("acct: read %s: %w", name, err)
		}
	}
}

// flowKey is a flow's name.
type flowKey struct{ boot, seq uint64 }

// parseFlowID reads Record.FlowID's form.
func parseFlowID(s []byte) (flowKey, bool) {
	if len(s) < 18 || s[16] != '-' {
		return flowKey{}, false
	}
	b, err := strconv.ParseUint(string(s[:16]), 16, 64)
	if err != nil {
		return flowKey{}, false
	}
	q, err := strconv.ParseUint(string(s[17:]), 10, 64)
	if err != nil {
		return flowKey{}, false
	}
	return flowKey{b, q}, true
}

// endedFlows returns the flows that have a final record in the log file
// at name. Only the current file is read: a flow's checkpoint is cleared
// in the fsync batch after its final record, and the log rotates only
// after an fsync batch.
func endedFlows(name string) (map[flowKey]bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	prefix := []byte(`{"kind":"final","flow":"`)
	out := map[flowKey]bool{}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			continue // not a record
		}
		if rest, ok := bytes.CutPrefix(line, prefix); ok {
			if i := bytes.IndexByte(rest, '"'); i > 0 {
				if k, ok := parseFlowID(rest[:i]); ok {
					out[k] = true
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
	}
}

// recover writes a final record (CauseGatewayRestart) for each flow left
// in the log's checkpoint files without a final record, fsyncs the log,
// then removes the files. It runs in Open, before the writer starts.
func (w *writer) recover(l *Log) error {
	files, err := ckptFiles(l.path)
	if err != nil || len(files) == 0 {
		return err
	}
	var recs []Record
	for _, name := range files {
		rs, err := ReadCheckpoints(name)
		if err != nil {
			return err
		}
		recs = append(recs, rs...)
	}
	if len(recs) > 0 {
		ended, err := endedFlows(l.path)
		if err != nil {
			return fmt.Errorf("acct: read %s: %w", l.path, err)
		}
		var n uint64
		for i := range recs {
			r := &recs[i]
			if ended[flowKey{r.Boot, r.Seq}] {
				continue
			}
			ended[flowKey{r.Boot, r.Seq}] = true // one record per flow
			r.Kind, r.Cause = Final, CauseGatewayRestart
			w.add(l, r)
			n++
		}
		w.flush(l)
		if w.unsynced > 0 {
			if err := w.f.Sync(); err != nil {
				return fmt.Errorf("acct: fsync %s: %w", l.path, err)
			}
			l.synced.Add(w.unsynced)
			l.syncs.Add(1)
			w.unsynced = 0
		}
		if l.failed.Load() > 0 {
			return fmt.Errorf("acct: writing the restart records to %s: %w", l.path, w.closeErr)
		}
		l.recovered.Store(n)
	}
	for _, name := range files {
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("acct: %w", err)
		}
	}
	return syncDir(l.path)
}
