package demo_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"

	"samepath/ctl/session"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
)

// TestLoginLogoutLogin (issue 11, defect 7): a mobile logs in, out and in
// again; the second login is a new session at the control process (a new
// id), held by its gateway and served. A login while logged in supersedes
// the session it had.
func TestLoginLogoutLogin(t *testing.T) {
	ctx, sys := startWithControl(t)
	p := sys.TB.Plan
	m1, err := p.Mobile("mob1")
	if err != nil {
		t.Fatal(err)
	}
	webA := netip.AddrPortFrom(p.Groups[0].VIPv4, fig2.HTTPPort)
	var ids []string
	login := func(what string) {
		t.Helper()
		ip, err := sys.Login(ctx, "mob1")
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		s := controlSession(ctx, t, sys, ip)
		if s.State != session.Act {
			t.Fatalf("%s: control session %+v", what, s)
		}
		for _, id := range ids {
			if s.ID == id {
				t.Fatalf("%s: session id %s again, want a new session", what, id)
			}
		}
		ids = append(ids, s.ID)
		if err := get(ctx, m1, webA); err != nil {
			t.Fatalf("%s: not served: %v", what, err)
		}
	}
	login("first login")
	if err := sys.Logout(ctx, "mob1"); err != nil {
		t.Fatal(err)
	}
	login("login after logout")
	login("login while logged in")
	var ss []session.Session
	if err := sys.Control.Do(ctx, http.MethodGet, "/v1/sessions", nil, &ss); err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].ID != ids[2] {
		t.Fatalf("control sessions %+v, want only %s", ss, ids[2])
	}
}

// controlSession is the control process's session on ip.
func controlSession(ctx context.Context, t *testing.T, sys *demo.System, ip netip.Addr) session.Session {
	t.Helper()
	var ss []session.Session
	if err := sys.Control.Do(ctx, http.MethodGet, "/v1/sessions", nil, &ss); err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.IP == ip {
			return s
		}
	}
	t.Fatalf("no control session on %s in %+v", ip, ss)
	return session.Session{}
}
