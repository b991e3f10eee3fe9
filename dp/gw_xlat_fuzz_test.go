package dp_test

import (
	"encoding/binary"
	"testing"
	"time"

	"samepath/dp"
	"samepath/dp/dptest"
	"samepath/dp/header"
)

// FuzzGWXlat is FuzzGW (same records, same aiming) through a gateway
// with a translator: NAT64 flows to the dns64 service and to RFC 6052
// addresses, their down packets, ICMP errors both ways. Properties, for
// every frame: no panic; it is forwarded (as one frame, or as IPv6
// fragments toward the mobile), or counted once, or both when refused and
// answered (a proxy reply, or the translator's ICMP error, counted as
// xlat); what leaves parses; a frame whose checksums were right leaves
// with right checksums.
//
//	go test -run '^$' -fuzz '^FuzzGWXlat$' -fuzztime 30s ./dp
func FuzzGWXlat(f *testing.F) {
	for _, s := range gwXlatSeeds() {
		f.Add(s)
	}
	var r *gwRig
	f.Fuzz(func(t *testing.T, in []byte) {
		if r == nil {
			r = newGW64(t)
		}
		r.t = t
		defer r.gw.EndAll(time.Second)
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
			r.checkXlat(port, frame)
		}
	})
}

// checkXlat sends one frame and checks the properties of FuzzGWXlat.
func (r *gwRig) checkXlat(port int, f []byte) {
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
	case len(out) > 1 && drops == 0 && port == 1:
		// Fragments toward the mobile: each an IPv6 fragment.
		for i, o := range out {
			var od header.Parsed
			if header.Parse(o, &od) != header.OK || od.IPVersion != 6 || !od.Fragment {
				t.Fatalf("frame %x left as %d frames, %d of which (%x) is no IPv6 fragment", f, len(out), i, o)
			}
		}
	case len(out) == 1 && drops == 1 && (reason == dp.ReasonDenied || reason == dp.ReasonPortExhausted || reason == dp.ReasonXlat):
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

// gwXlatSeeds: NAT64 flows (UDP to dns64, echo and UDP to RFC 6052
// addresses) with aimed down packets, one big enough to be fragmented,
// ICMP errors both ways, and a hop limit that runs out.
func gwXlatSeeds() [][]byte {
	rec := func(ctl, sel uint8, f []byte) []byte {
		return append([]byte{ctl, sel, byte(len(f) >> 8), byte(len(f))}, f...)
	}
	up := func() *dptest.Builder { return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6) }
	dn := func() *dptest.Builder { return dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4) }
	emb := nat64(other)
	udp := up().UDP(5000, 5353).Payload([]byte("query")).Bytes()
	return [][]byte{
		append(rec(0, 0, udp), rec(3, 0, dn().UDP(53, 1).Payload([]byte("answer")).Bytes())...),
		append(rec(0, 0, udp), rec(3, 0, dn().UDP(53, 1).Payload(make([]byte, 1400)).Bytes())...),
		append(rec(0, 0, udp), rec(3, 0, dn().ICMPError(header.ICMPv4DstUnreachable, 3, 0, dptest.IP(dn().UDP(1, 53).Payload([]byte("query")).Bytes())).Bytes())...),
		append(rec(0, 0, udp), rec(3, 0, dn().DF().UDP(53, 1).Payload(make([]byte, 1480)).Bytes())...),
		append(rec(0, 0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, emb).ICMPEcho(77, 1).Payload([]byte("ping")).Bytes()),
			rec(3, 0, dptest.Frame().Eth(xMAC, gwSrvMAC).IPv4(other, key4).ICMPEchoReply(1, 1).Payload([]byte("pong")).Bytes())...),
		rec(0, 0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, emb).TTL(1).UDP(6000, 9999).Bytes()),
		append(rec(0, 0, udp), rec(2, 0, up().ICMPError(header.ICMPv6DstUnreachable, 4, 0,
			dptest.IP(dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6, mob6).UDP(5353, 5000).Bytes())).Bytes())...),
	}
}

// TestGWXlatSeedsReach keeps FuzzGWXlat's seeds meaningful: every seed's
// first frame opens its translated flow (or is answered by the
// translator), and every aimed frame after it leaves the gateway
// (forwarded, fragmented or answered), so fuzzing starts past the flow
// lookup.
func TestGWXlatSeedsReach(t *testing.T) {
	r := newGW64(t)
	for i, s := range gwXlatSeeds() {
		first := s[4 : 4+int(binary.BigEndian.Uint16(s[2:]))]
		rest := s[4+len(first):]
		r.ports[0].Inject(append([]byte(nil), first...))
		r.w.Poll()
		if n := len(r.ports[0].TakeAll()) + len(r.ports[1].TakeAll()); n == 0 {
			t.Errorf("seed %d: first frame sent nothing", i)
		}
		if len(rest) > 0 {
			f := append([]byte(nil), rest[4:]...)
			port := int(rest[0] & 1)
			aim(r, f, port, rest[1])
			r.ports[port].Inject(f)
			r.w.Poll()
			if n := len(r.ports[0].TakeAll()) + len(r.ports[1].TakeAll()); n == 0 {
				t.Errorf("seed %d: aimed frame on port %d sent nothing", i, port)
			}
		}
		r.gw.EndAll(time.Second)
	}
}
