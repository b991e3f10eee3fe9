package control_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"net"
	"net/http"
	"sync"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/nas"
)

// fakeNAS answers Disconnect-Requests (RFC 5176) like a NAS: it checks
// the Request Authenticator and Message-Authenticator with the shared
// secret and answers with answer (ACK or NAK).
type fakeNAS struct {
	conn   *net.UDPConn
	secret []byte
	answer radius.Code
	mu     sync.Mutex
	got    []*radius.Packet
	bad    int
}

func newFakeNAS(t *testing.T, secret string, answer radius.Code) *fakeNAS {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNAS{conn: conn, secret: []byte(secret), answer: answer}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			b := append([]byte(nil), buf[:k]...)
			p, err := radius.Parse(b, n.secret)
			if err != nil || p.Code != radius.CodeDisconnectRequest || !radius.IsAuthenticRequest(b, n.secret) || !disconnectMAOK(b, n.secret) {
				n.mu.Lock()
				n.bad++
				n.mu.Unlock()
				continue
			}
			n.mu.Lock()
			n.got = append(n.got, p)
			n.mu.Unlock()
			out, _ := p.Response(n.answer).MarshalBinary()
			h := md5.New() // the Response Authenticator (RFC 5176 3.5)
			h.Write(out[:4])
			h.Write(b[4:20])
			h.Write(out[20:])
			h.Write(n.secret)
			h.Sum(out[4:4:20])
			conn.WriteToUDPAddrPort(out, from)
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

// disconnectMAOK checks the Message-Authenticator of a Disconnect-Request,
// computed over a zero authenticator (RFC 5176 3.5).
func disconnectMAOK(b, secret []byte) bool {
	for off := 20; off+2 <= len(b); off += int(b[off+1]) {
		if b[off+1] < 2 {
			return false
		}
		if b[off] == 80 && b[off+1] == 18 {
			c := bytes.Clone(b)
			clear(c[4:20])
			clear(c[off+2 : off+18])
			m := hmac.New(md5.New, secret)
			m.Write(c)
			return hmac.Equal(m.Sum(nil), b[off+2:off+18])
		}
	}
	return false
}

func (n *fakeNAS) requests() []*radius.Packet {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*radius.Packet(nil), n.got...)
}

// TestTerminateDisconnects: `sessions terminate` (DELETE /v1/sessions/ID)
// closes the session and sends the NAS it started at a Disconnect-Request
// naming its Acct-Session-Id, user, device and address; the NAS's ACK or
// NAK is counted. A client without disconnect_port is sent nothing.
func TestTerminateDisconnects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer radius.Code
		port   bool
		want   string
	}{
		{"ack", radius.CodeDisconnectACK, true, "disconnect_ack"},
		{"nak", radius.CodeDisconnectNAK, true, "disconnect_nak"},
		{"no port", radius.CodeDisconnectACK, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nas := newFakeNAS(t, "testing123", tc.answer)
			gw1 := newFakeDaemon(t)
			cfg := testConfig(t.TempDir(), gw1, nil, nil)
			if tc.port {
				cfg.Radius.Clients[0].DisconnectPort = nas.conn.LocalAddr().(*net.UDPAddr).Port
			}
			c := startControl(t, cfg)
			if _, err := c.Users.Put(aaa.User{ID: "alice", Password: "pw", DeviceID: "IMEI-1"}); err != nil {
				t.Fatal(err)
			}
			radclient(t, c.AuthAddr().String(), "auth", "User-Name=alice,User-Password=pw,Calling-Station-Id=IMEI-1,Message-Authenticator=0x00")
			radclient(t, c.AcctAddr().String(), "acct", "Acct-Session-Id=S1,Calling-Station-Id=IMEI-1,User-Name=alice,Framed-IP-Address=10.100.0.1,Acct-Status-Type=Start")
			cl := api.NewClient(c.APIAddr().String())
			if err := cl.Do(context.Background(), http.MethodDelete, "/v1/sessions/S1", nil, nil); err != nil {
				t.Fatal(err)
			}
			if !tc.port {
				var cs control.Counters
				getJSON(t, c, "/v1/counters", &cs)
				if cs.Radius["disconnect_sent"] != 0 || len(nas.requests()) != 0 {
					t.Fatalf("sent a Disconnect-Request without disconnect_port: %v", cs.Radius)
				}
				return
			}
			eventually(t, "the NAS's answer counted", func() bool {
				var cs control.Counters
				getJSON(t, c, "/v1/counters", &cs)
				return cs.Radius[tc.want] == 1 && cs.Radius["disconnect_sent"] == 1
			})
			reqs := nas.requests()
			if len(reqs) != 1 || nas.bad != 0 {
				t.Fatalf("NAS got %d requests, %d bad", len(reqs), nas.bad)
			}
			p := reqs[0]
			if rfc2866.AcctSessionID_GetString(p) != "S1" || rfc2865.UserName_GetString(p) != "alice" ||
				rfc2865.CallingStationID_GetString(p) != "IMEI-1" || rfc2865.FramedIPAddress_Get(p).String() != "10.100.0.1" {
				t.Fatalf("Disconnect-Request attributes %v", p.Attributes)
			}
		})
	}
}

// TestTerminateDisconnectsNASEmulator: the same through ctl/nas's
// Disconnect-Request server (the NAS emulator's side): it acknowledges
// the session it holds and NAKs one it does not.
func TestTerminateDisconnectsNASEmulator(t *testing.T) {
	for _, tc := range []struct {
		name string
		held string
		want string
	}{{"held", "S1", "disconnect_ack"}, {"unknown", "S9", "disconnect_nak"}} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var mu sync.Mutex
			var got []nas.DisconnectRequest
			done := make(chan error, 1)
			go func() {
				done <- nas.ServeDisconnect(ctx, conn, []byte("testing123"), func(d nas.DisconnectRequest) bool {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, d)
					return d.AcctSessionID == tc.held
				})
			}()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			})
			cfg := testConfig(t.TempDir(), newFakeDaemon(t), nil, nil)
			cfg.Radius.Clients[0].DisconnectPort = conn.LocalAddr().(*net.UDPAddr).Port
			c := startControl(t, cfg)
			if _, err := c.Users.Put(aaa.User{ID: "alice", Password: "pw", DeviceID: "IMEI-1"}); err != nil {
				t.Fatal(err)
			}
			radclient(t, c.AuthAddr().String(), "auth", "User-Name=alice,User-Password=pw,Calling-Station-Id=IMEI-1,Message-Authenticator=0x00")
			radclient(t, c.AcctAddr().String(), "acct", "Acct-Session-Id=S1,Calling-Station-Id=IMEI-1,User-Name=alice,Framed-IP-Address=10.100.0.1,Acct-Status-Type=Start")
			if err := api.NewClient(c.APIAddr().String()).Do(context.Background(), http.MethodDelete, "/v1/sessions/S1", nil, nil); err != nil {
				t.Fatal(err)
			}
			eventually(t, tc.want, func() bool {
				var cs control.Counters
				getJSON(t, c, "/v1/counters", &cs)
				return cs.Radius[tc.want] == 1
			})
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || got[0].AcctSessionID != "S1" || got[0].User != "alice" || got[0].Device != "IMEI-1" || got[0].IP.String() != "10.100.0.1" {
				t.Fatalf("the NAS saw %+v", got)
			}
		})
	}
}
