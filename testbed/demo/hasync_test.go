package demo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/ctl/session"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/mobility"
)

// TestTakeoverLiveFlows (issue 17, parts 2-3; R-GW-9): with the
// gateways' T5 state sync on, gw1 is SIGKILLed while it carries a
// 100 MiB NAT download of one of its subscribers. gw2 holds the flow's
// binding, takes gw1's key address over when the flow's packets arrive,
// and carries it on with the same key port and server: the body's
// SHA-256 matches, no RST reaches the mobile, and the longest stall in
// received bytes is under 2 s. New connections of the subscriber are
// served within one health interval of the LBs' switch; it
// re-authenticates and keeps its address. A second download starts on
// gw2 during the outage; gw1 returns, receives the bindings of its
// range (the second download's too) before it is marked up, takes its
// address back, and the second download continues through it with no
// reset; new connections go to gw1 again.
func TestTakeoverLiveFlows(t *testing.T) {
	const (
		rate, size   = 8 << 20, 100 << 20 // 12.5 s
		rate2, size2 = 4 << 20, 40 << 20  // 10 s
	)
	ctx, sys := startControlWith(t, demo.Options{GWSync: true})
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
	var mob *fig2.Mobile
	for i := range p.Mobiles {
		if victim.Device == "IMEI-"+p.Mobiles[i].Name {
			mob = &p.Mobiles[i]
		}
	}
	if mob == nil {
		t.Fatalf("no mobile on gw1: %+v", ss)
	}
	gw1, gw2 := sys.GWs[0], sys.GWs[1]
	waitHeld(ctx, t, gw2, victim.ID, victim.IP, 5*time.Second)
	rst, err := mobility.NewRSTCounter(mob.NS)
	if err != nil {
		t.Fatal(err)
	}
	web := netip.AddrPortFrom(p.Groups[0].VIPv4, fig2.HTTPPort)

	var got atomic.Int64
	gap := watchGap(ctx, &got)
	done := make(chan error, 1)
	go func() {
		done <- fetchSHA256(ctx, mob, fmt.Sprintf("http://%s/bytes/%d?rate=%d", web, size, rate), size, &got)
	}()
	waitFor(t, "2 MiB of the download", 10*time.Second, func() bool { return got.Load() > 2<<20 })
	waitFor(t, "gw2 holds gw1's flow", 5*time.Second, func() bool { return syncStatus(ctx, gw2).Held >= 1 })

	if err := sys.KillGateway(1); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	switched := waitLBsDown(ctx, t, sys, p.Gateways[0].LAN1.MAC.String(), killed)
	t.Logf("gw1 killed at %d bytes; the LBs switched %v later", got.Load(), switched.Sub(killed))
	bound := demo.HealthInterval + time.Second
	for {
		actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := get(actx, mob, web)
		cancel()
		if err == nil {
			break
		}
		if time.Since(switched) > bound {
			t.Fatalf("no new connection through gw2 %v after the switch: %v", time.Since(switched), err)
		}
	}
	t.Logf("new connections served %v after the switch", time.Since(switched))
	st := syncStatus(ctx, gw2)
	if st.Takeovers != 1 {
		t.Fatalf("gw2 sync after the kill: %+v, want one takeover", st)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("download through the takeover: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("download through the takeover stalled at %d bytes", got.Load())
	}
	t.Logf("download 1 complete through gw2, longest stall %v", gap())
	// Re-authentication (a new session of the same device) after the
	// download, since the old session's end removes its flows.
	ip, err := sys.Login(ctx, mob.Name)
	if err != nil || ip != victim.IP {
		t.Fatalf("re-authentication while gw1 is dead: %v %v, want %s kept", ip, err, victim.IP)
	}
	for i := range 3 {
		if err := get(ctx, mob, web); err != nil {
			t.Fatalf("after the re-authentication, connection %d: %v", i+1, err)
		}
	}

	var got2 atomic.Int64
	gap2 := watchGap(ctx, &got2)
	done2 := make(chan error, 1)
	go func() {
		done2 <- fetchSHA256(ctx, mob, fmt.Sprintf("http://%s/bytes/%d?rate=%d", web, size2, rate2), size2, &got2)
	}()
	waitFor(t, "1 MiB of the second download", 10*time.Second, func() bool { return got2.Load() > 1<<20 })

	if err := sys.StartGateway(ctx, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "gw1 synced", 10*time.Second, func() bool { return syncStatus(ctx, gw1).Ready })
	waitFor(t, "gw2 gave gw1's address back", 10*time.Second, func() bool { return syncStatus(ctx, gw2).Failbacks == 1 })
	waitLBsUp(ctx, t, sys, p.Gateways[0].LAN1.MAC.String())
	t.Logf("gw1 back: %+v", syncStatus(ctx, gw1))

	select {
	case err := <-done2:
		if err != nil {
			t.Fatalf("download 2 across the failback: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("download 2 stalled at %d bytes", got2.Load())
	}
	t.Logf("longest stall: download 1 %v, download 2 %v", gap(), gap2())
	if g := gap(); g >= 2*time.Second {
		t.Errorf("download 1: longest stall %v, want under 2 s", g)
	}
	if g := gap2(); g >= 2*time.Second {
		t.Errorf("download 2: longest stall %v, want under 2 s", g)
	}
	if in, _, err := rst.Read(); err != nil || in != 0 {
		t.Fatalf("RSTs reaching the mobile: %d (%v)", in, err)
	}
	// New flows go to gw1 again: a connection's record is on gw1's key
	// address.
	before := mobileFlows(ctx, t, gw1, ip)
	if err := get(ctx, mob, web); err != nil {
		t.Fatal(err)
	}
	after := mobileFlows(ctx, t, gw1, ip)
	fresh := 0
	for k, f := range after {
		if _, ok := before[k]; !ok && strings.HasPrefix(f.Gateway, demo.NATAddr(1).String()+":") && f.DownPackets > 0 {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("after failback, gw1 has %d new flows of %s on its address, want 1 (before %v, after %v)", fresh, ip, before, after)
	}
}

// syncStatus is a gateway's GET /v1/sync (zero when it does not answer).
func syncStatus(ctx context.Context, c *api.Client) (st struct {
	Ready     bool `json:"ready"`
	Takeovers int  `json:"takeovers"`
	Failbacks int  `json:"failbacks"`
	Held      int  `json:"held"`
	Installed int  `json:"installed"`
}) {
	c.Do(ctx, http.MethodGet, "/v1/sync", nil, &st)
	return st
}

func mobileFlows(ctx context.Context, t *testing.T, c *api.Client, ip netip.Addr) map[string]api.Flow {
	t.Helper()
	fs, err := c.Flows(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]api.Flow{}
	for _, f := range fs.Flows {
		if strings.HasPrefix(f.Mobile, ip.String()+":") {
			m[f.Mobile+" "+f.Dest] = f
		}
	}
	return m
}

// watchGap samples got every 10 ms until ctx ends and returns a func
// giving the longest time it stood still (after its first byte).
func watchGap(ctx context.Context, got *atomic.Int64) func() time.Duration {
	var longest atomic.Int64
	go func() {
		last, at := int64(0), time.Now()
		for ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			n := got.Load()
			now := time.Now()
			if n != last {
				if last != 0 {
					if d := now.Sub(at); int64(d) > longest.Load() {
						longest.Store(int64(d))
					}
				}
				last, at = n, now
			}
		}
	}()
	return func() time.Duration { return time.Duration(longest.Load()) }
}

func waitFor(t *testing.T, what string, within time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLBsUp waits until every LB's T4 says the gateway with mac is up.
func waitLBsUp(ctx context.Context, t *testing.T, sys *demo.System, mac string) {
	t.Helper()
	waitFor(t, "LBs steer to "+mac+" again", 15*time.Second, func() bool {
		for _, lb := range sys.LBs {
			t4, err := lb.T4(ctx)
			if err != nil {
				return false
			}
			for _, r := range t4.Rows {
				for _, g := range r.Gateways {
					if strings.EqualFold(g.MAC, mac) && g.State != "up" {
						return false
					}
				}
			}
		}
		return true
	})
}

// TestHAKill runs make demo's gateway crash (System.HAKill): gw1 killed
// under a download that completes through gw2 with the right SHA-256
// and no reset, then gw1 returns synced and gw2 gives its address back.
func TestHAKill(t *testing.T) {
	ctx, sys := startControlWith(t, demo.Options{GWSync: true})
	for _, m := range sys.TB.Plan.Mobiles {
		if _, err := sys.Login(ctx, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	res, err := sys.HAKill(ctx, demo.Options{Out: &out}, 8<<20, 4<<20)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !res.ChecksumOK || res.RSTs != 0 || res.Takeovers != 1 || res.Failbacks != 1 || res.KilledAt == 0 {
		t.Fatalf("hakill: %+v", res)
	}
}
