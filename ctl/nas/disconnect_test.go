package nas_test

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"net"
	"testing"
	"time"

	"layeh.com/radius"

	"samepath/ctl/aaa"
	"samepath/ctl/nas"
)

// disconnectRequest encodes a Disconnect-Request for acct signed with secret.
func disconnectRequest(t *testing.T, acct string, secret []byte) []byte {
	b, err := aaa.EncodeDisconnectRequest(aaa.Disconnect{AcctSessionID: acct}, secret)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServeDisconnect: an authentic request for a held session is ACKed
// with a valid Response Authenticator, one for another session NAKed,
// and one signed with another secret dropped.
func TestServeDisconnect(t *testing.T) {
	srv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("s3")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- nas.ServeDisconnect(ctx, srv, secret, func(d nas.DisconnectRequest) bool { return d.AcctSessionID == "held" })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	c, err := net.Dial("udp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func(req []byte) []byte {
		c.Write(req)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			return nil
		}
		return buf[:n]
	}
	authentic := func(a, req []byte) bool {
		h := md5.New()
		h.Write(a[:4])
		h.Write(req[4:20])
		h.Write(a[20:])
		h.Write(secret)
		return hmac.Equal(h.Sum(nil), a[4:20])
	}
	req := disconnectRequest(t, "held", secret)
	if a := ask(req); a == nil || radius.Code(a[0]) != radius.CodeDisconnectACK || !authentic(a, req) {
		t.Fatalf("held session: answer %x", a)
	}
	req = disconnectRequest(t, "other", secret)
	a := ask(req)
	if a == nil || radius.Code(a[0]) != radius.CodeDisconnectNAK || !authentic(a, req) {
		t.Fatalf("unknown session: answer %x", a)
	}
	if p, err := radius.Parse(a, secret); err != nil {
		t.Fatal(err)
	} else if v, ok := p.Attributes.Lookup(101); !ok || len(v) != 4 || v[2] != 503>>8 || v[3] != 503&0xff {
		t.Fatalf("NAK without Error-Cause 503: %v", p.Attributes)
	}
	if a := ask(disconnectRequest(t, "held", []byte("wrong"))); a != nil {
		t.Fatalf("forged request answered: %x", a)
	}
}
