package control

import (
	"samepath/ctl/aaa"
	"samepath/ctl/health"
	"samepath/ctl/session"
	"samepath/ctl/store"
)

// Status answers GET /v1/status.
type Status struct {
	Version   string `json:"version"`
	UptimeSec int64  `json:"uptime_sec"`
	Auth      string `json:"radius_auth"`
	Acct      string `json:"radius_acct"`
	Sessions  int    `json:"sessions"`
	Users     int    `json:"users"`
	Gateways  int    `json:"gateways"`
}

// Counters answers GET /v1/counters.
type Counters struct {
	Radius   map[string]uint64      `json:"radius"`
	Pool     aaa.PoolCounters       `json:"pool"`
	Sessions session.Counters       `json:"sessions"`
	Outbox   session.OutboxCounters `json:"outbox"`
	// SessionSync counts the read-backs of the gateways' T3 copies.
	SessionSync SessionSyncCounters `json:"session_sync"`
	Store       store.Stats         `json:"store"`
}

// HealthReport answers GET /v1/health.
type HealthReport struct {
	Targets []health.Status   `json:"targets"`
	LBs     []health.LBStatus `json:"lbs"`
}

// AdminState is the body of PUT /v1/gateways/{name}/admin.
type AdminState struct {
	Admin string `json:"admin"`
}

// LBInfo is one configured LB (GET /v1/lbs).
type LBInfo struct {
	Name string `json:"name"`
	API  string `json:"api"`
}

// Version of the control process.
const Version = "0.1"

// Terminated answers DELETE /v1/sessions/{id}: the session is closed
// here, its gateway is told (through the outbox), and Disconnect says
// what the NAS it started at answered to the Disconnect-Request (RFC
// 5176). The answer waits for the NAS (three tries a second apart).
type Terminated struct {
	OK         bool   `json:"ok"`
	Session    string `json:"session"`
	NAS        string `json:"nas,omitempty"`
	Disconnect string `json:"disconnect"` // one of the Disconnect* values
	// DisconnectError is the NAK's Error-Cause or the transport error.
	DisconnectError string `json:"disconnect_error,omitempty"`
}

// Terminated.Disconnect values.
const (
	DisconnectACK     = "ack"      // the NAS ended the session
	DisconnectNAK     = "nak"      // the NAS refused (Disconnect-NAK)
	DisconnectFailed  = "failed"   // no answer in time, or it could not be sent
	DisconnectNotSent = "not_sent" // no NAS known, or its RADIUS client has no disconnect_port
)
