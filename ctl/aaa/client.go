package aaa

import (
	"crypto/hmac"
	"crypto/md5"

	"layeh.com/radius"
)

// EncodeRequest encodes an Access-Request or Accounting-Request with a
// Message-Authenticator (first attribute), as a NAS should since
// CVE-2024-3596. p.Authenticator must be random for Access-Request
// (radius.New does that).
func EncodeRequest(p *radius.Packet) ([]byte, error) {
	p.Attributes = append(radius.Attributes{{Type: attrMessageAuth, Attribute: make(radius.Attribute, messageAuthLen)}}, p.Attributes...)
	if p.Code == radius.CodeAccountingRequest {
		p.Authenticator = [16]byte{}
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	m := hmac.New(md5.New, p.Secret)
	m.Write(b)
	m.Sum(b[22:22:38])
	if p.Code == radius.CodeAccountingRequest {
		h := md5.New()
		h.Write(b) // authenticator field is zero here
		h.Write(p.Secret)
		h.Sum(b[4:4:20])
		copy(p.Authenticator[:], b[4:20])
	}
	return b, nil
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
