package control_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/ctl/control"
)

// GET /v1/lbs/gateway-states answers the states control pushes to the
// LBs: what a starting LB reads before it steers. An administrative change
// shows there as soon as it is answered.
func TestLBGatewayStates(t *testing.T) {
	cfg := testConfig(t.TempDir(), nil, nil, nil)
	cfg.Health.Disabled = true // no API to probe: control states the admin state at once
	c := startControl(t, cfg)
	var got []api.GatewayState
	eventually(t, "both gateways stated", func() bool {
		getJSON(t, c, "/v1/lbs/gateway-states", &got)
		return len(got) == 2
	})
	want := []api.GatewayState{{MAC: mac1, State: api.StateUp}, {MAC: mac2, State: api.StateUp}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("states at start (-want +got):\n%s", diff)
	}
	cl := api.NewClient(c.APIAddr().String())
	if err := cl.Do(context.Background(), http.MethodPut, "/v1/gateways/gw1/admin", control.AdminState{Admin: "down"}, nil); err != nil {
		t.Fatal(err)
	}
	getJSON(t, c, "/v1/lbs/gateway-states", &got)
	want[0].State = api.StateDown
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("states after gw1 admin down (-want +got):\n%s", diff)
	}
}
