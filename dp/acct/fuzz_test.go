package acct

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"testing"
)

func FuzzHTTPRequest(f *testing.F) {
	for _, s := range []string{
		curlGET, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET /a HTTP/1.0\r\n\r\n",
		"GET http://u@px.example/a HTTP/1.1\r\n\r\n", "CONNECT h:443 HTTP/1.1\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "GET /a HTTP/1.1\nHost: h", "POST /x HTTP/1.1\r\nhost:\th \r\n\r\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		dst := make([]byte, AttrSize)
		n, ok := HTTPRequest(in, dst)
		if n < 0 || n > len(dst) || ok && n == 0 {
			t.Fatalf("n=%d ok=%v", n, ok)
		}
		for _, c := range dst[:n] {
			if c <= ' ' || c >= 0x7f {
				t.Fatalf("byte %#x in %q", c, dst[:n])
			}
		}
		// A smaller dst gets a prefix of the same answer.
		small := make([]byte, 7)
		m, ok2 := HTTPRequest(in, small)
		if ok2 != ok || m != min(n, len(small)) || !bytes.Equal(small[:m], dst[:m]) {
			t.Fatalf("small dst: %q %v, big: %q %v", small[:m], ok2, dst[:n], ok)
		}
	})
}

func FuzzTLSSNI(f *testing.F) {
	f.Add(clientHello(f, &tls.Config{ServerName: "x.example"}))
	f.Add(clientHello(f, &tls.Config{ServerName: "video-b.example", MaxVersion: tls.VersionTLS12}))
	f.Add(helloWith(append(ext(23, nil), sniExt(sniName(7, "zz"), sniName(0, "b.example"))...)))
	f.Add(helloWith(sniExt(sniName(0, ""))))
	f.Add([]byte{22, 3, 1, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		dst := make([]byte, AttrSize)
		n, ok := TLSSNI(in, dst)
		if n < 0 || n > len(dst) || ok != (n > 0) {
			t.Fatalf("n=%d ok=%v", n, ok)
		}
		for _, c := range dst[:n] {
			if !hostByte(c) {
				t.Fatalf("byte %#x in %q", c, dst[:n])
			}
		}
		if ok && !bytes.Contains(in, dst[:n]) {
			t.Fatalf("name %q not in the input", dst[:n])
		}
	})
}

// FuzzAppendJSON: any strings give one valid JSON line that decodes back
// to the (valid UTF-8 form of the) strings.
func FuzzAppendJSON(f *testing.F) {
	f.Add("alice", "IMEI-1", "h/p?q=\"x\"", uint8(AttrHTTP))
	f.Add("bad\xff", "\x00\x1f", "\u2028", uint8(AttrSNI))
	f.Fuzz(func(t *testing.T, user, device, attr string, kind uint8) {
		var r Record
		r.SetUser(user)
		r.SetDevice(device)
		r.SetAttr(kind%3, attr)
		line := AppendJSON(nil, &r)
		if bytes.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("not one line: %q", line)
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		wantAttr := ""
		if kind%3 != AttrNone {
			wantAttr = viaJSON(t, r.Attribute())
		}
		if e.User != viaJSON(t, r.UserID()) || e.Device != viaJSON(t, r.DeviceID()) || e.Attribute() != wantAttr {
			t.Fatalf("decoded %+v from %q", e, line)
		}
	})
}

// viaJSON is s after a trip through encoding/json (invalid UTF-8 becomes
// U+FFFD): what a reader of the log must get back.
func viaJSON(t *testing.T, s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzReadCheckpoints: whatever a checkpoint file holds (here a half
// whose CRC is right around any record bytes, then any bytes),
// ReadCheckpoints does not panic, and each record it returns makes a log
// line that reads back as a record.
func FuzzReadCheckpoints(f *testing.F) {
	r := ckptRecord(1, 1, 1)
	var seed [recSize]byte
	encodeRecord(seed[:], &r)
	f.Add(seed[:], []byte{})
	f.Add(seed[:], make([]byte, 2*ckptHalf+7))
	f.Add([]byte{0xff, 0xff, 0xff}, []byte("junk"))
	f.Fuzz(func(t *testing.T, rec, rest []byte) {
		half := make([]byte, ckptHalf)
		binary.LittleEndian.PutUint32(half, halfMagic)
		binary.LittleEndian.PutUint64(half[4:], 1)
		copy(half[16:16+recSize], rec)
		binary.LittleEndian.PutUint32(half[ckptHalf-4:], crc32.Checksum(half[:ckptHalf-4], ckptTable))
		file := append(append(append(make([]byte, 0, ckptHeader+len(half)+len(rest)), ckptMagic...), make([]byte, ckptHeader-len(ckptMagic))...), half...)
		file = append(file, rest...)
		got, err := readCheckpoints(bytes.NewReader(file), "x.ckpt.0")
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			line := AppendJSON(nil, &got[i])
			var e Entry
			if len(line) > MaxLine || json.Unmarshal(line, &e) != nil || e.Flow == "" {
				t.Fatalf("record %+v: line %q", got[i], line)
			}
		}
	})
}
