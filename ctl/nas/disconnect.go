package nas

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"net"
	"net/netip"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
)

// DisconnectRequest is what a Disconnect-Request (RFC 5176) asked.
type DisconnectRequest struct {
	AcctSessionID, User, Device string
	IP                          netip.Addr
	// MessageAuthenticator: the request carried one (it verified, or the
	// request would not have been handed on).
	MessageAuthenticator bool
}

// Error-Cause values (RFC 5176 3.5).
const (
	causeSessionNotFound = 503 // Session Context Not Found
	attrErrorCause       = 101
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
		if n < 20 || radius.Code(req[0]) != radius.CodeDisconnectRequest || !radius.IsAuthenticRequest(req, secret) {
			continue
		}
		hasMA, maOK := aaa.VerifyRequestMessageAuthenticator(req, secret)
		if !maOK {
			continue
		}
		p, err := radius.Parse(req, secret)
		if err != nil {
			continue
		}
		d := DisconnectRequest{AcctSessionID: rfc2866.AcctSessionID_GetString(p), User: rfc2865.UserName_GetString(p),
			Device: rfc2865.CallingStationID_GetString(p), MessageAuthenticator: hasMA}
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
