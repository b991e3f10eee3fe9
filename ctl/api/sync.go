package api

import (
	"context"
	"net/http"
)

// GWSync is a gateway's GET /v1/sync: its T5 state sync with its peer
// gateways and the key-address takeovers (R-GW-9; samepathd gw.sync).
type GWSync struct {
	Sent      uint64 `json:"sent"`     // T5 changes sent to all peers
	Received  uint64 `json:"received"` // T5 changes received
	Dropped   uint64 `json:"dropped"`  // lost (journal or a peer's queue full; the refresh repairs them)
	Takeovers uint64 `json:"takeovers"`
	Failbacks uint64 `json:"failbacks"`
	// Ready: the peers' state arrived (or gw.sync.wait passed); /healthz
	// answers 503 before, so the health monitor keeps the gateway down.
	Ready bool         `json:"ready"`
	Peers []GWSyncPeer `json:"peers"`
	// Held: NAT records held for peers (on their key addresses);
	// Installed: records installed from peers; Conflicts: not installed,
	// their key port held by another flow.
	Held          int    `json:"held"`
	Installed     uint64 `json:"installed"`
	Conflicts     uint64 `json:"conflicts"`
	PeerFlowsSeen bool   `json:"peer_flows_seen"` // a peer's flow arrived here (its range is steered here)
}

// GWSyncPeer is one peer gateway's stream.
type GWSyncPeer struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"`  // its stream to this gateway is up
	Ready     bool   `json:"ready"`      // it says it holds its peers' state
	Dumped    bool   `json:"dumped"`     // its whole table arrived since this gateway started
	TakenOver bool   `json:"taken_over"` // this gateway holds its key addresses
	LagNS     int64  `json:"lag_ns"`     // its latest frame's age on arrival
	Sent      uint64 `json:"sent"`
	Received  uint64 `json:"received"`
}

// GWSync reads a gateway's sync state (404 without gw.sync).
func (c *Client) GWSync(ctx context.Context) (GWSync, error) {
	var s GWSync
	return s, c.Do(ctx, http.MethodGet, "/v1/sync", nil, &s)
}
