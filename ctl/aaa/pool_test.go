package aaa

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"samepath/ctl/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func newTestStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(store.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func twoGateways(t *testing.T, pl *Pool, bits int) {
	t.Helper()
	for _, g := range []GatewayConfig{{Name: "gw1", Range: fmt.Sprintf("10.1.0.0/%d", bits)}, {Name: "gw2", Range: fmt.Sprintf("10.2.0.0/%d", bits)}} {
		if _, err := pl.PutGateway(g); err != nil {
			t.Fatal(err)
		}
	}
}

func counts(pl *Pool) map[string]int {
	m := map[string]int{}
	for _, g := range pl.Gateways() {
		m[g.Name] = g.Assigned
	}
	return m
}

func TestAssignSpreadsAndFollowsHealth(t *testing.T) {
	st := newTestStore(t, t.TempDir())
	clk := &fakeClock{t: time.Unix(1000, 0)}
	pl := NewPool(st, clk.Now, time.Minute)
	twoGateways(t, pl, 20)
	seen := map[netip.Addr]bool{}
	for i := 0; i < 1000; i++ {
		a, _, err := pl.Assign(fmt.Sprintf("dev%d", i), fmt.Sprintf("u%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if seen[a.IP] {
			t.Fatalf("address %s given twice", a.IP)
		}
		seen[a.IP] = true
		c := counts(pl)
		if d := c["gw1"] - c["gw2"]; d < -1 || d > 1 {
			t.Fatalf("after %d logins counts %v differ by more than 1", i+1, c)
		}
	}
	if c := counts(pl); c["gw1"] != 500 || c["gw2"] != 500 {
		t.Fatalf("counts %v", c)
	}
	// Health marks gw1 down: every new login goes to gw2.
	if _, changed := pl.SetHealth("gw1", HealthDown); !changed {
		t.Fatal("health change not reported")
	}
	for i := 1000; i < 1200; i++ {
		a, _, err := pl.Assign(fmt.Sprintf("dev%d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		if a.Gateway != "gw2" || !netip.MustParsePrefix("10.2.0.0/20").Contains(a.IP) {
			t.Fatalf("login %d went to %s (%s) while gw1 is down", i, a.Gateway, a.IP)
		}
	}
	// An existing device keeps its address even on the down gateway (S7).
	a, _, err := pl.Assign("dev0", "u0")
	if err != nil || a.Gateway != "gw1" {
		t.Fatalf("dev0 moved: %+v %v", a, err)
	}
	if c := pl.Counters(); c.Assigned != 1200 || c.Reused != 1 {
		t.Fatalf("counters %+v", c)
	}
	// Both down: reject with the reason.
	pl.SetHealth("gw2", HealthDown)
	if _, _, err := pl.Assign("new", ""); !errors.Is(err, ErrNoHealthyGateway) {
		t.Fatalf("got %v", err)
	}
	// Drain is an administrative "no new sessions".
	pl.SetHealth("gw1", HealthUp)
	if _, _, err := pl.SetAdmin("gw1", AdminDrain); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pl.Assign("new", ""); !errors.Is(err, ErrNoHealthyGateway) {
		t.Fatalf("drained gateway assigned: %v", err)
	}
}

func TestAssignRangeFullAndRelease(t *testing.T) {
	st := newTestStore(t, t.TempDir())
	clk := &fakeClock{t: time.Unix(1000, 0)}
	pl := NewPool(st, clk.Now, time.Minute)
	if _, err := pl.PutGateway(GatewayConfig{Name: "gw", Range: "10.9.0.0/30"}); err != nil { // 2 hosts
		t.Fatal(err)
	}
	a1, _, err1 := pl.Assign("d1", "")
	a2, _, err2 := pl.Assign("d2", "")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if got := []string{a1.IP.String(), a2.IP.String()}; !cmp.Equal(got, []string{"10.9.0.1", "10.9.0.2"}) {
		t.Fatalf("hosts %v", got)
	}
	if _, _, err := pl.Assign("d3", ""); !errors.Is(err, ErrRangesFull) {
		t.Fatalf("got %v", err)
	}
	// d1 starts a session, re-authenticates during it, then the session ends:
	// the address stays (pending the next Start).
	b, _, err := pl.Bind(a1.IP, "d1", "", "s1")
	if err != nil {
		t.Fatal(err)
	}
	pl.Assign("d1", "")
	pl.Release(a1.IP, "d1", "s1", b.Gen)
	if _, ok := pl.ByDevice("d1"); !ok {
		t.Fatal("address released although the device authenticated again")
	}
	// A second session with the current gen releases it.
	b, _, _ = pl.Bind(a1.IP, "d1", "", "s2")
	// A superseded session of the same device releases nothing.
	pl.Release(a1.IP, "d1", "s1", b.Gen-1)
	if _, ok := pl.ByDevice("d1"); !ok {
		t.Fatal("address released by a session that no longer holds it")
	}
	pl.Release(a1.IP, "d1", "s2", b.Gen)
	if _, ok := pl.ByDevice("d1"); ok {
		t.Fatal("address not released")
	}
	// d2 never starts: reclaimed after the pending TTL.
	clk.t = clk.t.Add(2 * time.Minute)
	pl.Expire()
	if _, ok := pl.ByDevice("d2"); ok {
		t.Fatal("pending assignment not reclaimed")
	}
	if c := pl.Counters(); c.RejectFull != 1 || c.Released != 1 || c.Expired != 1 {
		t.Fatalf("counters %+v", c)
	}
	// Conflicts and strays at Bind.
	a3, _, _ := pl.Assign("d3", "")
	if _, _, err := pl.Bind(a3.IP, "other", "", "s3"); !errors.Is(err, ErrAddressConflict) {
		t.Fatalf("got %v", err)
	}
	if _, _, err := pl.Bind(netip.MustParseAddr("192.0.2.1"), "x", "", "s4"); !errors.Is(err, ErrNotInRange) {
		t.Fatalf("got %v", err)
	}
}

func TestGatewayEditsAndPersistence(t *testing.T) {
	dir := t.TempDir()
	st := newTestStore(t, dir)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	pl := NewPool(st, clk.Now, time.Minute)
	twoGateways(t, pl, 24)
	if _, err := pl.PutGateway(GatewayConfig{Name: "gw3", Range: "10.1.0.128/25"}); err == nil {
		t.Fatal("overlapping range accepted")
	}
	if _, err := pl.PutGateway(GatewayConfig{Name: "bad", Range: "2001:db8::/64"}); err == nil {
		t.Fatal("IPv6 range accepted")
	}
	a, _, _ := pl.Assign("d1", "u1")
	if _, err := pl.PutGateway(GatewayConfig{Name: a.Gateway, Range: "10.7.0.0/24"}); err == nil {
		t.Fatal("range change that drops an assigned address accepted")
	}
	if _, err := pl.DeleteGateway(a.Gateway); err == nil {
		t.Fatal("gateway with assignments deleted")
	}
	if _, err := pl.PutGateway(GatewayConfig{Name: a.Gateway, Range: "10.1.0.0/23", MAC: "02:00:00:00:00:01", API: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	pl2 := NewPool(st, clk.Now, time.Minute)
	if err := pl2.Load(st); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(pl.Gateways(), pl2.Gateways()); d != "" {
		t.Fatalf("T1 after reload (-want +got):\n%s", d)
	}
	if d := cmp.Diff(pl.Assignments(), pl2.Assignments(), cmp.Comparer(func(x, y netip.Addr) bool { return x == y }), cmpopts.IgnoreUnexported(Assignment{})); d != "" {
		t.Fatalf("assignments after reload (-want +got):\n%s", d)
	}
	if b, _, _ := pl2.Assign("d1", ""); b.IP != a.IP {
		t.Fatalf("reloaded pool moved d1 from %s to %s", a.IP, b.IP)
	}
}

func TestUsersPAPAndCHAP(t *testing.T) {
	st := newTestStore(t, t.TempDir())
	us := NewUsers(st, 1000)
	if _, err := us.Put(User{ID: "alice", Password: "s3cret", DeviceID: "dev-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.Put(User{ID: "bob", Password: "chappw", CHAP: true}); err != nil {
		t.Fatal(err)
	}
	u, _ := us.Get("alice")
	if u.Hash == "" || u.Secret != "" || u.Password != "" {
		t.Fatalf("alice stored as %+v", u)
	}
	for i := 0; i < 2; i++ { // second round uses the memo
		if _, err := us.CheckPAP("alice", []byte("s3cret")); err != nil {
			t.Fatal(err)
		}
		if _, err := us.CheckPAP("alice", []byte("wrong")); !errors.Is(err, ErrBadPassword) {
			t.Fatalf("got %v", err)
		}
	}
	if _, err := us.CheckPAP("nobody", []byte("x")); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("got %v", err)
	}
	// CHAP: MD5(id || secret || challenge).
	challenge := []byte("0123456789abcdef")
	resp := chapResponse(7, "chappw", challenge)
	if _, err := us.CheckCHAP("bob", resp, challenge); err != nil {
		t.Fatal(err)
	}
	if _, err := us.CheckCHAP("bob", chapResponse(7, "nope", challenge), challenge); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("got %v", err)
	}
	if _, err := us.CheckCHAP("alice", resp, challenge); !errors.Is(err, ErrNoCHAP) {
		t.Fatalf("got %v", err)
	}
	// Editing the phone keeps the credentials.
	if _, err := us.Put(User{ID: "alice", Phone: "+81-3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.CheckPAP("alice", []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if l := us.List(); len(l) != 2 || l[0].Phone != "+81-3" || l[0].Secret != "" {
		t.Fatalf("list %+v", l)
	}
}
