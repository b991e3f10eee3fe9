package acct

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends r as one JSON object and a newline to dst: the log's
// line format. It allocates only when dst must grow (the writer reuses one
// buffer). The line names the subscriber (user and device id) and the
// service type, never the mobile's addresses (steps S79-S80):
//
//	{"kind":"final","flow":"9f3c5e0a1b2d4c6e-42","session":7,"acct_session_id":"5f3a-0001","user":"alice","device":"IMEI-1",
//	 "service":"web-a","service_type":"web","url":"host/path",
//	 "rep":"10.30.0.1:80","server":"10.20.0.11:80","proto":"tcp",
//	 "start":"2025-01-02T03:04:05.123456789Z","end":"...","cause":"tcp-close",
//	 "up_packets":6,"up_bytes":450,"down_packets":9,"down_bytes":11000,
//	 "up_payload":77,"down_payload":10432}
//
// "flow" (Record.FlowID) appears only for a named flow; "acct_session_id"
// (the RADIUS Acct-Session-Id, for joins with RADIUS accounting) only
// when the gateway's session copy has one;
// "url" (AttrHTTP) or "sni" (AttrSNI) appears only when an attribute was
// seen; "rep" and "server" only when known; "up_payload"/"down_payload"
// only when HasPayload. Times are RFC 3339 in UTC with nanoseconds.
func AppendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"kind":"`...)
	dst = append(dst, r.Kind.String()...)
	if r.Boot != 0 {
		dst = append(dst, `","flow":"`...)
		dst = appendFlowID(dst, r.Boot, r.Seq)
	}
	dst = append(dst, `","session":`...)
	dst = strconv.AppendUint(dst, r.Session, 10)
	if n := min(int(r.AcctSessionLen), AcctSessionSize); n > 0 {
		dst = appendStr(dst, `,"acct_session_id":`, r.AcctSession[:n])
	}
	dst = appendStr(dst, `,"user":`, r.User[:min(int(r.UserLen), UserSize)])
	dst = appendStr(dst, `,"device":`, r.Device[:min(int(r.DeviceLen), DeviceSize)])
	dst = appendStr(dst, `,"service":`, r.Service[:min(int(r.ServiceLen), ServiceSize)])
	dst = appendStr(dst, `,"service_type":`, r.ServiceType[:r.stLen()])
	switch r.AttrKind {
	case AttrHTTP:
		dst = appendStr(dst, `,"url":`, r.Attr[:r.attrLen()])
	case AttrSNI:
		dst = appendStr(dst, `,"sni":`, r.Attr[:r.attrLen()])
	}
	if ap := r.RepAddr(); ap.IsValid() {
		dst = append(dst, `,"rep":"`...)
		dst = ap.AppendTo(dst)
		dst = append(dst, '"')
	}
	if ap := r.ServerAddr(); ap.IsValid() {
		dst = append(dst, `,"server":"`...)
		dst = ap.AppendTo(dst)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"proto":"`...)
	switch r.Proto {
	case 6, 17, 1, 58:
		dst = append(dst, ProtoName(r.Proto)...)
	default:
		dst = strconv.AppendUint(dst, uint64(r.Proto), 10)
	}
	dst = append(dst, `","start":"`...)
	dst = time.Unix(0, r.Start).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","end":"`...)
	dst = time.Unix(0, r.End).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","cause":"`...)
	dst = append(dst, r.Cause.String()...)
	dst = append(dst, `","up_packets":`...)
	dst = strconv.AppendUint(dst, r.UpPackets, 10)
	dst = append(dst, `,"up_bytes":`...)
	dst = strconv.AppendUint(dst, r.UpBytes, 10)
	dst = append(dst, `,"down_packets":`...)
	dst = strconv.AppendUint(dst, r.DownPackets, 10)
	dst = append(dst, `,"down_bytes":`...)
	dst = strconv.AppendUint(dst, r.DownBytes, 10)
	if r.HasPayload {
		dst = append(dst, `,"up_payload":`...)
		dst = strconv.AppendUint(dst, r.UpPayload, 10)
		dst = append(dst, `,"down_payload":`...)
		dst = strconv.AppendUint(dst, r.DownPayload, 10)
	}
	return append(dst, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendStr appends key and s as a JSON string. Control characters,
// quotes and backslashes are escaped, invalid UTF-8 becomes U+FFFD (as
// encoding/json does), and '<', '>', '&' pass through unescaped.
func appendStr(dst []byte, key string, s []byte) []byte {
	dst = append(dst, key...)
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c >= 0x20:
				dst = append(dst, c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			// Valid JSON, but escaped like encoding/json for JavaScript.
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// MaxLine bounds one encoded record: every string escaped at 6 bytes per
// input byte plus the fixed fields.
const MaxLine = 6*(UserSize+DeviceSize+ServiceSize+ServiceTypeSize+AttrSize+AcctSessionSize) + 1024

// Entry is one decoded log line (the reader's view, for queries and the
// CLI). Its JSON form is the line format written by AppendJSON.
type Entry struct {
	Kind    string `json:"kind"`
	Flow    string `json:"flow,omitempty"` // Record.FlowID
	Session uint64 `json:"session"`
	// AcctSessionID is the RADIUS Acct-Session-Id ("" when unknown).
	AcctSessionID string    `json:"acct_session_id,omitempty"`
	User          string    `json:"user"`
	Device        string    `json:"device"`
	Service       string    `json:"service"`
	ServiceType   string    `json:"service_type"`
	URL           string    `json:"url,omitempty"`
	SNI           string    `json:"sni,omitempty"`
	Rep           string    `json:"rep,omitempty"`
	Server        string    `json:"server,omitempty"`
	Proto         string    `json:"proto"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Cause         string    `json:"cause"`
	UpPackets     uint64    `json:"up_packets"`
	UpBytes       uint64    `json:"up_bytes"`
	DownPackets   uint64    `json:"down_packets"`
	DownBytes     uint64    `json:"down_bytes"`
	// UpPayload and DownPayload are nil when the gateway did not count
	// payload bytes.
	UpPayload   *uint64 `json:"up_payload,omitempty"`
	DownPayload *uint64 `json:"down_payload,omitempty"`
}

// Attribute returns the URL or the SNI, whichever the record has.
func (e *Entry) Attribute() string {
	if e.URL != "" {
		return e.URL
	}
	return e.SNI
}
