package aaa

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"

	"layeh.com/radius"
)

const (
	attrProxyState   = 33
	attrMessageAuth  = 80
	messageAuthLen   = 16
	radiusHeaderLen  = 20
	codeAccessReq    = byte(radius.CodeAccessRequest)
	codeAcctReq      = byte(radius.CodeAccountingRequest)
	codeStatusServer = byte(radius.CodeStatusServer)
)

var (
	errShort     = errors.New("shorter than a RADIUS header")
	errLength    = errors.New("length field disagrees with datagram")
	errAttrs     = errors.New("malformed attribute list")
	errMALength  = errors.New("Message-Authenticator not 16 octets")
	errMAInvalid = errors.New("Message-Authenticator does not verify")
	errMADup     = errors.New("more than one Message-Authenticator")
)

// checkFrame validates the header and attribute framing of a datagram and
// returns the packet length and the offset of the Message-Authenticator
// value (0 if absent). Nothing is allocated.
func checkFrame(b []byte) (length, maOff int, err error) {
	if len(b) < radiusHeaderLen {
		return 0, 0, errShort
	}
	length = int(binary.BigEndian.Uint16(b[2:4]))
	if length < radiusHeaderLen || length > radius.MaxPacketLength || length > len(b) {
		return 0, 0, errLength
	}
	for i := radiusHeaderLen; i < length; {
		if i+2 > length {
			return 0, 0, errAttrs
		}
		t, l := b[i], int(b[i+1])
		if l < 2 || i+l > length {
			return 0, 0, errAttrs
		}
		if t == attrMessageAuth {
			if l != 2+messageAuthLen {
				return 0, 0, errMALength
			}
			if maOff != 0 {
				return 0, 0, errMADup
			}
			maOff = i + 2
		}
		i += l
	}
	return length, maOff, nil
}

// hashedRequest says whether requests of code carry a Request
// Authenticator computed over the packet (Accounting-Request, RFC 2866;
// Disconnect-Request and CoA-Request, RFC 5176) rather than a random one.
func hashedRequest(code byte) bool {
	switch radius.Code(code) {
	case radius.CodeAccountingRequest, radius.CodeDisconnectRequest, radius.CodeCoARequest:
		return true
	}
	return false
}

// verifyMessageAuthenticator checks the Message-Authenticator (RFC 3579
// 3.2) of request b (already framed by checkFrame) at value offset off.
// Where the Request Authenticator is hashed (hashedRequest) it is taken as
// zeros, as it is itself computed over the attribute (RFC 5080 2.2.2
// practice, FreeRADIUS).
func verifyMessageAuthenticator(b []byte, off int, secret []byte) bool {
	var zero [16]byte
	m := hmac.New(md5.New, secret)
	if hashedRequest(b[0]) {
		m.Write(b[:4])
		m.Write(zero[:])
		m.Write(b[20:off])
	} else {
		m.Write(b[:off])
	}
	m.Write(zero[:messageAuthLen])
	m.Write(b[off+messageAuthLen:])
	var sum [md5.Size]byte
	return hmac.Equal(m.Sum(sum[:0]), b[off:off+messageAuthLen])
}

// encodeResponse encodes resp (built by Request.Response, so its
// Authenticator is the request's) with a Message-Authenticator as its first
// attribute, then the Response Authenticator (RFC 2865 3). For an
// Accounting-Response to an Accounting-Request (toAcctReq) the
// Message-Authenticator is computed over a zero authenticator field, as
// FreeRADIUS does (and checks); for any other answer (an Accounting-
// Response to a Status-Server too, RFC 5997 3) over the request's.
func encodeResponse(resp *radius.Packet, toAcctReq bool) ([]byte, error) {
	resp.Attributes = append(radius.Attributes{{Type: attrMessageAuth, Attribute: make(radius.Attribute, messageAuthLen)}}, resp.Attributes...)
	b, err := resp.MarshalBinary() // header carries the request authenticator
	if err != nil {
		return nil, err
	}
	// First attribute: type, len, then the 16-octet value at offset 22.
	m := hmac.New(md5.New, resp.Secret)
	if toAcctReq {
		var zero [16]byte
		m.Write(b[:4])
		m.Write(zero[:])
		m.Write(b[20:])
	} else {
		m.Write(b)
	}
	m.Sum(b[22:22:38])
	h := md5.New()
	h.Write(b)
	h.Write(resp.Secret)
	h.Sum(b[4:4:20])
	return b, nil
}

// isAuthenticAcct checks an Accounting-Request's Request Authenticator.
func isAuthenticAcct(b, secret []byte) bool {
	return radius.IsAuthenticRequest(b, secret)
}
