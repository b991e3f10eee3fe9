package session

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"samepath/ctl/api"
	"samepath/ctl/store"
	"samepath/internal/lograte"
)

// Target says where a gateway's control API is: base URL and bearer token.
// ok is false when the gateway has no API (its events are not queued).
type Target func(gateway string) (base, token string, ok bool)

// OutboxConfig configures the pushers.
type OutboxConfig struct {
	MinBackoff, MaxBackoff time.Duration
	Timeout                time.Duration // per POST
	// Log receives failed pushes with their HTTP status, rate-limited
	// (lograte.Pushes); nil: slog.Default.
	Log *slog.Logger
}

// queued is one event waiting for its gateway's acknowledgement.
type queued struct {
	id      uint64
	Gateway string           `json:"gateway"`
	Event   api.SessionEvent `json:"event"`
}

// OutboxCounters count pushes.
type OutboxCounters struct {
	Queued   uint64 `json:"queued"`
	Acked    uint64 `json:"acked"`
	Failures uint64 `json:"failures"`
	NoAPI    uint64 `json:"no_api"`
	// Wakeups: Wake calls that found events pending for their gateway
	// (its health recovered: its back-off was cut short).
	Wakeups uint64 `json:"wakeups"`
	Pending int    `json:"pending"`
}

// Outbox delivers session events to gateways, in order per gateway,
// retrying with exponential back-off until each is acknowledged (R-SM-2).
// Events are stored in the same commit as the state change they announce
// and deleted once acknowledged, so they survive restarts (at-least-once;
// the gateway discards stale Seq). Wake cuts a gateway's back-off short
// when its health recovers, so a returning gateway gets its pending events
// at once instead of at the end of a back-off grown while it was down.
type Outbox struct {
	cfg    OutboxConfig
	st     *store.Store
	target Target

	mu     sync.Mutex
	nextID uint64
	queues map[string]*gwQueue
	ctx    context.Context
	wg     sync.WaitGroup
	c      OutboxCounters
	log    *lograte.Pushes
}

type gwQueue struct {
	name  string
	items []*queued
	// wake (capacity 1) ends the pusher's back-off sleep (Wake). A new
	// event does not: it waits its turn behind the one being retried.
	wake    chan struct{}
	running bool
}

// NewOutbox returns an outbox; Start begins delivery.
func NewOutbox(cfg OutboxConfig, st *store.Store, target Target) *Outbox {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Outbox{cfg: cfg, st: st, target: target, queues: map[string]*gwQueue{},
		log: lograte.NewPushes(cfg.Log, "session event")}
}

func outKey(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}

// Load reads undelivered events from the store (call before Start).
func (o *Outbox) Load() error {
	var items []*queued
	err := o.st.ForEach(store.BucketOutbox, func(k, v []byte) error {
		q := new(queued)
		if len(k) != 8 || json.Unmarshal(v, q) != nil {
			return fmt.Errorf("outbox entry %x: malformed", k)
		}
		q.id = binary.BigEndian.Uint64(k)
		items = append(items, q)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load outbox: %w", err)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].id < items[j].id })
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, q := range items {
		o.nextID = max(o.nextID, q.id)
		o.queue(q.Gateway).items = append(o.queue(q.Gateway).items, q)
	}
	return nil
}

func (o *Outbox) queue(gw string) *gwQueue {
	q := o.queues[gw]
	if q == nil {
		q = &gwQueue{name: gw, wake: make(chan struct{}, 1)}
		o.queues[gw] = q
	}
	return q
}

// prepare makes the event and the store op that records it; nil when the
// gateway has no API.
func (o *Outbox) prepare(gw string, ev api.SessionEvent) (*queued, store.Op) {
	if _, _, ok := o.target(gw); !ok {
		o.mu.Lock()
		o.c.NoAPI++
		o.mu.Unlock()
		return nil, store.Op{}
	}
	o.mu.Lock()
	o.nextID++
	q := &queued{id: o.nextID, Gateway: gw, Event: ev}
	o.c.Queued++
	o.mu.Unlock()
	b, _ := json.Marshal(q)
	return q, store.Put(store.BucketOutbox, outKey(q.id), b)
}

// ready hands a durable event to its gateway's pusher.
func (o *Outbox) ready(q *queued) {
	o.mu.Lock()
	g := o.queue(q.Gateway)
	g.items = append(g.items, q)
	o.startLocked(g)
	o.mu.Unlock()
}

// Wake tells the outbox that gateway gw is reachable again (the health
// monitor saw it recover): its pusher stops waiting out its back-off,
// which starts again from MinBackoff, and retries the oldest pending event
// now. It never blocks and does nothing for a gateway with nothing pending.
func (o *Outbox) Wake(gw string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	g := o.queues[gw]
	if g == nil || len(g.items) == 0 {
		return
	}
	o.c.Wakeups++
	o.startLocked(g)
	select {
	case g.wake <- struct{}{}:
	default: // a wakeup is already waiting for the pusher
	}
}

// pending reports the sessions with an event queued for gateway gw and
// not yet acknowledged: the outbox itself brings gw's copy of them in line.
func (o *Outbox) pending(gw string) map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	g := o.queues[gw]
	if g == nil || len(g.items) == 0 {
		return nil
	}
	ids := make(map[string]bool, len(g.items))
	for _, q := range g.items {
		ids[q.Event.SessionID] = true
	}
	return ids
}

// Start begins delivering until ctx ends; Wait waits for the pushers.
func (o *Outbox) Start(ctx context.Context) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ctx = ctx
	for _, g := range o.queues {
		o.startLocked(g)
	}
}

func (o *Outbox) startLocked(g *gwQueue) {
	if o.ctx == nil || o.ctx.Err() != nil || g.running || len(g.items) == 0 {
		return
	}
	g.running = true
	o.wg.Add(1)
	go o.routinePush(o.ctx, g)
}

// Wait blocks until every pusher has stopped (after ctx ends).
func (o *Outbox) Wait() { o.wg.Wait() }

// routinePush delivers one gateway's events in order.
func (o *Outbox) routinePush(ctx context.Context, g *gwQueue) {
	defer o.wg.Done()
	backoff := o.cfg.MinBackoff
	for {
		o.mu.Lock()
		if len(g.items) == 0 {
			g.running = false
			o.mu.Unlock()
			return
		}
		q := g.items[0]
		o.mu.Unlock()
		err := o.send(ctx, q)
		if ctx.Err() != nil {
			o.mu.Lock()
			g.running = false
			o.mu.Unlock()
			return
		}
		o.log.Record(q.Gateway, err, "session", q.Event.SessionID)
		if err != nil {
			o.mu.Lock()
			o.c.Failures++
			o.mu.Unlock()
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-g.wake: // the gateway is back: retry now, back-off from the start
				t.Stop()
				backoff = o.cfg.MinBackoff
				continue
			case <-t.C:
			}
			backoff = min(2*backoff, o.cfg.MaxBackoff)
			continue
		}
		backoff = o.cfg.MinBackoff
		select {
		case <-g.wake: // delivered anyway: a wakeup that came during the send is spent
		default:
		}
		o.mu.Lock()
		g.items = g.items[1:]
		o.c.Acked++
		o.mu.Unlock()
		o.st.Enqueue([]store.Op{store.Del(store.BucketOutbox, outKey(q.id))}, nil, nil)
	}
}

func (o *Outbox) send(ctx context.Context, q *queued) error {
	base, token, ok := o.target(q.Gateway)
	if !ok {
		return fmt.Errorf("gateway %s has no control API", q.Gateway)
	}
	c := api.NewClient(base)
	c.Token = token
	c.HTTP.Timeout = o.cfg.Timeout
	return c.SessionEvent(ctx, q.Event)
}

// Counters returns a copy of the counters.
func (o *Outbox) Counters() OutboxCounters {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.c
	for _, g := range o.queues {
		c.Pending += len(g.items)
	}
	return c
}
