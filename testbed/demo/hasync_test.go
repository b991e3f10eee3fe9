package demo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
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
//
// Accounting after all this (checkAcct): the mobile logs out, which
// ends its flows on both gateways with final records; for each download
// each gateway that carried it wrote one final record under the flow's
// id, and the down payload summed over both is what the client
// received, short by at most what the crashed gw1 carried after its
// last checkpoint.
func TestTakeoverLiveFlows(t *testing.T) {
	const (
		rate, size   = 8 << 20, 100 << 20 // 12.5 s
		rate2, size2 = 4 << 20, 40 << 20  // 10 s
	)
	// The accounting log's sync interval (its checkpoint period) is the
	// state sync's batch (hakill.go, 50 ms).
	acc := demo.GWAccounting{Log: filepath.Join(t.TempDir(), "gw%d.acct"), SyncInterval: syncBatch}
	ctx, sys := startControlWith(t, demo.Options{GWSync: true, GWAccounting: acc})
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
	waitFor(t, "samepath-control's health shows gw2's takeover", 5*time.Second, func() bool {
		s := healthSync(ctx, sys, "gw2")
		return s != nil && s.Takeovers == 1 && s.Held >= 1 && len(s.Peers) == 1 && s.Peers[0].TakenOver
	})
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
	waitFor(t, "samepath-control's health shows gw1 synced and gw2's failback", 5*time.Second, func() bool {
		s1, s2 := healthSync(ctx, sys, "gw1"), healthSync(ctx, sys, "gw2")
		return s1 != nil && s1.Ready && s2 != nil && s2.Failbacks == 1 && !s2.Peers[0].TakenOver
	})

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
	// What each gateway holds of the mobile before the logout (for a
	// failing accounting check).
	for i, c := range []*api.Client{gw1, gw2} {
		var fl []string
		for _, f := range mobileFlows(ctx, t, c, ip) {
			fl = append(fl, fmt.Sprintf("%s->%s via %s session %q %s up %d/%d down %d/%d", f.Mobile, f.Dest, f.Gateway, f.Session, f.State, f.UpPackets, f.UpBytes, f.DownPackets, f.DownBytes))
		}
		var st api.GWSync
		c.Do(ctx, http.MethodGet, "/v1/sync", nil, &st)
		t.Logf("gw%d before the logout: sync %+v; flows of %s:\n  %s", i+1, st, ip, strings.Join(fl, "\n  "))
	}
	checkAcct(ctx, t, sys, acc, mob.Name, []acctWant{
		{fmt.Sprintf("/bytes/%d", size), size, rate, []string{"gw1", "gw2"}},
		// Opened on gw2's own key address: after the failback its up
		// packets go through gw1, its down packets still through gw2.
		{fmt.Sprintf("/bytes/%d", size2), size2, rate2, []string{"gw2", "gw1"}},
	})
}

// syncBatch is the demo's gw.sync.batch (hakill.go).
const syncBatch = 50 * time.Millisecond

// acctWant is one download of checkAcct: its URL, body size, the rate
// the server sent it at, and the gateways that carried it.
type acctWant struct {
	url        string
	size, rate int64
	carriers   []string
}

// checkAcct logs mobile out, which ends its flows on every gateway
// holding them (final records, cause session-end), waits for each
// download's final records on its carriers and checks them
// (demo.FlowAcct.Check). The bound: every byte the client received was
// carried by one gateway, and each gateway counts from zero what it
// carried, so the sum is exact but for (below) what the SIGKILLed
// gateway carried after its last checkpoint reached the checkpoint file
// (at most two sync batches at the download's rate: the checkpoint
// sweep's period and the log writer's, both syncBatch), and (above) the
// HTTP response header (the client's payload too, not in size: 1 KiB
// allowed) and segments the server resent after the crash because the
// mobile's ACKs died with gw1 (bounded the same way: what was in flight
// in the last batch). A gateway counting its peer's part too, or a
// record counted twice, is megabytes over.
func checkAcct(ctx context.Context, t *testing.T, sys *demo.System, acc demo.GWAccounting, mobile string, wants []acctWant) {
	t.Helper()
	if err := sys.Logout(ctx, mobile); err != nil {
		t.Fatal(err)
	}
	logs := map[string]string{"gw1": acc.Path(1), "gw2": acc.Path(2)}
	var last error
	deadline := time.Now().Add(10 * time.Second)
	for {
		last = nil
		flows, err := demo.ReadFlowAcct(logs)
		if err != nil {
			t.Fatal(err)
		}
		var report, dump []string
		for _, w := range wants {
			f, err := demo.FindFlow(flows, w.url)
			if err == nil {
				win := uint64(2 * w.rate * int64(syncBatch) / int64(time.Second))
				err = f.Check(w.carriers, uint64(w.size), win, win+1<<10)
				report = append(report, fmt.Sprintf("%s flow %s: %s (client %d)", w.url, f.Flow, f.Summary(), w.size))
				dump = append(dump, w.url+":\n"+f.Dump())
			}
			if err != nil {
				last = errors.Join(last, fmt.Errorf("%s: %w", w.url, err))
			}
		}
		if last == nil {
			t.Logf("accounting: %s", strings.Join(report, "; "))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("accounting across the takeover: %v\n%s", last, strings.Join(dump, ""))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// healthSync is gateway gw's state sync in samepath-control's GET
// /v1/health (nil when not there).
func healthSync(ctx context.Context, sys *demo.System, gw string) *api.GWSync {
	var h struct {
		Targets []struct {
			Name string      `json:"name"`
			Sync *api.GWSync `json:"sync"`
		} `json:"targets"`
	}
	if sys.Control.Do(ctx, http.MethodGet, "/v1/health", nil, &h) != nil {
		return nil
	}
	for _, t := range h.Targets {
		if t.Name == gw {
			return t.Sync
		}
	}
	return nil
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
