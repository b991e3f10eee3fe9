package fig2

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlanUniqueAndRoundTrip(t *testing.T) {
	for _, air := range []bool{false, true} {
		p, err := NewPlan("sptbx", 3, air)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var q Plan
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, &q, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
			cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
			cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("JSON round trip (-want +got):\n%s", diff)
		}
		// Every interface has a distinct MAC and (outside the per-link
		// PPP addresses) distinct addresses; names are unique per namespace.
		macs := map[MAC]string{}
		names := map[string]bool{}
		addrs := map[netip.Addr]string{}
		add := func(i Iface, shared bool) {
			key := i.NS + "/" + i.Name
			if names[key] {
				t.Errorf("interface %s twice", key)
			}
			names[key] = true
			if o, ok := macs[i.MAC]; ok {
				t.Errorf("MAC %s on %s and %s", i.MAC, o, key)
			}
			macs[i.MAC] = key
			if shared {
				return
			}
			for _, a := range []netip.Prefix{i.IPv4, i.IPv6} {
				if !a.IsValid() {
					continue
				}
				if o, ok := addrs[a.Addr()]; ok {
					t.Errorf("address %s on %s and %s", a.Addr(), o, key)
				}
				addrs[a.Addr()] = key
			}
		}
		add(p.Ctl.Mgmt, false)
		for _, in := range p.Ingress {
			add(in.NAS.ToLB, false)
			add(in.NAS.Mgmt, false)
			add(in.LB.Ingress, false)
			add(in.LB.LAN, false)
			add(in.LB.Mgmt, false)
		}
		for _, g := range p.Gateways {
			add(g.LAN1, false)
			add(g.LAN2, false)
			add(g.Mgmt, false)
		}
		for _, s := range p.Servers {
			add(s.LAN, false)
		}
		for _, m := range p.Mobiles {
			for n := range m.Wireless {
				add(m.Wireless[n], true)
				add(m.NASSide[n], true)
				if air {
					add(m.Air[n][0], true)
					add(m.Air[n][1], true)
				}
			}
			// The mobile's address is in its gateway's ranges.
			g := p.Gateways[m.Gateway-1]
			if !g.Ranges[0].Contains(m.IPv4) || !g.Ranges[1].Contains(m.IPv6) {
				t.Errorf("%s %s/%s not in gw%d's ranges %v", m.Name, m.IPv4, m.IPv6, g.Index, g.Ranges)
			}
		}
		if len(p.Namespaces()) != 2+3+2*NumIngress+NumGateways+4+map[bool]int{true: 1}[air] {
			t.Errorf("namespaces: %v", p.Namespaces())
		}
	}
	for _, bad := range []string{"", "a-b", "a/b", "sptb-too-long-prefix-x"} {
		if _, err := NewPlan(bad, 2, false); err == nil {
			t.Errorf("NewPlan(%q) succeeded", bad)
		}
	}
	if _, err := NewPlan("sptbx", 0, false); err == nil {
		t.Error("NewPlan with 0 mobiles succeeded")
	}
}

func TestParseCounters(t *testing.T) {
	js := `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "sptb_count"}},
 {"rule": {"comment": "up-lb1", "expr": [{"match": {}}, {"counter": {"packets": 5, "bytes": 500}}]}},
 {"rule": {"comment": "up-lb2", "expr": [{"counter": {"packets": 1, "bytes": 60}}]}},
 {"rule": {"comment": "up-lb3", "expr": [{"counter": {"packets": 0, "bytes": 0}}]}},
 {"rule": {"comment": "up", "expr": [{"counter": {"packets": 7, "bytes": 620}}]}},
 {"rule": {"comment": "down", "expr": [{"counter": {"packets": 9, "bytes": 9000}}]}}]}`
	got, err := parseCounters([]byte(js), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := GatewayCounters{Up: PB{7, 620}, UpByLB: []PB{{5, 500}, {1, 60}, {0, 0}}, Down: PB{9, 9000}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if d := got.Sub(GatewayCounters{Up: PB{2, 20}, UpByLB: []PB{{1, 100}}, Down: PB{9, 9000}}); d.Up != (PB{5, 600}) || d.UpByLB[0] != (PB{4, 400}) || d.UpByLB[1] != (PB{1, 60}) || d.Down != (PB{}) {
		t.Errorf("Sub = %+v", d)
	}
	for _, bad := range []string{`nope`, `{"nftables": []}`, `{"nftables": [{"rule": {"comment": "up-lb9", "expr": [{"counter": {"packets": 1, "bytes": 1}}]}}]}`} {
		if _, err := parseCounters([]byte(bad), 3); err == nil {
			t.Errorf("parseCounters(%s) succeeded", bad)
		}
	}
}
