package servers

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MaxBytes bounds GET /bytes/N (1 TiB): larger N is answered 400.
const MaxBytes = 1 << 40

// HTTPHandler serves /, /healthz, /bytes/N and /file/NAME (from dir; "" turns
// /file off). name is what GET / answers. /bytes/N?rate=R sends at R bytes
// per second (a radio link's rate, the bottleneck a reader does not set);
// ?delay=D waits D before answering and ?validator=etag|lm serves it with
// a strong validator and ranges (resume.go).
func HTTPHandler(name, dir string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, name)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 || n > MaxBytes {
			http.Error(w, "bad size: want 0.."+strconv.FormatInt(MaxBytes, 10), http.StatusBadRequest)
			return
		}
		var rate int64
		if q := r.URL.Query().Get("rate"); q != "" {
			if rate, err = strconv.ParseInt(q, 10, 64); err != nil || rate <= 0 {
				http.Error(w, "bad rate: want bytes per second > 0", http.StatusBadRequest)
				return
			}
		}
		if !delayAndValidator(w, r, name, n, rate) {
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.Header().Set("X-Server", name)
		if rate == 0 {
			io.Copy(w, Bytes(n))
			return
		}
		io.Copy(&pacer{w: w, rate: rate, start: time.Now()}, Bytes(n))
	})
	mux.HandleFunc("GET /file/{name}", func(w http.ResponseWriter, r *http.Request) {
		f := r.PathValue("name")
		if dir == "" || f == "" || f == "." || f == ".." || strings.ContainsAny(f, "/\\\x00") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Server", name)
		http.ServeFile(w, r, filepath.Join(dir, f))
	})
	return mux
}

// pacer writes to w at rate bytes per second, in chunks it flushes, so
// the sender's pace, not the reader's, sets the flow.
type pacer struct {
	w     http.ResponseWriter
	rate  int64
	start time.Time
	sent  int64
}

func (p *pacer) Write(b []byte) (int, error) {
	const chunk = 16 << 10
	done := 0
	for done < len(b) {
		n, err := p.w.Write(b[done:min(done+chunk, len(b))])
		done += n
		p.sent += int64(n)
		if err != nil {
			return done, err
		}
		if f, ok := p.w.(http.Flusher); ok {
			f.Flush()
		}
		if ahead := time.Duration(float64(p.sent)/float64(p.rate)*float64(time.Second)) - time.Since(p.start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return done, nil
}
