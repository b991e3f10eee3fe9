package demo_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"samepath/ctl/session"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

// TestGatewayRestart: a gateway restarted under a logged-in subscriber
// (empty T3 copy, empty T8/T9, empty NAT table) gets its sessions and
// authorization tables back from samepath-control's read-backs, without
// any new RADIUS exchange: the subscriber is served again, and a service
// it has not ordered is refused again.
func TestGatewayRestart(t *testing.T) {
	ctx, sys := startWithControl(t)
	p := sys.TB.Plan
	ip2, err := sys.Login(ctx, "mob2") // the device that has not ordered group B
	if err != nil {
		t.Fatal(err)
	}
	// The gateway owning mob2's address (its substitute holds the
	// session too, and would serve mob2 while it restarts: R-GW-9).
	g := 0
	fmt.Sscanf(controlSession(ctx, t, sys, ip2).Gateway, "gw%d", &g)
	if g < 1 || g > len(sys.GWs) {
		t.Fatalf("mob2's session (%s) on no gateway", ip2)
	}
	m2, err := p.Mobile("mob2")
	if err != nil {
		t.Fatal(err)
	}
	webA := netip.AddrPortFrom(p.Groups[0].VIPv4, fig2.HTTPPort)
	webB := netip.AddrPortFrom(p.Groups[1].VIPv4, fig2.HTTPPort)
	if err := get(ctx, m2, webA); err != nil {
		t.Fatalf("before the restart: %v", err)
	}
	if err := get(ctx, m2, webB); err == nil {
		t.Fatal("before the restart: mob2 served by group B (video not ordered)")
	}

	if err := sys.RestartGateway(ctx, g); err != nil {
		t.Fatal(err)
	}
	c := sys.GWs[g-1]
	deadline := time.Now().Add(15 * time.Second)
	for {
		ss, err := c.GWSessions(ctx)
		held := false
		if err == nil {
			for _, s := range ss.Sessions {
				held = held || (s.IP == ip2.String() && s.State == "active" && s.DeviceID != "")
			}
		}
		az, aerr := c.Authz(ctx)
		if held && aerr == nil && len(az.T9) > 0 && len(az.T8) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gw%d after its restart: sessions %+v (%v), authz %+v (%v)", g, ss, err, az, aerr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := get(ctx, m2, webA); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if err := get(ctx, m2, webB); err == nil {
		t.Fatal("after the restart: mob2 served by group B (video not ordered)")
	}
}

// get fetches / from rep inside mobile m's namespace.
func get(ctx context.Context, m *fig2.Mobile, rep netip.AddrPort) error {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return topo.Dial(ctx, m.NS, network, addr)
		}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+rep.String()+"/", nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// TestTerminate: an operator's `samepathctl sessions terminate` closes the
// session in samepath-control, at its gateway, and at the NAS it runs on:
// samepath-control sends that NAS emulator a Disconnect-Request (RFC
// 5176) over the management network, which ends the session there and
// acknowledges; the subscriber's traffic is then dropped.
func TestTerminate(t *testing.T) {
	ctx, sys := startWithControl(t)
	ip, err := sys.Login(ctx, "mob1")
	if err != nil {
		t.Fatal(err)
	}
	var ss []session.Session
	if err := sys.Control.Do(ctx, http.MethodGet, "/v1/sessions", nil, &ss); err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, s := range ss {
		if s.IP == ip {
			id = s.ID
		}
	}
	if id == "" {
		t.Fatalf("no session on %s in %+v", ip, ss)
	}
	p := sys.TB.Plan
	m1, _ := p.Mobile("mob1")
	webA := netip.AddrPortFrom(p.Groups[0].VIPv4, fig2.HTTPPort)
	if err := get(ctx, m1, webA); err != nil {
		t.Fatalf("before terminate: %v", err)
	}
	if _, err := sys.Samepathctl(ctx, "sessions", "terminate", id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		acked := false
		for _, st := range sys.Steps() {
			acked = acked || (st.Mobile == "mob1" && st.Request == "Disconnect-Request" && st.Result == id+" ACK")
		}
		held := false
		for _, c := range sys.GWs {
			gs, err := c.GWSessions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range gs.Sessions {
				held = held || s.IP == ip.String()
			}
		}
		if acked && !held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after terminate: NAS acknowledged %v, a gateway still holds the session %v; steps %+v", acked, held, sys.Steps())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := get(ctx, m1, webA); err == nil {
		t.Fatal("mob1 still served after its session was terminated")
	}
}

// startWithControl starts the system with samepath-control (no mobile
// logged in yet) for a test of two minutes at most; the test's end tears
// it down.
func startWithControl(t *testing.T) (context.Context, *demo.System) {
	t.Helper()
	privtest.Require(t)
	bin := buildBinaries(t)
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	var out strings.Builder
	sys, err := demo.Start(ctx, demo.Options{Samepathd: bin, StartControl: true, ServeArgv: []string{exe, "serve"}, Out: &out})
	if err != nil {
		t.Log("\n" + out.String())
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	return ctx, sys
}
