package control_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/nas"
)

// TestTerminateDisconnects: `sessions terminate` (DELETE /v1/sessions/ID)
// closes the session and sends the NAS it started at a Disconnect-Request
// (RFC 5176, with a Message-Authenticator) naming its Acct-Session-Id,
// user, device and address, here to ctl/nas's Disconnect server, which
// acknowledges the session it holds and NAKs one it does not; the answer
// is counted and the DELETE answer says it. A client without
// disconnect_port is sent nothing.
func TestTerminateDisconnects(t *testing.T) {
	for _, tc := range []struct {
		name string
		held string // the session the NAS holds
		port bool
		want string
		// answer is what DELETE /v1/sessions/ID says the NAS did.
		answer string
	}{
		{"ack", "S1", true, "disconnect_ack", control.DisconnectACK},
		{"nak", "S9", true, "disconnect_nak", control.DisconnectNAK},
		{"no port", "S1", false, "", control.DisconnectNotSent},
	} {
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
			if tc.port {
				cfg.Radius.Clients[0].DisconnectPort = conn.LocalAddr().(*net.UDPAddr).Port
			}
			c := startControl(t, cfg)
			if _, err := c.Users.Put(aaa.User{ID: "alice", Password: "pw", DeviceID: "IMEI-1"}); err != nil {
				t.Fatal(err)
			}
			radclient(t, c.AuthAddr().String(), "auth", "User-Name=alice,User-Password=pw,Calling-Station-Id=IMEI-1,Message-Authenticator=0x00")
			radclient(t, c.AcctAddr().String(), "acct", "Acct-Session-Id=S1,Calling-Station-Id=IMEI-1,User-Name=alice,Framed-IP-Address=10.100.0.1,Acct-Status-Type=Start")
			var res control.Terminated
			if err := api.NewClient(c.APIAddr().String()).Do(context.Background(), http.MethodDelete, "/v1/sessions/S1", nil, &res); err != nil {
				t.Fatal(err)
			}
			if !res.OK || res.Session != "S1" || res.Disconnect != tc.answer || (tc.answer == control.DisconnectNAK) != strings.Contains(res.DisconnectError, "Disconnect-NAK") {
				t.Fatalf("DELETE answered %+v, want disconnect %q", res, tc.answer)
			}
			if !tc.port {
				var cs control.Counters
				getJSON(t, c, "/v1/counters", &cs)
				mu.Lock()
				defer mu.Unlock()
				if cs.Radius["disconnect_sent"] != 0 || len(got) != 0 {
					t.Fatalf("sent a Disconnect-Request without disconnect_port: %v", cs.Radius)
				}
				return
			}
			eventually(t, tc.want, func() bool {
				var cs control.Counters
				getJSON(t, c, "/v1/counters", &cs)
				return cs.Radius[tc.want] == 1 && cs.Radius["disconnect_sent"] == 1
			})
			mu.Lock()
			defer mu.Unlock()
			want := nas.DisconnectRequest{AcctSessionID: "S1", User: "alice", Device: "IMEI-1", MessageAuthenticator: true}
			if len(got) != 1 || got[0].IP.String() != "10.100.0.1" {
				t.Fatalf("the NAS saw %+v", got)
			}
			got[0].IP = want.IP
			if got[0] != want {
				t.Fatalf("the NAS saw %+v, want %+v", got[0], want)
			}
		})
	}
}
