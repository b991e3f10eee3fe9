package control

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/health"
	"samepath/ctl/session"
	"samepath/internal/cfgfile"
)

// Config is samepath-control's YAML configuration.
type Config struct {
	StateDir   string `yaml:"state_dir"`
	SessionLog string `yaml:"session_log"` // default STATE_DIR/sessions.log

	Radius struct {
		Auth string `yaml:"auth"` // default ":1812"
		Acct string `yaml:"acct"` // default ":1813"
		// RequireMessageAuthenticator (default true): BlastRADIUS, CVE-2024-3596.
		RequireMessageAuthenticator *bool              `yaml:"require_message_authenticator"`
		Clients                     []aaa.ClientConfig `yaml:"clients"`
		SessionTimeout              time.Duration      `yaml:"session_timeout"`
		AcctInterimInterval         time.Duration      `yaml:"acct_interim_interval"`
		DupTTL                      time.Duration      `yaml:"duplicate_cache"`
		MaxInFlight                 int                `yaml:"max_in_flight"`
	} `yaml:"radius"`

	Sessions struct {
		InterimTimeout time.Duration `yaml:"interim_timeout"` // Act -> Close without interim
		DormantTimeout time.Duration `yaml:"dormant_timeout"` // Dormant -> Close
		PendingTimeout time.Duration `yaml:"pending_timeout"` // Access-Accept without Start: address reclaimed
		// Resync: how often each gateway's T3 copy is read back and
		// repaired (a gateway that restarted lost it); also when a
		// gateway's health recovers. 0: only on recovery.
		Resync time.Duration `yaml:"resync"`
		// PushMinBackoff and PushMaxBackoff bound the outbox's retry
		// back-off for a gateway that does not acknowledge a session
		// event; the back-off doubles per failure and starts again from
		// the minimum when the gateway's health recovers.
		PushMinBackoff time.Duration `yaml:"push_min_backoff"`
		PushMaxBackoff time.Duration `yaml:"push_max_backoff"`
		// RestartGrace: after samepath-control starts, no timer closes a
		// restored session within this long (0, the default:
		// interim_timeout), so a NAS whose next Interim-Update is still
		// due keeps its sessions. The time samepath-control was down
		// never counts against a session's timers (session.Manager.Load).
		RestartGrace time.Duration `yaml:"restart_grace"`
	} `yaml:"sessions"`

	// Gateways seed T1 at every start (rows named here are replaced;
	// rows added with samepathctl persist).
	Gateways         []aaa.GatewayConfig `yaml:"gateways"`
	GatewayTokenFile string              `yaml:"gateway_token_file"` // bearer token for the gateways' control APIs

	LBs []struct {
		Name      string `yaml:"name"`
		API       string `yaml:"api"`
		TokenFile string `yaml:"token_file"`
	} `yaml:"lbs"`

	Health struct {
		Disabled bool          `yaml:"disabled"`
		Interval time.Duration `yaml:"interval"`
		Timeout  time.Duration `yaml:"timeout"`
		Fall     int           `yaml:"fall"`
		Rise     int           `yaml:"rise"`
		// Resync: re-assert every state on every LB this often (0:
		// never), and read every LB's T4 back (T4View; 0: every 30s).
		Resync time.Duration `yaml:"lb_resync"`
	} `yaml:"health"`

	API struct {
		Listen    string `yaml:"listen"`     // default 127.0.0.1:9190
		TokenFile string `yaml:"token_file"` // required when Listen is not loopback
	} `yaml:"api"`

	// Authz seeds the service authorization tables (R-AUTH-1) at every
	// start: a row named here replaces the stored row of the same key (T9
	// by address, T8 by device and service type); rows set with
	// samepathctl persist. With rows here or set through the API, the
	// control process owns the gateways' T8/T9 and pushes them to every
	// gateway of T1.
	Authz struct {
		Resync time.Duration `yaml:"resync"` // read each gateway's tables back this often, push when different
		T9     []api.T9Row   `yaml:"t9"`
		T8     []api.T8Row   `yaml:"t8"`
	} `yaml:"authz"`

	// UsersFile seeds T2 at every start (a YAML list of users).
	UsersFile  string `yaml:"users_file"`
	PBKDF2Iter int    `yaml:"pbkdf2_iterations"`
}

// ExampleConfig is printed by samepath-control -h.
const ExampleConfig = `state_dir: /var/lib/samepath-control
radius:
  auth: ":1812"
  acct: ":1813"
  require_message_authenticator: true
  clients:
    # disconnect_port (RFC 5176): terminate hangs up at the NAS; lb_mac: the LB behind
    # these NASes (its gateway-side MAC), so a resume here moves the down path at once
    - {prefix: 10.0.0.0/24, secret: change-me, name: nas-pool, disconnect_port: 3799, lb_mac: "02:00:00:00:02:01"}
  session_timeout: 24h
  acct_interim_interval: 5m
sessions:
  interim_timeout: 15m     # Act -> Close when no Interim-Update arrives
  dormant_timeout: 2h      # Dormant -> Close (session timer)
  pending_timeout: 2m      # Access-Accept without Accounting Start
  resync: 10s              # read each gateway's T3 copy back, repair it (a restarted gateway lost it)
  push_min_backoff: 100ms  # session event retries to an unreachable gateway: back-off from ...
  push_max_backoff: 30s    # ... up to this; a gateway whose health recovers gets its backlog at once
  restart_grace: 15m       # after a restart no timer closes a session sooner (default: interim_timeout)
gateways:
  - {name: gw1, range: 10.100.0.0/24, api: "http://192.0.2.11:9180", mac: "02:00:00:00:01:01"}
  - {name: gw2, range: 10.100.1.0/24, api: "http://192.0.2.12:9180", mac: "02:00:00:00:01:02"}
lbs:
  - {name: lb1, api: "http://192.0.2.1:9180"}
health: {interval: 2s, timeout: 1s, fall: 3, rise: 2, lb_resync: 30s}
authz:                     # service authorization, pushed to every gateway (FIG. 25-27)
  resync: 30s
  t9:                      # representative IP -> service type
    - {rep: 10.30.0.1, service_type: web}
    - {rep: 10.30.0.2, service_type: video}
  t8:                      # device x service type -> allowed (no row: not allowed)
    - {device: IMEI-0001, service_type: web, allowed: true}
    - {device: IMEI-0001, service_type: video, allowed: true}
api:
  listen: 127.0.0.1:9190
  token_file: ""           # required when listen is not loopback
users_file: /etc/samepath/users.yaml
# users.yaml:
# - {id: alice, password: s3cret, device_id: "IMEI-0001", phone: "+81-90-0000-0001"}
# - {id: bob, password: chap-pw, chap: true}    # CHAP needs the clear password stored
`

// DefaultConfig returns the defaults: what a key absent from the file
// gets. Every value is valid; a key given with an invalid value is an
// error (Validate), never replaced by its default.
func DefaultConfig() Config {
	var c Config
	rd := aaa.DefaultServerConfig()
	c.StateDir = "/var/lib/samepath-control"
	c.Radius.Auth, c.Radius.Acct = rd.AuthAddr, rd.AcctAddr
	c.Radius.SessionTimeout, c.Radius.AcctInterimInterval = 24*time.Hour, 5*time.Minute
	c.Radius.DupTTL, c.Radius.MaxInFlight = rd.DupTTL, rd.MaxInFlight
	c.Sessions.InterimTimeout, c.Sessions.DormantTimeout, c.Sessions.PendingTimeout = 15*time.Minute, 2*time.Hour, 2*time.Minute
	c.Sessions.Resync = 10 * time.Second
	c.Sessions.PushMinBackoff, c.Sessions.PushMaxBackoff = 100*time.Millisecond, 30*time.Second
	c.Health.Interval, c.Health.Timeout, c.Health.Fall, c.Health.Rise, c.Health.Resync = 2*time.Second, time.Second, 3, 2, 30*time.Second
	c.API.Listen = "127.0.0.1:9190"
	c.Authz.Resync = 30 * time.Second
	c.PBKDF2Iter = aaa.DefaultPBKDF2Iter
	return c
}

// LoadConfig reads a YAML file over the defaults and validates its values
// (Validate). It returns the decoded config even with an error.
// samepath-control -check and New then run Check, which adds the files
// and directories the start uses.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	if _, err := cfgfile.Decode(b, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	err = c.Validate() // normalizes the gateway rows
	return c, err
}

// maxPBKDF2Iter is the largest work factor a stored hash may carry (aaa
// refuses to check hashes beyond it).
const maxPBKDF2Iter = 10_000_000

// Validate checks every value of c; errors name the YAML key. It reads no
// file (Check does). Gateway rows are normalized in place.
func (c *Config) Validate() error {
	if c.StateDir == "" {
		return errors.New("config: state_dir is empty")
	}
	r := &c.Radius
	if err := udpAddr("radius.auth", r.Auth); err != nil {
		return err
	}
	if err := udpAddr("radius.acct", r.Acct); err != nil {
		return err
	}
	if len(r.Clients) == 0 {
		return errors.New("config: radius.clients is empty")
	}
	for i, cl := range r.Clients {
		key := fmt.Sprintf("radius.clients[%d]", i)
		if !validClientPrefix(cl.Prefix) {
			return fmt.Errorf("config: %s.prefix %q: want an address or a prefix", key, cl.Prefix)
		}
		if cl.Secret == "" {
			return fmt.Errorf("config: %s.secret is empty", key)
		}
		if cl.DisconnectPort < 0 || cl.DisconnectPort > 65535 {
			return fmt.Errorf("config: %s.disconnect_port %d: want 0 (none) or 1..65535", key, cl.DisconnectPort)
		}
	}
	if r.SessionTimeout < 0 {
		return fmt.Errorf("config: radius.session_timeout %v: want >= 0 (0: not sent)", r.SessionTimeout)
	}
	if r.AcctInterimInterval < 0 {
		return fmt.Errorf("config: radius.acct_interim_interval %v: want >= 0 (0: not sent)", r.AcctInterimInterval)
	}
	if r.DupTTL <= 0 {
		return fmt.Errorf("config: radius.duplicate_cache %v: want > 0", r.DupTTL)
	}
	if r.MaxInFlight <= 0 {
		return fmt.Errorf("config: radius.max_in_flight %d: want >= 1", r.MaxInFlight)
	}
	s := c.Sessions
	if s.InterimTimeout < 0 {
		return fmt.Errorf("config: sessions.interim_timeout %v: want >= 0", s.InterimTimeout)
	}
	if s.DormantTimeout <= 0 {
		return fmt.Errorf("config: sessions.dormant_timeout %v: want > 0", s.DormantTimeout)
	}
	if s.PendingTimeout <= 0 {
		return fmt.Errorf("config: sessions.pending_timeout %v: want > 0", s.PendingTimeout)
	}
	if s.Resync < 0 {
		return fmt.Errorf("config: sessions.resync %v: want >= 0 (0: only on recovery)", s.Resync)
	}
	if err := c.validateGateways(); err != nil {
		return err
	}
	for i, lb := range c.LBs {
		if lb.API == "" {
			return fmt.Errorf("config: lbs[%d].api: lb %q has no api", i, lb.Name)
		}
		if u, err := url.Parse(lb.API); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config: lbs[%d].api %q: want an http:// or https:// URL", i, lb.API)
		}
	}
	h := c.Health
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"health.interval", h.Interval}, {"health.timeout", h.Timeout}} {
		if d.v <= 0 {
			return fmt.Errorf("config: %s %v: want > 0", d.key, d.v)
		}
	}
	if h.Fall < 1 {
		return fmt.Errorf("config: health.fall %d: want >= 1", h.Fall)
	}
	if h.Rise < 1 {
		return fmt.Errorf("config: health.rise %d: want >= 1", h.Rise)
	}
	if h.Resync < 0 {
		return fmt.Errorf("config: health.lb_resync %v: want >= 0 (0: never)", h.Resync)
	}
	if _, _, err := NormalizeAuthz(c.Authz.T9, c.Authz.T8); err != nil {
		return fmt.Errorf("config: authz.%w", err)
	}
	if c.Authz.Resync < 0 {
		return fmt.Errorf("config: authz.resync %v: want >= 0", c.Authz.Resync)
	}
	if _, _, err := net.SplitHostPort(c.API.Listen); err != nil {
		return fmt.Errorf("config: api.listen %q: want host:port: %w", c.API.Listen, err)
	}
	if c.Sessions.PushMinBackoff <= 0 || c.Sessions.PushMaxBackoff < c.Sessions.PushMinBackoff {
		return fmt.Errorf("config: sessions.push_min_backoff (%v) must be positive and push_max_backoff (%v) at least as long", c.Sessions.PushMinBackoff, c.Sessions.PushMaxBackoff)
	}
	if c.Sessions.RestartGrace < 0 {
		return errors.New("config: sessions.restart_grace must not be negative")
	}
	if !isLoopback(c.API.Listen) && c.API.TokenFile == "" {
		return fmt.Errorf("config: api.listen %s is not loopback: api.token_file is required", c.API.Listen)
	}
	if c.PBKDF2Iter < 1 || c.PBKDF2Iter > maxPBKDF2Iter {
		return fmt.Errorf("config: pbkdf2_iterations %d: want 1..%d", c.PBKDF2Iter, maxPBKDF2Iter)
	}
	// What the parts check themselves, so that nothing the start refuses
	// passes here.
	rc := c.serverConfig()
	if err := rc.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	hc := c.healthConfig()
	if err := hc.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	sc := c.sessionConfig()
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// validateGateways checks the T1 seed rows: each valid, names unique,
// ranges disjoint (what Pool.PutGateway refuses at the start).
func (c *Config) validateGateways() error {
	prefixes := make([][]netip.Prefix, len(c.Gateways))
	for i := range c.Gateways {
		g := &c.Gateways[i]
		if err := aaa.ValidateGateway(g); err != nil {
			return fmt.Errorf("config: gateways[%d]: %w", i, err)
		}
		prefixes[i] = g.Prefixes() // normalized by ValidateGateway
		for j := range i {
			o := c.Gateways[j]
			if o.Name == g.Name {
				return fmt.Errorf("config: gateways[%d].name %s: listed twice (gateways[%d])", i, g.Name, j)
			}
			for _, p := range prefixes[i] {
				for _, q := range prefixes[j] {
					if q.Overlaps(p) {
						return fmt.Errorf("config: gateways[%d].%s %s of gateway %s overlaps gateways[%d].%s %s of gateway %s", i, rangeKey(p), p, g.Name, j, rangeKey(q), q, o.Name)
					}
				}
			}
		}
	}
	return nil
}

// rangeKey is the config key of a gateway's pool p.
func rangeKey(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "range"
	}
	return "range6"
}

// Check is the validation samepath-control -check and New both run:
// Validate, then what the start reads and writes: the state directory and
// session log must be writable, the token files readable and not empty,
// the users file a valid list of users.
func (c *Config) Check() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := cfgfile.WritableDir(c.StateDir, true); err != nil {
		return fmt.Errorf("config: state_dir: %w", err)
	}
	if db := filepath.Join(c.StateDir, "state.db"); exists(db) {
		if err := cfgfile.Openable(db, os.O_RDWR); err != nil {
			return fmt.Errorf("config: state_dir: %w", err)
		}
	}
	if c.SessionLog != "" {
		if err := cfgfile.WritableFile(c.SessionLog); err != nil {
			return fmt.Errorf("config: session_log: %w", err)
		}
	} else if err := cfgfile.WritableFile(filepath.Join(c.StateDir, "sessions.log")); err != nil && exists(c.StateDir) {
		return fmt.Errorf("config: state_dir: %w", err)
	}
	if _, err := ReadToken(c.API.TokenFile); err != nil {
		return fmt.Errorf("config: api.token_file: %w", err)
	}
	if _, err := ReadToken(c.GatewayTokenFile); err != nil {
		return fmt.Errorf("config: gateway_token_file: %w", err)
	}
	for i, lb := range c.LBs {
		if _, err := ReadToken(lb.TokenFile); err != nil {
			return fmt.Errorf("config: lbs[%d].token_file: %w", i, err)
		}
	}
	if c.UsersFile != "" {
		if _, err := checkUsers(c.UsersFile); err != nil {
			return fmt.Errorf("config: users_file: %w", err)
		}
	}
	return nil
}

// serverConfig is the RADIUS server's config.
func (c *Config) serverConfig() aaa.ServerConfig {
	rc := aaa.DefaultServerConfig()
	rc.AuthAddr, rc.AcctAddr, rc.Clients = c.Radius.Auth, c.Radius.Acct, c.Radius.Clients
	if c.Radius.RequireMessageAuthenticator != nil {
		rc.RequireMessageAuthenticator = *c.Radius.RequireMessageAuthenticator
	}
	rc.SessionTimeout, rc.AcctInterimInterval = c.Radius.SessionTimeout, c.Radius.AcctInterimInterval
	rc.DupTTL, rc.MaxInFlight = c.Radius.DupTTL, c.Radius.MaxInFlight
	return rc
}

// healthConfig is the gateway health monitor's config.
func (c *Config) healthConfig() health.Config {
	return health.Config{Interval: c.Health.Interval, Timeout: c.Health.Timeout, Fall: c.Health.Fall, Rise: c.Health.Rise}
}

// sessionConfig is the session manager's config.
func (c *Config) sessionConfig() session.Config {
	sc := session.DefaultConfig()
	sc.InterimTimeout, sc.DormantTimeout = c.Sessions.InterimTimeout, c.Sessions.DormantTimeout
	sc.RestartGrace = c.Sessions.RestartGrace // 0: interim_timeout
	return sc
}

// validClientPrefix is aaa's rule for a RADIUS client: an address or a prefix.
func validClientPrefix(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func udpAddr(key, addr string) error {
	if _, err := net.ResolveUDPAddr("udp", addr); err != nil {
		return fmt.Errorf("config: %s %q: want host:port: %w", key, addr, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// checkUsers reads a users file and checks each row as T2 will at the
// start (with a throwaway work factor: the hash is not kept).
func checkUsers(path string) ([]aaa.User, error) {
	us, err := LoadUsers(path)
	if err != nil {
		return nil, err
	}
	t2 := aaa.NewUsers(nil, 1)
	seen := make(map[string]int, len(us))
	for i, u := range us {
		if j, ok := seen[u.ID]; ok {
			return nil, fmt.Errorf("user %s: listed twice ([%d] and [%d])", u.ID, j, i)
		}
		seen[u.ID] = i
		if err := t2.ValidateUser(&u); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return us, nil
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// ReadToken reads a token file (trimmed); empty path gives "".
func ReadToken(path string) (string, error) { return cfgfile.ReadToken(path) }

// LoadUsers reads a users YAML file (a list of users).
func LoadUsers(path string) ([]aaa.User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	var us []aaa.User
	if _, err := cfgfile.Decode(b, &us); err != nil {
		return nil, fmt.Errorf("users %s: %w", path, err)
	}
	return us, nil
}
