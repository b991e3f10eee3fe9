package e2e

// FIG. 2 with emulated radio links: linkem (namespace PREFIX-air) sits on
// every mobile <-> NAS link.
//
//	mob1 w1 --- m1n1a [air: linkem] m1n1b --- m1 nas1 -- lb1 --+
//	     w2 --- m1n2a [air: linkem] m1n2b --- m1 nas2 -- lb2 --+- LAN1 - gw1 - LAN2 - a1
//	     w3 --- m1n3a [air: linkem] m1n3b --- m1 nas3 -- lb3 --+

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"samepath/testbed/fig2"
	"samepath/testbed/linkem"
	"samepath/testbed/privtest"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

func TestFig2WirelessLinkem(t *testing.T) {
	privtest.Require(t)
	lc := linkem.DefaultConfig()
	lc.Delay = 15 * time.Millisecond
	lc.Rate = 50e6
	c := fig2.DefaultConfig(privtest.Name("sptb", "w"))
	c.Mobiles = 1
	c.StateDir = t.TempDir()
	c.ServeArgv = selfArgv(t, "serve")
	c.LinkemArgv = selfArgv(t, "linkem")
	c.Wireless = &lc
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tb, err := fig2.Up(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Down() })
	p := tb.Plan
	if ps, _ := topo.Procs(p.Air); len(ps) != fig2.NumIngress {
		t.Fatalf("linkem processes in %s: %+v, want %d", p.Air, ps, fig2.NumIngress)
	}
	a1 := p.Servers[0].LAN.IPv4.Addr()
	topo.Ping(p.Mobiles[0].NS, a1, 1, 0, time.Second) // resolve neighbours
	r, err := topo.Ping(p.Mobiles[0].NS, a1, 5, 10*time.Millisecond, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The radio link adds 15 ms each way: no reply can come back sooner.
	if r.Received == 0 || r.RTTs[0] < 30*time.Millisecond {
		t.Fatalf("ping over the radio link: %+v", r)
	}
	t.Logf("RTT over linkem %v", r.MeanRTT())

	// A download across one move keeps going over the emulated links.
	const size = 4 << 20
	resp, err := client(p.Mobiles[0].NS).Get(fmt.Sprintf("http://%s/bytes/%d", netip.AddrPortFrom(a1, fig2.HTTPPort), size))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, resp.Body, size/2); err != nil {
		t.Fatal(err)
	}
	if err := tb.Move("mob1", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(h, resp.Body); err != nil {
		t.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != servers.BytesSHA256(size) {
		t.Fatal("checksum mismatch")
	}
	stateDir := strings.TrimSuffix(tb.LogDir(), "/"+p.Prefix)
	if err := tb.Down(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, tb, stateDir)
}
