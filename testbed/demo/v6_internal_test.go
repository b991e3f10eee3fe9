package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"samepath/ctl/control"
	"samepath/dp/daemon"
	"samepath/testbed/fig2"
)

// TestIPv6Configs: the control config gives each gateway its plan's IPv6
// range as range6 (prefix mode), the users file a stack, and a gateway
// config with the IPv6 NAT address and services loads in samepathd.
func TestIPv6Configs(t *testing.T) {
	p, err := fig2.NewPlan("sptbcfg", 2, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf, err := controlConfig(p, filepath.Join(dir, "state"), filepath.Join(dir, "token"), filepath.Join(dir, "users.yaml"), "s3cret", []string{"IMEI-mob1"}, time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "control.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := control.LoadConfig(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	for i, g := range cfg.Gateways {
		if want := fmt.Sprintf("fd00:10%d::/64", i+1); g.Range6 != want || g.Framed6 != "prefix" {
			t.Errorf("gateway %s: range6 %q framed6 %q, want %s prefix", g.Name, g.Range6, g.Framed6, want)
		}
	}
	users := filepath.Join(dir, "u.yaml")
	os.WriteFile(users, []byte(fmt.Sprintf("- {id: mob1, password: \"x\", device_id: \"IMEI-mob1\"%s}\n", stackYAML("dual"))), 0o600)
	us, err := control.LoadUsers(users)
	if err != nil || len(us) != 1 || us[0].Stack != "dual" {
		t.Fatalf("users %+v %v", us, err)
	}
	gw := fmt.Sprintf("role: gw\napi: 127.0.0.1:7700\ngw:\n  lan: {iface: lan1}\n  servers: {iface: lan2}\n  nat: {addrs: [%s%s], port_min: 1024, port_max: 65535}\n  services:\n%s",
		NATAddr(1), nat6YAML(1), services6(p))
	c, err := daemon.Parse([]byte(gw))
	if err != nil {
		t.Fatalf("%v\n%s", err, gw)
	}
	if len(c.GW.Services) != 3 {
		t.Fatalf("services %+v", c.GW.Services)
	}
}
