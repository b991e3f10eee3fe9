package servers

import (
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// /bytes/N?validator= serves the same stream with a validator and
// ranges: a range is the stream's slice, a changed validator gets 412
// (If-Match) or the whole stream (If-Range).
func TestBytesValidatorRanges(t *testing.T) {
	s := httptest.NewServer(HTTPHandler("a1", ""))
	defer s.Close()
	const n = 1 << 20
	full, _ := io.ReadAll(Bytes(n))
	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b := get("/bytes/1048576?validator=etag")
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"bytes-1048576"` || sha256.Sum256(b) != BytesSHA256(n) {
		t.Fatalf("etag: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("ETag"), len(b))
	}
	resp, b = get("/bytes/1048576?validator=etag&rate=100000000", "Range", "bytes=1000-", "If-Match", `"bytes-1048576"`)
	if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != "bytes 1000-1048575/1048576" || string(b) != string(full[1000:]) {
		t.Fatalf("range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
	}
	if resp, _ = get("/bytes/1048576?validator=etag", "Range", "bytes=1000-", "If-Match", `"other"`); resp.StatusCode != 412 {
		t.Errorf("if-match another etag: %d, want 412", resp.StatusCode)
	}
	resp, b = get("/bytes/1048576?validator=lm", "Range", "bytes=5-", "If-Range", BytesModTime.Format(http.TimeFormat))
	if resp.StatusCode != 206 || string(b) != string(full[5:]) || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("lm range: %d, %d bytes", resp.StatusCode, len(b))
	}
	if resp, b = get("/bytes/1048576?validator=lm", "Range", "bytes=5-", "If-Range", "Wed, 01 Jan 2020 00:00:01 GMT"); resp.StatusCode != 200 || len(b) != n {
		t.Errorf("if-range another date: %d, %d bytes; want the whole 200", resp.StatusCode, len(b))
	}
	if resp, b = get("/bytes/10?delay=10ms"); resp.StatusCode != 200 || len(b) != 10 {
		t.Errorf("delay: %d, %d bytes", resp.StatusCode, len(b))
	}
	for _, p := range []string{"/bytes/10?delay=x", "/bytes/10?validator=x"} {
		if resp, _ = get(p); resp.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", p, resp.StatusCode)
		}
	}
}
