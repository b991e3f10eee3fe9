package acct

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Filter selects records. Empty fields match everything.
type Filter struct {
	User, Device, Service, ServiceType string
	Kind                               string // "final" or "interim"
	// AcctSessionID selects one RADIUS accounting session's records.
	AcctSessionID string
	// Flow selects one flow's records (Record.FlowID), on every gateway
	// that carried it (state sync keeps the name across a takeover).
	Flow string
	// From and To select records whose [Start, End] overlaps [From, To):
	// End >= From and Start < To.
	From, To time.Time
}

// Match reports whether e passes f.
func (f *Filter) Match(e *Entry) bool {
	switch {
	case f.User != "" && e.User != f.User,
		f.Device != "" && e.Device != f.Device,
		f.Service != "" && e.Service != f.Service,
		f.ServiceType != "" && e.ServiceType != f.ServiceType,
		f.Kind != "" && e.Kind != f.Kind,
		f.AcctSessionID != "" && e.AcctSessionID != f.AcctSessionID,
		f.Flow != "" && e.Flow != f.Flow,
		!f.From.IsZero() && e.End.Before(f.From),
		!f.To.IsZero() && !e.Start.Before(f.To):
		return false
	}
	return true
}

// ScanStats says what a scan read.
type ScanStats struct {
	Files   []string // oldest first
	Lines   int      // whole lines read
	Matched int
	// Torn counts a last line without its newline (a record torn by a
	// crash, or one being written right now); it is skipped.
	Torn int
	// Bad counts whole lines that are not a record; they are skipped.
	Bad int
}

// Scan reads the log at path (a file or a directory holding FileName),
// rotated files first, and calls fn for each record that matches f. An
// error from fn stops the scan and is returned. Scan reads files only;
// it may run while the writer appends.
func Scan(path string, f Filter, fn func(*Entry) error) (ScanStats, error) {
	var st ScanStats
	files, err := Files(path)
	if err != nil {
		return st, err
	}
	if len(files) == 0 {
		return st, fmt.Errorf("acct: no log at %s: %w", path, os.ErrNotExist)
	}
	st.Files = files
	for _, name := range files {
		if err := scanFile(name, &f, &st, fn); err != nil {
			return st, err
		}
	}
	return st, nil
}

func scanFile(name string, f *Filter, st *ScanStats, fn func(*Entry) error) error {
	fh, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // rotated away since the listing
		}
		return fmt.Errorf("acct: %w", err)
	}
	defer fh.Close()
	r := bufio.NewReaderSize(fh, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				st.Torn++
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("acct: read %s: %w", name, err)
		}
		st.Lines++
		var e Entry
		if json.Unmarshal(line, &e) != nil || e.Kind == "" {
			st.Bad++
			continue
		}
		if !f.Match(&e) {
			continue
		}
		st.Matched++
		if err := fn(&e); err != nil {
			return err
		}
	}
}

// Query returns the records of the log at path that match f, oldest
// first.
func Query(path string, f Filter) ([]Entry, ScanStats, error) {
	var out []Entry
	st, err := Scan(path, f, func(e *Entry) error {
		out = append(out, *e)
		return nil
	})
	return out, st, err
}
