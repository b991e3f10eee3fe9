package gwsync

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"samepath/nat"
)

// Peer is another gateway this one syncs with: the substitute of its
// ranges, or the gateway whose ranges it substitutes (both, usually).
type Peer struct {
	Name string       // the peer's name (its handshake names it)
	Addr string       // host:port of its sync listener
	NAT  []netip.Addr // its key-port addresses (taken over when it dies)
}

// Config configures a Syncer.
type Config struct {
	Name   string // this gateway's name, sent in the handshake
	Listen string // host:port of this gateway's sync listener
	Token  string // shared secret both ends present (the control API token)
	Peers  []Peer
	// Batch is the send interval: changes wait at most this long (plus
	// the write) before they leave, and an idle stream sends a heartbeat
	// as often. The loss window of a crash is about one Batch.
	Batch time.Duration
	// Refresh is how often every own binding is sent again (as a
	// change), so a peer's copies stay as fresh as the origin's and a
	// change lost to a full journal is repaired.
	Refresh time.Duration
	// PeerTimeout: a peer whose stream sent nothing for this long is
	// dead (its connection closing says so at once).
	PeerTimeout time.Duration
	// Wait bounds how long a starting gateway waits for its peers'
	// dumps before it calls itself ready anyway.
	Wait time.Duration

	Journal *nat.Journal   // the own table's journal (its only consumer)
	Table   *nat.PortTable // the own table, for dumps and refreshes
	// Apply hands received changes to the worker (dp.GW.InstallSync).
	Apply func([]nat.Change)
	// Takeover and Giveback move a peer's key addresses to this gateway
	// and back (Addrs does both); Announce announces this gateway's own
	// addresses (gratuitous ARP / unsolicited NA) when it becomes ready.
	Takeover, Giveback, Announce func(addrs []netip.Addr) error
	Log                          *slog.Logger
}

// DefaultConfig returns a 50 ms batch, 10 s refresh, 1 s peer timeout
// and 5 s wait.
func DefaultConfig() Config {
	return Config{Batch: 50 * time.Millisecond, Refresh: 10 * time.Second, PeerTimeout: time.Second, Wait: 5 * time.Second}
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.Name == "" || strings.ContainsAny(c.Name, " \n"):
		return fmt.Errorf("gw.sync: name %q: want a word", c.Name)
	case c.Token == "" || strings.ContainsAny(c.Token, " \n"):
		return errors.New("gw.sync: a token without spaces is required")
	case c.Batch <= 0 || c.Refresh <= 0 || c.PeerTimeout <= 0 || c.Wait < 0:
		return fmt.Errorf("gw.sync: batch %v refresh %v peer_timeout %v wait %v: want positive", c.Batch, c.Refresh, c.PeerTimeout, c.Wait)
	case c.Journal == nil || c.Table == nil || c.Apply == nil:
		return errors.New("gw.sync: journal, table and apply are required")
	}
	seen := map[string]bool{}
	for i, p := range c.Peers {
		if p.Name == "" || seen[p.Name] || p.Name == c.Name {
			return fmt.Errorf("gw.sync.peers[%d]: name %q empty, repeated or this gateway's", i, p.Name)
		}
		seen[p.Name] = true
		if _, _, err := net.SplitHostPort(p.Addr); err != nil {
			return fmt.Errorf("gw.sync.peers[%d].addr: %w", i, err)
		}
	}
	return nil
}

// Stats are the syncer's counters (visibility, R-GW-9).
type Stats struct {
	Sent      uint64      `json:"sent"`     // changes sent to all peers
	Received  uint64      `json:"received"` // changes received
	Dropped   uint64      `json:"dropped"`  // lost: journal full, a peer's queue full
	Takeovers uint64      `json:"takeovers"`
	Failbacks uint64      `json:"failbacks"`
	Ready     bool        `json:"ready"`
	Peers     []PeerStats `json:"peers"`
}

// PeerStats is one peer's state.
type PeerStats struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"` // its stream to us is up
	Ready     bool   `json:"ready"`     // it says it holds its peers' state
	Dumped    bool   `json:"dumped"`    // its full table arrived since we started
	TakenOver bool   `json:"taken_over"`
	LagNS     int64  `json:"lag_ns"` // the latest frame's age on arrival (clocks in sync)
	Sent      uint64 `json:"sent"`
	Received  uint64 `json:"received"`
}

type peer struct {
	cfg  Peer
	out  chan []nat.Change // drain -> sender
	sent atomic.Uint64
	// Receiver side, under Syncer.mu.
	conns     int
	seen      bool // its stream was up once since we started
	last      time.Time
	ready     bool
	dumped    bool
	takenOver bool
	lag       int64
	received  uint64
}

// Syncer streams the own table's changes to every peer and installs
// theirs (Apply), and moves key addresses on takeover and failback.
// Goroutines: one drain (journal -> peers' queues, refreshes), one
// sender per peer, the listener and one reader per inbound stream, and
// the manager (takeover, failback, readiness).
type Syncer struct {
	cfg   Config
	log   *slog.Logger
	start time.Time
	peers []*peer
	ln    net.Listener

	mu       sync.Mutex
	ready    bool
	sent     atomic.Uint64
	received atomic.Uint64
	dropped  atomic.Uint64
	takeover atomic.Uint64
	failback atomic.Uint64
}

// New validates cfg and listens on cfg.Listen.
func New(cfg Config) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Syncer{cfg: cfg, log: cfg.Log, start: time.Now()}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, p := range cfg.Peers {
		s.peers = append(s.peers, &peer{cfg: p, out: make(chan []nat.Change, 256)})
	}
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("gw.sync.listen: %w", err)
		}
		s.ln = ln
	}
	if len(s.peers) == 0 {
		s.ready = true
	}
	return s, nil
}

// Addr is the listener's address (nil without one).
func (s *Syncer) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Ready reports whether this gateway holds its peers' state: every peer's
// dump arrived, or Wait passed since the start.
func (s *Syncer) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// Stats returns the counters and each peer's state.
func (s *Syncer) Stats() Stats {
	st := Stats{Sent: s.sent.Load(), Received: s.received.Load(), Dropped: s.dropped.Load() + s.cfg.Journal.Dropped(),
		Takeovers: s.takeover.Load(), Failbacks: s.failback.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Ready = s.ready
	for _, p := range s.peers {
		st.Peers = append(st.Peers, PeerStats{Name: p.cfg.Name, Connected: p.conns > 0, Ready: p.ready, Dumped: p.dumped,
			TakenOver: p.takenOver, LagNS: p.lag, Sent: p.sent.Load(), Received: p.received})
	}
	return st
}

// Run runs every goroutine until ctx ends, then closes the listener and
// returns.
func (s *Syncer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.routineDrain(ctx) }()
	go func() { defer wg.Done(); s.routineManage(ctx) }()
	for _, p := range s.peers {
		wg.Add(1)
		go func() { defer wg.Done(); s.routineSend(ctx, p) }()
	}
	if s.ln != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.routineAccept(ctx) }()
		go func() { <-ctx.Done(); s.ln.Close() }()
	}
	wg.Wait()
}

// routineDrain moves the journal's changes to every peer's queue each
// batch, and every Refresh queues each own binding again.
func (s *Syncer) routineDrain(ctx context.Context) {
	t := time.NewTicker(s.cfg.Batch)
	defer t.Stop()
	buf := make([]nat.Change, 4096)
	nextRefresh := time.Now().Add(s.cfg.Refresh)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var batch []nat.Change
		for {
			n := s.cfg.Journal.Drain(buf)
			if n == 0 {
				break
			}
			batch = append(batch, buf[:n]...)
		}
		if now := time.Now(); now.After(nextRefresh) {
			nextRefresh = now.Add(s.cfg.Refresh)
			s.cfg.Table.SnapshotTags(func(b nat.Binding, tag [2]uint64) bool {
				if s.cfg.Table.IsOwn(b.GwAddr) {
					batch = append(batch, nat.Change{Op: nat.OpChange, B: b, Tag: tag})
				}
				return true
			})
		}
		if len(batch) == 0 {
			continue
		}
		for _, p := range s.peers {
			select {
			case p.out <- batch:
			default:
				s.dropped.Add(uint64(len(batch)))
			}
		}
	}
}

// routineSend keeps a stream to one peer: dial (retrying), handshake,
// the whole table (dump), then the drained batches, a heartbeat when
// there is nothing else. The dump follows a flush of the queue, so a
// change is either in the dump or after it.
func (s *Syncer) routineSend(ctx context.Context, p *peer) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.sendOnce(ctx, p)
		if ctx.Err() != nil {
			return
		}
		s.log.Debug("sync stream to peer ended", "peer", p.cfg.Name, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

func (s *Syncer) sendOnce(ctx context.Context, p *peer) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", p.cfg.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	w := bufio.NewWriterSize(c, 64<<10)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(w, "%s %s %s\n", proto, s.cfg.Name, s.cfg.Token)
	if err := w.Flush(); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "OK\n" {
		return fmt.Errorf("sync handshake with %s: %q %v", p.cfg.Name, line, err)
	}
	for len(p.out) > 0 {
		<-p.out
	}
	var dump []nat.Change
	s.cfg.Table.SnapshotTags(func(b nat.Binding, tag [2]uint64) bool {
		// With its accounting name: a flow opened here keeps one name
		// in the records of the gateway it moves to.
		dump = append(dump, nat.Change{Op: nat.OpCreate, B: b, Tag: tag})
		return true
	})
	write := func(typ uint8, cs []nat.Change) error {
		c.SetWriteDeadline(time.Now().Add(s.cfg.PeerTimeout + 2*time.Second))
		for {
			n := min(len(cs), maxCount)
			if err := writeFrame(w, header{typ: typ, flags: s.flags(), sent: time.Now().UnixNano()}, cs[:n]); err != nil {
				return err
			}
			p.sent.Add(uint64(n))
			s.sent.Add(uint64(n))
			if cs = cs[n:]; len(cs) == 0 {
				return w.Flush()
			}
		}
	}
	if err := write(frameChanges, dump); err != nil {
		return err
	}
	if err := write(frameDumpEnd, nil); err != nil {
		return err
	}
	s.log.Info("sync stream to peer up", "peer", p.cfg.Name, "dump", len(dump))
	hb := time.NewTicker(s.cfg.Batch)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case cs := <-p.out:
			if err := write(frameChanges, cs); err != nil {
				return err
			}
		case <-hb.C:
			if err := write(frameHeartbeat, nil); err != nil {
				return err
			}
		}
	}
}

func (s *Syncer) flags() uint8 {
	if s.Ready() {
		return flagReady
	}
	return 0
}

func (s *Syncer) routineAccept(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() { defer wg.Done(); s.serve(ctx, c) }()
	}
}

// serve reads one peer's stream and applies it.
func (s *Syncer) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	r := bufio.NewReaderSize(c, 64<<10)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := r.ReadString('\n')
	f := strings.Fields(line)
	var p *peer
	if err == nil && len(f) == 3 && f[0] == proto {
		for _, q := range s.peers {
			if q.cfg.Name == f[1] {
				p = q
			}
		}
	}
	if p == nil || subtle.ConstantTimeCompare([]byte(f[2]), []byte(s.cfg.Token)) != 1 {
		s.log.Warn("sync stream refused", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	if _, err := c.Write([]byte("OK\n")); err != nil {
		return
	}
	s.mu.Lock()
	p.conns++
	p.seen = true
	p.last = time.Now()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		p.conns--
		s.mu.Unlock()
	}()
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.PeerTimeout + s.cfg.Batch))
		h, cs, err := readFrame(r)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Info("sync stream from peer ended", "peer", p.cfg.Name, "err", err)
			}
			return
		}
		if len(cs) > 0 {
			s.cfg.Apply(cs)
			s.received.Add(uint64(len(cs)))
		}
		now := time.Now()
		s.mu.Lock()
		p.last = now
		p.ready = h.flags&flagReady != 0
		p.lag = now.UnixNano() - h.sent
		p.received += uint64(len(cs))
		if h.typ == frameDumpEnd && !p.dumped {
			p.dumped = true
			s.log.Info("sync: peer's state received", "peer", p.cfg.Name, "after", now.Sub(s.start).Round(time.Millisecond))
		}
		s.mu.Unlock()
	}
}

// routineManage decides readiness, takeovers and failbacks every batch.
func (s *Syncer) routineManage(ctx context.Context) {
	t := time.NewTicker(s.cfg.Batch)
	defer t.Stop()
	announced := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.manage(&announced)
	}
}

func (s *Syncer) manage(announced *bool) {
	now := time.Now()
	type move struct {
		p    *peer
		take bool
	}
	var moves []move
	s.mu.Lock()
	if !s.ready {
		all := true
		for _, p := range s.peers {
			all = all && p.dumped
		}
		if all || now.Sub(s.start) >= s.cfg.Wait {
			s.ready = true
			s.log.Info("sync: ready", "peers_dumped", all, "after", now.Sub(s.start).Round(time.Millisecond))
		}
	}
	ready := s.ready
	for _, p := range s.peers {
		alive := p.conns > 0 && now.Sub(p.last) < s.cfg.PeerTimeout
		switch {
		case !p.takenOver && p.seen && !alive && len(p.cfg.NAT) > 0:
			p.takenOver = true
			moves = append(moves, move{p, true})
		case p.takenOver && alive && p.ready:
			p.takenOver = false
			moves = append(moves, move{p, false})
		}
	}
	s.mu.Unlock()
	if ready && !*announced {
		*announced = true
		if s.cfg.Announce != nil {
			if err := s.cfg.Announce(nil); err != nil {
				s.log.Warn("sync: announce own addresses", "err", err)
			}
		}
	}
	for _, m := range moves {
		if m.take {
			s.takeover.Add(1)
			s.log.Warn("takeover: peer's sync stream is down; taking its key addresses", "peer", m.p.cfg.Name, "addrs", m.p.cfg.NAT)
			if s.cfg.Takeover != nil {
				if err := s.cfg.Takeover(m.p.cfg.NAT); err != nil {
					s.log.Error("takeover", "peer", m.p.cfg.Name, "err", err)
				}
			}
		} else {
			s.failback.Add(1)
			s.log.Warn("failback: peer is back with our state; giving back its key addresses", "peer", m.p.cfg.Name, "addrs", m.p.cfg.NAT)
			if s.cfg.Giveback != nil {
				if err := s.cfg.Giveback(m.p.cfg.NAT); err != nil {
					s.log.Error("failback", "peer", m.p.cfg.Name, "err", err)
				}
			}
		}
	}
}
