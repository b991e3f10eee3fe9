package dp_test

import (
	"encoding/binary"
	"testing"
	"time"

	"samepath/dp"
	"samepath/dp/acct"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/nat"
)

// FuzzGW runs fuzzed frames through the whole gateway pipeline on memory
// ports, both directions, with live sessions (IPv4 and IPv6), services of
// each user session type, T8/T9 authorization and accounting on.
//
// An input is a sequence of up to 8 records, each [ctl][sel][len:2][frame]:
// ctl bit 0 is the side (0 the LBs', 1 the servers'); bit 1 "aims" the
// frame: an up frame gets a session's address as its source, a down frame
// (or the packet its ICMP error quotes) is pointed at live flow number sel
// (its key address and port, from its server), so that fuzzing reaches the
// paths behind the session gate and the flow lookup.
//
// Properties, for every frame: no panic; it is forwarded or counted
// exactly once (a refusal is both: counted, and answered with a reply);
// what leaves parses; and a frame whose checksums were right leaves with
// right checksums.
//
//	go test -run '^$' -fuzz '^FuzzGW$' -fuzztime 30s ./dp
func FuzzGW(f *testing.F) {
	for _, s := range gwSeeds() {
		f.Add(s)
	}
	var r *gwRig
	f.Fuzz(func(t *testing.T, in []byte) {
		if r == nil {
			r = newFuzzGW(t)
		}
		r.t = t
		defer r.gw.EndAll(time.Second) // the next input starts with no flow
		for n := 0; n < 8 && len(in) >= 4; n++ {
			ctl, sel, l := in[0], in[1], int(binary.BigEndian.Uint16(in[2:]))
			in = in[4:]
			l = min(l, len(in), 2048)
			frame := append([]byte(nil), in[:l]...)
			in = in[l:]
			port := int(ctl & 1)
			if ctl&2 != 0 {
				aim(r, frame, port, sel)
			}
			r.checkOnce(port, frame)
		}
	})
}

// newFuzzGW is the gateway of the golden tests with authorization (web
// allowed, video not) and accounting on, interim records every tick.
func newFuzzGW(t *testing.T) *gwRig {
	authz, err := dp.NewAuthz(
		[]dp.T9Row{{Rep: rep, ServiceType: "web"}, {Rep: other, ServiceType: "video"}, {Rep: rep6, ServiceType: "web"}},
		[]dp.T8Row{{Device: "IMEI-1", ServiceType: "web", Allowed: true}, {Device: "IMEI-1", ServiceType: "video", Allowed: false}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := acct.DefaultConfig(t.TempDir() + "/acct.log")
	log, err := acct.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := log.Register()
	if err != nil {
		t.Fatal(err)
	}
	return newGWFull(t, 65535, authz, prod, time.Nanosecond)
}

// checkOnce sends one frame and checks the properties of FuzzGW.
func (r *gwRig) checkOnce(port int, f []byte) {
	t := r.t
	t.Helper()
	before := r.w.Counters(port).Snapshot()
	var d header.Decoded
	parsed := header.Decode(f, &d) == header.OK
	goodSums := parsed && d.IPVersion != 0 && dptest.VerifyChecksums(f) == nil
	if !r.ports[port].Inject(f) {
		t.Fatal("inject failed")
	}
	r.w.Poll()
	after := r.w.Counters(port).Snapshot()
	var drops uint64
	reason := dp.ReasonNone
	for i := range after.Drops {
		if n := after.Drops[i] - before.Drops[i]; n > 0 {
			drops += n
			reason = dp.Reason(i)
		}
	}
	var out [][]byte
	for p := range r.ports {
		out = append(out, r.ports[p].TakeAll()...)
	}
	switch {
	case len(out) == 0 && drops == 1, len(out) == 1 && drops == 0:
	case len(out) == 1 && drops == 1 && (reason == dp.ReasonDenied || reason == dp.ReasonPortExhausted):
		// Refused and answered.
	default:
		t.Fatalf("frame %x: %d frames out and %d drops (last %v): want exactly one of them", f, len(out), drops, reason)
	}
	for _, o := range out {
		var od header.Parsed
		if v := header.Parse(o, &od); v != header.OK {
			t.Fatalf("frame %x left as %x, which does not parse: %v", f, o, v)
		}
		if goodSums {
			if err := dptest.VerifyChecksums(o); err != nil {
				t.Fatalf("frame %x with right checksums left as %x: %v", f, o, err)
			}
		}
	}
}

// aim points frame f at what the gateway holds (see FuzzGW). It changes
// addresses and ports in place, without fixing checksums, and leaves
// frames it cannot aim alone.
func aim(r *gwRig, f []byte, port int, sel uint8) {
	var d header.Decoded
	if header.Decode(f, &d) != header.OK || d.IPVersion == 0 {
		return
	}
	v4 := d.IPVersion == 4
	if port == 0 {
		src := nat.Addr16From(mob)
		if !v4 {
			src = nat.Addr16From(mob6)
		}
		putAddr(f, d.L3Off, v4, true, src)
		return
	}
	var bs []nat.Binding
	r.flows.Snapshot(func(b nat.Binding) bool {
		if b.GwAddr.Is4() == v4 {
			bs = append(bs, b)
		}
		return true
	})
	if len(bs) == 0 {
		return
	}
	b := bs[int(sel)%len(bs)]
	switch d.Kind {
	case header.KindFlow:
		putAddr(f, d.L3Off, v4, true, b.Server)
		putAddr(f, d.L3Off, v4, false, b.GwAddr)
		if d.Proto == header.ProtoTCP || d.Proto == header.ProtoUDP {
			binary.BigEndian.PutUint16(f[d.L4Off:], b.SPort)
			binary.BigEndian.PutUint16(f[d.L4Off+2:], b.GwPort)
		} else {
			binary.BigEndian.PutUint16(f[d.L4Off+4:], b.GwPort)
		}
	case header.KindICMPError:
		q := &d.Quote
		putAddr(f, q.Off, v4, true, b.GwAddr)
		putAddr(f, q.Off, v4, false, b.Server)
		if q.Tuple.Proto == header.ProtoTCP || q.Tuple.Proto == header.ProtoUDP {
			binary.BigEndian.PutUint16(f[q.L4Off:], b.GwPort)
			binary.BigEndian.PutUint16(f[q.L4Off+2:], b.SPort)
		} else {
			binary.BigEndian.PutUint16(f[q.L4Off+4:], b.GwPort)
		}
	}
}

// putAddr writes a into the source (src) or destination address of the
// IP header at off.
func putAddr(f []byte, off int, v4, src bool, a nat.Addr16) {
	switch {
	case v4 && src:
		copy(f[off+12:off+16], a[12:])
	case v4:
		copy(f[off+16:off+20], a[12:])
	case src:
		copy(f[off+8:off+24], a[:])
	default:
		copy(f[off+24:off+40], a[:])
	}
}

// gwSeeds are inputs for every family x protocol x direction, ICMP
// errors quoting each family's packets, and wrong-family ICMP, from
// dptest's builder: an up frame opening a flow, then aimed down frames
// answering it.
func gwSeeds() [][]byte {
	rec := func(ctl, sel uint8, f []byte) []byte {
		return append([]byte{ctl, sel, byte(len(f) >> 8), byte(len(f))}, f...)
	}
	up4 := func() *dptest.Builder { return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep) }
	up6 := func() *dptest.Builder { return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6) }
	dn4 := func() *dptest.Builder { return dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4) }
	dn6 := func() *dptest.Builder { return dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv6(a16, key6) }
	type pair struct{ up, down []byte }
	var pairs []pair
	toMob4 := func() *dptest.Builder { return dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv4(rep, mob) }
	toMob6 := func() *dptest.Builder { return dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6, mob6) }
	for _, fam := range []struct {
		up, dn, toMob func() *dptest.Builder
		errT          uint8
	}{{up4, dn4, toMob4, header.ICMPv4DstUnreachable}, {up6, dn6, toMob6, header.ICMPv6DstUnreachable}} {
		syn := fam.up().TCP(40000, 80).Flags(header.FlagSYN).Seq(1).Bytes()
		udp := fam.up().UDP(5000, 53).Payload([]byte("query")).Bytes()
		echo := fam.up().ICMPEcho(77, 1).Payload([]byte("ping")).Bytes()
		pairs = append(pairs,
			pair{syn, fam.dn().TCP(8080, 1).Flags(header.FlagSYN | header.FlagACK).Seq(9).Ack(2).Bytes()},
			pair{udp, fam.dn().UDP(53, 1).Payload([]byte("answer")).Bytes()},
			pair{echo, fam.dn().ICMPEchoReply(1, 1).Payload([]byte("pong")).Bytes()},
			// An ICMP error from the server quoting the flow's packet.
			pair{udp, fam.dn().ICMPError(fam.errT, 3, 0, dptest.IP(fam.dn().UDP(1, 53).Payload([]byte("query")).Bytes())).Bytes()},
			// An ICMP error from the mobile quoting a down packet.
			pair{syn, fam.up().ICMPError(fam.errT, 3, 0, dptest.IP(fam.toMob().TCP(80, 40000).Flags(header.FlagSYN|header.FlagACK).Bytes())).Bytes()},
		)
	}
	// HTTP and TLS payloads for the accounting sniffers, a denied flow,
	// VLAN tags and IPv6 extension headers.
	pairs = append(pairs,
		pair{up4().TCP(40001, 80).Flags(header.FlagSYN).Bytes(), up4().TCP(40001, 80).Flags(header.FlagACK | header.FlagPSH).Payload([]byte("GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n")).Bytes()},
		pair{dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, other).TCP(40002, 443).Flags(header.FlagSYN).Bytes(), nil},
		pair{dptest.Frame().Eth(lb1MAC, gwLanMAC).VLAN(5).IPv6(mob6, rep6).HopByHop(nil).UDP(5001, 53).Bytes(), dn6().DstOpts(nil).UDP(53, 1).Bytes()},
	)
	var seeds [][]byte
	for _, p := range pairs {
		s := rec(0, 0, p.up)
		if p.down != nil {
			s = append(s, rec(3, 0, p.down)...)
		}
		seeds = append(seeds, s)
	}
	// Wrong-family ICMP, empty and echo-shaped, both sides.
	for _, pl := range [][]byte{nil, {128, 0, 0, 0, 0, 7, 0, 1}} {
		seeds = append(seeds,
			rec(0, 0, up4().Proto(58).Payload(pl).Bytes()),
			rec(1, 0, dn4().Proto(58).Payload(pl).Bytes()),
			rec(0, 0, up6().Proto(1).Payload(pl).Bytes()),
			rec(1, 0, dn6().Proto(1).Payload(pl).Bytes()),
		)
	}
	return seeds
}

// TestGWSeedsReach keeps FuzzGW's seeds meaningful: every seed's up
// frame opens its flow (or is refused, for the denied one) and every
// aimed down frame reaches the mobile, so fuzzing starts from inputs that
// get past the session gate and the flow lookup.
func TestGWSeedsReach(t *testing.T) {
	r := newFuzzGW(t)
	for i, s := range gwSeeds() {
		if s[0]&2 == 0 && len(s) == 4+int(binary.BigEndian.Uint16(s[2:])) {
			continue // a lone frame: the wrong-family cases
		}
		up := s[4 : 4+int(binary.BigEndian.Uint16(s[2:]))]
		rest := s[4+len(up):]
		out, p, drop := r.send(0, append([]byte(nil), up...))
		if p < 0 && drop != dp.ReasonDenied {
			t.Errorf("seed %d: up frame dropped: %v", i, drop)
		}
		_ = out
		if len(rest) > 0 {
			down := append([]byte(nil), rest[4:]...)
			aim(r, down, int(rest[0]&1), rest[1])
			port := int(rest[0] & 1)
			if _, p, drop := r.send(port, down); p < 0 {
				t.Errorf("seed %d: aimed frame on port %d dropped: %v", i, port, drop)
			}
		}
		r.gw.EndAll(time.Second)
	}
}
