package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"samepath/tcpproxy"
)

// Interfaces no test machine has (the bad-input cases never reach them
// unless the case is about them).
const (
	noIf0 = "sptnope0"
	noIf1 = "sptnope1"
)

const baseLB = `role: lb
api: 127.0.0.1:9180
api_token_file: DIR/api.token
xsk: {frames: 8192, frame_size: 2048, ring_size: 1024, batch: 64}
workers: {queues: 1, cpus: [0]}
lb:
  ingress: {iface: IF0, next_hop_mac: "02:00:00:00:01:01"}
  gateway_side: {iface: IF1}
  exclude: [10.1.0.9]
  t4:
    - range: 10.101.0.0/24
      gateways: [{mac: "02:00:00:00:10:01", state: up}]
`

const baseGW = `role: gw
api: 127.0.0.1:9180
api_token_file: DIR/api.token
xsk: {frames: 8192, frame_size: 2048, ring_size: 1024, batch: 64}
workers: {queues: 1}
gw:
  lan: {iface: IF0}
  servers: {iface: IF1}
  nat: {addrs: [10.20.0.101], port_min: 1024, port_max: 65535, capacity: 65536, udp_timeout: 5m}
  lb_cache: 1024
  services:
    - {name: web, rep: "10.30.0.1:80", proto: tcp, servers: [{addr: "10.20.0.11:80"}]}
  probe: {interval: 1s, timeout: 500ms, fall: 3, rise: 2}
  accounting: {log: DIR/acct/accounting.log, interim: 5m, sync_interval: 200ms, keep: 4, max_size: 1048576}
  authz: {t9: [{rep: 10.30.0.1, service_type: web}]}
`

// writeConfig writes y (DIR: a new directory, IF0/IF1: the interfaces)
// with the token file and accounting directory it names.
func writeConfig(t *testing.T, y, if0, if1 string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api.token"), []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "acct"), 0o750); err != nil {
		t.Fatal(err)
	}
	y = strings.NewReplacer("DIR", dir, "IF0", if0, "IF1", if1).Replace(y)
	path = filepath.Join(dir, "samepathd.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

// check is what samepathd -check runs.
func check(path string) (Config, error) {
	cfg, err := Load(path)
	if err == nil {
		err = cfg.Check()
	}
	return cfg, err
}

func edit(base, old, new string) string {
	if !strings.Contains(base, old) {
		panic("config has no " + old)
	}
	return strings.Replace(base, old, new, 1)
}

// TestConfigRefused: every bad input is refused by -check with an error
// naming its key (and what else it must name), and Run refuses it with
// the same error before it opens anything.
func TestConfigRefused(t *testing.T) {
	type tcase struct {
		name     string
		y        string
		if0, if1 string // default noIf0, noIf1
		files    func(t *testing.T, dir string)
		want     []string // in the error: the key first
		decode   bool     // the file does not decode: no config to run
	}
	lb := func(name, old, new string, want ...string) tcase {
		return tcase{name: "lb " + name, y: edit(baseLB, old, new), want: want}
	}
	gw := func(name, old, new string, want ...string) tcase {
		return tcase{name: "gw " + name, y: edit(baseGW, old, new), want: want}
	}
	cases := []tcase{
		gw("lb_cache -5", "lb_cache: 1024", "lb_cache: -5", "gw.lb_cache", "-5"),
		gw("lb_cache 0", "lb_cache: 1024", "lb_cache: 0", "gw.lb_cache"),
		gw("sync without a name", "lb_cache: 1024", "lb_cache: 1024\n  sync: {listen: 127.0.0.1:7800}", "gw.sync", "name"),
		gw("sync peer nat", "lb_cache: 1024", "lb_cache: 1024\n  sync: {name: gw1, peers: [{name: gw2, addr: 127.0.0.1:7801, nat: [10.20.0.999]}]}", "gw.sync.peers", "10.20.0.999"),
		gw("sync peer addr", "lb_cache: 1024", "lb_cache: 1024\n  sync: {name: gw1, peers: [{name: gw2, addr: nowhere}]}", "gw.sync.peers[0].addr"),
		gw("sync peer is itself", "lb_cache: 1024", "lb_cache: 1024\n  sync: {name: gw1, peers: [{name: gw1, addr: 127.0.0.1:7801}]}", "gw.sync.peers[0]", "gw1"),
		gw("sync journal", "lb_cache: 1024", "lb_cache: 1024\n  sync: {name: gw1, journal: 1000}", "gw.sync.journal", "1000"),
		gw("sync batch", "lb_cache: 1024", "lb_cache: 1024\n  sync: {name: gw1, batch: -1s}", "gw.sync", "batch"),
		gw("sync peer nat is own", "lb_cache: 1024", "lb_cache: 1024\n  sync: {name: gw1, peers: [{name: gw2, addr: 127.0.0.1:7801, nat: [10.20.0.101]}]}", "gw.sync.peers", "10.20.0.101"),
		lb("frame_size 8192", "frame_size: 2048", "frame_size: 8192", "xsk.frame_size", "8192"),
		lb("frame_size 2^32", "frame_size: 2048", "frame_size: 4294967296", "xsk.frame_size", "4294967296"),
		lb("frame_size 1000", "frame_size: 2048", "frame_size: 1000", "xsk.frame_size"),
		gw("frame_size 8192", "frame_size: 2048", "frame_size: 8192", "xsk.frame_size"),
		lb("frames beyond the umem's limit", "frames: 8192", "frames: 2097152", "xsk.frames"),
		lb("frames below 4 rings", "frames: 8192", "frames: 1024", "xsk.frames"),
		lb("ring_size not a power of two", "ring_size: 1024", "ring_size: 1000", "xsk.ring_size"),
		lb("ring_size beyond the socket's limit", "frames: 8192, frame_size: 2048, ring_size: 1024", "frames: 1048576, frame_size: 2048, ring_size: 131072", "xsk.ring_size"),
		lb("batch 0", "batch: 64", "batch: 0", "xsk.batch"),
		lb("batch beyond a worker's", "frames: 8192, frame_size: 2048, ring_size: 1024, batch: 64", "frames: 65536, frame_size: 2048, ring_size: 16384, batch: 8192", "xsk.batch", "8192"),
		{name: "lb batch not a number", y: edit(baseLB, "batch: 64", "batch: many"), want: []string{"xsk.batch"}, decode: true},
		lb("queues 0", "queues: 1", "queues: 0", "workers.queues"),
		lb("cpu out of range", "cpus: [0]", "cpus: [100000]", "workers.cpus[0]"),
		lb("next_hop_mac", `next_hop_mac: "02:00:00:00:01:01"`, `next_hop_mac: "02:00"`, "lb.ingress.next_hop_mac"),
		lb("no next hop", `, next_hop_mac: "02:00:00:00:01:01"`, "", "lb.ingress.next_hop_mac"),
		lb("exclude", "exclude: [10.1.0.9]", "exclude: [10.1.0.999]", "lb.exclude[0]"),
		lb("t4 row", "range: 10.101.0.0/24", "range: 10.101.0.1/24", "lb.t4[0]"),
		lb("t4 mac", `{mac: "02:00:00:00:10:01", state: up}`, `{mac: "02:00", state: up}`, "lb.t4[0]"),
		lb("t4 overlap", "    - range: 10.101.0.0/24\n", "    - range: 10.101.0.0/25\n      gateways: [{mac: \"02:00:00:00:10:02\"}]\n    - range: 10.101.0.0/24\n", "lb.t4"),
		lb("same interfaces", "gateway_side: {iface: IF1}", "gateway_side: {iface: IF0}", "lb.gateway_side.iface"),
		lb("interface name too long", "gateway_side: {iface: IF1}", "gateway_side: {iface: abcdefghijklmnopq}", "lb.gateway_side.iface", "abcdefghijklmnopq"),
		{name: "lb unknown ingress interface", y: baseLB, want: []string{"lb.ingress.iface", noIf0}},
		{name: "lb ingress interface not Ethernet", y: baseLB, if0: "lo", want: []string{"lb.ingress.iface", "lo", "ethernet"}},
		{name: "gw unknown lan interface", y: baseGW, want: []string{"gw.lan.iface", noIf0}},
		{name: "lb missing token file", y: baseLB, files: rm("api.token"), want: []string{"api_token_file"}},
		{name: "lb empty token file", y: baseLB, files: write("api.token", " \n"), want: []string{"api_token_file"}},
		{name: "gw missing accounting directory", y: baseGW, files: rm("acct"), want: []string{"gw.accounting.log"}},
		{name: "gw accounting directory a file", y: baseGW, files: func(t *testing.T, dir string) { rm("acct")(t, dir); write("acct", "x")(t, dir) }, want: []string{"gw.accounting.log"}},
		gw("accounting keep 0", "keep: 4", "keep: 0", "gw.accounting.keep"),
		gw("accounting sync_interval 0", "sync_interval: 200ms", "sync_interval: 0s", "gw.accounting.sync_interval"),
		gw("accounting max_size too small", "max_size: 1048576", "max_size: 100", "gw.accounting.max_size"),
		gw("accounting negative interim", "interim: 5m", "interim: -5m", "gw.accounting.interim"),
		gw("probe fall 0", "fall: 3", "fall: 0", "gw.probe.fall"),
		gw("probe rise 0", "rise: 2", "rise: 0", "gw.probe.rise"),
		gw("probe timeout beyond interval", "timeout: 500ms", "timeout: 5s", "gw.probe.timeout"),
		gw("probe interval 0", "interval: 1s", "interval: 0s", "gw.probe.interval"),
		gw("nat capacity 0", "capacity: 65536", "capacity: 0", "gw.nat.capacity"),
		gw("nat port_min 0", "port_min: 1024", "port_min: 0", "gw.nat.port_min"),
		gw("nat port_min beyond port_max", "port_max: 65535", "port_max: 1000", "gw.nat.port_min"),
		{name: "gw nat port_max 70000", y: edit(baseGW, "port_max: 65535", "port_max: 70000"), want: []string{"gw.nat.port_max"}, decode: true},
		gw("nat udp_timeout 0", "udp_timeout: 5m", "udp_timeout: 0s", "gw.nat.udp_timeout"),
		gw("nat no addrs", "addrs: [10.20.0.101]", "addrs: []", "gw.nat.addrs"),
		gw("nat bad addr", "addrs: [10.20.0.101]", "addrs: [10.20.0.1011]", "gw.nat.addrs[0]"),
		gw("service", `rep: "10.30.0.1:80"`, `rep: "10.30.0.1"`, "gw.services[0]"),
		gw("service mode", `proto: tcp, servers`, `proto: tcp, mode: proxy, servers`, "gw.services[0]", "mode"),
		gw("terminate without terminator", `proto: tcp, servers`, `proto: tcp, mode: terminate, servers`, "gw.services[0]", "gw.terminate"),
		gw("terminate ports overlap T5", "lb_cache: 1024", "lb_cache: 1024\n  terminate: {port_min: 60000, port_max: 61000}",
			"gw.terminate.port_min..port_max", "gw.nat.port_min..port_max"),
		gw("terminate ports reversed", "port_max: 65535, capacity: 65536, udp_timeout: 5m}", "port_max: 49999, capacity: 65536, udp_timeout: 5m}\n  terminate: {port_min: 60000, port_max: 50000}", "gw.terminate.port_min"),
		gw("terminate max_conns", "port_max: 65535, capacity: 65536, udp_timeout: 5m}", "port_max: 49999, capacity: 65536, udp_timeout: 5m}\n  terminate: {port_min: 50000, port_max: 60000, max_conns: -1}", "gw.terminate.max_conns"),
		gw("authz", "rep: 10.30.0.1, service_type", "rep: nowhere, service_type", "gw.authz"),
		gw("two queues", "queues: 1", "queues: 2", "workers.queues"),
		gw("same interfaces", "servers: {iface: IF1}", "servers: {iface: IF0}", "gw.servers.iface"),
		lb("api", "api: 127.0.0.1:9180", "api: 127.0.0.1", "api"),
		lb("role", "role: lb", "role: lbx", "role"),
		{name: "gw section missing", y: "role: gw\napi_token_file: DIR/api.token\n", want: []string{"gw"}},
		{name: "unknown key", y: edit(baseGW, "lb_cache: 1024", "lb_cache: 1024\n  lb_cahce: 5"), want: []string{"gw.lb_cahce"}, decode: true},
		{name: "type error", y: edit(baseGW, "fall: 3", "fall: abc"), want: []string{"gw.probe.fall"}, decode: true},
		{name: "empty file", y: "", want: []string{"empty"}, decode: true},
		{name: "only comments", y: "# later\n", want: []string{"empty"}, decode: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if0, if1 := tc.if0, tc.if1
			if if0 == "" {
				if0 = noIf0
			}
			if if1 == "" {
				if1 = noIf1
			}
			path, dir := writeConfig(t, tc.y, if0, if1)
			if tc.files != nil {
				tc.files(t, dir)
			}
			cfg, err := check(path)
			if err == nil {
				t.Fatal("-check accepted it")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
					t.Fatalf("-check: %v\nwant the error to name %s", err, w)
				}
			}
			if tc.decode {
				return
			}
			if cfg.Role == "" { // Load returned no config: decode it anyway
				t.Fatalf("Load returned no config with %v", err)
			}
			rerr := Run(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if rerr == nil || rerr.Error() != err.Error() {
				t.Fatalf("Run says %v\n-check says %v", rerr, err)
			}
		})
	}
}

// TestExamplesValid: the examples samepathd -h prints pass the checks of
// their values (their interfaces and files are the target machine's).
func TestExamplesValid(t *testing.T) {
	for name, y := range map[string]string{"lb": Example, "gw": ExampleGW} {
		if _, err := Parse([]byte(y)); err != nil {
			t.Errorf("example %s: %v", name, err)
		}
	}
}

func rm(name string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func write(name, body string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestXlatConfig: gw.xlat defaults to 64:ff9b::/96 with the NAT addresses
// as the translator's own; a bad prefix or EAM entry names its key; a
// gateway without a NAT address of one family translates nothing.
func TestTermConfig(t *testing.T) {
	g := DefaultGWConfig()
	g.NAT.Addrs = []string{"10.20.0.101", "10.20.0.102", "fd00:20::101"}
	g.NAT.PortMin, g.NAT.PortMax = 1024, 49999
	if _, ok, err := g.TermConfig(); ok || err != nil {
		t.Fatalf("no section: %v, %v; want off", ok, err)
	}
	g.Terminate = &Terminate{PortMin: 50000, PortMax: 65535, MaxConns: 100, IdleTimeout: time.Minute}
	c, ok, err := g.TermConfig()
	if err != nil || !ok {
		t.Fatalf("TermConfig: %v, %v", ok, err)
	}
	want := []netip.Addr{netip.MustParseAddr("10.20.0.101"), netip.MustParseAddr("fd00:20::101")}
	if !slices.Equal(c.ServerAddrs, want) || c.ServerPorts != [2]uint16{50000, 65535} || c.MaxConns != 100 ||
		c.IdleTimeout != time.Minute || c.MaxConnsPerSession != tcpproxy.DefaultConfig().MaxConnsPerSession || c.Admit != nil {
		t.Errorf("config %+v", c)
	}
	g.NAT.PortMax = 50000 // one port shared with T5
	if _, _, err := g.TermConfig(); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("overlap by one port: %v", err)
	}
}

func TestXlatConfig(t *testing.T) {
	g := DefaultGWConfig()
	g.NAT.Addrs = []string{"10.20.0.101", "fd00:20::101"}
	c, ok, err := g.XlatConfig()
	if err != nil || !ok || c.Pool6.String() != "64:ff9b::/96" || c.IPv4Address.String() != "10.20.0.101" || c.IPv6Address.String() != "fd00:20::101" {
		t.Fatalf("defaults: %+v %v %v", c, ok, err)
	}
	for _, tc := range []struct {
		mut  func(*GWConfig)
		want string
	}{
		{func(g *GWConfig) { g.Xlat.Pool6 = "64:ff9b::/95" }, "gw.xlat: invalid xlat config: pool6"},
		{func(g *GWConfig) { g.Xlat.Pool6 = "nonsense" }, "gw.xlat.pool6"},
		{func(g *GWConfig) {
			g.Xlat.EAM = append(g.Xlat.EAM, struct {
				IPv4 string `yaml:"ipv4"`
				IPv6 string `yaml:"ipv6"`
			}{IPv4: "192.0.2.0/24", IPv6: "bad"})
		}, "gw.xlat.eam[0].ipv6"},
		{func(g *GWConfig) { g.Xlat.RFC6791v4 = "nonsense" }, "gw.xlat.rfc6791v4"},
		{func(g *GWConfig) { g.Xlat.RFC6791v6 = "192.0.2.0/24" }, "gw.xlat: invalid xlat config: rfc6791v6"},
	} {
		g := DefaultGWConfig()
		g.NAT.Addrs = []string{"10.20.0.101", "fd00:20::101"}
		tc.mut(&g)
		if _, _, err := g.XlatConfig(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %q", err, tc.want)
		}
	}
	g.Xlat.RFC6791v4, g.Xlat.RFC6791v6 = "192.0.2.250/32", "2001:db8:6791::/64"
	if c, _, err := g.XlatConfig(); err != nil || c.RFC6791v4.String() != "192.0.2.250/32" || c.RFC6791v6.String() != "2001:db8:6791::/64" {
		t.Errorf("rfc6791 pools: %v %v, %v", c.RFC6791v4, c.RFC6791v6, err)
	}
	g.NAT.Addrs = []string{"10.20.0.101"}
	if _, ok, err := g.XlatConfig(); ok || err != nil {
		t.Errorf("v4-only gateway: translation %v, %v; want off", ok, err)
	}
}
