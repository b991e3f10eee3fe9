package dp_test

import (
	"bytes"
	"net/netip"
	"testing"

	"samepath/dp"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
	"samepath/nat"
)

// newGW64 is the golden rig with a translator (64:ff9b::/96).
func newGW64(t *testing.T) *gwRig {
	t.Helper()
	c := xlat.DefaultConfig()
	c.IPv4Address, c.IPv6Address = key4, key6
	tr, err := xlat.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return newGWWith(t, 65535, nil, nil, 0, tr)
}

// nat64 is the RFC 6052 address of an IPv4 address under 64:ff9b::/96.
func nat64(a netip.Addr) netip.Addr {
	return netip.AddrFrom16(xlat.Embed(netip.MustParsePrefix("64:ff9b::/96"), a.As4()))
}

// TestGWNAT64Service: an IPv6 mobile's datagram to a representative
// address whose servers are IPv4 (service dns64) is balanced, NATed to a
// key port on the gateway's IPv4 address and translated (RFC 7915, RFC
// 6146); the answer comes back translated to the mobile, from the
// representative address. Both are compared with frames built from
// scratch, which holds every checksum to a full computation.
func TestGWNAT64Service(t *testing.T) {
	r := newGW64(t)
	q := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6).UDP(5000, 5353).Payload([]byte("query")).Bytes()
	out, p, drop := r.send(0, q)
	if p != 1 {
		t.Fatalf("up: drop %v", drop)
	}
	b := r.binding(17, mob6, rep6, 5000, 5353)
	if b.GwAddr != nat.Addr16From(key4) || b.Server != nat.Addr16From(a1) {
		t.Fatalf("binding %+v: want key port on %v toward a1", b, key4)
	}
	want := dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv4(key4, a1).TTL(64).ID(0).DF().UDP(b.GwPort, 53).Payload([]byte("query")).Bytes()
	if err := dptest.VerifyChecksums(out); err != nil {
		t.Errorf("translated up packet: %v", err)
	}
	if !bytes.Equal(out[:14], want[:14]) || !bytes.Equal(out[14+12:], want[14+12:]) {
		t.Errorf("translated up packet differs (IPv4 ID and flags aside): %s", dptest.Diff(want, out))
	}
	ans := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TTL(60).UDP(53, b.GwPort).Payload([]byte("answer")).Bytes()
	// A translator forwards as a router does: the hop limit is one less
	// (RFC 7915 section 4.1).
	r.mustForward(1, ans, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6, mob6).TTL(59).UDP(5353, 5000).Payload([]byte("answer")).Bytes())
	// The down path still filters by source.
	r.mustDrop(1, dptest.Frame().Eth(a2MAC, gwSrvMAC).IPv4(a2, key4).UDP(53, b.GwPort).Bytes(), dp.ReasonFiltered)
}

// TestGWNAT64Embedded: a destination inside the RFC 6052 prefix names
// the IPv4 address it embeds: a representative address there is balanced
// as its service (here an echo to web's address), any other is reached as
// addressed. A ping6 to 64:ff9b::10.30.0.1 is answered by a v4 server.
func TestGWNAT64Embedded(t *testing.T) {
	r := newGW64(t)
	dst := nat64(rep)
	out, p, drop := r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, dst).ICMPEcho(77, 1).Payload([]byte("ping")).Bytes())
	if p != 1 {
		t.Fatalf("ping6: drop %v", drop)
	}
	b := r.binding(58, mob6, dst, 77, 0)
	if b.GwAddr != nat.Addr16From(key4) || (b.Server != nat.Addr16From(a1) && b.Server != nat.Addr16From(a2)) {
		t.Fatalf("binding %+v", b)
	}
	var d header.Decoded
	if header.Decode(out, &d) != header.OK || d.IPVersion != 4 || d.Proto != header.ProtoICMPv4 || d.Tuple.SPort != b.GwPort {
		t.Fatalf("translated echo %x: version %d proto %d id %d", out, d.IPVersion, d.Proto, d.Tuple.SPort)
	}
	if err := dptest.VerifyChecksums(out); err != nil {
		t.Error(err)
	}
	srv, mac := b.Server.Addr(), a1MAC
	if b.Server == nat.Addr16From(a2) {
		mac = a2MAC
	}
	reply := dptest.Frame().Eth(mac, gwSrvMAC).IPv4(srv, key4).TTL(64).ICMPEchoReply(b.GwPort, 1).Payload([]byte("ping")).Bytes()
	r.mustForward(1, reply, 0, dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(dst, mob6).TTL(63).ICMPEchoReply(77, 1).Payload([]byte("ping")).Bytes())

	// An unbalanced IPv4 host under the prefix, by UDP.
	o2 := nat64(other)
	if _, p, drop := r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, o2).UDP(6000, 9999).Bytes()); p != 1 {
		t.Fatalf("udp to %v: drop %v", o2, drop)
	}
	if b := r.binding(17, mob6, o2, 6000, 9999); b.Server != nat.Addr16From(other) {
		t.Errorf("unbalanced NAT64 server %v, want %v", b.Server, other)
	}
}

// TestGWNAT64ICMPError: an ICMP error from the IPv4 server about a
// translated flow reaches the mobile as ICMPv6, quoting the packet the
// mobile sent.
func TestGWNAT64ICMPError(t *testing.T) {
	r := newGW64(t)
	q := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6).UDP(5000, 5353).Payload([]byte("query")).Bytes()
	if _, p, drop := r.send(0, q); p != 1 {
		t.Fatalf("up: drop %v", drop)
	}
	b := r.binding(17, mob6, rep6, 5000, 5353)
	quoted := dptest.IP(dptest.Frame().Eth(gwSrvMAC, a1MAC).IPv4(key4, a1).UDP(b.GwPort, 53).Payload([]byte("query")).Bytes())
	icmp := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).ICMPError(header.ICMPv4DstUnreachable, header.ICMPv4PortUnreachable, 0, quoted).Bytes()
	out, p, drop := r.send(1, icmp)
	if p != 0 {
		t.Fatalf("ICMP error: drop %v", drop)
	}
	var d header.Decoded
	if header.Decode(out, &d) != header.OK || d.Kind != header.KindICMPError || d.IPVersion != 6 {
		t.Fatalf("translated error %x: kind %v version %d", out, d.Kind, d.IPVersion)
	}
	want := header.Tuple{Src: nat.Addr16From(mob6), Dst: nat.Addr16From(rep6), SPort: 5000, DPort: 5353, Proto: header.ProtoUDP}
	if d.Quote.Tuple != want || d.Tuple.Src != nat.Addr16From(rep6) || d.Tuple.Dst != nat.Addr16From(mob6) {
		t.Errorf("translated error: outer %v -> %v, quote %+v, want quote %+v", d.Tuple.Src, d.Tuple.Dst, d.Quote.Tuple, want)
	}
	if l4 := d.L4(out); l4[0] != header.ICMPv6DstUnreachable || l4[1] != header.ICMPv6PortUnreachable {
		t.Errorf("ICMPv6 type/code %d/%d", l4[0], l4[1])
	}
}

// TestGWNoTranslator: without a translator, a flow to a service of the
// other family is refused, and leaves no record.
func TestGWNoTranslator(t *testing.T) {
	r := newGW(t, 65535)
	live := r.flows.Len()
	r.mustDrop(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6).UDP(5000, 5353).Bytes(), dp.ReasonUnsupported)
	if r.flows.Len() != live {
		t.Errorf("the refused flow left a record")
	}
}

// TestGWNAT46Fragments: a server's IPv4 datagram with DF clear that is
// bigger than the lowest IPv6 MTU (1280) leaves toward the mobile as two
// IPv6 fragments (RFC 7915 section 4): the first in the packet's frame,
// the second as the gateway's own frame (Originator) in the same round.
// Together they are the datagram the mobile would get unfragmented: the
// representative's port, the mobile's, a checksum over the whole of it.
// (The gateway used to drop such packets as xlat.)
func TestGWNAT46Fragments(t *testing.T) {
	r := newGW64(t)
	if _, p, drop := r.send(0, dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6).UDP(5000, 5353).Payload([]byte("query")).Bytes()); p != 1 {
		t.Fatalf("up: drop %v", drop)
	}
	b := r.binding(17, mob6, rep6, 5000, 5353)
	payload := make([]byte, 1400)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	big := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).TTL(60).ID(0x1234).UDP(53, b.GwPort).Payload(payload).Bytes()
	if !r.ports[1].Inject(big) {
		t.Fatal("inject")
	}
	before := r.w.Counters(0).Snapshot()
	r.w.Poll()
	out := r.ports[0].TakeAll()
	if len(out) != 2 {
		t.Fatalf("%d frames toward the mobile, want 2 fragments (drops %v)", len(out), r.w.Counters(1).Snapshot().Drops)
	}
	if n := r.w.Counters(0).Snapshot().Originated - before.Originated; n != 1 {
		t.Errorf("originated %d frames on the LAN port, want 1", n)
	}
	want := dptest.Frame().Eth(gwLanMAC, lb1MAC).IPv6(rep6, mob6).TTL(59).UDP(5353, 5000).Payload(payload).Bytes()
	var datagram []byte
	for i, f := range out {
		if !bytes.Equal(f[:14], want[:14]) {
			t.Errorf("fragment %d: Ethernet header %x, want %x", i, f[:14], want[:14])
		}
		if len(f) > 14+1280 {
			t.Errorf("fragment %d: %d bytes of IPv6, over the lowest IPv6 MTU", i, len(f)-14)
		}
		ip := f[14:]
		if ip[6] != header.ProtoFragment || !bytes.Equal(ip[8:40], want[14+8:14+40]) || ip[7] != 59 {
			t.Fatalf("fragment %d: next header %d, addresses or hop limit differ: %x", i, ip[6], ip[:48])
		}
		fh := ip[40:48]
		off, more := int(fh[2])<<5|int(fh[3])>>3, fh[3]&1 == 1
		if id := uint32(fh[4])<<24 | uint32(fh[5])<<16 | uint32(fh[6])<<8 | uint32(fh[7]); id != 0x1234 || fh[0] != header.ProtoUDP {
			t.Errorf("fragment %d: id %#x next %d, want the IPv4 ID 0x1234 and UDP", i, id, fh[0])
		}
		if off*8 != len(datagram) || more != (i == 0) {
			t.Errorf("fragment %d: offset %d more %v, want offset %d more %v", i, off*8, more, len(datagram), i == 0)
		}
		datagram = append(datagram, ip[48:]...)
	}
	if !bytes.Equal(datagram, want[14+40:]) {
		t.Errorf("reassembled datagram differs from the unfragmented translation: %s", dptest.Diff(want, append(append([]byte{}, want[:14+40]...), datagram...)))
	}
}

// TestGWXlatAllocs: translated packets both ways, a translated packet
// split into fragments (queued and originated) and the counters' publish
// allocate nothing.
func TestGWXlatAllocs(t *testing.T) {
	r := newGW64(t)
	q := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv6(mob6, rep6).UDP(5000, 5353).Payload([]byte("query")).Bytes()
	r.send(0, q)
	b := r.binding(17, mob6, rep6, 5000, 5353)
	ans := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).UDP(53, b.GwPort).Payload([]byte("answer")).Bytes()
	big := dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).UDP(53, b.GwPort).Payload(make([]byte, 1400)).Bytes()
	drain := func([]byte) {}
	frames := 0
	count := func([]byte) { frames++ }
	n := testing.AllocsPerRun(200, func() {
		r.ports[0].Inject(q)
		r.ports[1].Inject(ans)
		r.ports[1].Inject(big)
		r.w.Poll()
		for r.ports[0].Take(count) {
		}
		for r.ports[1].Take(drain) {
		}
	})
	if n != 0 {
		t.Errorf("translating gateway allocates %v per round", n)
	}
	if frames < 3*200 {
		t.Errorf("%d frames toward the mobile in 200 rounds, want 3 a round (answer, two fragments)", frames)
	}
}
