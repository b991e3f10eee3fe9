package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"samepath/ctl/api"
	"samepath/dp"
	"samepath/dp/balance"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/neigh"
	"samepath/dp/xlat"
	"samepath/nat"
	"samepath/ring/memport"
)

// xlatRig is a translating gateway's API over a real dp.GW on memory
// ports, with the translator's metrics registered as samepathd does.
type xlatRig struct {
	t     *testing.T
	w     *dp.Worker
	ports [2]*memport.Port
	c     *api.Client
	base  string
}

var (
	xMob6   = netip.MustParseAddr("fd00:101::5")
	xServer = netip.MustParseAddr("10.20.0.50")
	xKey4   = netip.MustParseAddr("10.20.0.101")
)

func newXlatRig(t *testing.T, translate bool) *xlatRig {
	t.Helper()
	pc := nat.DefaultPortTableConfig()
	pc.GwAddrs = []netip.Addr{xKey4, netip.MustParseAddr("fd00:20::101")}
	pc.Capacity = 64
	flows, err := nat.NewPortTable(pc)
	if err != nil {
		t.Fatal(err)
	}
	services, _ := balance.NewTable(nil)
	dist, _ := balance.NewDist(services, 64)
	nb := neigh.New()
	nb.Set(map[[16]byte][6]byte{xServer.As16(): rigDstMAC})
	var tr *xlat.Translator
	if translate {
		c := xlat.DefaultConfig()
		c.IPv4Address, c.IPv6Address = xKey4, netip.MustParseAddr("fd00:20::101")
		if tr, err = xlat.New(c); err != nil {
			t.Fatal(err)
		}
	}
	g, err := dp.NewGW(dp.GWConfig{Lan: 0, Servers: 1, LanMAC: rigLanMAC, ServerMAC: rigSrvMAC,
		Flows: flows, Services: services, Dist: dist, Neighbors: nb, LBCacheSize: 64, ExpireBudget: 64, Xlat: tr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	u, _ := memport.NewUmem(4096)
	lan, _ := memport.New(memport.DefaultConfig("lan/q0"), u)
	srv, _ := memport.New(memport.DefaultConfig("srv/q0"), u)
	w, err := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{lan, srv}, g)
	if err != nil {
		t.Fatal(err)
	}
	w.Poll()
	s := newGWState(g, flows, services, dist, nil, nil)
	reg := NewRegistry(func() api.Counters { return api.Counters{} })
	registerXlat(reg, s)
	hs := httptest.NewServer(NewHandler(gwTestBackend{s}, reg, "", nil))
	t.Cleanup(hs.Close)
	return &xlatRig{t: t, w: w, ports: [2]*memport.Port{lan, srv}, c: api.NewClient(hs.URL), base: hs.URL}
}

// up sends an IPv6 UDP datagram from the mobile to dst and returns the
// frame the gateway sent toward the servers (nil: none).
func (r *xlatRig) up(dst netip.Addr, sport uint16) []byte {
	r.t.Helper()
	if !r.ports[0].Inject(dptest.Frame().Eth(rigLBMAC, rigLanMAC).IPv6(xMob6, dst).UDP(sport, 53).Payload([]byte("q")).Bytes()) {
		r.t.Fatal("inject")
	}
	r.w.Poll()
	out := r.ports[1].TakeAll()
	if len(out) == 0 {
		return nil
	}
	return out[0]
}

func (r *xlatRig) metrics() string {
	r.t.Helper()
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestXlatAPI: GET /v1/xlat shows the config and every outcome (0 before
// any packet), so does /metrics; PUT /v1/xlat changes the RFC 6052
// prefix for the next packet, and the counters follow.
func TestXlatAPI(t *testing.T) {
	r := newXlatRig(t, true)
	ctx := context.Background()
	x, err := r.c.Xlat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if x.Config.Pool6 != "64:ff9b::/96" || x.Config.LowestIPv6MTU != 1280 || len(x.Outcomes) != int(xlat.NumOutcomes) {
		t.Fatalf("GET /v1/xlat %+v", x)
	}
	for o, n := range x.Outcomes {
		if n != 0 {
			t.Errorf("outcome %s = %d before any packet", o, n)
		}
	}
	m := r.metrics()
	for _, o := range xlat.Outcomes() {
		if want := `samepath_xlat_packets_total{outcome="` + o.String() + `"} 0`; !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	old := netip.AddrFrom16(xlat.Embed(netip.MustParsePrefix("64:ff9b::/96"), xServer.As4()))
	if out := r.up(old, 5000); out == nil {
		t.Fatal("no translated packet under 64:ff9b::/96")
	}
	p := "2001:db8:64::/96"
	cfg, err := r.c.SetXlat(ctx, api.XlatChange{Pool6: &p, EAM: &[]api.XlatEAM{{IPv4: "192.0.2.0/24", IPv6: "2001:db8:e::/120"}}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pool6 != p || len(cfg.EAM) != 1 || cfg.LowestIPv6MTU != 1280 {
		t.Errorf("PUT reply %+v: want the new pool6 and eam, the rest kept", cfg)
	}
	nw := netip.AddrFrom16(xlat.Embed(netip.MustParsePrefix(p), xServer.As4()))
	out := r.up(nw, 5001)
	var d header.Decoded
	if out == nil || header.Decode(out, &d) != header.OK || d.IPVersion != 4 || d.Tuple.Dst != nat.Addr16From(xServer) {
		t.Fatalf("after the change, %v is not translated to %v: %x", nw, xServer, out)
	}
	if out := r.up(old, 5002); out != nil {
		t.Errorf("the old prefix still translates after the change")
	}
	x, _ = r.c.Xlat(ctx)
	if x.Outcomes["translated_64"] != 2 {
		t.Errorf("translated_64 = %d, want 2", x.Outcomes["translated_64"])
	}
	if m := r.metrics(); !strings.Contains(m, `samepath_xlat_packets_total{outcome="translated_64"} 2`) {
		t.Errorf("/metrics: translated_64 not 2")
	}
}

// TestXlatAPIRefuses: bodies of the wrong shape and invalid configs are
// answered 400 naming the key, and change nothing.
func TestXlatAPIRefuses(t *testing.T) {
	r := newXlatRig(t, true)
	for _, c := range []struct{ body, want string }{
		{`{}`, "no field to change"},
		{`{"pool6":"64:ff9b::/96"} {"pool6":"64:ff9b::/96"}`, "exactly one JSON object"},
		{`[{"pool6":"64:ff9b::/96"}]`, "exactly one JSON object"},
		{`{"pool":"64:ff9b::/96"}`, "unknown field"},
		{`{"lowest_ipv6_mtu":1000}`, "lowest_ipv6_mtu"},
		{`{"pool6":"64:ff9b::/95"}`, "pool6"},
		{`{"pool6":"bogus"}`, "pool6"},
		{`{"eam":[{"ipv4":"192.0.2.0/33","ipv6":"2001:db8::/120"}]}`, "eam[0].ipv4"},
		{`{"eam":[{"ipv4":"192.0.2.0/24","ipv6":"2001:db8::/128"}]}`, "eam[0]"},
		{`{"rfc6791v4":"2001:db8::/64"}`, "rfc6791v4"},
		{`{"ipv6_mtu":"big"}`, "ipv6_mtu"},
	} {
		req, _ := http.NewRequest(http.MethodPut, r.base+"/v1/xlat", strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), c.want) {
			t.Errorf("PUT %s: %d %s, want 400 naming %q", c.body, resp.StatusCode, b, c.want)
		}
	}
	x, err := r.c.Xlat(context.Background())
	if err != nil || x.Config.Pool6 != "64:ff9b::/96" || x.Config.LowestIPv6MTU != 1280 || len(x.Config.EAM) != 0 {
		t.Errorf("refused changes changed the config: %+v %v", x.Config, err)
	}
}

// TestXlatAPIOff: a gateway without a translator says so.
func TestXlatAPIOff(t *testing.T) {
	r := newXlatRig(t, false)
	_, err := r.c.Xlat(context.Background())
	var ae *api.HTTPError
	if err == nil || !strings.Contains(err.Error(), "translation is off") || (errors.As(err, &ae) && ae.Code != http.StatusNotFound) {
		t.Errorf("GET /v1/xlat without a translator: %v", err)
	}
	if strings.Contains(r.metrics(), "samepath_xlat_") {
		t.Errorf("/metrics exports translator counters without a translator")
	}
}
