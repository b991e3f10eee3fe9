package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"samepath/ctl/aaa"
	"samepath/ctl/health"
	"samepath/ctl/session"
	"samepath/ctl/store"
)

// Control is one samepath-control process: store, AAA, sessions, health,
// HTTP API. New builds it, Run serves until the context ends.
type Control struct {
	cfg     Config
	log     *slog.Logger
	started time.Time

	St      *store.Store
	Pool    *aaa.Pool
	Users   *aaa.Users
	Out     *session.Outbox
	Mgr     *session.Manager
	Radius  *aaa.Server
	Monitor *health.Monitor
	LBSync  *health.LBSync
	// Authz holds T8/T9; AuthzSync pushes them to the gateways.
	Authz     *AuthzTables
	AuthzSync *AuthzSync
	// SessionSync repairs the gateways' T3 copies.
	SessionSync *SessionSync
	// T4 is the LBs' T4 as read back: which gateways substitute for
	// which range (the session manager's Config.Substitutes).
	T4 *T4View

	apiToken string
	gwToken  string
	apiLn    net.Listener
	httpSrv  *http.Server
	bg       sync.WaitGroup // Disconnect-Requests in flight
}

// New checks cfg (Check: what samepath-control -check runs), opens the
// state, applies the configured seeds and binds every socket.
func New(cfg Config, log *slog.Logger) (*Control, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Control{cfg: cfg, log: log, started: time.Now()}
	var err error
	if c.apiToken, err = ReadToken(cfg.API.TokenFile); err != nil {
		return nil, err
	}
	if c.gwToken, err = ReadToken(cfg.GatewayTokenFile); err != nil {
		return nil, err
	}
	sc := store.DefaultConfig(cfg.StateDir)
	sc.LogPath = cfg.SessionLog
	if c.St, err = store.Open(sc); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.close()
		}
	}()
	c.Pool = aaa.NewPool(c.St, time.Now, cfg.Sessions.PendingTimeout)
	if err := c.Pool.Load(c.St); err != nil {
		return nil, err
	}
	for _, g := range cfg.Gateways {
		if _, err := c.Pool.PutGateway(g); err != nil {
			return nil, fmt.Errorf("config gateway: %w", err)
		}
	}
	if c.Authz, err = NewAuthzTables(c.St, cfg.Authz.T9, cfg.Authz.T8); err != nil {
		return nil, err
	}
	c.AuthzSync = NewAuthzSync(AuthzSyncConfig{Resync: cfg.Authz.Resync, Log: log}, c.Authz, c.gatewayTargets)
	c.Users = aaa.NewUsers(c.St, cfg.PBKDF2Iter)
	if err := c.Users.Load(c.St); err != nil {
		return nil, err
	}
	if cfg.UsersFile != "" {
		us, err := LoadUsers(cfg.UsersFile)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			if old, found := c.Users.Get(u.ID); found && u.Password != "" && samePassword(c.Users, old, u) {
				// Unchanged password: keep the stored hash (no PBKDF2 per start).
				u.Password, u.Hash, u.Secret = "", old.Hash, old.Secret
			}
			if _, err := c.Users.Put(u); err != nil {
				return nil, fmt.Errorf("users file: %w", err)
			}
		}
	}
	c.Out = session.NewOutbox(session.OutboxConfig{MinBackoff: cfg.Sessions.PushMinBackoff, MaxBackoff: cfg.Sessions.PushMaxBackoff, Log: log}, c.St, func(gw string) (string, string, bool) {
		g, ok := c.Pool.Gateway(gw)
		return g.API, c.gwToken, ok && g.API != ""
	})
	if err := c.Out.Load(); err != nil {
		return nil, err
	}
	var lbs []health.LB
	for _, l := range cfg.LBs {
		tok, err := ReadToken(l.TokenFile)
		if err != nil {
			return nil, err
		}
		lbs = append(lbs, health.LB{Name: l.Name, URL: l.API, Token: tok})
	}
	// A change of the LBs' T4 reads every gateway's T3 copy back: a new
	// substitute gets its rows' sessions, a former one loses them.
	c.T4 = NewT4View(lbs, cfg.Health.Resync, c.Pool.Gateways, func() { c.SessionSync.Force("") })
	mc := cfg.sessionConfig()
	mc.Substitutes = c.T4.Substitutes
	if c.Mgr, err = session.New(mc, c.St, c.Pool, c.Out); err != nil {
		return nil, err
	}
	if err := c.Mgr.Load(); err != nil {
		return nil, err
	}
	c.SessionSync = NewSessionSync(cfg.Sessions.Resync, c.Mgr, c.gatewayTargets, log)
	if c.Radius, err = aaa.NewServer(c.serverConfig(), c.Users, c.Pool, c.Mgr, c.St); err != nil {
		return nil, err
	}
	c.LBSync = health.NewLBSync(lbs, cfg.Health.Resync, log)
	if c.Monitor, err = health.NewMonitor(cfg.healthConfig(), c.healthTargets, health.HTTPProber(&http.Client{}), c.healthChanged); err != nil {
		return nil, err
	}
	c.Monitor.SetSync(c.syncProbe, c.syncEvent)
	if err := c.Radius.Listen(); err != nil {
		return nil, err
	}
	if c.apiLn, err = net.Listen("tcp", cfg.API.Listen); err != nil {
		return nil, fmt.Errorf("api listen %s: %w", cfg.API.Listen, err)
	}
	c.httpSrv = &http.Server{Handler: c.handler(), ReadHeaderTimeout: 5 * time.Second}
	if err := c.St.Sync(context.Background()); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// serverConfig is the RADIUS server's config with the process's logger.
func (c *Control) serverConfig() aaa.ServerConfig {
	rc := c.cfg.serverConfig()
	rc.Log = c.log
	return rc
}

func samePassword(us *aaa.Users, old, u aaa.User) bool {
	if u.CHAP != old.CHAP {
		return false
	}
	if u.CHAP {
		return old.Secret == u.Password
	}
	_, err := us.CheckPAP(old.ID, []byte(u.Password))
	return err == nil
}

func (c *Control) healthTargets() []health.Target {
	if c.cfg.Health.Disabled {
		return nil
	}
	var ts []health.Target
	for _, g := range c.Pool.Gateways() {
		if g.API != "" {
			ts = append(ts, health.Target{Kind: health.KindGateway, Name: g.Name, URL: health.HealthURL(g.API)})
		}
	}
	// Extension point: the actual servers of each gateway's T6 join here
	// (Kind: health.KindServer) once the gateway API lists them.
	return ts
}

func (c *Control) healthChanged(t health.Target, up bool) {
	if t.Kind != health.KindGateway {
		return
	}
	h := aaa.HealthDown
	if up {
		h = aaa.HealthUp
	}
	g, changed := c.Pool.SetHealth(t.Name, h)
	if !changed {
		return
	}
	c.log.Info("gateway health changed", "gateway", t.Name, "health", h, "lb_state", aaa.LBState(g))
	c.LBSync.Set(g.MAC, aaa.LBState(g))
	if up {
		c.Out.Wake(t.Name)          // its pending session events go now, not after the back-off
		c.AuthzSync.Force(t.Name)   // it may have restarted with its own tables
		c.SessionSync.Force(t.Name) // and without its T3 copy (leaving what the outbox still holds to it)
	}
}

// gatewayTargets are the gateways of T1 with a control API (the authz
// pushers and the session sync reach them).
func (c *Control) gatewayTargets() []AuthzTarget {
	var ts []AuthzTarget
	for _, g := range c.Pool.Gateways() {
		if g.API != "" {
			ts = append(ts, AuthzTarget{Name: g.Name, URL: g.API, Token: c.gwToken})
		}
	}
	return ts
}

// AuthAddr, AcctAddr and APIAddr are the bound addresses.
func (c *Control) AuthAddr() net.Addr { return c.Radius.AuthAddr() }
func (c *Control) AcctAddr() net.Addr { return c.Radius.AcctAddr() }
func (c *Control) APIAddr() net.Addr  { return c.apiLn.Addr() }

// Run serves until ctx ends, then stops everything and closes the state.
func (c *Control) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Gateways nobody probes: tell the LBs their administrative state now.
	for _, g := range c.Pool.Gateways() {
		if g.API == "" || c.cfg.Health.Disabled {
			c.LBSync.Set(g.MAC, aaa.LBState(g))
		}
	}
	c.Out.Start(ctx)
	c.LBSync.Start(ctx)
	c.AuthzSync.Start(ctx)
	c.SessionSync.Start(ctx)
	c.T4.Start(ctx)
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(4)
	go func() { defer wg.Done(); errc <- c.Radius.Serve(ctx) }()
	go func() { defer wg.Done(); c.Mgr.Run(ctx) }()
	go func() { defer wg.Done(); c.Monitor.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := c.httpSrv.Serve(c.apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("api: %w", err)
			cancel()
		}
	}()
	c.log.Info("samepath-control running", "auth", c.AuthAddr().String(), "acct", c.AcctAddr().String(), "api", c.APIAddr().String(), "state", c.cfg.StateDir)
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	c.httpSrv.Shutdown(sctx)
	scancel()
	wg.Wait()
	c.Out.Wait()
	c.LBSync.Wait()
	c.AuthzSync.Wait()
	c.SessionSync.Wait()
	c.T4.Wait()
	c.bg.Wait()
	err := c.close()
	c.log.Info("samepath-control stopped", "uptime", time.Since(c.started).Round(time.Second).String(), "err", err)
	select {
	case e := <-errc:
		if e != nil {
			return e
		}
	default:
	}
	return err
}

func (c *Control) close() error {
	if c.Radius != nil {
		c.Radius.Close()
	}
	if c.apiLn != nil {
		c.apiLn.Close()
	}
	if c.St != nil {
		return c.St.Close()
	}
	return nil
}

// StatePath is where the bbolt file lives.
func (c *Control) StatePath() string { return filepath.Join(c.cfg.StateDir, "state.db") }

// disconnect sends a Disconnect-Request (RFC 5176) for terminated session
// s to the NAS it last started at, logs the outcome (counted in the
// RADIUS counters) and delivers it on the returned channel (buffered: no
// one has to read it); nil when s has no NAS. The session is already
// closed here and its gateway told, so the NAS's answer changes nothing
// but the NAS: it hangs up the subscriber. The request runs in the
// background, so it is sent even when the caller stops waiting.
func (c *Control) disconnect(s session.Session) <-chan error {
	if s.ID == "" || !s.NASAddr.IsValid() {
		return nil
	}
	acctID := s.AcctSessionID()
	d := aaa.Disconnect{NAS: s.NASAddr, AcctSessionID: acctID, User: s.User, Device: s.Device, IP: s.IP}
	done := make(chan error, 1)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := c.Radius.Disconnect(ctx, d)
		switch {
		case err == nil:
			c.log.Info("disconnect acknowledged", "session", s.ID, "nas", s.NASAddr, "acct_session_id", acctID)
		case errors.Is(err, aaa.ErrNoDisconnect):
		default:
			c.log.Warn("disconnect", "session", s.ID, "nas", s.NASAddr, "acct_session_id", acctID, "err", err)
		}
		done <- err
	}()
	return done
}

// disconnectOutcome names a Disconnect's result for Terminated.
func disconnectOutcome(err error) (outcome, detail string) {
	var nak *aaa.DisconnectNAK
	switch {
	case err == nil:
		return DisconnectACK, ""
	case errors.Is(err, aaa.ErrNoDisconnect):
		return DisconnectNotSent, err.Error()
	case errors.As(err, &nak):
		return DisconnectNAK, err.Error()
	}
	return DisconnectFailed, err.Error()
}
