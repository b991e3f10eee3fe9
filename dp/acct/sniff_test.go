package acct

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// curlGET is the request curl 8.x sends for `curl http://10.30.0.1/files/1M.bin?x=1`
// with a Host override (-H 'Host: web-a.example').
const curlGET = "GET /files/1M.bin?x=1 HTTP/1.1\r\nHost: web-a.example\r\nUser-Agent: curl/8.14.1\r\nAccept: */*\r\n\r\n"

func netHTTPRequest(t *testing.T) []byte {
	req, err := http.NewRequest("POST", "http://api.example:8080/v1/upload?id=7", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestHTTPRequest(t *testing.T) {
	long := "GET /x HTTP/1.1\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 100)+"\r\n", 20) + "Host: late.example\r\n\r\n"
	tests := []struct {
		name  string
		in    string
		dst   int
		want  string
		ok    bool
		notOK bool // n must be 0
	}{
		{name: "curl", in: curlGET, want: "web-a.example/files/1M.bin?x=1", ok: true},
		{name: "root", in: "GET / HTTP/1.1\r\nHost: h\r\n\r\n", want: "h/", ok: true},
		{name: "host case and spaces", in: "HEAD /a HTTP/1.1\r\nhOsT: \t h.example:8080 \r\n\r\n", want: "h.example:8080/a", ok: true},
		{name: "bare LF", in: "GET /a HTTP/1.1\nAccept: */*\nHost: h\n\n", want: "h/a", ok: true},
		{name: "host after other headers", in: "GET /a HTTP/1.1\r\nAccept: */*\r\nHost: h\r\n\r\n", want: "h/a", ok: true},
		{name: "host after end of headers", in: "GET /a HTTP/1.1\r\n\r\nHost: h\r\n", want: "/a"},
		{name: "no host (1.0)", in: "GET /a HTTP/1.0\r\n\r\n", want: "/a"},
		{name: "host line cut", in: "GET /a HTTP/1.1\r\nHost: web-a.exa", want: "/a"},
		{name: "request line only", in: "GET /a HTTP/1.1\r\n", want: "/a"},
		{name: "request line without CRLF", in: "GET /a HTTP/1.1", want: "/a"},
		{name: "host beyond MaxScan", in: long, want: "/x"},
		{name: "host with slash", in: "GET /a HTTP/1.1\r\nHost: h/x\r\n\r\n", want: "/a"},
		{name: "host with ctl", in: "GET /a HTTP/1.1\r\nHost: h\x01\r\n\r\n", want: "/a"},
		{name: "empty host", in: "GET /a HTTP/1.1\r\nHost:\r\n\r\n", want: "/a"},
		{name: "absolute form", in: "GET http://px.example/a/b?c HTTP/1.1\r\nHost: other\r\n\r\n", want: "px.example/a/b?c", ok: true},
		{name: "absolute form no path", in: "GET HTTP://px.example HTTP/1.1\r\n\r\n", want: "px.example/", ok: true},
		{name: "absolute form query", in: "GET http://px.example?q HTTP/1.1\r\n\r\n", want: "px.example/?q", ok: true},
		{name: "absolute form userinfo", in: "GET https://u:secret@px.example/a HTTP/1.1\r\n\r\n", want: "px.example/a", ok: true},
		{name: "absolute form no host", in: "GET http:///a HTTP/1.1\r\n\r\n", notOK: true},
		{name: "connect", in: "CONNECT tls.example:443 HTTP/1.1\r\nHost: tls.example:443\r\n\r\n", want: "tls.example:443", ok: true},
		{name: "options star", in: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", want: "h", ok: true},
		{name: "truncated dst", in: curlGET, dst: 10, want: "web-a.exam", ok: true},
		{name: "tls", in: "\x16\x03\x01\x02\x00\x01", notOK: true},
		{name: "ssh", in: "SSH-2.0-OpenSSH_9.6\r\n", notOK: true},
		{name: "lower-case method", in: "get / HTTP/1.1\r\nHost: h\r\n\r\n", notOK: true},
		{name: "unknown method", in: "BREW / HTTP/1.1\r\n\r\n", notOK: true},
		{name: "partial request line", in: "GET /files/1M.b", notOK: true},
		{name: "no version", in: "GET /a\r\nHost: h\r\n\r\n", notOK: true},
		{name: "http/2 version", in: "GET /a HTTP/2.0\r\n\r\n", notOK: true},
		{name: "junk after version", in: "GET /a HTTP/1.1x\r\n\r\n", notOK: true},
		{name: "empty target", in: "GET  HTTP/1.1\r\n\r\n", notOK: true},
		{name: "relative target", in: "GET a HTTP/1.1\r\n\r\n", notOK: true},
		{name: "ctl in target", in: "GET /a\x00b HTTP/1.1\r\n\r\n", notOK: true},
		{name: "8bit in target", in: "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", notOK: true},
		{name: "method only", in: "GET ", notOK: true},
		{name: "empty", in: "", notOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size := AttrSize
			if tc.dst > 0 {
				size = tc.dst
			}
			dst := make([]byte, size)
			n, ok := HTTPRequest([]byte(tc.in), dst)
			if tc.notOK {
				if n != 0 || ok {
					t.Fatalf("got %q ok=%v, want nothing", dst[:n], ok)
				}
				return
			}
			if got := string(dst[:n]); got != tc.want || ok != tc.ok {
				t.Errorf("got %q ok=%v, want %q ok=%v", got, ok, tc.want, tc.ok)
			}
		})
	}
	t.Run("net/http", func(t *testing.T) {
		dst := make([]byte, AttrSize)
		n, ok := HTTPRequest(netHTTPRequest(t), dst)
		if got := string(dst[:n]); got != "api.example:8080/v1/upload?id=7" || !ok {
			t.Errorf("got %q ok=%v", got, ok)
		}
	})
}

// clientHello returns the first TLS record a crypto/tls client sends:
// its ClientHello.
func clientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tls.Client(c, cfg).Handshake() // fails once s closes
	}()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(s, hdr); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 5+(int(hdr[3])<<8|int(hdr[4])))
	copy(rec, hdr)
	if _, err := io.ReadFull(s, rec[5:]); err != nil {
		t.Fatal(err)
	}
	s.Close()
	wg.Wait()
	c.Close()
	return rec
}

// serverSeesSNI is the reference: the name crypto/tls's server parses
// from hello.
func serverSeesSNI(t *testing.T, hello []byte) string {
	t.Helper()
	c, s := net.Pipe()
	// A hello the server does not take whole must fail, not hang.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	s.SetDeadline(time.Now().Add(10 * time.Second))
	var name string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tls.Server(s, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			name = h.ServerName
			return nil, io.EOF // stop here
		}}).Handshake()
		s.Close()
	}()
	c.Write(hello)
	io.Copy(io.Discard, c)
	c.Close()
	wg.Wait()
	return name
}

// helloWith builds a TLS 1.2-style ClientHello record whose extension
// block is exts (for the cases crypto/tls will not send).
func helloWith(exts []byte) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)          // random
	body = append(body, 0)                            // session id
	body = append(body, 0, 4, 0x13, 0x01, 0xc0, 0x2f) // cipher suites
	body = append(body, 1, 0)                         // compression: null
	body = append(body, byte(len(exts)>>8), byte(len(exts)))
	body = append(body, exts...)
	hs := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{22, 3, 1, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

func ext(typ uint16, data []byte) []byte {
	return append([]byte{byte(typ >> 8), byte(typ), byte(len(data) >> 8), byte(len(data))}, data...)
}

func sniExt(entries ...[]byte) []byte {
	var list []byte
	for _, e := range entries {
		list = append(list, e...)
	}
	return ext(0, append([]byte{byte(len(list) >> 8), byte(len(list))}, list...))
}

func sniName(typ byte, name string) []byte {
	return append([]byte{typ, byte(len(name) >> 8), byte(len(name))}, name...)
}

func TestTLSSNI(t *testing.T) {
	tls13 := clientHello(t, &tls.Config{ServerName: "x.example"})
	tls12 := clientHello(t, &tls.Config{ServerName: "video-b.example", MaxVersion: tls.VersionTLS12})
	noSNI := clientHello(t, &tls.Config{InsecureSkipVerify: true})
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".example"
	longHello := clientHello(t, &tls.Config{ServerName: long})
	// The first TCP segment of a hello larger than one MSS.
	seg := tls13
	if len(seg) > 1448 {
		seg = seg[:1448]
	}
	nameAt := bytes.Index(tls13, []byte("x.example"))
	t.Logf("crypto/tls ClientHello: %d bytes, server_name at %d", len(tls13), nameAt)

	tests := []struct {
		name string
		in   []byte
		dst  int
		want string
		ok   bool
	}{
		{name: "crypto/tls 1.3", in: tls13, want: "x.example", ok: true},
		{name: "crypto/tls 1.2", in: tls12, want: "video-b.example", ok: true},
		{name: "first segment", in: seg, want: "x.example", ok: true},
		{name: "no sni", in: noSNI},
		{name: "long name truncated", in: longHello, want: long[:AttrSize], ok: true},
		{name: "small dst", in: tls13, dst: 4, want: "x.ex", ok: true},
		{name: "cut in the name", in: tls13[:nameAt+3]},
		{name: "cut before the extensions", in: tls13[:60]},
		{name: "record header only", in: tls13[:5]},
		{name: "sni after another extension", in: helloWith(append(ext(23, nil), sniExt(sniName(0, "b.example"))...)), want: "b.example", ok: true},
		{name: "unknown name type first", in: helloWith(sniExt(sniName(7, "zz"), sniName(0, "c.example"))), want: "c.example", ok: true},
		{name: "empty name", in: helloWith(sniExt(sniName(0, "")))},
		{name: "bad byte in name", in: helloWith(sniExt(sniName(0, "a/b.example")))},
		{name: "empty list", in: helloWith(sniExt())},
		{name: "extension longer than data", in: helloWith(ext(23, []byte{1}))[:50]},
		{name: "not handshake", in: append([]byte{23}, tls13[1:]...)},
		{name: "server hello", in: append(append([]byte{}, tls13[:5]...), append([]byte{2}, tls13[6:]...)...)},
		{name: "ssl2-ish version", in: append([]byte{22, 2, 0}, tls13[3:]...)},
		{name: "http", in: []byte(curlGET)},
		{name: "empty", in: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size := AttrSize
			if tc.dst > 0 {
				size = tc.dst
			}
			dst := make([]byte, size)
			n, ok := TLSSNI(tc.in, dst)
			if got := string(dst[:n]); got != tc.want || ok != tc.ok {
				t.Errorf("got %q ok=%v, want %q ok=%v", got, ok, tc.want, tc.ok)
			}
		})
	}
	// The reference parser agrees on the whole hellos.
	for _, h := range [][]byte{tls13, tls12, noSNI, helloWith(append(ext(23, nil), sniExt(sniName(0, "b.example"))...))} {
		dst := make([]byte, 255)
		n, _ := TLSSNI(h, dst)
		if want := serverSeesSNI(t, h); string(dst[:n]) != want {
			t.Errorf("TLSSNI %q, crypto/tls server %q", dst[:n], want)
		}
	}
}

func TestSniff(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "x.example"})
	tests := []struct {
		name string
		in   []byte
		kind uint8
		want string
	}{
		{"tls", hello, AttrSNI, "x.example"},
		{"http", []byte(curlGET), AttrHTTP, "web-a.example/files/1M.bin?x=1"},
		{"path only", []byte("GET /a HTTP/1.0\r\n\r\n"), AttrHTTP, "/a"},
		{"neither", []byte("SSH-2.0-x\r\n"), AttrNone, ""},
		{"tls without sni", clientHello(t, &tls.Config{InsecureSkipVerify: true}), AttrNone, ""},
		{"empty", nil, AttrNone, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Record
			if k := r.Sniff(tc.in); k != tc.kind || r.AttrKind != tc.kind || r.Attribute() != tc.want {
				t.Errorf("kind %d/%d attr %q, want %d %q", k, r.AttrKind, r.Attribute(), tc.kind, tc.want)
			}
		})
	}
}

func TestSniffAllocs(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "x.example"})
	req := []byte(curlGET)
	var r Record
	dst := make([]byte, AttrSize)
	for name, f := range map[string]func(){
		"HTTPRequest": func() { HTTPRequest(req, dst) },
		"TLSSNI":      func() { TLSSNI(hello, dst) },
		"Sniff":       func() { r.Sniff(hello); r.Sniff(req) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs", name, n)
		}
	}
}

func BenchmarkHTTPRequest(b *testing.B) {
	req := []byte(curlGET)
	dst := make([]byte, AttrSize)
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		HTTPRequest(req, dst)
	}
}

func BenchmarkTLSSNI(b *testing.B) {
	hello := clientHello(b, &tls.Config{ServerName: "x.example"})
	dst := make([]byte, AttrSize)
	b.ReportAllocs()
	for b.Loop() {
		TLSSNI(hello, dst)
	}
}
