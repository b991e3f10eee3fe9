package demo_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestDemo is issue 3's end-to-end check with the real dataplane: a 20 MB
// download from a server to a mobile that moves lb1 -> lb2 -> lb3
// mid-transfer completes with the right SHA-256 and no reset, each phase
// is steered by that phase's samepathd LB, and every phase reaches the
// same gateway (gw1, the owner of the mobile's range) and no other.
func TestDemo(t *testing.T) {
	privtest.Require(t)
	bin := filepath.Join(t.TempDir(), "samepathd")
	if out, err := exec.Command("go", "build", "-o", bin, "samepath/cmd/samepathd").CombinedOutput(); err != nil {
		t.Fatalf("build samepathd: %v\n%s", err, out)
	}
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
				if ph.GwUp[0] == 0 || ph.GwDown[0] == 0 {
					t.Errorf("phase %d: gw1 did not carry it: %+v", k+1, ph)
				}
				if ph.GwUp[1] != 0 || ph.GwDown[1] != 0 {
					t.Errorf("phase %d: gw2 carried packets: %+v", k+1, ph)
				}
			}
			// The gateways chose servers: round robin alternates within
			// group A; the login unit keeps one server of group B per
			// mobile.
			by := map[string][]string{}
			for _, p := range sum.Picks {
				by[p.Service] = append(by[p.Service], p.Server)
			}
			for _, m := range []string{"mob1", "mob2"} {
				a, b := by[m+" web-a"], by[m+" web-b"]
				if len(a) != 3 || a[0] == a[1] || a[1] == a[2] || !strings.HasPrefix(a[0], "a") {
					t.Errorf("%s web-a servers %v: want round robin over a1, a2", m, a)
				}
				if len(b) != 3 || b[0] != b[1] || b[1] != b[2] || !strings.HasPrefix(b[0], "b") {
					t.Errorf("%s web-b servers %v: want one server of group B (login unit)", m, b)
				}
			}
			if len(sum.Flows) != 2 || sum.Flows[0] == 0 || sum.Flows[1] == 0 {
				t.Errorf("gateway NAT records %v", sum.Flows)
			}
		})
	}
}
