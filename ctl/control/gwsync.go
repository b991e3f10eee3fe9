package control

import (
	"context"
	"errors"
	"net/http"

	"samepath/ctl/api"
	"samepath/ctl/health"
)

// The gateways' state sync (issue 17) as the health monitor sees it:
// each round it reads every gateway's GET /v1/sync, so GET /v1/health
// (samepathctl health) shows per gateway its sync readiness, lag,
// bindings held for peers, takeovers and failbacks; each takeover and
// failback it learns of is logged here.

// syncClient reads the gateways' sync state; the monitor's context
// bounds each read.
var syncClient = &http.Client{}

// syncProbe reads gateway t's sync state with the gateway token; nil
// for a gateway without gw.sync (404).
func (c *Control) syncProbe(ctx context.Context, t health.Target) (*api.GWSync, error) {
	g, ok := c.Pool.Gateway(t.Name)
	if !ok || g.API == "" {
		return nil, nil
	}
	cl := api.NewClient(g.API)
	cl.Token, cl.HTTP = c.gwToken, syncClient
	st, err := cl.GWSync(ctx)
	var he *api.HTTPError
	if errors.As(err, &he) && he.Code == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// syncEvent logs a takeover or failback the monitor saw.
func (c *Control) syncEvent(e health.SyncEvent) {
	switch e.Kind {
	case health.EventTakeover:
		c.log.Warn("gateway took over peers' key addresses and flows", "gateway", e.Gateway, "peers", e.Peers, "takeovers", e.Count, "total", e.Total)
	case health.EventFailback:
		c.log.Info("gateway gave key addresses and flows back to returned peers", "gateway", e.Gateway, "peers", e.Peers, "failbacks", e.Count, "total", e.Total)
	}
}
