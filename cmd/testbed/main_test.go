package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"samepath/testbed/fig2"
	"samepath/testbed/privtest"
	"samepath/testbed/topo"
)

// TestMain lets `up` start this test binary as `testbed serve` in the server
// namespaces.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "serve" || os.Args[1] == "linkem") {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestUsageAndBadArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, 2, "usage: testbed"},
		{[]string{"-h"}, 0, "examples:"},
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"up"}, 1, "known: fig2"},
		{[]string{"up", "fig3"}, 1, "known: fig2"},
		{[]string{"move", "mob1"}, 1, "want MOBILE INGRESS"},
		{[]string{"move", "mob1", "x"}, 1, "ingress"},
		{[]string{"addr", "mob1"}, 1, "want MOBILE ADDR"},
		{[]string{"addr", "mob1", "fd00::1"}, 1, "want an IPv4 address"},
		{[]string{"serve", "-h"}, 0, "testbed serve"},
		{[]string{"serve"}, 1, "no service"},
		{[]string{"linkem", "-h"}, 0, "testbed linkem"},
		{[]string{"linkem", "--a", "x"}, 2, "required"},
	} {
		t.Setenv("SAMEPATH_TESTBED_STATE", t.TempDir())
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.out) {
			t.Errorf("testbed %v = %d %q, want %d and %q", c.args, code, out.String()+errb.String(), c.code, c.out)
		}
	}
}

// The command's life cycle, each step reading the state file as a separate
// invocation would: up --json, plan, move, counters, list, down.
func TestCLILifecycle(t *testing.T) {
	privtest.Require(t)
	dir := t.TempDir()
	t.Setenv("SAMEPATH_TESTBED_STATE", dir)
	id := strings.TrimPrefix(privtest.Name("sptb", "c"), "sptb")
	prefix := "sptb" + id
	t.Cleanup(func() { fig2.DownPrefix(dir, prefix) })
	sh := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("testbed %v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	var plan fig2.Plan
	if err := json.Unmarshal([]byte(sh("up", "fig2", "--id", id, "--mobiles", "1", "--json")), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Prefix != prefix || len(plan.Mobiles) != 1 || plan.Mobiles[0].Ingress != 1 {
		t.Fatalf("plan: prefix %q mobiles %+v", plan.Prefix, plan.Mobiles)
	}
	// Issue 18: addr sets the mobile's address; a move keeps it (not
	// the plan's built-in one) on the new link and in the routes.
	const assigned = "10.101.0.77"
	if !strings.Contains(sh("addr", "mob1", assigned), assigned) {
		t.Error("addr output")
	}
	if !strings.Contains(sh("move", "1", "lb3"), "ingress 3") {
		t.Error("move output")
	}
	var again fig2.Plan
	json.Unmarshal([]byte(sh("plan")), &again)
	if again.Mobiles[0].Ingress != 3 || again.Mobiles[0].IPv4.String() != assigned {
		t.Errorf("after move, state says ingress %d, address %s", again.Mobiles[0].Ingress, again.Mobiles[0].IPv4)
	}
	m := plan.Mobiles[0]
	if got := ipOut(t, "-n", m.NS, "-4", "-o", "addr", "show", "dev", "w3"); !strings.Contains(got, assigned+"/32") || strings.Contains(got, m.IPv4.String()+"/32") {
		t.Errorf("w3 after the move: %q, want %s only", got, assigned)
	}
	if got := ipOut(t, "-n", m.NASSide[2].NS, "-4", "route", "show", assigned); !strings.Contains(got, "dev "+m.NASSide[2].Name) {
		t.Errorf("nas3's route to %s: %q", assigned, got)
	}
	if got := ipOut(t, "-n", m.NASSide[2].NS, "-4", "route", "show", m.IPv4.String()); got != "" {
		t.Errorf("nas3 routes the built-in %s: %q", m.IPv4, got)
	}
	// An address and a route set by hand on the current link move too.
	const byHand = "10.101.0.78"
	peer := plan.Ingress[2].NAS.PeerV4.String()
	ipOut(t, "-n", m.NS, "addr", "add", byHand+"/32", "dev", "w3")
	ipOut(t, "-n", m.NS, "addr", "del", assigned+"/32", "dev", "w3")
	ipOut(t, "-n", m.NS, "route", "add", "10.20.5.0/24", "via", peer, "dev", "w3", "onlink")
	sh("move", "1", "2")
	if got := ipOut(t, "-n", m.NS, "-4", "-o", "addr", "show", "dev", "w2"); !strings.Contains(got, byHand+"/32") || strings.Contains(got, assigned+"/32") {
		t.Errorf("w2 after the move: %q, want %s only", got, byHand)
	}
	if got := ipOut(t, "-n", m.NS, "-4", "route", "show", "10.20.5.0/24"); !strings.Contains(got, "dev w2") {
		t.Errorf("the mobile's own route after the move: %q, want it on w2", got)
	}
	if got := ipOut(t, "-n", m.NASSide[1].NS, "-4", "route", "show", byHand); !strings.Contains(got, "dev "+m.NASSide[1].Name) {
		t.Errorf("nas2's route to %s: %q", byHand, got)
	}
	json.Unmarshal([]byte(sh("plan")), &again)
	if again.Mobiles[0].IPv4.String() != byHand {
		t.Errorf("state after the move: address %s, want %s", again.Mobiles[0].IPv4, byHand)
	}
	if r, err := topo.Ping(m.NS, plan.Servers[0].LAN.IPv4.Addr(), 2, 0, 2e9); err != nil || r.Received == 0 {
		t.Fatalf("ping from %s after the move: %+v %v", byHand, r, err)
	}
	sh("move", "1", "3") // back where the counters below look
	r, err := topo.Ping(plan.Mobiles[0].NS, plan.Servers[0].LAN.IPv4.Addr(), 2, 0, 2e9)
	if err != nil || r.Received == 0 {
		t.Fatalf("ping after move: %+v %v", r, err)
	}
	var cs []fig2.GatewayCounters
	if err := json.Unmarshal([]byte(sh("counters")), &cs); err != nil || len(cs) != 2 || cs[0].UpByLB[2].Packets == 0 {
		t.Errorf("counters after pinging via lb3: %+v %v", cs, err)
	}
	if l := sh("list"); !strings.Contains(l, prefix) || !strings.Contains(l, "fig2") {
		t.Errorf("list:\n%s", l)
	}
	sh("down")
	if ns, _ := topo.ListNetns(prefix); len(ns) != 0 {
		t.Errorf("namespaces after down: %v", ns)
	}
	if ps, _ := topo.Procs(prefix); len(ps) != 0 {
		t.Errorf("processes after down: %v", ps)
	}
}

// TestDownRefusesTwoRuns (issue 18): `down` without a run name refuses
// when two runs exist, also when one of them is only leftover
// namespaces (a crashed run without a state file), and removes nothing.
func TestDownRefusesTwoRuns(t *testing.T) {
	privtest.Require(t)
	dir := t.TempDir()
	t.Setenv("SAMEPATH_TESTBED_STATE", dir)
	kept := privtest.Name("sptb", "k")
	if err := os.WriteFile(dir+"/"+kept+".json", []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	left := privtest.Name("sptb", "l") + "-mob1"
	if err := topo.CreateNetns(left); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.DeleteNetns(left) })
	var out, errb bytes.Buffer
	if code := run([]string{"down"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "name one") {
		t.Fatalf("down: exit %d, %q %q; want a refusal naming the runs", code, out.String(), errb.String())
	}
	if _, err := os.Stat(dir + "/" + kept + ".json"); err != nil {
		t.Errorf("the state file went: %v", err)
	}
	if ns, _ := topo.ListNetns(left); len(ns) != 1 {
		t.Errorf("the leftover namespace went: %v", ns)
	}
}

// ipOut runs ip(8) with args and returns its trimmed output.
func ipOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}
