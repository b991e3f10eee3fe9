package dp_test

import (
	"net/netip"
	"testing"

	"samepath/dp"
	"samepath/dp/balance"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

// TestGWNAT64Authorization: T9 names IPv4 representative addresses and
// servers; an IPv6 mobile reaching them through their RFC 6052 addresses
// is authorized as an IPv4 mobile would be (R-AUTH-1, R-TCP-3): a denied
// device is refused (ICMPv6 administratively prohibited back, counted,
// no record), an allowed one passes.
func TestGWNAT64Authorization(t *testing.T) {
	authz, err := dp.NewAuthz(
		[]dp.T9Row{{Rep: rep, ServiceType: "dns"}, {Rep: other, ServiceType: "video"}},
		[]dp.T8Row{{Device: "IMEI-1", ServiceType: "dns", Allowed: false}, {Device: "IMEI-1", ServiceType: "video", Allowed: true}})
	if err != nil {
		t.Fatal(err)
	}
	c := xlat.DefaultConfig()
	c.IPv4Address, c.IPv6Address = key4, key6
	tr, err := xlat.New(c)
	if err != nil {
		t.Fatal(err)
	}
	r := newGWWith(t, 65535, authz, nil, 0, tr)
	before := r.w.Counters(0).Snapshot()
	live := r.flows.Len()
	for _, dst := range []netip.Addr{nat64(rep)} {
		q := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, dst).UDP(5000, 53).Payload([]byte("q")).Bytes()
		r.mustForward(0, q, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(dst, mob6).TTL(64).ICMPError(1, 1, 0, dptest.IP(q)).Bytes())
	}
	if d := r.w.Counters(0).Snapshot().Drops[dp.ReasonDenied] - before.Drops[dp.ReasonDenied]; d != 1 {
		t.Errorf("denied drops +%d, want 1", d)
	}
	if den := authz.Denied(); den["dns"] != 1 {
		t.Errorf("denied per service type %v, want dns 1", den)
	}
	if n := r.flows.Len(); n != live {
		t.Errorf("%d NAT records, want %d: the refused flow left one", n, live)
	}
	// Allowed: the server named by T9 as video, through its RFC 6052 address.
	if _, p, drop := r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, nat64(other)).UDP(5001, 9).Bytes()); p != 1 {
		t.Errorf("allowed NAT64 flow: drop %v", drop)
	}
}

// TestGWEchoPacketUnit: an echo to a representative address whose only
// service balances per packet is balanced anew for every request, and
// every reply reaches the mobile (the echo's key names no server port),
// over IPv4 and through NAT64.
func TestGWEchoPacketUnit(t *testing.T) {
	c := xlat.DefaultConfig()
	c.IPv4Address, c.IPv6Address = key4, key6
	tr, err := xlat.New(c)
	if err != nil {
		t.Fatal(err)
	}
	repP := addr("10.30.0.7")
	r := newGWConfig(t, 65535, func(gc *dp.GWConfig) {
		ap := netip.AddrPortFrom
		svcs, err := balance.NewTable([]balance.ServiceConfig{
			{Name: "dnsp", Rep: ap(repP, 53), Proto: 17, Type: balance.PacketUnit, Policy: balance.RoundRobin,
				Servers: []balance.Server{{Addr: ap(a1, 53), Up: true}, {Addr: ap(a2, 53), Up: true}}}})
		if err != nil {
			t.Fatal(err)
		}
		dist, err := balance.NewDist(svcs, 1024)
		if err != nil {
			t.Fatal(err)
		}
		gc.Services, gc.Dist, gc.Xlat = svcs, dist, tr
	})
	for _, v6 := range []bool{false, true} {
		servers := map[netip.Addr]int{}
		for seq := uint16(1); seq <= 4; seq++ {
			var req []byte
			if v6 {
				req = dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, nat64(repP)).ICMPEcho(78, seq).Payload([]byte("ping")).Bytes()
			} else {
				req = dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, repP).ICMPEcho(77, seq).Payload([]byte("ping")).Bytes()
			}
			out, p, drop := r.send(0, req)
			if p != 1 {
				t.Fatalf("v6 %v echo %d: drop %v", v6, seq, drop)
			}
			var d header.Decoded
			if header.Decode(out, &d) != header.OK || d.IPVersion != 4 || d.Proto != header.ProtoICMPv4 {
				t.Fatalf("v6 %v echo %d out: %x", v6, seq, out)
			}
			srv := d.Tuple.Dst.Addr()
			servers[srv]++
			mac := a1MAC
			if srv == a2 {
				mac = a2MAC
			}
			reply := dptest.Frame().Eth(mac, gwSrvMAC).IPv4(srv, key4).TTL(64).ICMPEchoReply(d.Tuple.SPort, seq).Payload([]byte("ping")).Bytes()
			back, p, drop := r.send(1, reply)
			if p != 0 {
				t.Fatalf("v6 %v reply %d from %v: port %d drop %v", v6, seq, srv, p, drop)
			}
			var bd header.Decoded
			if header.Decode(back, &bd) != header.OK || (bd.IPVersion == 6) != v6 {
				t.Fatalf("v6 %v reply %d: %x", v6, seq, back)
			}
		}
		if servers[a1] != 2 || servers[a2] != 2 {
			t.Errorf("v6 %v: echoes went to %v, want two each (per packet rr)", v6, servers)
		}
	}
}
