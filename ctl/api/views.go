package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// DistRecord is one T7 row (distribution information, R-GW-6): the
// actual server recorded for a user session and service.
type DistRecord struct {
	Session   string `json:"session"` // the control process's session id ("" if it ended meanwhile)
	Service   string `json:"service"` // "" if the service is gone
	Type      string `json:"type"`    // the user session type the record was made under
	Server    string `json:"server"`  // "" when the record's index is stale (service replaced)
	ServerIdx int    `json:"server_idx"`
	Flows     int    `json:"flows"` // its flows started and not ended
	// AgeSec is the time since the server was recorded (-1: not known
	// yet, the worker stamps records with a clock it updates now and then).
	AgeSec int64 `json:"age_sec"`
}

// DistStats are T7's counters.
type DistStats struct {
	Records  int    `json:"records"`
	Recorded uint64 `json:"recorded"`
	Released uint64 `json:"released"`
	Repicks  uint64 `json:"repicks"`
	Full     uint64 `json:"full"`
	NoServer uint64 `json:"no_server"`
}

// Dist is GET /v1/dist: T7's counters and its records (Total counts
// every record passing the filter; Records holds at most limit).
type Dist struct {
	Stats   DistStats    `json:"stats"`
	Total   int          `json:"total"`
	Records []DistRecord `json:"records"`
}

// LBCacheEntry is one mobile's T12 entry (the LB MAC cache, R-GW-4): the
// LB its down packets leave through.
type LBCacheEntry struct {
	Mobile  string `json:"mobile"`
	LBMAC   string `json:"lb_mac"`
	Learned string `json:"learned"` // "event" (a session event named it) or "packet" (an up packet came through it)
	AgeMs   int64  `json:"age_ms"`  // since it was learned
	Session string `json:"session,omitempty"`
	Flows   int    `json:"flows"` // the mobile's flow records (T5)
}

// LBCache is GET /v1/lbcache: the entries of mobiles the gateway knows
// (a session in its T3 copy, or a flow record), sorted by mobile. Total
// counts the entries passing the filter; Uncached counts known mobiles
// the cache holds no entry for (never seen, evicted or refused by its
// admission policy: their flows still carry their own LB).
type LBCache struct {
	Total    int            `json:"total"`
	Uncached int            `json:"uncached"`
	Entries  []LBCacheEntry `json:"entries"`
}

// Learned values of LBCacheEntry.
const (
	LearnedEvent  = "event"
	LearnedPacket = "packet"
)

// Dist reads T7: at most limit records, of session (its id) and service
// when not empty.
func (c *Client) Dist(ctx context.Context, limit int, session, service string) (Dist, error) {
	v := url.Values{"limit": {strconv.Itoa(limit)}}
	if session != "" {
		v.Set("session", session)
	}
	if service != "" {
		v.Set("service", service)
	}
	var d Dist
	return d, c.Do(ctx, http.MethodGet, "/v1/dist?"+v.Encode(), nil, &d)
}

// LBCache reads T12: at most limit entries, of mobile (an address) when
// not empty.
func (c *Client) LBCache(ctx context.Context, limit int, mobile string) (LBCache, error) {
	v := url.Values{"limit": {strconv.Itoa(limit)}}
	if mobile != "" {
		v.Set("mobile", mobile)
	}
	var l LBCache
	return l, c.Do(ctx, http.MethodGet, "/v1/lbcache?"+v.Encode(), nil, &l)
}

// ServerWeight sets a server's weight in a service (PUT
// /v1/services/weight), 1..256; drain, not weight 0, takes a server out
// of new choices.
type ServerWeight struct {
	Service string `json:"service"`
	Addr    string `json:"addr"`
	Weight  int    `json:"weight"`
}

// SetServerWeight sets a server's weight.
func (c *Client) SetServerWeight(ctx context.Context, service, addr string, weight int) error {
	return c.Do(ctx, http.MethodPut, "/v1/services/weight", ServerWeight{Service: service, Addr: addr, Weight: weight}, nil)
}

// WorkerRuntime is one poll-mode worker's figures (GET /v1/runtime), as
// vppctl's "show runtime" gives them per node: since the worker started,
// or, from Delta, over an interval.
type WorkerRuntime struct {
	Worker int      `json:"worker"`
	CPU    int      `json:"cpu"` // -1: not pinned
	Ports  []string `json:"ports"`
	// Rounds are poll rounds over every port; busy ones received or
	// originated a frame, idle ones did not. Batches are non-empty
	// receives (a port's frames of one round), Vectors the packets
	// received, Originated the frames the pipeline made itself.
	Rounds     uint64 `json:"rounds"`
	BusyRounds uint64 `json:"busy_rounds"`
	IdleRounds uint64 `json:"idle_rounds"`
	Batches    uint64 `json:"batches"`
	Vectors    uint64 `json:"vectors"`
	Originated uint64 `json:"originated"`
	// BusyNs is the time of the busy rounds, WaitNs the time blocked in
	// Waits idle waits, UptimeNs the time covered.
	BusyNs   int64  `json:"busy_ns"`
	WaitNs   int64  `json:"wait_ns"`
	Waits    uint64 `json:"waits"`
	UptimeNs int64  `json:"uptime_ns"`
	// Derived (Derive): vectors per batch, busy ns per packet, the share
	// of rounds that found nothing and the share of time not busy.
	VectorsPerBatch float64 `json:"vectors_per_batch"`
	NsPerPacket     float64 `json:"ns_per_packet"`
	IdleRoundShare  float64 `json:"idle_round_share"`
	IdleTimeShare   float64 `json:"idle_time_share"`
}

// Runtime is GET /v1/runtime: every worker of a samepathd (none with
// steering xdp, where the kernel forwards).
type Runtime struct {
	Workers []WorkerRuntime `json:"workers"`
}

// Derive computes r's derived figures from its counts.
func (r *WorkerRuntime) Derive() {
	r.VectorsPerBatch, r.NsPerPacket, r.IdleRoundShare, r.IdleTimeShare = 0, 0, 0, 0
	if r.Batches > 0 {
		r.VectorsPerBatch = float64(r.Vectors) / float64(r.Batches)
	}
	if n := r.Vectors + r.Originated; n > 0 {
		r.NsPerPacket = float64(r.BusyNs) / float64(n)
	}
	if r.Rounds > 0 {
		r.IdleRoundShare = float64(r.IdleRounds) / float64(r.Rounds)
	}
	if r.UptimeNs > 0 {
		r.IdleTimeShare = max(0, min(1, 1-float64(r.BusyNs)/float64(r.UptimeNs)))
	}
}

// Delta is r's figures over the interval since prev (the same worker,
// read earlier), derived anew.
func (r WorkerRuntime) Delta(prev WorkerRuntime) WorkerRuntime {
	d := r
	sub := func(a, b uint64) uint64 { return a - min(a, b) }
	d.Rounds, d.BusyRounds, d.IdleRounds = sub(r.Rounds, prev.Rounds), sub(r.BusyRounds, prev.BusyRounds), sub(r.IdleRounds, prev.IdleRounds)
	d.Batches, d.Vectors, d.Originated, d.Waits = sub(r.Batches, prev.Batches), sub(r.Vectors, prev.Vectors), sub(r.Originated, prev.Originated), sub(r.Waits, prev.Waits)
	d.BusyNs, d.WaitNs, d.UptimeNs = max(r.BusyNs-prev.BusyNs, 0), max(r.WaitNs-prev.WaitNs, 0), max(r.UptimeNs-prev.UptimeNs, 0)
	d.Derive()
	return d
}

// Runtime reads every worker's figures.
func (c *Client) Runtime(ctx context.Context) (Runtime, error) {
	var r Runtime
	return r, c.Do(ctx, http.MethodGet, "/v1/runtime", nil, &r)
}
