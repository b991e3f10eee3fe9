package dp

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"samepath/dp/acct"
	"samepath/dp/balance"
	"samepath/dp/header"
	"samepath/dp/neigh"
	"samepath/dp/xlat"
	"samepath/nat"
	"samepath/tcpproxy"
)

// The gateway pipeline (FIG. 16-24, 32-40) is split by responsibility:
//
//	gw.go          config, NewGW, Process, Tick, flow ends
//	gw_session.go  the T3 copy and its events (R-GW-7), T12 (R-GW-4)
//	gw_up.go       mobile -> server: flow creation, balancing, NAT (R-GW-1..3, R-GW-5, R-GW-6, R-AUTH-1)
//	gw_down.go     server -> mobile: lookup, source filtering, NAT back (R-GW-1)
//	gw_icmperr.go  ICMP errors about a flow, both ways (R-GW-1)
//	gw_refuse.go   proxy replies for refused packets (R-AUTH-1, R-GW-5)
//	gw_xlat.go     flows to servers of the other IP family: NAT64/NAT46 (R-TCP-3)
//	gw_acct.go     proxy accounting (R-ACCT-1, R-ACCT-2)
//	gw_term.go     TCP termination for terminate-mode services (T11, R-TCP-1, tcpproxy)
//
// Every packet is decoded once (header.Decode) into a header.Decoded,
// which is passed explicitly to every step; its tuple is the flow key.

// GWConfig configures the packet-gateway pipeline.
type GWConfig struct {
	// Lan and Servers are the worker port indexes of the side toward the
	// load balancers and the side toward the actual servers.
	Lan, Servers int
	// LanMAC and ServerMAC are the gateway's own MACs on each side.
	LanMAC, ServerMAC nat.MAC
	// Flows is the port-key NAT table (T5); the pipeline owns it: its
	// worker is the table's single writer.
	Flows *nat.PortTable
	// Services is T6+T11; Dist is T7. Both are shared with the control API.
	Services *balance.Table
	Dist     *balance.Dist
	// Neighbors resolves actual servers' MACs on the server side.
	Neighbors *neigh.Table
	// Authz, if set, authorizes every new user session (T8/T9, R-AUTH-1).
	Authz *Authz
	// RequireSession drops up packets from addresses with no session (T3,
	// R-GW-7, step S124). Off only for deployments without AAA.
	RequireSession bool
	// LBCacheSize bounds T12 (mobile -> LB MAC).
	LBCacheSize int64
	// ResumeHold: for this long after a session event moved a session to
	// another LB, up packets still arriving through the LB it left are
	// late ones (sent before the move) and do not move it back (R-GW-4);
	// they are forwarded all the same. 0: no hold. The hold ends early
	// when the session goes dormant (the phone left the NAS it resumed
	// on), so a quick move back is learned from its first up packet. A
	// move back to that LB within the hold comes with its own event (the
	// NAS's Accounting-Start), which is never held. DefaultResumeHold is
	// samepathd's.
	ResumeHold time.Duration
	// ExpireBudget is how many flow records one poll round examines for
	// idle expiry.
	ExpireBudget int
	// Acct, if set, receives a T10 accounting record for every flow that
	// ends and, every AcctInterim (0: never), for every flow still open.
	// AcctAttrSlots bounds how many flows keep an attribute (URL, SNI);
	// 0 means a quarter of the flow table.
	Acct          *acct.Producer
	AcctInterim   time.Duration
	AcctAttrSlots int
	// Xlat, if set, translates flows whose server is of the other IP
	// family than the mobile (stateful NAT64 and NAT46 on the port-key
	// NAT, RFC 6146, R-TCP-3; gw_xlat.go), and maps destinations inside
	// its RFC 6052 prefix to the IPv4 address they embed. It is the
	// worker's own (a Translator keeps per-worker state). Without it such
	// flows are refused as unsupported.
	Xlat *xlat.Translator
	// Terminator, if set, terminates the flows of terminate-mode
	// services (gw_term.go); TermHooks must be the hooks installed in
	// its Config. Without it such flows are refused as unsupported.
	Terminator *tcpproxy.Terminator
	TermHooks  *TermHooks
}

// DefaultResumeHold is GWConfig.ResumeHold in samepathd: well above the
// time an up packet can sit in an LB's or NAS's queues, well below the
// time a phone takes to move twice.
const DefaultResumeHold = 2 * time.Second

// Validate checks the config.
func (c GWConfig) Validate() error {
	switch {
	case c.Lan < 0 || c.Servers < 0 || c.Lan == c.Servers:
		return fmt.Errorf("gw: port indexes %d/%d: want two distinct ports", c.Lan, c.Servers)
	case c.LanMAC == (nat.MAC{}) || c.ServerMAC == (nat.MAC{}):
		return errors.New("gw: own MACs must be set")
	case c.Flows == nil || c.Services == nil || c.Dist == nil || c.Neighbors == nil:
		return errors.New("gw: flows, services, dist and neighbors are required")
	case c.LBCacheSize <= 0:
		return fmt.Errorf("gw: lb cache size %d", c.LBCacheSize)
	case c.ExpireBudget <= 0:
		return fmt.Errorf("gw: expire budget %d", c.ExpireBudget)
	case c.ResumeHold < 0:
		return fmt.Errorf("gw: resume hold %v", c.ResumeHold)
	}
	return nil
}

// GW is the gateway pipeline. One GW belongs to one worker; Process and
// Tick run on it. Sessions are changed from other goroutines through
// Apply, which queues the change for the worker.
type GW struct {
	cfg   GWConfig
	now   int64
	clock atomic.Int64 // now, for other goroutines

	sessions map[nat.Addr16]Session // T3 copy, worker-owned
	events   chan SessionEvent      // control -> worker
	lbs      *ristretto.Cache[[]byte, lbEntry]
	nh       *neigh.Cache // the worker's memo of its latest server MAC
	pre      []upPre      // processUp's first pass, per packet of the batch
	hs       []uint32     // the batch's T5 hashes, for TouchUp
	touched  uint32       // keeps TouchUp's loads from being optimized away

	// Per flow record, indexed by binding id: the LB its down packets
	// leave through (R-GW-4, see gw_session.go), its user session type
	// as it was when the flow opened, the chosen server's index in its
	// service (-1: not balanced), and the server of the latest up packet
	// (packet-unit flows choose anew per packet; the binding keeps the
	// first). Down packets are filtered by that server.
	flowLB   []nat.MAC
	flowUnit []balance.UnitType
	flowSrv  []int32
	flowAddr []nat.Addr16
	flowPort []uint16
	flowXlat []bool           // the server is of the other family: translated
	flowTerm []bool           // terminated (gw_term.go; nil without a terminator)
	flowConn []*tcpproxy.Conn // its connection, once open
	term     *termState       // nil without a terminator
	xl       *xlat.Translator
	xout     []byte         // a translation's output
	xres     xlat.Result    // what it wrote there
	xd       header.Decoded // its translated frame, decoded
	xq       [2]xlatQueue   // further fragments for Originate: toward the LBs, the servers

	ticks   uint64
	key     [16]byte // T12's key, in the GW so the cache's []byte does not escape a local
	setLB   nat.MAC  // the LB setFlowLB writes
	acct    *acctState
	downD   header.Decoded // the down packet in hand
	scratch []byte
	onEnd   func(b *nat.Binding, cause nat.Cause)
	onLB    func(id uint32)

	stats GWStats
	admin gwAdmin // servers put into maint (gw_admin.go)

	// State sync (gw_sync.go).
	syncIn    chan []nat.Change
	syncStats SyncStats
	peerHit   atomic.Bool
}

// GWStats are the gateway's own counters beyond the per-queue ones,
// written by the worker and readable from any goroutine.
type GWStats struct {
	FlowsCreated, FlowsEnded, Exhausted, Denied, Replies atomic.Uint64
	// LBMoves counts T12 moves: a session's mobile seen behind another
	// LB than before, by an up packet or a session event. LBStale counts
	// up packets through an LB the session just left (ResumeHold).
	LBMoves, LBStale atomic.Uint64
	Term             TermStats
	// AdminEnded counts flows ended because their server was put into
	// maint (EndServerFlows).
	AdminEnded atomic.Uint64
}

// NewGW makes the pipeline.
func NewGW(cfg GWConfig) (*GW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lbs, err := ristretto.NewCache(&ristretto.Config[[]byte, lbEntry]{
		NumCounters: 10 * cfg.LBCacheSize, MaxCost: cfg.LBCacheSize, BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("gw: lb cache: %w", err)
	}
	n := cfg.Flows.Capacity()
	g := &GW{
		cfg:      cfg,
		sessions: map[nat.Addr16]Session{},
		events:   make(chan SessionEvent, 4096),
		syncIn:   make(chan []nat.Change, 64),
		lbs:      lbs,
		nh:       cfg.Neighbors.NewCache(),
		flowLB:   make([]nat.MAC, n),
		flowUnit: make([]balance.UnitType, n),
		flowSrv:  make([]int32, n),
		flowAddr: make([]nat.Addr16, n),
		flowPort: make([]uint16, n),
		flowXlat: make([]bool, n),
		xl:       cfg.Xlat,
		scratch:  make([]byte, 2048),
	}
	if g.xl != nil {
		g.xout = make([]byte, xlat.OutLen(9216))
		g.xq = [2]xlatQueue{newXlatQueue(), newXlatQueue()}
	}
	if err := g.termInit(); err != nil {
		lbs.Close()
		return nil, err
	}
	g.onEnd = g.flowEnded
	g.admin.cuts = make(chan serverCut, 64)
	g.onLB = g.setFlowLB
	if cfg.Acct != nil {
		slots := cfg.AcctAttrSlots
		if slots <= 0 {
			slots = max(n/4, 1)
		}
		g.acct = newAcctState(n, slots)
		g.acct.wall0 = wallAt(0)
	}
	return g, nil
}

// EndAll ends every open flow with cause nat.Shutdown, writing each
// one's final accounting record (waiting up to wait in all for room in
// the log's ring), and returns how many it ended. A gateway calls it when
// it stops, after its worker has returned: it runs on the caller's
// goroutine as the table's owner.
func (g *GW) EndAll(wait time.Duration) int {
	if g.acct != nil {
		g.acct.waitUntil = time.Now().Add(wait)
		defer func() { g.acct.waitUntil = time.Time{} }()
	}
	return g.cfg.Flows.DeleteAll(g.now, nat.Shutdown, g.onEnd)
}

// Close releases the LB cache.
func (g *GW) Close() { g.lbs.Close() }

// Clock returns the worker's clock (the time base of nat.Binding's
// Created and LastSeen).
func (g *GW) Clock() int64 { return g.clock.Load() }

// Stats returns the gateway counters.
func (g *GW) Stats() *GWStats { return &g.stats }

// Tick implements Ticker: control events and idle expiry.
func (g *GW) Tick(now int64) {
	g.now = now
	g.clock.Store(now)
	if g.ticks++; g.ticks&1023 == 1 { // from the first round on: T7 records get a time at once
		t := time.Now()
		g.cfg.Dist.SetNow(t)
		if g.acct != nil {
			g.acct.wall0 = t.UnixNano() - now // follow wall-clock steps
		}
	}
	g.acctTick()
	g.termTick()
	for {
		select {
		case ev := <-g.events:
			g.apply(ev)
			continue
		default:
		}
		break
	}
	g.syncTick()
	g.cfg.Flows.Expire(now, g.cfg.ExpireBudget, g.onEnd)
	g.adminTick()
}

// Process implements Pipeline.
func (g *GW) Process(in int, pkts []Packet) {
	if in == g.cfg.Lan {
		g.processUp(pkts)
	} else {
		g.processDown(pkts)
	}
	if g.xl != nil {
		g.xl.Publish() // once per batch (XlatCounters)
	}
}

// processDown handles a batch of packets from the servers' side.
func (g *GW) processDown(pkts []Packet) {
	d := &g.downD
	for i := range pkts {
		pk := &pkts[i]
		if v := header.Decode(pk.Data, d); v != header.OK {
			pk.Drop = ReasonMalformed
			continue
		}
		if d.IPVersion == 0 {
			pk.Drop = ReasonNotIP
			continue
		}
		if g.term != nil && g.termOwn(d) {
			// A server's segment to the terminator's own connection, or
			// an ICMP error about one: netstack's to handle.
			g.termIn(pk.Data[d.L3Off:d.IPEnd], i)
			continue
		}
		g.down(pk, d)
	}
	if g.term != nil {
		g.termFlush(pkts, g.term.srv)
	}
}

// flowEnded runs for every flow record the table removes, while the
// record is still in the table.
func (g *GW) flowEnded(b *nat.Binding, cause nat.Cause) {
	id, ok := g.cfg.Flows.Up(&b.Flow)
	if !ok {
		return // cannot happen: the table calls before removing
	}
	if b.Service != 0 && g.flowUnit[id] != balance.PacketUnit {
		if idx := g.flowSrv[id]; idx >= 0 {
			g.cfg.Dist.FlowEnd(b.Session, b.Service-1, int(idx))
		}
	}
	if g.flowTerm != nil && g.flowTerm[id] {
		g.termEnded(id, b, cause)
	}
	if g.acct != nil && (carried(b) || !g.cfg.Flows.IsPeer(id)) {
		g.acctReport(id, b, true, cause)
	}
	g.flowLB[id] = nat.MAC{}
	g.stats.FlowsEnded.Add(1)
}
