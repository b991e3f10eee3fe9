package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"samepath/ctl/api"
	"samepath/dp/daemon"
	"samepath/dp/xlat"
)

// xlatGW serves samepathd's own /v1/xlat endpoints over a real
// xlat.Runtime and returns its URL and the runtime.
func xlatGW(t *testing.T) (string, *xlat.Runtime) {
	t.Helper()
	c := xlat.DefaultConfig()
	c.IPv4Address, c.IPv6Address = netip.MustParseAddr("10.20.0.101"), netip.MustParseAddr("fd00:20::101")
	rt, err := xlat.NewRuntime(c)
	if err != nil {
		t.Fatal(err)
	}
	var n xlat.Counters
	n[xlat.Translated64] = 7
	v1 := http.NewServeMux()
	daemon.XlatRoutes(v1, rt, func() xlat.Counters { return n })
	srv := httptest.NewServer(v1)
	t.Cleanup(srv.Close)
	return srv.URL, rt
}

func xctl(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	rc := Main(args, &out, &errb, Defaults{Control: "http://127.0.0.1:1"})
	return out.String(), errb.String(), rc
}

// TestGWXlat: gw xlat shows the config and every outcome; gw set-xlat
// changes what it names (the runtime holds it after), keeps the rest,
// and a refusal names the key and changes nothing.
func TestGWXlat(t *testing.T) {
	url, rt := xlatGW(t)
	out, errb, rc := xctl("gw", "xlat", "-gw", url)
	if rc != 0 {
		t.Fatalf("gw xlat: exit %d: %s", rc, errb)
	}
	for _, want := range []string{"pool6            64:ff9b::/96", "lowest_ipv6_mtu  1280", "outcome          translated_64  7", "outcome          drop_no_mapping  0"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("gw xlat lacks %q:\n%s", want, out)
		}
	}
	if _, errb, rc := xctl("gw", "set-xlat", "-gw", url, "-pool6", "2001:db8:64::/96", "-eam", "192.0.2.0/24=2001:db8:e::/120",
		"-rfc6791v4", "192.0.2.250/32", "-lowest-ipv6-mtu", "1400"); rc != 0 {
		t.Fatalf("gw set-xlat: exit %d: %s", rc, errb)
	}
	c := rt.Config()
	if c.Pool6 != netip.MustParsePrefix("2001:db8:64::/96") || len(c.EAM) != 1 || c.EAM[0].IPv6 != netip.MustParsePrefix("2001:db8:e::/120") ||
		c.RFC6791v4 != netip.MustParsePrefix("192.0.2.250/32") || c.LowestIPv6MTU != 1400 || c.IPv4MTU != 1500 {
		t.Errorf("after set-xlat the runtime holds %+v", c)
	}
	var x api.Xlat
	out, _, _ = xctl("-o", "json", "gw", "xlat", "-gw", url)
	if err := json.Unmarshal([]byte(out), &x); err != nil || x.Config.RFC6791v4 != "192.0.2.250/32" || len(x.Outcomes) != int(xlat.NumOutcomes) {
		t.Errorf("gw xlat -o json: %v %+v", err, x)
	}
	if _, errb, rc := xctl("gw", "set-xlat", "-gw", url, "-no-eam", "-rfc6791v4", "none"); rc != 0 {
		t.Fatalf("gw set-xlat -no-eam: exit %d: %s", rc, errb)
	}
	if c := rt.Config(); len(c.EAM) != 0 || c.RFC6791v4.IsValid() || c.Pool6 != netip.MustParsePrefix("2001:db8:64::/96") {
		t.Errorf("after -no-eam -rfc6791v4 none: %+v", c)
	}
	for _, e := range []struct {
		args []string
		rc   int
		err  string
	}{
		{[]string{"-lowest-ipv6-mtu", "1000"}, 1, "lowest_ipv6_mtu"},
		{[]string{"-pool6", "2001:db8::/33"}, 1, "pool6"},
		{[]string{"-eam", "192.0.2.0/24"}, 2, "IPV4PREFIX=IPV6PREFIX"},
		{[]string{"-eam", "192.0.2.0/24=x"}, 1, "eam[0].ipv6"},
		{[]string{"-eam", "192.0.2.0/24=2001:db8::/120", "-no-eam"}, 2, "exclude"},
		{nil, 2, "nothing to change"},
	} {
		_, errb, rc := xctl(append([]string{"gw", "set-xlat", "-gw", url}, e.args...)...)
		if rc != e.rc || !strings.Contains(errb, e.err) {
			t.Errorf("set-xlat %v: exit %d %q, want exit %d naming %q", e.args, rc, errb, e.rc, e.err)
		}
	}
	if c := rt.Config(); c.LowestIPv6MTU != 1400 || c.Pool6 != netip.MustParsePrefix("2001:db8:64::/96") || len(c.EAM) != 0 {
		t.Errorf("refused changes changed the runtime: %+v", c)
	}
}
