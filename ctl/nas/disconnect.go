package nas

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"net"
	"net/netip"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

// DisconnectRequest is what a Disconnect-Request (RFC 5176) asked.
type DisconnectRequest struct {
	AcctSessionID, User, Device string
	IP                          netip.Addr
}

// Error-Cause values (RFC 5176 3.5).
const (
	causeSessionNotFound = 503 // Session Context Not Found
	attrErrorCause       = 101
	attrMessageAuth      = 80
)

// ServeDisconnect answers Disconnect-Requests on conn (the NAS's dynamic
// authorization port, usually 3799) until ctx ends or conn closes: a
// request authentic under secret (Request Authenticator, and its
// Message-Authenticator when present) is handed to end, and answered with
// Disconnect-ACK when end found and ended the session, Disconnect-NAK
// (Error-Cause 503, Session Context Not Found) otherwise. Anything else is
// dropped.
func ServeDisconnect(ctx context.Context, conn net.PacketConn, secret []byte, end func(DisconnectRequest) bool) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, radius.MaxPacketLength)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		req := bytes.Clone(buf[:n])
		if n < 20 || radius.Code(req[0]) != radius.CodeDisconnectRequest || !radius.IsAuthenticRequest(req, secret) || !requestMAOK(req, secret) {
			continue
		}
		p, err := radius.Parse(req, secret)
		if err != nil {
			continue
		}
		d := DisconnectRequest{AcctSessionID: rfc2866.AcctSessionID_GetString(p), User: rfc2865.UserName_GetString(p),
			Device: rfc2865.CallingStationID_GetString(p)}
		if ip, err := rfc2865.FramedIPAddress_Lookup(p); err == nil {
			d.IP, _ = netip.AddrFromSlice(ip.To4())
		}
		resp := p.Response(radius.CodeDisconnectACK)
		if !end(d) {
			resp = p.Response(radius.CodeDisconnectNAK)
			resp.Add(attrErrorCause, radius.Attribute{0, 0, causeSessionNotFound >> 8, causeSessionNotFound & 0xff})
		}
		out, err := resp.MarshalBinary()
		if err != nil {
			continue
		}
		// Response Authenticator (RFC 5176 3.5), computed here: layeh.com/radius
		// leaves the Dynamic Authorization codes to the caller.
		h := md5.New()
		h.Write(out[:4])
		h.Write(req[4:20])
		h.Write(out[20:])
		h.Write(secret)
		h.Sum(out[4:4:20])
		conn.WriteTo(out, from)
	}
}

// requestMAOK checks a Disconnect-Request's Message-Authenticator, if it
// has one, computed over a zero Request Authenticator.
func requestMAOK(b, secret []byte) bool {
	length := int(b[2])<<8 | int(b[3])
	if length > len(b) || length < 20 {
		return false
	}
	for off := 20; off+2 <= length; off += int(b[off+1]) {
		if b[off+1] < 2 {
			return false
		}
		if b[off] == attrMessageAuth {
			if b[off+1] != 18 {
				return false
			}
			c := bytes.Clone(b[:length])
			clear(c[4:20])
			clear(c[off+2 : off+18])
			m := hmac.New(md5.New, secret)
			m.Write(c)
			return hmac.Equal(m.Sum(nil), b[off+2:off+18])
		}
	}
	return true
}
