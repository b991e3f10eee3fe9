package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/api"
	"samepath/ctl/session"
	"samepath/testbed/demo"
	"samepath/testbed/privtest"
	"samepath/testbed/servers"
)

// TestMain lets the test binary run as the testbed's servers.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(servers.Main(os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

// buildBinaries builds samepathd, samepath-control and samepathctl into one
// directory and returns samepathd's path (the others sit beside it).
func buildBinaries(t *testing.T) string {
	bin, err := demo.BuildBinaries(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestDemo is issue 3's end-to-end check with the real dataplane and
// issue 5's with the control process: the mobiles log in through NAS
// emulators over RADIUS and get their addresses from the AAA; a 20 MB
// download from a server to a mobile that moves lb1 -> lb2 -> lb3
// mid-transfer (suspended at the old NAS, resumed at the new one)
// completes with the right SHA-256 and no reset, each phase is steered by
// that phase's samepathd LB, and every phase reaches the gateway the AAA
// chose (the owner of the assigned address) and no other; the gateways'
// session tables hold what the session manager pushed; the gateways
// enforce the T8/T9 samepath-control pushed (checkAuthz).
func TestDemo(t *testing.T) {
	privtest.Require(t)
	bin := buildBinaries(t)
	exe, _ := os.Executable()
	for _, steering := range []string{"afxdp", "xdp"} {
		t.Run(steering, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var out strings.Builder
			sum, err := demo.Run(ctx, demo.Options{Samepathd: bin, Steering: steering, ServeArgv: []string{exe, "serve"}, Out: &out})
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			if !sum.ChecksumOK || sum.Bytes != 20<<20 {
				t.Fatalf("download: %d bytes, checksum ok %v", sum.Bytes, sum.ChecksumOK)
			}
			if len(sum.Phases) != 3 {
				t.Fatalf("%d phases", len(sum.Phases))
			}
			for k, ph := range sum.Phases {
				if ph.Ingress != k+1 || ph.Bytes == 0 {
					t.Errorf("phase %d: %+v", k+1, ph)
				}
				if ph.LBUp == 0 || (steering == "afxdp" && ph.LBDown == 0) {
					t.Errorf("phase %d: lb%d steered nothing: %+v", k+1, k+1, ph)
				}
				c, o := sum.Carrier-1, 2-sum.Carrier
				if ph.GwUp[c] == 0 || ph.GwDown[c] == 0 {
					t.Errorf("phase %d: gw%d (the AAA's pick) did not carry it: %+v", k+1, c+1, ph)
				}
				if ph.GwUp[o] != 0 || ph.GwDown[o] != 0 {
					t.Errorf("phase %d: gw%d carried packets: %+v", k+1, o+1, ph)
				}
			}
			checkSessions(t, sum)
			// The gateways chose servers: round robin alternates within
			// group A; the login unit keeps one server of group B per
			// mobile.
			by := map[string][]string{}
			for _, p := range sum.Picks {
				by[p.Service] = append(by[p.Service], p.Server)
			}
			for _, m := range []string{"mob1", "mob2"} {
				a := by[m+" web-a"]
				if len(a) != 3 || a[0] == a[1] || a[1] == a[2] || !strings.HasPrefix(a[0], "a") {
					t.Errorf("%s web-a servers %v: want round robin over a1, a2", m, a)
				}
			}
			// R-GW-1: a ping to web-a's representative address is
			// answered by a server of group A.
			if len(sum.Pings) != 2 {
				t.Errorf("pings %+v: want one per mobile", sum.Pings)
			}
			for _, pg := range sum.Pings {
				if pg.Sent != 3 || pg.Received != 3 || !strings.HasPrefix(pg.Server, "a") || pg.Service != "web-a" {
					t.Errorf("ping %+v: want 3/3 replies, echoed by a server of group A through web-a", pg)
				}
			}
			checkAuthz(t, sum, by["mob1 web-b"])
			checkAccounting(t, sum)
			checkRisk(t, sum)
			if len(sum.Flows) != 2 || sum.Flows[0] == 0 || sum.Flows[1] == 0 {
				t.Errorf("gateway NAT records %v", sum.Flows)
			}
		})
	}
}

// checkAccounting checks the proxy accounting summary read back from the
// gateways' logs after the logouts (R-ACCT-1): the download is one flow
// of mob1's on web-a, on its carrier, whose payload is the 20 MiB body
// plus the response header (and at most a few retransmitted segments);
// the short connections and the pings appear per subscriber and service,
// mob2's refused video connections nowhere; every flow ended with its
// session.
func checkAccounting(t *testing.T, sum *demo.Summary) {
	t.Helper()
	const size = 20 << 20
	type want struct{ user, svc, st, url string }
	flows := map[want]int{}
	for _, r := range sum.Accounting {
		flows[want{r.User, r.Service, r.ServiceType, r.URL}] += r.Flows
		if len(r.Causes) != 1 || r.Causes[0] != "session-end" {
			t.Errorf("%s %s %s: end causes %v, want session-end (logout)", r.User, r.Service, r.URL, r.Causes)
		}
		if r.User == "mob2" && r.ServiceType == "video" {
			t.Errorf("mob2 was refused video, yet accounted: %+v", r)
		}
		if !strings.HasSuffix(r.URL, "/bytes/20971520") {
			continue
		}
		if r.User != "mob1" || r.Device != "IMEI-mob1" || r.Service != "web-a" || r.ServiceType != "web" || r.Flows != 1 || r.Gateway != sum.Carrier {
			t.Errorf("download record %+v, want one web-a flow of mob1 on gw%d", r, sum.Carrier)
		}
		if r.DownPayload < size || r.DownPayload > size+64<<10 || r.DownBytes < r.DownPayload || r.UpPayload == 0 || r.Interims == 0 {
			t.Errorf("download payload up %d down %d, bytes down %d, %d interims: want the 20 MiB body (+ header) and interim records",
				r.UpPayload, r.DownPayload, r.DownBytes, r.Interims)
		}
	}
	for w, n := range map[want]int{
		{"mob1", "web-a", "web", "10.30.0.1:80/bytes/20971520"}: 1,
		{"mob1", "web-a", "web", "10.30.0.1:80/"}:               3,
		{"mob1", "web-b", "video", "10.30.0.2:80/"}:             3,
		{"mob2", "web-a", "web", "10.30.0.1:80/"}:               3,
		// The pings: one echo flow each, accounted to web-a.
		{"mob1", "web-a", "web", ""}: 1,
		{"mob2", "web-a", "web", ""}: 1,
	} {
		if flows[w] != n {
			t.Errorf("accounting: %d flows of %+v, want %d (all: %+v)", flows[w], w, n, sum.Accounting)
		}
	}
}

// checkAuthz checks the service authorization samepath-control pushed
// (T9: group B is "video"; T8: only mob1's device ordered it): mob1 is
// served by one server of group B (login unit), each of mob2's
// connections to group B is refused with a RST, which its gateway counts
// under "video", and no refusal is counted for "web".
func checkAuthz(t *testing.T, sum *demo.Summary, mob1B []string) {
	t.Helper()
	if len(mob1B) != 3 || mob1B[0] != mob1B[1] || mob1B[1] != mob1B[2] || !strings.HasPrefix(mob1B[0], "b") {
		t.Errorf("mob1 web-b servers %v: want one server of group B (login unit)", mob1B)
	}
	refused := 0
	for _, p := range sum.Picks {
		switch {
		case p.Service == "mob2 web-b" && (p.Server != "" || !strings.Contains(p.Refused, "RST")):
			t.Errorf("mob2 -> web-b: %+v, want a refusal by RST", p)
		case p.Service == "mob2 web-b":
			refused++
		case p.Refused != "":
			t.Errorf("%s refused: %s", p.Service, p.Refused)
		}
	}
	if refused != 3 {
		t.Errorf("mob2's refused connections to web-b: %d, want 3", refused)
	}
	var g2 int
	for _, s := range sum.Sessions {
		if s.Device == "IMEI-mob2" {
			fmt.Sscanf(s.Gateway, "gw%d", &g2)
		}
	}
	for g, d := range sum.Denied {
		if g == g2 && d["video"] < 3 {
			t.Errorf("gw%d (mob2's) counted %d video refusals, want >= 3: %v", g, d["video"], d)
		}
		if g != g2 && d["video"] != 0 {
			t.Errorf("gw%d (not mob2's) counted video refusals: %v", g, d)
		}
		if d["web"] != 0 {
			t.Errorf("gw%d refused web: %v", g, d)
		}
	}
	if len(sum.Denied) != 2 || g2 == 0 {
		t.Errorf("refusal counters %v, mob2 on gw%d", sum.Denied, g2)
	}
	for _, s := range []string{"T9 REP", "10.30.0.2", "video", "REFUSED"} {
		if !strings.Contains(sum.Tables, s) {
			t.Errorf("samepathctl authz / gw authz output lacks %q:\n%s", s, sum.Tables)
		}
	}
}

// checkSessions checks that the sessions came from RADIUS: the AAA
// assigned the addresses (one per gateway, fewest assigned first), the
// session manager took FIG. 11's edges for two logins and two moves, and
// each owning gateway's T3 copy holds the AAA's session id on the
// Framed-IP-Address.
func checkSessions(t *testing.T, sum *demo.Summary) {
	t.Helper()
	if sum.Carrier != 1 && sum.Carrier != 2 {
		t.Fatalf("carrier gw%d", sum.Carrier)
	}
	ip1, ip2 := sum.MobileIPs["mob1"], sum.MobileIPs["mob2"]
	if !ip1.IsValid() || !ip2.IsValid() || ip1 == ip2 {
		t.Fatalf("assigned addresses %v", sum.MobileIPs)
	}
	for _, e := range []string{"None->Act", "Act->Dormant", "Dormant->Act"} {
		if sum.Transitions[e] != 2 {
			t.Errorf("FIG. 11 edge %s taken %d times, want 2 (transitions %v)", e, sum.Transitions[e], sum.Transitions)
		}
	}
	if len(sum.Steps) != 8 {
		t.Errorf("%d RADIUS steps, want 8: %+v", len(sum.Steps), sum.Steps)
	}
	byDev := map[string]session.Session{}
	for _, s := range sum.Sessions {
		byDev[s.Device] = s
	}
	for i, held := range sum.GWSessions {
		if len(held) != 2 {
			t.Errorf("gw%d's T3 copy %+v, want both mobiles' sessions", i+1, held)
		}
	}
	gws := map[string]bool{}
	for _, m := range []string{"mob1", "mob2"} {
		s, ok := byDev["IMEI-"+m]
		if !ok {
			t.Fatalf("no control session for %s: %+v", m, sum.Sessions)
		}
		if s.State != session.Act || s.IP != sum.MobileIPs[m] || s.User != m {
			t.Errorf("%s session %+v, want Act on %s", m, s, sum.MobileIPs[m])
		}
		gws[s.Gateway] = true
		var g int
		fmt.Sscanf(s.Gateway, "gw%d", &g)
		if m == "mob1" && g != sum.Carrier {
			t.Errorf("mob1's session is on %s, the download on gw%d", s.Gateway, sum.Carrier)
		}
		if g < 1 || g > len(sum.GWSessions) {
			t.Fatalf("%s on gateway %q", m, s.Gateway)
		}
		// Every gateway holds it: its owner, and the other, the
		// substitute of its T4 row (R-GW-9). A read-back repair sent to
		// one of them only may leave the other at an older Seq.
		want := api.GWSession{SessionID: s.ID, UserID: m, DeviceID: "IMEI-" + m, IP: s.IP.String(), State: "active", Seq: s.Seq, AcctSessionID: s.AcctSessionID()}
		for i, held := range sum.GWSessions {
			var got []api.GWSession
			for _, h := range held {
				if h.SessionID == s.ID {
					if i+1 != g && h.Seq <= s.Seq {
						h.Seq = s.Seq
					}
					got = append(got, h)
				}
			}
			if d := cmp.Diff([]api.GWSession{want}, got); d != "" {
				t.Errorf("gw%d's T3 copy of %s's session (-want +got):\n%s", i+1, m, d)
			}
		}
		if !strings.Contains(sum.Tables, s.ID) {
			t.Errorf("samepathctl output lacks %s:\n%s", s.ID, sum.Tables)
		}
	}
	if len(gws) != 2 {
		t.Errorf("both mobiles on %v: the AAA should spread them", gws)
	}
	if s := byDev["IMEI-mob1"]; len(s.AcctIDs) != 2 || s.AcctIDs[0] != "nas2-mob1-2" || s.AcctIDs[1] != "nas3-mob1-3" {
		t.Errorf("mob1 resumed under %v, want nas2-mob1-2, nas3-mob1-3", s.AcctIDs)
	}
	for _, h := range sum.Health.Targets {
		if h.Up == nil || !*h.Up {
			t.Errorf("health: %s not up", h.Name)
		}
	}
	if !strings.Contains(sum.Tables, "web-a") {
		t.Errorf("samepathctl gw services lacks web-a:\n%s", sum.Tables)
	}
}

// TestSamepathctlGateway round-trips the gateway tables through
// samepathctl against real samepathd gateways: a policy and a server state
// set on one gateway (by URL) and on every gateway (-gw all, from the
// control process's T1) show as set, and the rest of the table as before.
func TestSamepathctlGateway(t *testing.T) {
	ctx, sys := startWithControl(t)
	ctl := func(v any, args ...string) {
		t.Helper()
		o, err := sys.Samepathctl(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		if v != nil {
			if err := json.Unmarshal([]byte(o), v); err != nil {
				t.Fatalf("samepathctl %v: %v\n%s", args, err, o)
			}
		}
	}
	gw1 := "http://" + sys.TB.Plan.Gateways[0].ControlAPI.String()
	gw2 := "http://" + sys.TB.Plan.Gateways[1].ControlAPI.String()
	show := func(gw string) api.Services {
		t.Helper()
		var s api.Services
		ctl(&s, "-o", "json", "gw", "services", "-gw", gw)
		for i := range s.Services { // the probes' fields move on their own
			for j := range s.Services[i].Servers {
				sv := &s.Services[i].Servers[j]
				sv.Healthy, sv.RTTMicros, sv.CPU, sv.Active = nil, 0, 0, 0
			}
		}
		return s
	}
	before := show(gw1)
	if len(before.Services) < 6 || before.Services[0].Name != "web-a" || before.Services[3].Name != "web-a6" || before.Services[0].Policy != "rr" {
		t.Fatalf("gw1 services: %+v", before)
	}
	web := before.Services[0].Servers[1].Addr
	ctl(nil, "gw", "policy", "-gw", gw1, "web-a", "lc")
	ctl(nil, "gw", "server", "-gw", gw1, "web-a", web, "down")
	want := before
	want.Services = append([]api.Service(nil), before.Services...)
	want.Services[0].Policy = "lc"
	want.Services[0].Servers = append([]api.Server(nil), before.Services[0].Servers...)
	want.Services[0].Servers[1].State = "maint" // down is read as maint
	if d := cmp.Diff(want, show(gw1)); d != "" {
		t.Errorf("gw1 after policy and server (-want +got):\n%s", d)
	}
	if d := cmp.Diff(before, show(gw2)); d != "" {
		t.Errorf("gw2 changed (-want +got):\n%s", d)
	}
	ctl(nil, "gw", "policy", "web-b", "fastest") // -gw all
	for _, gw := range []string{gw1, gw2} {
		if p := show(gw).Services[1].Policy; p != "fastest" {
			t.Errorf("%s web-b policy %q after -gw all", gw, p)
		}
	}
	var fl api.Flows
	ctl(&fl, "-o", "json", "gw", "flows", "-gw", gw1, "-limit", "5")
	var ss api.GWSessions
	ctl(&ss, "-o", "json", "gw", "sessions", "-gw", gw1)
	if len(ss.Sessions) != 0 || fl.Total != 0 {
		t.Errorf("before any login: sessions %+v, flows %+v", ss, fl)
	}
}
