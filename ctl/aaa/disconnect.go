package aaa

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

// Disconnect is what a Disconnect-Request (RFC 5176) names: the session
// at the NAS.
type Disconnect struct {
	NAS           netip.Addr // where the NAS sent its accounting from
	AcctSessionID string     // the NAS's current Acct-Session-Id
	User, Device  string     // User-Name, Calling-Station-Id
	IP            netip.Addr // Framed-IP-Address
}

// ErrNoDisconnect says the NAS's RADIUS client has no disconnect_port.
var ErrNoDisconnect = errors.New("the NAS's radius client has no disconnect_port")

// DisconnectNAK is a Disconnect-NAK; Cause is its Error-Cause (RFC 5176
// 3.5), 0 when absent.
type DisconnectNAK struct{ Cause uint32 }

func (e *DisconnectNAK) Error() string {
	return fmt.Sprintf("Disconnect-NAK (Error-Cause %d)", e.Cause)
}

const (
	codeDisconnectRequest = radius.CodeDisconnectRequest
	attrErrorCause        = 101
	disconnectTries       = 3
	disconnectTimeout     = time.Second
)

// Disconnect asks the NAS to end a session (RFC 5176 Disconnect-Request
// to its client's disconnect_port, signed with the client's secret, with
// a Message-Authenticator) and waits for the answer, retransmitting the
// same request up to three times a second apart. It returns nil on
// Disconnect-ACK, a *DisconnectNAK on NAK, ErrNoDisconnect when the NAS's
// client has no disconnect_port, or the transport error.
func (s *Server) Disconnect(ctx context.Context, d Disconnect) error {
	cl := s.lookupClient(d.NAS)
	if cl == nil {
		return fmt.Errorf("disconnect: %s is no radius client", d.NAS)
	}
	if cl.daePort == 0 {
		return ErrNoDisconnect
	}
	req, err := EncodeDisconnectRequest(d, cl.secret)
	if err != nil {
		return err
	}
	s.C.DisconnectSent.Add(1)
	err = exchangeDAE(ctx, netip.AddrPortFrom(d.NAS, uint16(cl.daePort)), req, cl.secret)
	var nak *DisconnectNAK
	switch {
	case err == nil:
		s.C.DisconnectACK.Add(1)
	case errors.As(err, &nak):
		s.C.DisconnectNAK.Add(1)
	default:
		s.C.DisconnectFailed.Add(1)
	}
	return err
}

// EncodeDisconnectRequest encodes a Disconnect-Request for d signed with
// secret: a random Identifier, a Message-Authenticator and the Request
// Authenticator as for Accounting-Request (RFC 5176 3.5, EncodeRequest).
func EncodeDisconnectRequest(d Disconnect, secret []byte) ([]byte, error) {
	p := radius.New(codeDisconnectRequest, secret)
	var id [1]byte
	rand.Read(id[:])
	p.Identifier = id[0]
	if err := rfc2866.AcctSessionID_SetString(p, d.AcctSessionID); err != nil {
		return nil, err
	}
	if d.User != "" {
		rfc2865.UserName_SetString(p, d.User)
	}
	if d.Device != "" {
		rfc2865.CallingStationID_SetString(p, d.Device)
	}
	if d.IP.Is4() {
		rfc2865.FramedIPAddress_Set(p, d.IP.AsSlice())
	}
	return EncodeRequest(p)
}

// exchangeDAE sends req to nas and waits for its answer.
func exchangeDAE(ctx context.Context, nas netip.AddrPort, req, secret []byte) error {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(nas))
	if err != nil {
		return fmt.Errorf("disconnect %s: %w", nas, err)
	}
	defer conn.Close()
	buf := make([]byte, radius.MaxPacketLength)
	var last error
	for try := 0; try < disconnectTries; try++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := conn.Write(req); err != nil {
			last = err
			continue
		}
		conn.SetReadDeadline(time.Now().Add(disconnectTimeout))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				last = err
				break
			}
			a := buf[:n]
			if n < radiusHeaderLen || a[1] != req[1] || !authenticDAEResponse(a, req, secret) {
				continue // not our answer, or forged: keep waiting
			}
			switch radius.Code(a[0]) {
			case radius.CodeDisconnectACK:
				return nil
			case radius.CodeDisconnectNAK:
				nak := &DisconnectNAK{}
				if p, err := radius.Parse(a, secret); err == nil {
					if v, ok := p.Attributes.Lookup(attrErrorCause); ok && len(v) == 4 {
						nak.Cause = uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
					}
				}
				return nak
			}
		}
	}
	return fmt.Errorf("disconnect %s: no answer after %d tries: %w", nas, disconnectTries, last)
}

// authenticDAEResponse checks a Disconnect-ACK/NAK's Response
// Authenticator: MD5(Code+Identifier+Length+Request Authenticator+
// Attributes+Secret) (RFC 5176 3.5). layeh.com/radius's
// IsAuthenticResponse does not cover the Dynamic Authorization codes.
func authenticDAEResponse(a, req, secret []byte) bool {
	length := int(a[2])<<8 | int(a[3])
	if length < radiusHeaderLen || length > len(a) {
		return false
	}
	h := md5.New()
	h.Write(a[:4])
	h.Write(req[4:20])
	h.Write(a[20:length])
	h.Write(secret)
	return hmac.Equal(h.Sum(nil), a[4:20])
}
