package demo_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/session"
	"samepath/testbed/demo"
)

// TestGatewayDownThenBack (issue 11, defect 2): a gateway is down long
// enough for samepath-control's retry back-off to grow past ten seconds
// while the session events for it (the NAS's interims) pile up in the
// outbox; once it is back, every session samepath-control holds for it is
// in its T3 copy within a health interval of its /healthz answering (plus
// one read-back interval and a second of slack for a loaded machine),
// not at the end of the back-off.
func TestGatewayDownThenBack(t *testing.T) {
	ctx, sys := startWithControl(t)
	for _, m := range sys.TB.Plan.Mobiles {
		if _, err := sys.Login(ctx, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	var ss []session.Session
	if err := sys.Control.Do(ctx, http.MethodGet, "/v1/sessions", nil, &ss); err != nil {
		t.Fatal(err)
	}
	g := 0
	fmt.Sscanf(ss[0].Gateway, "gw%d", &g)
	if g < 1 || g > len(sys.GWs) {
		t.Fatalf("session %+v on an unknown gateway", ss[0])
	}
	name := ss[0].Gateway
	if err := sys.StopGateway(g); err != nil {
		t.Fatal(err)
	}
	// Down this long, the back-off (100 ms doubling) is 12.8 s by the
	// time the gateway is back: a delivery waiting for it would come
	// seconds after the bound below.
	const down = 15 * time.Second
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(down):
	}
	var before control.Counters
	if err := sys.Control.Do(ctx, http.MethodGet, "/v1/counters", nil, &before); err != nil {
		t.Fatal(err)
	}
	if before.Outbox.Pending == 0 || before.Outbox.Failures == 0 {
		t.Fatalf("outbox while %s is down: %+v, want events waiting", name, before.Outbox)
	}
	gw, err := controlGateway(ctx, sys, name)
	if err != nil || gw.Health != aaa.HealthDown {
		t.Fatalf("%s while down: %+v %v", name, gw, err)
	}
	if err := sys.StartGateway(ctx, g); err != nil {
		t.Fatal(err)
	}
	c := sys.GWs[g-1]
	for c.Do(ctx, http.MethodGet, "/healthz", nil, nil) != nil {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	up := time.Now()
	bound := demo.HealthInterval + demo.SessionResync + time.Second
	for {
		missing, err := missingSessions(ctx, sys, c, name)
		if err == nil && len(missing) == 0 {
			break
		}
		if time.Since(up) > bound {
			var cs control.Counters
			sys.Control.Do(ctx, http.MethodGet, "/v1/counters", nil, &cs)
			t.Fatalf("%s %v after its /healthz answered (bound %v): missing %v (%v); outbox %+v", name, time.Since(up), bound, missing, err, cs.Outbox)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s held every session %v after its /healthz answered (bound %v); outbox before: %+v", name, time.Since(up), bound, before.Outbox)
}

// missingSessions lists the sessions samepath-control holds for gateway
// name that c's T3 copy lacks or holds in another state.
func missingSessions(ctx context.Context, sys *demo.System, c *api.Client, name string) ([]string, error) {
	var ss []session.Session
	if err := sys.Control.Do(ctx, http.MethodGet, "/v1/sessions", nil, &ss); err != nil {
		return nil, err
	}
	held, err := c.GWSessions(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]string{}
	for _, h := range held.Sessions {
		have[h.SessionID] = h.State + " " + h.IP + " " + h.DeviceID
	}
	var missing []string
	for _, s := range ss {
		want := map[session.State]string{session.Act: "active", session.Dormant: "dormant"}[s.State]
		if s.Gateway != name || want == "" {
			continue
		}
		if have[s.ID] != want+" "+s.IP.String()+" "+s.Device {
			missing = append(missing, s.ID)
		}
	}
	return missing, nil
}

func controlGateway(ctx context.Context, sys *demo.System, name string) (aaa.Gateway, error) {
	var g aaa.Gateway
	err := sys.Control.Do(ctx, http.MethodGet, "/v1/gateways/"+name, nil, &g)
	return g, err
}
