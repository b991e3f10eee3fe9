package demo

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"samepath/ctl/aaa"
	"samepath/ctl/control"
	"samepath/testbed/fig2"
)

// TestControlConfigLBMAC: the control config the demo generates loads,
// each NAS's RADIUS client names the LAN1 MAC of its ingress point's LB as
// lb_mac, so a resume at that NAS points the gateway there (R-GW-4), and
// the interim interval and timeout are the run's (Options).
func TestControlConfigLBMAC(t *testing.T) {
	p, err := fig2.NewPlan("sptbcfg", 2, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf, err := controlConfig(p, filepath.Join(dir, "state"), filepath.Join(dir, "token"), filepath.Join(dir, "users.yaml"), "s3cret", []string{"IMEI-mob1", "IMEI-mob2"}, 8*time.Second, 10*time.Second)
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
	if len(cfg.Radius.Clients) != len(p.Ingress) {
		t.Fatalf("%d RADIUS clients, want one per NAS (%d)", len(cfg.Radius.Clients), len(p.Ingress))
	}
	for i, in := range p.Ingress {
		cl := cfg.Radius.Clients[i]
		if cl.Prefix != in.NAS.Mgmt.IPv4.Addr().String() || cl.LBMAC != in.LB.LAN.MAC.String() {
			t.Errorf("client %d: prefix %s lb_mac %q, want %s and lb%d's LAN1 MAC %s", i, cl.Prefix, cl.LBMAC, in.NAS.Mgmt.IPv4.Addr(), in.Index, in.LB.LAN.MAC)
		}
	}
	if cfg.Radius.AcctInterimInterval != 8*time.Second || cfg.Sessions.InterimTimeout != 10*time.Second {
		t.Errorf("acct_interim_interval %v, interim_timeout %v, want 8s and 10s", cfg.Radius.AcctInterimInterval, cfg.Sessions.InterimTimeout)
	}
	sc := aaa.DefaultServerConfig()
	sc.Clients = cfg.Radius.Clients
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
}
