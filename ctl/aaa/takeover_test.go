package aaa

import (
	"net/netip"
	"strings"
	"testing"
)

// TestReauthKeepsAddressWhilePrimaryDown (issue 17, part 1; R-AAA-2): a
// phone with a session on gw1's range that re-authenticates while gw1 is
// down gets Access-Accept with the same address (gw1's T4 substitute
// serves that range and already holds the session's T3 copy), and the
// assignment stays bound to its session; a new device gets an address of
// the live gateway's range, none of gw1's.
func TestReauthKeepsAddressWhilePrimaryDown(t *testing.T) {
	ts := startServer(t, nil)
	for _, g := range []GatewayConfig{{Name: "gw1", Range: "10.20.0.0/24"}, {Name: "gw2", Range: "10.21.0.0/24"}} {
		if _, err := ts.pool.PutGateway(g); err != nil {
			t.Fatal(err)
		}
	}
	ts.users.Put(User{ID: "alice", Password: "alicepw", DeviceID: "dev-a"})
	ts.users.Put(User{ID: "bob", Password: "bobpw", DeviceID: "dev-b"})
	login := func(user, pw, dev string) string {
		t.Helper()
		return radclient(t, ts.srv.AuthAddr(), "auth", "User-Name="+user+",User-Password="+pw+",Calling-Station-Id="+dev+",Message-Authenticator=0x00")
	}
	if out := login("alice", "alicepw", "dev-a"); !strings.Contains(out, "Framed-IP-Address = 10.20.0.1") {
		t.Fatalf("first login not on gw1:\n%s", out)
	}
	ip := netip.MustParseAddr("10.20.0.1")
	if _, _, err := ts.pool.Bind(ip, "dev-a", "alice", "S1"); err != nil { // the Accounting Start
		t.Fatal(err)
	}
	if _, changed := ts.pool.SetHealth("gw1", HealthDown); !changed {
		t.Fatal("gw1 down: no change")
	}
	out := login("alice", "alicepw", "dev-a")
	if !strings.Contains(out, "Received Access-Accept") || !strings.Contains(out, "Framed-IP-Address = 10.20.0.1") {
		t.Fatalf("re-authentication while gw1 is down: want Access-Accept with 10.20.0.1:\n%s", out)
	}
	a, ok := ts.pool.ByDevice("dev-a")
	if !ok || a.IP != ip || a.Gateway != "gw1" || !a.Bound || a.Session != "S1" {
		t.Fatalf("assignment after the re-authentication %+v, want 10.20.0.1 bound to S1", a)
	}
	if out := login("bob", "bobpw", "dev-b"); !strings.Contains(out, "Framed-IP-Address = 10.21.0.1") {
		t.Fatalf("new device while gw1 is down: want gw2's first address:\n%s", out)
	}
}
