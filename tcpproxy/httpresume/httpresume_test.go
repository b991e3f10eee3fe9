package httpresume

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const okResp = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: \"v1\"\r\nDate: Tue, 01 Dec 2026 12:00:10 GMT\r\nLast-Modified: Tue, 01 Dec 2026 12:00:00 GMT\r\n\r\n"

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     *Response // nil: an error
		err      error
	}{
		{name: "ok", in: okResp + "body", want: &Response{
			Version: "HTTP/1.1", Status: 200, HeadLen: len(okResp), ContentLength: 1000, ETag: `"v1"`,
			Date: "Tue, 01 Dec 2026 12:00:10 GMT", LastModified: "Tue, 01 Dec 2026 12:00:00 GMT",
		}},
		{name: "206", in: "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-999/1000\r\nContent-Length: 990\r\n\r\n", want: &Response{
			Version: "HTTP/1.1", Status: 206, HeadLen: 87, ContentLength: 990, ContentRange: ContentRange{true, 10, 999, 1000},
		}},
		{name: "no reason", in: "HTTP/1.1 200\r\n\r\n", want: &Response{Version: "HTTP/1.1", Status: 200, HeadLen: 16, ContentLength: -1}},
		{name: "incomplete", in: "HTTP/1.1 200 OK\r\nContent-Length: 1", err: ErrIncomplete},
		{name: "empty", in: "", err: ErrIncomplete},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 1\n\n", err: ErrMalformed},
		{name: "bare LF in field", in: "HTTP/1.1 200 OK\r\nA: b\nc\r\n\r\n", err: ErrMalformed},
		{name: "fold", in: "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", err: ErrMalformed},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", err: ErrMalformed},
		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", err: ErrMalformed},
		{name: "signed length", in: "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", err: ErrMalformed},
		{name: "huge length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", err: ErrMalformed},
		{name: "two etags", in: "HTTP/1.1 200 OK\r\nETag: \"a\"\r\nEtag: \"b\"\r\n\r\n", err: ErrMalformed},
		{name: "bad status", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: ErrMalformed},
		{name: "status 099", in: "HTTP/1.1 099 OK\r\n\r\n", err: ErrMalformed},
		{name: "bad version", in: "HTTX/1.1 200 OK\r\n\r\n", err: ErrMalformed},
		{name: "not http", in: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", err: ErrMalformed},
		{name: "bad range", in: "HTTP/1.1 206 P\r\nContent-Range: bytes 9-5/10\r\n\r\n", err: ErrMalformed},
		{name: "range past end", in: "HTTP/1.1 206 P\r\nContent-Range: bytes 0-10/10\r\n\r\n", err: ErrMalformed},
		{name: "range star", in: "HTTP/1.1 206 P\r\nContent-Range: bytes */10\r\n\r\n", err: ErrMalformed},
		{name: "nul", in: "HTTP/1.1 200 OK\r\nA: \x00\r\n\r\n", err: ErrMalformed},
		{name: "too long", in: "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("x", MaxHead) + "\r\n\r\n", err: ErrMalformed},
		{name: "too long incomplete", in: "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("x", MaxHead), err: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResponse([]byte(tc.in))
			if tc.want == nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Fields = nil
			if d := cmp.Diff(*tc.want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	in := "GET /x?a=1 HTTP/1.1\r\nHost: h\r\nUser-Agent:  curl \r\n\r\nGET"
	q, err := ParseRequest([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Request{Method: "GET", Target: "/x?a=1", Version: "HTTP/1.1", HeadLen: len(in) - 3,
		Fields: []Field{{"Host", "h"}, {"User-Agent", "curl"}}}
	if d := cmp.Diff(want, q); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	for _, b := range []string{"GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 x\r\n\r\n", "G@T / HTTP/1.1\r\n\r\n", "GET /\x7f HTTP/1.1\r\n\r\n", "GET / HTTP/11\r\n\r\n", "\r\n\r\n"} {
		if _, err := ParseRequest([]byte(b)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err %v, want malformed", b, err)
		}
	}
}

func mustReq(t *testing.T, s string) Request {
	t.Helper()
	q, err := ParseRequest([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func mustResp(t *testing.T, s string) Response {
	t.Helper()
	r, err := ParseResponse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResumable(t *testing.T) {
	get := "GET /f HTTP/1.1\r\nHost: h\r\n\r\n"
	lmOnly := "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nDate: Tue, 01 Dec 2026 12:00:10 GMT\r\nLast-Modified: Tue, 01 Dec 2026 12:00:00 GMT\r\n\r\n"
	for _, tc := range []struct {
		name, req, resp string
		ok              bool
	}{
		{"etag", get, okResp, true},
		{"last-modified strong", get, lmOnly, true},
		{"last-modified rfc850 strong", get, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nDate: Tuesday, 01-Dec-26 12:00:10 GMT\r\nLast-Modified: Tue Dec  1 12:00:00 2026\r\n\r\n", true},
		{"last-modified too recent", get, strings.Replace(lmOnly, "12:00:10", "12:00:00", 1), false},
		{"last-modified no date", get, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nLast-Modified: Tue, 01 Dec 2026 12:00:00 GMT\r\n\r\n", false},
		{"last-modified garbage", get, strings.Replace(lmOnly, "Tue, 01 Dec 2026 12:00:00 GMT", "yesterday", 1), false},
		{"weak etag", get, strings.Replace(okResp, `"v1"`, `W/"v1"`, 1), false},
		{"bad etag", get, strings.Replace(okResp, `"v1"`, `v1`, 1), false},
		{"no validator", get, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", false},
		{"no length", get, "HTTP/1.1 200 OK\r\nETag: \"a\"\r\n\r\n", false},
		{"chunked", get, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"a\"\r\n\r\n", false},
		{"ranges refused", get, "HTTP/1.1 200 OK\r\nAccept-Ranges: none\r\nContent-Length: 10\r\nETag: \"a\"\r\n\r\n", false},
		{"http/1.0 response", get, strings.Replace(okResp, "HTTP/1.1", "HTTP/1.0", 1), false},
		{"status 404", get, strings.Replace(okResp, "200 OK", "404 Not Found", 1), false},
		{"head", "HEAD /f HTTP/1.1\r\n\r\n", okResp, false},
		{"post", "POST /f HTTP/1.1\r\nContent-Length: 1\r\n\r\n", okResp, false},
		{"own range", "GET /f HTTP/1.1\r\nRange: bytes=5-\r\n\r\n", okResp, false},
		{"own condition", "GET /f HTTP/1.1\r\nif-none-match: \"x\"\r\n\r\n", okResp, false},
		{"http/1.0 request", "GET /f HTTP/1.0\r\n\r\n", okResp, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, r := mustReq(t, tc.req), mustResp(t, tc.resp)
			err := Resumable(&q, &r)
			if (err == nil) != tc.ok {
				t.Fatalf("Resumable: %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrNotResumable) {
				t.Fatalf("err %v not ErrNotResumable", err)
			}
		})
	}
}

func TestRangeRequest(t *testing.T) {
	q := mustReq(t, "GET /f HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n")
	r := mustResp(t, okResp)
	got := string(RangeRequest(&q, &r, 123))
	want := "GET /f HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nRange: bytes=123-\r\nIf-Match: \"v1\"\r\n\r\n"
	if got != want {
		t.Errorf("etag: got %q, want %q", got, want)
	}
	r.ETag = ""
	got = string(RangeRequest(&q, &r, 5))
	want = "GET /f HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nRange: bytes=5-\r\nIf-Range: Tue, 01 Dec 2026 12:00:00 GMT\r\n\r\n"
	if got != want {
		t.Errorf("date: got %q, want %q", got, want)
	}
	// What it builds parses back.
	if _, err := ParseRequest([]byte(got)); err != nil {
		t.Error(err)
	}
}

func TestContinues(t *testing.T) {
	orig := mustResp(t, okResp)
	cont := func(s string) Response { return mustResp(t, s) }
	good := "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-999/1000\r\nContent-Length: 900\r\nETag: \"v1\"\r\n\r\n"
	for _, tc := range []struct {
		name, c string
		ok      bool
	}{
		{"good", good, true},
		{"no length", strings.Replace(good, "Content-Length: 900\r\n", "", 1), true},
		{"200", strings.Replace(good, "206 Partial Content", "200 OK", 1), false},
		{"412", "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n", false},
		{"other etag", strings.Replace(good, `"v1"`, `"v2"`, 1), false},
		{"weak etag", strings.Replace(good, `"v1"`, `W/"v1"`, 1), false},
		{"no etag", strings.Replace(good, "ETag: \"v1\"\r\n", "", 1), false},
		{"wrong start", strings.Replace(good, "100-999", "99-999", 1), false},
		{"wrong end", strings.Replace(good, "100-999/1000", "100-998/1000", 1), false},
		{"other total", strings.Replace(good, "100-999/1000", "100-1999/2000", 1), false},
		{"wrong length", strings.Replace(good, "900", "901", 1), false},
		{"chunked", strings.Replace(good, "Content-Length: 900", "Transfer-Encoding: chunked", 1), false},
		{"no range", strings.Replace(good, "Content-Range: bytes 100-999/1000\r\n", "", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cont(tc.c)
			err := Continues(&orig, &c, 100)
			if (err == nil) != tc.ok {
				t.Fatalf("Continues: %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrMismatch) {
				t.Fatalf("err %v not ErrMismatch", err)
			}
		})
	}
	// Last-Modified as the validator: the same value is wanted.
	lm := mustResp(t, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nDate: Tue, 01 Dec 2026 12:00:10 GMT\r\nLast-Modified: Tue, 01 Dec 2026 12:00:00 GMT\r\n\r\n")
	c := cont("HTTP/1.1 206 P\r\nContent-Range: bytes 100-999/1000\r\nLast-Modified: Tue, 01 Dec 2026 12:00:00 GMT\r\n\r\n")
	if err := Continues(&lm, &c, 100); err != nil {
		t.Error(err)
	}
	c = cont("HTTP/1.1 206 P\r\nContent-Range: bytes 100-999/1000\r\nLast-Modified: Tue, 01 Dec 2026 12:00:01 GMT\r\n\r\n")
	if err := Continues(&lm, &c, 100); err == nil {
		t.Error("another last-modified continues")
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(okResp))
	f.Add([]byte("HTTP/1.1 206 P\r\nContent-Range: bytes 1-2/3\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			return
		}
		if r.HeadLen > len(b) || r.HeadLen > MaxHead {
			t.Fatalf("head %d of %d bytes", r.HeadLen, len(b))
		}
		q := Request{Method: "GET", Target: "/", Version: "HTTP/1.1"}
		if Resumable(&q, &r) == nil {
			if r.ContentLength < 0 {
				t.Fatal("resumable without a length")
			}
			if _, err := ParseRequest(RangeRequest(&q, &r, r.ContentLength/2)); err != nil {
				t.Fatalf("range request does not parse: %v", err)
			}
		}
		_ = Continues(&r, &r, 0)
	})
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseRequest(b)
		if err == nil && q.HeadLen > len(b) {
			t.Fatalf("head %d of %d bytes", q.HeadLen, len(b))
		}
	})
}
