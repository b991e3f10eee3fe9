package demo_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/session"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
)

// TestTakeover (issue 17, part 1; R-GW-9, R-LB-1, R-AAA-2): the
// substitute of a gateway's T4 row holds that range's sessions before
// anything fails (samepath-control pushes them always). The gateway is
// SIGKILLed; within one health interval of the LBs steering its range to
// the substitute, new connections of a subscriber of that range succeed
// through the substitute, every one of them; the subscriber
// re-authenticates while the gateway is still dead, keeps its address and
// is served.
func TestTakeover(t *testing.T) {
	ctx, sys := startWithControl(t)
	p := sys.TB.Plan
	for _, m := range p.Mobiles {
		if _, err := sys.Login(ctx, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	var ss []session.Session
	if err := sys.Control.Do(ctx, http.MethodGet, "/v1/sessions", nil, &ss); err != nil {
		t.Fatal(err)
	}
	var victim session.Session
	for _, s := range ss {
		if s.Gateway == "gw1" {
			victim = s
		}
	}
	if victim.ID == "" {
		t.Fatalf("no session on gw1: %+v", ss)
	}
	var mob *fig2.Mobile
	for i := range p.Mobiles {
		if victim.Device == "IMEI-"+p.Mobiles[i].Name {
			mob = &p.Mobiles[i]
		}
	}
	if mob == nil {
		t.Fatalf("no mobile has device %s", victim.Device)
	}
	sub := sys.Substitute(1)
	subC := sys.GWs[sub-1]
	// Pushed always: the substitute holds the session before gw1 fails.
	waitHeld(ctx, t, subC, victim.ID, victim.IP, 5*time.Second)
	web := netip.AddrPortFrom(p.Groups[0].VIPv4, fig2.HTTPPort)
	if err := get(ctx, mob, web); err != nil {
		t.Fatalf("%s (%s) before the kill: %v", mob.Name, victim.IP, err)
	}
	var before api.Counters
	if before, _ = subC.Counters(ctx); len(before.Queues) == 0 {
		t.Fatalf("gw%d counters: none", sub)
	}

	if err := sys.KillGateway(1); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The LBs switch when samepath-control's monitor has seen fall
	// probes fail and pushed the state; every LB must say so.
	switched := waitLBsDown(ctx, t, sys, p.Gateways[0].LAN1.MAC.String(), killed)
	t.Logf("LBs steer gw1's range to gw%d %v after the kill", sub, switched.Sub(killed))
	// New connections succeed within one health interval of the switch
	// (plus a second for a loaded machine), through the substitute.
	bound := demo.HealthInterval + time.Second
	var first time.Time
	tries := 0
	for first.IsZero() {
		tries++
		actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := get(actx, mob, web)
		cancel()
		if err == nil {
			first = time.Now()
			break
		}
		if time.Since(switched) > bound {
			t.Fatalf("%s: no new connection through gw%d %v after the LBs switched (bound %v; %d tries, last %v)", mob.Name, sub, time.Since(switched), bound, tries, err)
		}
	}
	t.Logf("first new connection through gw%d %v after the kill, %v after the switch (%d tries)", sub, first.Sub(killed), first.Sub(switched), tries)
	const n = 20
	for i := 0; i < n; i++ {
		if err := get(ctx, mob, web); err != nil {
			t.Fatalf("new connection %d of %d while gw1 is dead: %v", i+1, n, err)
		}
	}
	after, err := subC.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := drop(after, "no_session") - drop(before, "no_session"); d != 0 {
		t.Fatalf("gw%d dropped %d packets as no_session while serving gw1's range", sub, d)
	}

	// Re-authentication while gw1 is dead: the same address, a new
	// session at the substitute, served.
	ip, err := sys.Login(ctx, mob.Name)
	if err != nil {
		t.Fatalf("re-authentication while gw1 is dead: %v", err)
	}
	if ip != victim.IP {
		t.Fatalf("re-authentication while gw1 is dead gave %s, want %s kept", ip, victim.IP)
	}
	s := controlSession(ctx, t, sys, ip)
	if s.ID == victim.ID || s.State != session.Act {
		t.Fatalf("after the re-authentication: control session %+v, want a new one, active", s)
	}
	waitHeld(ctx, t, subC, s.ID, ip, 5*time.Second)
	for i := 0; i < 5; i++ {
		if err := get(ctx, mob, web); err != nil {
			t.Fatalf("after the re-authentication, connection %d: %v", i+1, err)
		}
	}
	var gw control.Counters
	if err := sys.Control.Do(ctx, http.MethodGet, "/v1/counters", nil, &gw); err == nil {
		t.Logf("control: outbox %+v, t4 view %+v", gw.Outbox, gw.T4)
	}
}

// waitHeld waits until gateway c's T3 copy holds session id on ip, active.
func waitHeld(ctx context.Context, t *testing.T, c *api.Client, id string, ip netip.Addr, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ss, err := c.GWSessions(ctx)
		if err == nil {
			for _, s := range ss.Sessions {
				if s.SessionID == id && s.IP == ip.String() && s.State == "active" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway does not hold session %s on %s within %v: %+v (%v)", id, ip, within, ss, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLBsDown waits until every LB's T4 says the gateway with mac is
// down and returns when the last one did.
func waitLBsDown(ctx context.Context, t *testing.T, sys *demo.System, mac string, since time.Time) time.Time {
	t.Helper()
	for {
		down := 0
		for _, lb := range sys.LBs {
			t4, err := lb.T4(ctx)
			if err != nil {
				continue
			}
			all := true
			for _, r := range t4.Rows {
				for _, g := range r.Gateways {
					if strings.EqualFold(g.MAC, mac) && g.State != "down" {
						all = false
					}
				}
			}
			if all {
				down++
			}
		}
		if down == len(sys.LBs) {
			return time.Now()
		}
		if time.Since(since) > 10*time.Second {
			t.Fatalf("LBs still steer to %s %v after the kill", mac, time.Since(since))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drop is a drop reason's count over every queue.
func drop(c api.Counters, reason string) uint64 {
	var n uint64
	for _, q := range c.Queues {
		n += q.Drops[reason]
	}
	return n
}
