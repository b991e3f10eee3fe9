// Package httpresume is the HTTP/1.1 knowledge of the terminator's risk
// balancing (R-TCP-4, tcpproxy/risk.go): it parses a request head and a
// response head (RFC 9112), decides whether a download may be resumed
// from another server, builds the conditional Range request (RFC 9110
// 14.2, 13.1.1, 13.1.5) and checks the continuation's head.
//
// It is strict on purpose: whatever it does not fully understand is an
// error, and the caller then resets the mobile rather than guess. Bare LF
// line ends, obsolete line folding, whitespace before a colon, duplicate
// framing or validator fields, a version other than HTTP/1.1 and a head
// over MaxHead bytes are all refused. Nothing from the wire may panic
// (FuzzParseResponse, FuzzParseRequest).
//
// Allocation: the parsers allocate the strings they keep (per request,
// on the connection's goroutine, never per packet).
package httpresume

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxHead bounds a request or response head (line ends included).
const MaxHead = 16 << 10

var (
	// ErrIncomplete: the head has not ended yet (no empty line); read more.
	ErrIncomplete = errors.New("http head incomplete")
	// ErrMalformed wraps every parse refusal.
	ErrMalformed = errors.New("http head malformed")
	// ErrNotResumable wraps the reasons a response cannot be resumed.
	ErrNotResumable = errors.New("http response not resumable")
	// ErrMismatch wraps the reasons a continuation is refused.
	ErrMismatch = errors.New("http continuation mismatch")
)

// Field is one header field as received (name as sent; value trimmed of
// surrounding optional whitespace).
type Field struct {
	Name, Value string
}

// Request is a parsed request head.
type Request struct {
	Method, Target, Version string
	Fields                  []Field
	// HeadLen is the head's length in bytes, the final empty line included.
	HeadLen int
}

// Response is a parsed response head.
type Response struct {
	Version string
	Status  int
	Fields  []Field
	HeadLen int
	// ContentLength is -1 without a Content-Length field.
	ContentLength int64
	// Chunked: a Transfer-Encoding field is present (any coding).
	TransferEncoding bool
	// ETag is the raw entity tag, quotes included ("" if none).
	ETag string
	// LastModified and Date are the raw values ("" if none).
	LastModified, Date string
	// AcceptRangesNone: Accept-Ranges: none.
	AcceptRangesNone bool
	// ContentRange is the parsed Content-Range of a 206 (Has false if none).
	ContentRange ContentRange
}

// ContentRange is "bytes First-Last/Complete".
type ContentRange struct {
	Has                   bool
	First, Last, Complete int64
}

// Get returns the first value of field name (case-insensitive) and
// whether it is there.
func Get(fs []Field, name string) (string, bool) {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

func count(fs []Field, name string) int {
	n := 0
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			n++
		}
	}
	return n
}

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// head splits b's head into lines (CRLF only) and returns them without
// the final empty line, and the head's length.
func head(b []byte) (lines [][]byte, n int, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) >= MaxHead {
			return nil, 0, bad("head over %d bytes", MaxHead)
		}
		// A bare LF anywhere so far is already a refusal.
		if i := bytes.IndexByte(b, '\n'); i >= 0 && (i == 0 || b[i-1] != '\r') {
			return nil, 0, bad("bare LF at %d", i)
		}
		return nil, 0, ErrIncomplete
	}
	n = end + 4
	if n > MaxHead {
		return nil, 0, bad("head over %d bytes", MaxHead)
	}
	h := b[:end]
	for len(h) > 0 {
		i := bytes.Index(h, []byte("\r\n"))
		var line []byte
		if i < 0 {
			line, h = h, nil
		} else {
			line, h = h[:i], h[i+2:]
		}
		for _, c := range line {
			if c == '\n' || c == '\r' || c == 0 {
				return nil, 0, bad("control character in line %q", line)
			}
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return nil, 0, bad("empty head")
	}
	return lines, n, nil
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// fields parses header field lines (RFC 9112 5).
func fields(lines [][]byte) ([]Field, error) {
	fs := make([]Field, 0, len(lines))
	for _, l := range lines {
		if l[0] == ' ' || l[0] == '\t' {
			return nil, bad("obsolete line folding")
		}
		i := bytes.IndexByte(l, ':')
		if i <= 0 || !isToken(l[:i]) {
			return nil, bad("field line %q", l)
		}
		v := bytes.Trim(l[i+1:], " \t")
		for _, c := range v {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return nil, bad("control character in field %s", l[:i])
			}
		}
		fs = append(fs, Field{Name: string(l[:i]), Value: string(v)})
	}
	return fs, nil
}

// ParseRequest parses the request head at the start of b.
func ParseRequest(b []byte) (Request, error) {
	lines, n, err := head(b)
	if err != nil {
		return Request{}, err
	}
	p := bytes.Split(lines[0], []byte(" "))
	if len(p) != 3 || !isToken(p[0]) || len(p[1]) == 0 {
		return Request{}, bad("request line %q", lines[0])
	}
	for _, c := range p[1] {
		if c <= 0x20 || c >= 0x7f {
			return Request{}, bad("request target %q", p[1])
		}
	}
	if !validVersion(p[2]) {
		return Request{}, bad("version %q", p[2])
	}
	fs, err := fields(lines[1:])
	if err != nil {
		return Request{}, err
	}
	return Request{Method: string(p[0]), Target: string(p[1]), Version: string(p[2]), Fields: fs, HeadLen: n}, nil
}

func validVersion(v []byte) bool {
	return len(v) == 8 && string(v[:5]) == "HTTP/" && v[5] >= '0' && v[5] <= '9' && v[6] == '.' && v[7] >= '0' && v[7] <= '9'
}

// ParseResponse parses the response head at the start of b.
func ParseResponse(b []byte) (Response, error) {
	lines, n, err := head(b)
	if err != nil {
		return Response{}, err
	}
	l := lines[0]
	// status-line = HTTP-version SP status-code SP [ reason-phrase ]
	if len(l) < 12 || !validVersion(l[:8]) || l[8] != ' ' || (len(l) > 12 && l[12] != ' ') {
		return Response{}, bad("status line %q", l)
	}
	st := 0
	for _, c := range l[9:12] {
		if c < '0' || c > '9' {
			return Response{}, bad("status code %q", l[9:12])
		}
		st = st*10 + int(c-'0')
	}
	if st < 100 {
		return Response{}, bad("status code %d", st)
	}
	fs, err := fields(lines[1:])
	if err != nil {
		return Response{}, err
	}
	r := Response{Version: string(l[:8]), Status: st, Fields: fs, HeadLen: n, ContentLength: -1}
	for _, name := range []string{"Content-Length", "ETag", "Last-Modified", "Date", "Content-Range", "Accept-Ranges"} {
		if count(fs, name) > 1 {
			return Response{}, bad("field %s repeated", name)
		}
	}
	if v, ok := Get(fs, "Content-Length"); ok {
		cl, err := parseDigits(v)
		if err != nil {
			return Response{}, bad("content-length %q", v)
		}
		r.ContentLength = cl
	}
	_, r.TransferEncoding = Get(fs, "Transfer-Encoding")
	r.ETag, _ = Get(fs, "ETag")
	r.LastModified, _ = Get(fs, "Last-Modified")
	r.Date, _ = Get(fs, "Date")
	if v, ok := Get(fs, "Accept-Ranges"); ok {
		r.AcceptRangesNone = strings.EqualFold(v, "none")
	}
	if v, ok := Get(fs, "Content-Range"); ok {
		cr, err := parseContentRange(v)
		if err != nil {
			return Response{}, err
		}
		r.ContentRange = cr
	}
	return r, nil
}

// parseDigits is 1*DIGIT as an int64 (no sign, no space, no overflow).
func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, strconv.ErrSyntax
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		v = v*10 + int64(c-'0')
	}
	return v, nil
}

// parseContentRange reads "bytes first-last/complete" (RFC 9110 14.4);
// an unsatisfied range ("*/len") or unknown length ("/*") is refused.
func parseContentRange(s string) (ContentRange, error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return ContentRange{}, bad("content-range %q", s)
	}
	rng, total, ok := strings.Cut(rest, "/")
	first, last, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return ContentRange{}, bad("content-range %q", s)
	}
	var cr ContentRange
	var err1, err2, err3 error
	cr.First, err1 = parseDigits(first)
	cr.Last, err2 = parseDigits(last)
	cr.Complete, err3 = parseDigits(total)
	if err1 != nil || err2 != nil || err3 != nil || cr.Last < cr.First || cr.Last >= cr.Complete {
		return ContentRange{}, bad("content-range %q", s)
	}
	cr.Has = true
	return cr, nil
}

// StrongETag reports whether v is a strong entity tag: DQUOTE *etagc
// DQUOTE, no W/ prefix (RFC 9110 8.8.3).
func StrongETag(v string) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	for i := 1; i < len(v)-1; i++ {
		c := v[i]
		if !(c == 0x21 || c >= 0x23 && c <= 0x7e || c >= 0x80) {
			return false
		}
	}
	return true
}

// httpDate parses an HTTP-date in any of its three forms (RFC 9110 5.6.7).
func httpDate(s string) (time.Time, bool) {
	t, err := http.ParseTime(s)
	return t, err == nil
}

// StrongLastModified reports whether a response's Last-Modified may serve
// as a strong validator (RFC 9110 8.8.2.2): both it and Date are valid
// HTTP-dates and Date is at least one second later.
func StrongLastModified(r *Response) bool {
	if r.LastModified == "" || r.Date == "" {
		return false
	}
	lm, ok1 := httpDate(r.LastModified)
	d, ok2 := httpDate(r.Date)
	return ok1 && ok2 && d.Sub(lm) >= time.Second
}

// conditional are the request fields that make a resumed request mean
// something other than the original's remainder.
var conditional = []string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "Expect", "Upgrade", "Content-Length", "Transfer-Encoding"}

// Resumable reports why a GET and its response cannot be resumed by a
// Range request (nil: they can): an HTTP/1.1 GET without a body, a range
// or a condition of its own, answered 200 by HTTP/1.1 with a
// Content-Length, no Transfer-Encoding, ranges not refused and a strong
// validator.
func Resumable(q *Request, r *Response) error {
	no := func(why string) error { return fmt.Errorf("%w: %s", ErrNotResumable, why) }
	switch {
	case q.Method != "GET":
		return no("method " + q.Method)
	case q.Version != "HTTP/1.1":
		return no("request version " + q.Version)
	case r.Version != "HTTP/1.1":
		return no("response version " + r.Version)
	case r.Status != 200:
		return no("status " + strconv.Itoa(r.Status))
	case r.TransferEncoding:
		return no("transfer-encoding")
	case r.ContentLength < 0:
		return no("no content-length")
	case r.AcceptRangesNone:
		return no("accept-ranges none")
	}
	for _, f := range conditional {
		if _, ok := Get(q.Fields, f); ok {
			return no("request field " + f)
		}
	}
	if r.ETag != "" {
		if !StrongETag(r.ETag) {
			return no("weak or malformed etag")
		}
		return nil
	}
	if !StrongLastModified(r) {
		return no("no strong validator")
	}
	return nil
}

// RangeRequest is q asking for the representation of r from byte offset
// on: q's request line and fields, plus Range and, for an entity tag,
// If-Match (a changed representation gets 412), otherwise If-Range with
// the Last-Modified date (a changed one gets 200). Call only when
// Resumable(q, r) is nil.
func RangeRequest(q *Request, r *Response, offset int64) []byte {
	var b bytes.Buffer
	b.Grow(q.HeadLen + 128)
	b.WriteString(q.Method + " " + q.Target + " " + q.Version + "\r\n")
	for _, f := range q.Fields {
		b.WriteString(f.Name + ": " + f.Value + "\r\n")
	}
	b.WriteString("Range: bytes=" + strconv.FormatInt(offset, 10) + "-\r\n")
	if r.ETag != "" {
		b.WriteString("If-Match: " + r.ETag + "\r\n")
	} else {
		b.WriteString("If-Range: " + r.LastModified + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// Continues reports why c, the answer to RangeRequest(q, orig, offset),
// is not the rest of orig's body (nil: it is): it must be an HTTP/1.1 206
// with Content-Range offset-(len-1)/len for orig's length, a
// Content-Length (if any) of len-offset, no Transfer-Encoding, and the
// same strong validator.
func Continues(orig, c *Response, offset int64) error {
	no := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrMismatch, fmt.Sprintf(format, a...))
	}
	L := orig.ContentLength
	switch {
	case c.Version != "HTTP/1.1":
		return no("version %s", c.Version)
	case c.Status != 206:
		return no("status %d, want 206", c.Status)
	case c.TransferEncoding:
		return no("transfer-encoding")
	case !c.ContentRange.Has:
		return no("no content-range")
	case c.ContentRange.First != offset || c.ContentRange.Last != L-1 || c.ContentRange.Complete != L:
		return no("content-range %d-%d/%d, want %d-%d/%d", c.ContentRange.First, c.ContentRange.Last, c.ContentRange.Complete, offset, L-1, L)
	case c.ContentLength >= 0 && c.ContentLength != L-offset:
		return no("content-length %d, want %d", c.ContentLength, L-offset)
	}
	if orig.ETag != "" {
		if c.ETag != orig.ETag {
			return no("etag %q, want %q", c.ETag, orig.ETag)
		}
		return nil
	}
	if c.ETag != "" {
		return no("etag %q where the original had none", c.ETag)
	}
	if c.LastModified != orig.LastModified {
		return no("last-modified %q, want %q", c.LastModified, orig.LastModified)
	}
	return nil
}
