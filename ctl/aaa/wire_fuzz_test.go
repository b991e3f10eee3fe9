package aaa

import (
	"encoding/binary"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// FuzzCheckFrame feeds arbitrary datagrams to checkFrame, the check every
// RADIUS datagram passes before layeh.com/radius parses it. Properties:
// no panic; an accepted frame's length is within the datagram and the
// RADIUS limits, its attributes tile it exactly, a Message-Authenticator
// offset points at the value of the one type-80 attribute of length 18;
// and the parser then accepts what checkFrame accepted. Seeds: a real
// Access-Request with and without a Message-Authenticator, and frames
// cut at every attribute boundary.
//
//	go test -run '^$' -fuzz '^FuzzCheckFrame$' -fuzztime 30s ./ctl/aaa
func FuzzCheckFrame(f *testing.F) {
	p := radius.New(radius.CodeAccessRequest, []byte("secret"))
	rfc2865.UserName_SetString(p, "alice")
	rfc2865.UserPassword_SetString(p, "pw")
	rfc2865.CallingStationID_SetString(p, "IMEI-1")
	plain, err := p.Encode()
	if err != nil {
		f.Fatal(err)
	}
	p.Add(attrMessageAuth, make([]byte, messageAuthLen))
	withMA, err := p.Encode()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][]byte{plain, withMA} {
		f.Add(s)
		for i := radiusHeaderLen; i < len(s); i++ {
			f.Add(s[:i])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		length, maOff, err := checkFrame(b)
		if err != nil {
			return
		}
		if length < radiusHeaderLen || length > len(b) || length > radius.MaxPacketLength || length != int(binary.BigEndian.Uint16(b[2:])) {
			t.Fatalf("accepted length %d of a %d-byte datagram", length, len(b))
		}
		i, ma := radiusHeaderLen, 0
		for i < length {
			if b[i] == attrMessageAuth {
				ma++
				if maOff != i+2 || b[i+1] != 2+messageAuthLen {
					t.Fatalf("Message-Authenticator at %d (length %d), reported at %d", i, b[i+1], maOff)
				}
			}
			i += int(b[i+1])
		}
		if i != length || ma > 1 || (ma == 0) != (maOff == 0) {
			t.Fatalf("attributes end at %d of %d; %d Message-Authenticators, offset %d", i, length, ma, maOff)
		}
		if _, err := radius.Parse(b[:length], []byte("secret")); err != nil {
			t.Fatalf("checkFrame accepted %x, the parser refuses it: %v", b[:length], err)
		}
	})
}
