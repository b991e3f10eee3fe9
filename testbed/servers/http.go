package servers

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxBytes bounds GET /bytes/N (1 TiB): larger N is answered 400.
const MaxBytes = 1 << 40

// HTTPHandler serves /, /healthz, /bytes/N and /file/NAME (from dir; "" turns
// /file off). name is what GET / answers.
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
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.Header().Set("X-Server", name)
		io.Copy(w, Bytes(n))
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
