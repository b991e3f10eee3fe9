package control

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
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
		Resync   time.Duration `yaml:"lb_resync"` // re-assert every state on every LB this often
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

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	var c Config
	c.StateDir = "/var/lib/samepath-control"
	c.Radius.Auth, c.Radius.Acct = ":1812", ":1813"
	c.Radius.SessionTimeout, c.Radius.AcctInterimInterval = 24*time.Hour, 5*time.Minute
	c.Sessions.InterimTimeout, c.Sessions.DormantTimeout, c.Sessions.PendingTimeout = 15*time.Minute, 2*time.Hour, 2*time.Minute
	c.Sessions.Resync = 10 * time.Second
	c.Sessions.PushMinBackoff, c.Sessions.PushMaxBackoff = 100*time.Millisecond, 30*time.Second
	c.Health.Interval, c.Health.Timeout, c.Health.Fall, c.Health.Rise, c.Health.Resync = 2*time.Second, time.Second, 3, 2, 30*time.Second
	c.API.Listen = "127.0.0.1:9190"
	c.Authz.Resync = 30 * time.Second
	c.PBKDF2Iter = aaa.DefaultPBKDF2Iter
	return c
}

// LoadConfig reads a YAML file over the defaults.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("parse config %s: %w", path, err)
	}
	return c, c.Validate()
}

// Validate checks c.
func (c *Config) Validate() error {
	if c.StateDir == "" {
		return errors.New("config: state_dir is empty")
	}
	if len(c.Radius.Clients) == 0 {
		return errors.New("config: radius.clients is empty")
	}
	if c.Sessions.DormantTimeout <= 0 || c.Sessions.PendingTimeout <= 0 {
		return errors.New("config: sessions.dormant_timeout and pending_timeout must be positive")
	}
	for i := range c.Gateways {
		if err := aaa.ValidateGateway(&c.Gateways[i]); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	for _, lb := range c.LBs {
		if lb.API == "" {
			return fmt.Errorf("config: lb %q has no api", lb.Name)
		}
	}
	if _, _, err := NormalizeAuthz(c.Authz.T9, c.Authz.T8); err != nil {
		return fmt.Errorf("config: authz: %w", err)
	}
	if c.Authz.Resync < 0 {
		return errors.New("config: authz.resync must not be negative")
	}
	if c.Sessions.Resync < 0 {
		return errors.New("config: sessions.resync must not be negative")
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
	return nil
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
func ReadToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return t, nil
}

// LoadUsers reads a users YAML file.
func LoadUsers(path string) ([]aaa.User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	var us []aaa.User
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&us); err != nil {
		return nil, fmt.Errorf("parse users %s: %w", path, err)
	}
	return us, nil
}
