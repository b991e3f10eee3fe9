package aaa

import (
	"crypto/hmac"
	"crypto/md5"

	"layeh.com/radius"
)

// EncodeRequest encodes a request with a Message-Authenticator (first
// attribute), as RADIUS peers should since CVE-2024-3596. p.Authenticator
// must be random for Access-Request and Status-Server (radius.New does
// that); for Accounting-Request and the Dynamic Authorization requests
// (Disconnect-Request, CoA-Request, RFC 5176) it is computed here.
func EncodeRequest(p *radius.Packet) ([]byte, error) {
	p.Attributes = append(radius.Attributes{{Type: attrMessageAuth, Attribute: make(radius.Attribute, messageAuthLen)}}, p.Attributes...)
	hashed := hashedRequest(byte(p.Code))
	if hashed {
		p.Authenticator = [16]byte{}
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	m := hmac.New(md5.New, p.Secret)
	m.Write(b)
	m.Sum(b[22:22:38])
	if hashed {
		h := md5.New()
		h.Write(b) // authenticator field is zero here
		h.Write(p.Secret)
		h.Sum(b[4:4:20])
		copy(p.Authenticator[:], b[4:20])
	}
	return b, nil
}

// VerifyRequestMessageAuthenticator checks request b's framing and its
// Message-Authenticator: present says it has one, ok that b is well
// framed and the attribute, when present, verifies.
func VerifyRequestMessageAuthenticator(b, secret []byte) (present, ok bool) {
	length, off, err := checkFrame(b)
	if err != nil {
		return false, false
	}
	if off == 0 {
		return false, true
	}
	return true, verifyMessageAuthenticator(b[:length], off, secret)
}

// VerifyResponseMessageAuthenticator checks the Message-Authenticator of an
// answer to a request whose Request Authenticator was reqAuth. An answer
// without one does not verify.
func VerifyResponseMessageAuthenticator(resp, reqAuth, secret []byte) bool {
	length, off, err := checkFrame(resp)
	if err != nil || off == 0 {
		return false
	}
	c := append([]byte(nil), resp[:length]...)
	if c[0] == byte(radius.CodeAccountingResponse) {
		clear(c[4:20])
	} else {
		copy(c[4:20], reqAuth)
	}
	clear(c[off : off+messageAuthLen])
	m := hmac.New(md5.New, secret)
	m.Write(c)
	return hmac.Equal(m.Sum(nil), resp[off:off+messageAuthLen])
}
