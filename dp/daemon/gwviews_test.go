package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"samepath/ctl/api"
	"samepath/dp/dptest"
	"samepath/dp/header"
)

var rigWeb = netip.MustParseAddr("10.30.0.1")

// syn sends a TCP SYN from src:sport to the web service through lb and
// reports whether the gateway forwarded it.
func (r *gwRig) syn(lb [6]byte, src netip.Addr, sport uint16) bool {
	r.t.Helper()
	f := dptest.Frame().Eth(lb, rigLanMAC).IPv4(src, rigWeb).TCP(sport, 80).Flags(header.FlagSYN).Bytes()
	if !r.ports[0].Inject(f) {
		r.t.Fatal("inject failed")
	}
	r.w.Poll()
	return len(r.ports[1].TakeAll()) == 1
}

func TestGWDistAndLBCacheViews(t *testing.T) {
	r := newGWRig(t)
	ctx := context.Background()
	lb2 := dptest.MAC("02:00:00:00:01:03")
	// s1 starts behind lb2 (the event names it), s2 without an LB.
	for _, ev := range []api.SessionEvent{
		{Event: api.EventStart, SessionID: "s1", DeviceID: "IMEI-1", IP: addrA.String(), Seq: 1, LBMAC: "02:00:00:00:01:03"},
		{Event: api.EventStart, SessionID: "s2", DeviceID: "IMEI-1", IP: addrB.String(), Seq: 1},
	} {
		if err := r.c.SessionEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	r.w.Poll()

	// T12 before any packet: s1's entry by event, s2 has none.
	l, err := r.c.LBCache(ctx, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	want := api.LBCache{Total: 1, Uncached: 1, Entries: []api.LBCacheEntry{
		{Mobile: addrA.String(), LBMAC: "02:00:00:00:01:03", Learned: api.LearnedEvent, Session: "s1"}}}
	if d := cmp.Diff(want, l, cmpopts.IgnoreFields(api.LBCacheEntry{}, "AgeMs")); d != "" {
		t.Errorf("lbcache after the events (-want +got):\n%s", d)
	}

	// s2 opens two flows through rigLBMAC, s1 one through lb2.
	if !r.syn(rigLBMAC, addrB, 40000) || !r.syn(rigLBMAC, addrB, 40001) || !r.syn(lb2, addrA, 40002) {
		t.Fatal("a SYN was not forwarded")
	}
	l, err = r.c.LBCache(ctx, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	want = api.LBCache{Total: 2, Entries: []api.LBCacheEntry{
		{Mobile: addrA.String(), LBMAC: "02:00:00:00:01:03", Learned: api.LearnedEvent, Session: "s1", Flows: 1},
		{Mobile: addrB.String(), LBMAC: "02:00:00:00:01:02", Learned: api.LearnedPacket, Session: "s2", Flows: 2}}}
	if d := cmp.Diff(want, l, cmpopts.IgnoreFields(api.LBCacheEntry{}, "AgeMs")); d != "" {
		t.Errorf("lbcache after the flows (-want +got):\n%s", d)
	}
	if l, err = r.c.LBCache(ctx, 100, addrB.String()); err != nil || l.Total != 1 || l.Entries[0].Mobile != addrB.String() {
		t.Errorf("lbcache -mobile %s: %+v, %v", addrB, l, err)
	}

	// T7: one connection-unit record per session, with its open flows.
	d, err := r.c.Dist(ctx, 100, "", "")
	if err != nil {
		t.Fatal(err)
	}
	wantD := api.Dist{Stats: api.DistStats{Records: 2, Recorded: 3}, Total: 2, Records: []api.DistRecord{
		{Session: "s1", Service: "web", Type: "connection", Server: "10.20.0.11:8080", Flows: 1},
		{Session: "s2", Service: "web", Type: "connection", Server: "10.20.0.11:8080", Flows: 2}}}
	if df := cmp.Diff(wantD, d, cmpopts.IgnoreFields(api.DistRecord{}, "AgeSec")); df != "" {
		t.Errorf("dist (-want +got):\n%s", df)
	}
	for _, rec := range d.Records {
		if rec.AgeSec < 0 {
			t.Errorf("record %+v: age not known (the worker stamps records from its first round on)", rec)
		}
	}
	if d, err = r.c.Dist(ctx, 1, "s2", ""); err != nil || d.Total != 1 || len(d.Records) != 1 || d.Records[0].Session != "s2" {
		t.Errorf("dist -session s2 -limit 1: %+v, %v", d, err)
	}
	if d, err = r.c.Dist(ctx, 0, "", ""); err != nil || d.Total != 2 || len(d.Records) != 0 {
		t.Errorf("dist -limit 0: %+v, %v", d, err)
	}

	// The session's end takes its T7 record and its T12 entry.
	if err := r.c.SessionEvent(ctx, api.SessionEvent{Event: api.EventEnd, SessionID: "s1", DeviceID: "IMEI-1", IP: addrA.String(), Seq: 2}); err != nil {
		t.Fatal(err)
	}
	r.w.Poll()
	if d, err = r.c.Dist(ctx, 100, "", ""); err != nil || d.Total != 1 || d.Records[0].Session != "s2" {
		t.Errorf("dist after s1's end: %+v, %v", d, err)
	}
	if l, err = r.c.LBCache(ctx, 100, addrA.String()); err != nil || l.Total != 0 {
		t.Errorf("lbcache of %s after s1's end: %+v, %v", addrA, l, err)
	}

	for _, path := range []string{"/v1/dist?limit=-1", "/v1/lbcache?limit=x", "/v1/lbcache?mobile=nope"} {
		var he *api.HTTPError
		err := r.c.Do(ctx, http.MethodGet, path, nil, nil)
		if !errors.As(err, &he) || he.Code != http.StatusBadRequest {
			t.Errorf("GET %s: %v, want 400", path, err)
		}
	}
}

// TestGWViewsWhileForwarding reads T7 and T12 while the worker creates
// flows on its own goroutine: run with -race.
func TestGWViewsWhileForwarding(t *testing.T) {
	r := newGWRig(t)
	ctx := context.Background()
	r.event(api.EventStart, "s1", addrA, 1)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for sport := uint16(20000); ; sport++ {
			select {
			case <-stop:
				return
			default:
			}
			lb := rigLBMAC
			if sport%2 == 0 {
				lb = dptest.MAC("02:00:00:00:01:03") // moves the mobile each flow
			}
			f := dptest.Frame().Eth(lb, rigLanMAC).IPv4(addrA, rigWeb).TCP(sport, 80).Flags(header.FlagSYN).Bytes()
			r.ports[0].Inject(f)
			r.w.Poll()
			r.ports[1].TakeAll()
			if sport == 20000+900 {
				sport = 20000 // stay under the table's capacity
			}
		}
	}()
	for range 50 {
		if _, err := r.c.Dist(ctx, 10, "", ""); err != nil {
			t.Error(err)
		}
		if _, err := r.c.LBCache(ctx, 10, ""); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}
