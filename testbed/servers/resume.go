package servers

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Options of GET /bytes/N for the risk-balancing tests (R-TCP-4):
//
//   - delay=D (a Go duration) waits D before answering: a server that
//     takes the request and dies before its first byte.
//   - validator=etag serves the stream with ETag "bytes-N", validator=lm
//     with Last-Modified BytesModTime, both through http.ServeContent,
//     so Range, If-Match and If-Range work as in any Go file server; the
//     same on every server, so a download resumes from any of them.
//     Without it the stream has no validator and no ranges.

// BytesModTime is the Last-Modified of /bytes/N?validator=lm.
var BytesModTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// delayAndValidator handles delay and validator; false: it answered.
func delayAndValidator(w http.ResponseWriter, r *http.Request, name string, n, rate int64) bool {
	q := r.URL.Query()
	if d := q.Get("delay"); d != "" {
		v, err := time.ParseDuration(d)
		if err != nil || v < 0 || v > time.Hour {
			http.Error(w, "bad delay: want a duration 0..1h", http.StatusBadRequest)
			return false
		}
		select {
		case <-time.After(v):
		case <-r.Context().Done():
			return false
		}
	}
	v := q.Get("validator")
	if v == "" {
		return true
	}
	var mod time.Time
	switch v {
	case "etag":
		w.Header().Set("ETag", `"bytes-`+strconv.FormatInt(n, 10)+`"`)
	case "lm":
		mod = BytesModTime
	default:
		http.Error(w, "bad validator: want etag or lm", http.StatusBadRequest)
		return false
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Server", name)
	var out http.ResponseWriter = w
	if rate > 0 {
		out = &pacedWriter{ResponseWriter: w, p: pacer{w: w, rate: rate, start: time.Now()}}
	}
	http.ServeContent(out, r, "", mod, &seekBytes{n: n})
	return false
}

// pacedWriter is a ResponseWriter whose body goes through a pacer.
type pacedWriter struct {
	http.ResponseWriter
	p pacer
}

func (w *pacedWriter) Write(b []byte) (int, error) { return w.p.Write(b) }

// seekBytes is the first n bytes of the /bytes stream as an
// io.ReadSeeker: a seek regenerates the stream up to the offset.
type seekBytes struct {
	n, off int64
	r      io.Reader
	at     int64 // position of r
}

func (s *seekBytes) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.off
	case io.SeekEnd:
		off += s.n
	}
	if off < 0 {
		return 0, errors.New("seek before the start")
	}
	s.off = off
	return off, nil
}

func (s *seekBytes) Read(b []byte) (int, error) {
	if s.off >= s.n {
		return 0, io.EOF
	}
	if s.r == nil || s.at != s.off {
		s.r, s.at = rand.NewChaCha8(seed), 0
		if _, err := io.CopyN(io.Discard, s.r, s.off); err != nil {
			return 0, err
		}
		s.at = s.off
	}
	b = b[:min(int64(len(b)), s.n-s.off)]
	k, err := s.r.Read(b)
	s.off += int64(k)
	s.at += int64(k)
	return k, err
}
