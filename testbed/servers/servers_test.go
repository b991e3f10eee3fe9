package servers

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBytesDeterministic(t *testing.T) {
	a, _ := io.ReadAll(Bytes(100000))
	b, _ := io.ReadAll(Bytes(100000))
	if len(a) != 100000 || string(a) != string(b) {
		t.Fatalf("stream not deterministic or wrong length %d", len(a))
	}
	if sha256.Sum256(a) != BytesSHA256(100000) {
		t.Fatal("BytesSHA256 disagrees with the stream")
	}
	// A prefix of a longer stream is the shorter stream.
	c, _ := io.ReadAll(Bytes(5))
	if string(c) != string(a[:5]) {
		t.Fatal("prefix mismatch")
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func TestRunHTTPEchoDNS(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644)
	httpAddr := freeAddr(t)
	echoAddr := freeAddr(t)
	dnsAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Name: "a1", HTTP: httpAddr, TCPEcho: echoAddr, UDPEcho: echoAddr, DNS: dnsAddr, Dir: dir,
			V4: netip.MustParseAddr("10.20.0.11"), V6: netip.MustParseAddr("fd00:20::11")})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = http.Get("http://" + httpAddr + "/bytes/1234567"); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ContentLength != 1234567 || sha256.Sum256(body) != BytesSHA256(1234567) {
		t.Errorf("/bytes: length %d, checksum mismatch", resp.ContentLength)
	}
	// Paced (?rate=): the same bytes, at the server's pace.
	if resp, err = http.Get("http://" + httpAddr + "/bytes/300000?rate=4000000"); err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ContentLength != 300000 || sha256.Sum256(body) != BytesSHA256(300000) {
		t.Errorf("/bytes?rate: length %d, checksum mismatch", resp.ContentLength)
	}
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/bytes/10?rate=0", 400, ""},
		{"/bytes/10?rate=x", 400, ""},
		{"/", 200, "a1\n"},
		{"/healthz", 200, "ok\n"},
		{"/file/hello.txt", 200, "hello\n"},
		{"/file/..%2Fservers_test.go", 404, "404 page not found\n"},
		{"/file/missing", 404, "404 page not found\n"},
		{"/bytes/-1", 400, ""},
		{"/bytes/x", 400, ""},
		{"/bytes/0", 200, ""},
	} {
		r, err := http.Get("http://" + httpAddr + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != c.status || (c.body != "" && string(b) != c.body) {
			t.Errorf("GET %s = %d %q, want %d %q", c.path, r.StatusCode, b, c.status, c.body)
		}
	}
	// TCP echo.
	tc, err := net.Dial("tcp", echoAddr)
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte("ping"))
	buf := make([]byte, 4)
	io.ReadFull(tc, buf)
	tc.Close()
	if string(buf) != "ping" {
		t.Errorf("tcp echo = %q", buf)
	}
	// UDP echo.
	uc, err := net.Dial("udp", echoAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	uc.SetDeadline(time.Now().Add(2 * time.Second))
	uc.Write([]byte("hello udp"))
	ub := make([]byte, 100)
	n, err := uc.Read(ub)
	if err != nil || string(ub[:n]) != "hello udp" {
		t.Errorf("udp echo = %q %v", ub[:n], err)
	}
	// DNS A query over the socket.
	dc, err := net.Dial("udp", dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	dc.SetDeadline(time.Now().Add(2 * time.Second))
	dc.Write(query(0x1234, "svc.example", dnsTypeA))
	n, err = dc.Read(ub)
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 || binary.BigEndian.Uint16(ub[6:]) != 1 || string(ub[n-4:n]) != string([]byte{10, 20, 0, 11}) {
		t.Errorf("dns A answer % x", ub[:n])
	}
}

func query(id uint16, name string, qtype uint16) []byte {
	q := binary.BigEndian.AppendUint16(nil, id)
	q = append(q, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0)
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			q = append(q, byte(i-start))
			q = append(q, name[start:i]...)
			start = i + 1
		}
	}
	q = append(q, 0)
	q = binary.BigEndian.AppendUint16(q, qtype)
	return binary.BigEndian.AppendUint16(q, dnsClassIN)
}

func TestDNSAnswer(t *testing.T) {
	d := DNS{Name: "b2", V4: netip.MustParseAddr("10.20.0.22"), V6: netip.MustParseAddr("fd00:20::22")}
	for _, c := range []struct {
		name  string
		in    []byte
		ok    bool
		rcode byte
		an    uint16
		rdata []byte
	}{
		{"A", query(1, "x.y", dnsTypeA), true, 0, 1, []byte{10, 20, 0, 22}},
		{"AAAA", query(2, "x", dnsTypeAAAA), true, 0, 1, netip.MustParseAddr("fd00:20::22").AsSlice()},
		{"TXT", query(3, "x", dnsTypeTXT), true, 0, 1, []byte("\x02b2")},
		{"MX unanswered", query(4, "x", 15), true, 0, 0, nil},
		{"short", []byte{1, 2, 3}, false, 0, 0, nil},
		{"truncated name", query(5, "abc", dnsTypeA)[:14], true, rcodeFormErr, 0, nil},
		{"label too long", append(append([]byte{0, 6, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 64), make([]byte, 70)...), true, rcodeFormErr, 0, nil},
		{"response ignored", func() []byte { q := query(6, "x", 1); q[2] |= 0x80; return q }(), false, 0, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, ok := d.Answer(c.in, nil)
			if ok != c.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if resp[3]&0x0f != c.rcode || binary.BigEndian.Uint16(resp[6:]) != c.an {
				t.Fatalf("rcode %d an %d, want %d %d", resp[3]&0xf, binary.BigEndian.Uint16(resp[6:]), c.rcode, c.an)
			}
			if c.rdata != nil {
				if diff := cmp.Diff(c.rdata, resp[len(resp)-len(c.rdata):]); diff != "" {
					t.Errorf("rdata (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func FuzzDNSAnswer(f *testing.F) {
	f.Add(query(1, "a.b", dnsTypeA))
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0})
	d := DNS{Name: "x", V4: netip.MustParseAddr("10.0.0.1")}
	f.Fuzz(func(t *testing.T, b []byte) {
		d.Answer(b, nil)
	})
}
