package nas

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"samepath/ctl/aaa"
)

// LoadConfig configures LoadGen.
type LoadConfig struct {
	Addr     string // authentication server host:port
	Secret   []byte
	Mobiles  []Mobile // cycled through
	Conns    int      // UDP sockets (each has its own 256 Identifiers)
	Window   int      // requests in flight per socket (<= 255)
	Duration time.Duration
	Count    int // stop after this many answers (0: Duration only)
	Timeout  time.Duration
}

// LoadResult is what LoadGen measured.
type LoadResult struct {
	Sent     uint64        `json:"sent"`
	Accepts  uint64        `json:"accepts"`
	Rejects  uint64        `json:"rejects"`
	Timeouts uint64        `json:"timeouts"`
	Invalid  uint64        `json:"invalid"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Rate     float64       `json:"answers_per_sec"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
}

func (r LoadResult) String() string {
	return fmt.Sprintf("sent %d accepts %d rejects %d timeouts %d invalid %d in %v: %.0f answers/s, p50 %v p99 %v max %v",
		r.Sent, r.Accepts, r.Rejects, r.Timeouts, r.Invalid, r.Elapsed.Round(time.Millisecond), r.Rate, r.P50, r.P99, r.Max)
}

type slot struct {
	busy bool
	sent time.Time
	req  []byte
}

type lgConn struct {
	conn   *net.UDPConn
	mu     sync.Mutex
	slots  [256]slot
	next   byte
	tokens chan struct{}
	lat    []time.Duration
	res    LoadResult
}

// LoadGen sends Access-Requests as fast as the windows allow and reports
// throughput and latency.
func LoadGen(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if len(cfg.Mobiles) == 0 || cfg.Addr == "" {
		return LoadResult{}, errors.New("loadgen: no mobiles or no address")
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 4
	}
	if cfg.Window <= 0 || cfg.Window > 255 {
		cfg.Window = 64
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Duration <= 0 && cfg.Count <= 0 {
		cfg.Duration = 2 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, cfg.Duration)
		defer c2()
	}
	raddr, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return LoadResult{}, fmt.Errorf("loadgen: %w", err)
	}
	conns := make([]*lgConn, cfg.Conns)
	for i := range conns {
		c, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			return LoadResult{}, fmt.Errorf("loadgen: %w", err)
		}
		c.SetReadBuffer(4 << 20)
		c.SetWriteBuffer(4 << 20)
		defer c.Close()
		conns[i] = &lgConn{conn: c, tokens: make(chan struct{}, cfg.Window), lat: make([]time.Duration, 0, 1<<16)}
	}
	var countMu sync.Mutex
	total := 0
	done := func() {
		if cfg.Count <= 0 {
			return
		}
		countMu.Lock()
		total++
		if total >= cfg.Count {
			cancel()
		}
		countMu.Unlock()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for ci, lc := range conns {
		wg.Add(2)
		go func() { defer wg.Done(); lc.read(ctx, cfg, done) }()
		go func() { defer wg.Done(); lc.send(ctx, cfg, ci) }()
	}
	<-ctx.Done()
	elapsed := time.Since(start)
	for _, lc := range conns {
		lc.conn.SetReadDeadline(time.Now()) // wake the readers
	}
	wg.Wait()
	var res LoadResult
	var lat []time.Duration
	for _, lc := range conns {
		res.Sent += lc.res.Sent
		res.Accepts += lc.res.Accepts
		res.Rejects += lc.res.Rejects
		res.Timeouts += lc.res.Timeouts
		res.Invalid += lc.res.Invalid
		lat = append(lat, lc.lat...)
	}
	res.Elapsed = elapsed
	res.Rate = float64(res.Accepts+res.Rejects) / elapsed.Seconds()
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		res.P50 = lat[len(lat)/2]
		res.P99 = lat[len(lat)*99/100]
		res.Max = lat[len(lat)-1]
	}
	return res, nil
}

func (lc *lgConn) send(ctx context.Context, cfg LoadConfig, ci int) {
	i := ci
	sweep := time.NewTicker(cfg.Timeout / 4)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case lc.tokens <- struct{}{}:
		case <-sweep.C:
			lc.expire(cfg.Timeout)
			continue
		}
		m := cfg.Mobiles[i%len(cfg.Mobiles)]
		i += cfg.Conns
		p := radius.New(radius.CodeAccessRequest, cfg.Secret)
		rfc2865.UserName_SetString(p, m.User)
		rfc2865.UserPassword_SetString(p, m.Password)
		rfc2865.CallingStationID_SetString(p, m.Device)
		lc.mu.Lock()
		id := lc.next
		for lc.slots[id].busy {
			id++
		}
		lc.next = id + 1
		p.Identifier = id
		b, err := aaa.EncodeRequest(p)
		if err != nil {
			lc.mu.Unlock()
			<-lc.tokens
			continue
		}
		lc.slots[id] = slot{busy: true, sent: time.Now(), req: b}
		lc.res.Sent++
		lc.mu.Unlock()
		if _, err := lc.conn.Write(b); err != nil && ctx.Err() != nil {
			return
		}
	}
}

func (lc *lgConn) expire(timeout time.Duration) {
	now := time.Now()
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for i := range lc.slots {
		if s := &lc.slots[i]; s.busy && now.Sub(s.sent) > timeout {
			s.busy = false
			lc.res.Timeouts++
			<-lc.tokens
		}
	}
}

func (lc *lgConn) read(ctx context.Context, cfg LoadConfig, done func()) {
	buf := make([]byte, radius.MaxPacketLength)
	for {
		n, err := lc.conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			continue
		}
		now := time.Now()
		r := buf[:n]
		if n < 20 {
			continue
		}
		lc.mu.Lock()
		s := &lc.slots[r[1]]
		if !s.busy || !radius.IsAuthenticResponse(r, s.req, cfg.Secret) {
			lc.res.Invalid++
			lc.mu.Unlock()
			continue
		}
		s.busy = false
		lc.lat = append(lc.lat, now.Sub(s.sent))
		switch radius.Code(r[0]) {
		case radius.CodeAccessAccept:
			lc.res.Accepts++
		default:
			lc.res.Rejects++
		}
		lc.mu.Unlock()
		<-lc.tokens
		done()
	}
}
