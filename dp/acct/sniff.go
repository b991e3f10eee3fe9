package acct

// Attribute sniffing (FIG. 28 steps S73-S74). Both parsers read only the
// bytes given, scan at most MaxScan of them, never allocate and never
// panic (FuzzHTTPRequest, FuzzTLSSNI).

// MaxScan bounds how many payload bytes HTTPRequest looks at.
const MaxScan = 2048

var httpMethods = [...]string{"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"}

// HTTPRequest reads the start of an HTTP/1.x request (RFC 9112) from the
// first payload bytes of a TCP flow and writes its URL into dst,
// truncated to len(dst):
//
//   - "host/path?query" (origin-form target with a Host header; the query
//     string is kept), ok = true;
//   - "host/path?query" from an absolute-form target
//     ("GET http://host/path HTTP/1.1", a proxy request), ok = true;
//   - "host:port" for CONNECT's authority-form, ok = true;
//   - "host" for OPTIONS's asterisk-form with a Host header, ok = true;
//   - the target alone ("/path?query" or "*"), ok = false, when no Host
//     header is in the scanned bytes (a request split across segments,
//     or HTTP/1.0 without Host);
//   - n = 0, ok = false when the bytes do not start a request with a
//     whole request line ("METHOD SP target SP HTTP/1.x").
//
// A Host value with bytes outside visible ASCII or a '/' is ignored.
func HTTPRequest(payload, dst []byte) (n int, ok bool) {
	b := payload
	if len(b) > MaxScan {
		b = b[:MaxScan]
	}
	m := methodEnd(b)
	if m == 0 {
		return 0, false
	}
	i := m + 1 // past SP
	ts := i
	for i < len(b) && b[i] != ' ' {
		if b[i] <= ' ' || b[i] >= 0x7f {
			return 0, false
		}
		i++
	}
	if i == ts || i == len(b) {
		return 0, false
	}
	target := b[ts:i]
	i++
	// "HTTP/1." DIGIT, then CRLF (or a bare LF, or the end of the bytes).
	const ver = "HTTP/1."
	if len(b)-i < len(ver)+1 || string(b[i:i+len(ver)]) != ver || b[i+len(ver)] < '0' || b[i+len(ver)] > '9' {
		return 0, false
	}
	i += len(ver) + 1
	if i < len(b) && b[i] == '\r' {
		i++
	}
	if i < len(b) && b[i] != '\n' {
		return 0, false
	}
	i++ // headers start here (or past the end)

	switch {
	case target[0] == '/' || (len(target) == 1 && target[0] == '*'):
		if i < len(b) {
			if host := findHost(b[i:]); len(host) > 0 {
				n = copy(dst, host)
				if target[0] == '/' { // "*" names the server alone
					n += copy(dst[n:], target)
				}
				return n, true
			}
		}
		return copy(dst, target), false
	case hasPrefixFold(target, "http://") || hasPrefixFold(target, "https://"):
		rest := target[len("http://"):]
		if target[4] == 's' || target[4] == 'S' {
			rest = target[len("https://"):]
		}
		a := 0 // authority = rest[:a]
		for a < len(rest) && rest[a] != '/' && rest[a] != '?' && rest[a] != '#' {
			a++
		}
		auth, path := rest[:a], rest[a:]
		for j := len(auth) - 1; j >= 0; j-- {
			if auth[j] == '@' { // userinfo stays out of the log
				auth = auth[j+1:]
				break
			}
		}
		if len(auth) == 0 {
			return 0, false
		}
		n = copy(dst, auth)
		if (len(path) == 0 || path[0] != '/') && n < len(dst) {
			dst[n] = '/'
			n++
		}
		n += copy(dst[n:], path)
		return n, true
	case m == len("CONNECT") && b[0] == 'C':
		return copy(dst, target), true
	}
	return 0, false
}

// methodEnd returns the index of the space after a known method, or 0.
func methodEnd(b []byte) int {
	for _, m := range httpMethods {
		if len(b) > len(m) && b[len(m)] == ' ' && string(b[:len(m)]) == m {
			return len(m)
		}
	}
	return 0
}

// findHost returns the value of the first Host header among the whole
// header lines in b, or nil.
func findHost(b []byte) []byte {
	for len(b) > 0 {
		e := 0
		for e < len(b) && b[e] != '\n' {
			e++
		}
		if e == len(b) {
			return nil // partial line: the value may be cut
		}
		line := b[:e]
		b = b[e+1:]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			return nil // end of headers
		}
		if len(line) < 5 || !hasPrefixFold(line, "host:") {
			continue
		}
		v := line[5:]
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = v[:len(v)-1]
		}
		for _, c := range v {
			if c <= ' ' || c >= 0x7f || c == '/' {
				return nil
			}
		}
		return v
	}
	return nil
}

// hasPrefixFold reports whether b starts with the lower-case ASCII
// prefix p, ignoring ASCII case in b.
func hasPrefixFold(b []byte, p string) bool {
	if len(b) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// TLSSNI reads a TLS ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2) from
// the first payload bytes of a TCP flow and writes the first host_name of
// its server_name extension (RFC 6066 3) into dst, truncated to
// len(dst). The ClientHello may continue past the given bytes (a large
// hello with post-quantum key shares spans several segments): parsing
// stops at the end of whichever is shorter, the declared lengths or the
// bytes, so the name is found whenever it lies in them. ok is false when
// the bytes are not a ClientHello, carry no server_name, or cut the name;
// a name with bytes outside [A-Za-z0-9.-_] is refused.
func TLSSNI(payload, dst []byte) (n int, ok bool) {
	b := payload
	// TLSPlaintext: type(1)=22 handshake, legacy_record_version(2)=3.x,
	// length(2).
	if len(b) < 5 || b[0] != 22 || b[1] != 3 || b[2] > 4 {
		return 0, false
	}
	b = clip(b[5:], int(b[3])<<8|int(b[4]))
	// Handshake: msg_type(1)=1 client_hello, length(3).
	if len(b) < 4 || b[0] != 1 {
		return 0, false
	}
	b = clip(b[4:], int(b[1])<<16|int(b[2])<<8|int(b[3]))
	// legacy_version(2), random(32), legacy_session_id<0..32>.
	if len(b) < 35 {
		return 0, false
	}
	b = b[34:]
	if l := int(b[0]); l > 32 || len(b) < 1+l {
		return 0, false
	} else {
		b = b[1+l:]
	}
	// cipher_suites<2..2^16-2>.
	if len(b) < 2 {
		return 0, false
	}
	if l := int(b[0])<<8 | int(b[1]); len(b) < 2+l {
		return 0, false
	} else {
		b = b[2+l:]
	}
	// legacy_compression_methods<1..2^8-1>.
	if len(b) < 1 {
		return 0, false
	}
	if l := int(b[0]); len(b) < 1+l {
		return 0, false
	} else {
		b = b[1+l:]
	}
	// extensions<8..2^16-1>: type(2), length(2), data.
	if len(b) < 2 {
		return 0, false
	}
	b = clip(b[2:], int(b[0])<<8|int(b[1]))
	for len(b) >= 4 {
		typ, l := int(b[0])<<8|int(b[1]), int(b[2])<<8|int(b[3])
		b = b[4:]
		if typ != 0 {
			if len(b) < l {
				return 0, false
			}
			b = b[l:]
			continue
		}
		// ServerNameList: length(2), then name_type(1), HostName<1..2^16-1>.
		e := clip(b, l)
		if len(e) < 2 {
			return 0, false
		}
		e = clip(e[2:], int(e[0])<<8|int(e[1]))
		for len(e) >= 3 {
			nt, nl := e[0], int(e[1])<<8|int(e[2])
			e = e[3:]
			if len(e) < nl {
				return 0, false // the name is cut
			}
			if nt != 0 {
				e = e[nl:]
				continue
			}
			name := e[:nl]
			if nl == 0 {
				return 0, false
			}
			for _, c := range name {
				if !hostByte(c) {
					return 0, false
				}
			}
			return copy(dst, name), true
		}
		return 0, false
	}
	return 0, false
}

// clip returns b cut to at most n bytes.
func clip(b []byte, n int) []byte {
	if n < len(b) {
		return b[:n]
	}
	return b
}

func hostByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_'
}

// Sniff looks for an attribute in the first up payload of a flow and
// writes it into dst (AttrSize bytes is what a Record keeps): TLS SNI
// when the payload starts a TLS handshake record, else an HTTP request's
// URL (a path without a Host header counts, see HTTPRequest). It returns
// the length and kind (AttrNone, n = 0 when neither was found).
// Allocation-free; meant to be called once per flow, on the first up
// segment that carries payload.
func Sniff(payload, dst []byte) (n int, kind uint8) {
	if len(payload) > 0 && payload[0] == 22 {
		if n, ok := TLSSNI(payload, dst); ok {
			return n, AttrSNI
		}
		return 0, AttrNone
	}
	if n, _ := HTTPRequest(payload, dst); n > 0 {
		return n, AttrHTTP
	}
	return 0, AttrNone
}

// Sniff runs Sniff into r's attribute and returns the kind found; r is
// unchanged when nothing was.
func (r *Record) Sniff(payload []byte) uint8 {
	n, kind := Sniff(payload, r.Attr[:])
	if kind != AttrNone {
		r.AttrLen, r.AttrKind = uint8(min(n, AttrSize)), kind
	}
	return kind
}
