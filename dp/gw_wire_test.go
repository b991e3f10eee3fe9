package dp_test

import (
	"testing"
	"time"

	"samepath/dp"
	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/nat"
)

// TestGWWrongFamilyICMP: ICMPv6 over IPv4 (protocol 58) and ICMPv4 over
// IPv6 (next header 1) are unknown protocols to that IP version: Parse
// checks no length for them. Empty or short, they once made the gateway
// index past the frame (a crash); with 6 or more bytes they were NATed as
// echo. Now they are opaque: dropped and counted, from either side, with
// or without a VLAN tag, extension headers or Ethernet padding.
func TestGWWrongFamilyICMP(t *testing.T) {
	r := newGW(t, 65535)
	echo6 := []byte{128, 0, 0, 0, 0, 7, 0, 1} // an ICMPv6 echo request's first bytes
	echo4 := []byte{8, 0, 0, 0, 0, 7, 0, 1}
	type frame struct {
		name string
		port int
		f    []byte
	}
	var frames []frame
	for _, pl := range [][]byte{nil, {128}, echo6[:4], echo6, append(echo6, "payload"...)} {
		up4 := func() *dptest.Builder { return dptest.Frame().Eth(lb1MAC, gwLanMAC) }
		down4 := func() *dptest.Builder { return dptest.Frame().Eth(a1MAC, gwSrvMAC) }
		n := len(pl)
		frames = append(frames,
			frame{"up v4 proto 58", 0, up4().IPv4(mob, rep).Proto(58).Payload(pl).Bytes()},
			frame{"up v4 proto 58 vlan", 0, up4().VLAN(7).IPv4(mob, rep).Proto(58).Payload(pl).Bytes()},
			frame{"up v4 proto 58 padded", 0, up4().IPv4(mob, rep).Proto(58).Payload(pl).PadTo(80).Bytes()},
			frame{"down v4 proto 58", 1, down4().IPv4(a1, key4).Proto(58).Payload(pl).Bytes()},
		)
		pl4 := echo4[:min(n, len(echo4))]
		if n > len(echo4) {
			pl4 = append(echo4, pl[len(echo4):]...)
		}
		frames = append(frames,
			frame{"up v6 nh 1", 0, up4().IPv6(mob6, rep6).Proto(1).Payload(pl4).Bytes()},
			frame{"up v6 nh 1 vlan hbh", 0, up4().VLAN(7).IPv6(mob6, rep6).HopByHop(nil).Proto(1).Payload(pl4).Bytes()},
			frame{"up v6 nh 1 dstopts padded", 0, up4().IPv6(mob6, rep6).DstOpts(nil).Proto(1).Payload(pl4).PadTo(120).Bytes()},
			frame{"down v6 nh 1", 1, down4().IPv6(a16, key6).Proto(1).Payload(pl4).Bytes()},
		)
	}
	live := r.flows.Len()
	for _, fr := range frames {
		var d header.Decoded
		if v := header.Decode(fr.f, &d); v != header.OK {
			t.Fatalf("%s (%d bytes): the frame itself does not parse: %v", fr.name, len(fr.f), v)
		}
		if _, p, drop := r.send(fr.port, fr.f); p != -1 || drop != dp.ReasonUnsupported {
			t.Errorf("%s (%d bytes): port %d drop %v, want dropped as %v", fr.name, len(fr.f), p, drop, dp.ReasonUnsupported)
		}
	}
	if n := r.flows.Len(); n != live {
		t.Errorf("T5 holds %d records after the wrong-family frames, %d before", n, live)
	}
}

// TestGWDownFiltered: a down packet must come from its flow's server
// address and port (RFC 4787 address- and port-dependent filtering);
// anything else to the key port is dropped as filtered, and the flow
// still works.
func TestGWDownFiltered(t *testing.T) {
	r := newGW(t, 65535)
	syn := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagSYN).Seq(100).Bytes()
	if _, p, drop := r.send(0, syn); p != 1 {
		t.Fatalf("SYN: drop %v", drop)
	}
	b := r.binding(6, mob, rep, 40000, 80) // to a1:8080
	synack := func(src [6]byte, from nat.Addr16, sport uint16) []byte {
		return dptest.Frame().Eth(src, gwSrvMAC).IPv4(from.Addr(), key4).TCP(sport, b.GwPort).Flags(header.FlagSYN | header.FlagACK).Seq(5000).Ack(101).Bytes()
	}
	r.mustDrop(1, synack(xMAC, nat.Addr16From(other), 8080), dp.ReasonFiltered) // another host
	r.mustDrop(1, synack(a2MAC, nat.Addr16From(a2), 8080), dp.ReasonFiltered)   // another server of the group
	r.mustDrop(1, synack(a1MAC, nat.Addr16From(a1), 8081), dp.ReasonFiltered)   // the server, another port
	if _, p, drop := r.send(1, synack(a1MAC, nat.Addr16From(a1), 8080)); p != 0 {
		t.Errorf("the flow's own server: drop %v", drop)
	}

	// UDP, and an ICMP error quoting the flow's packet: the quote must
	// name the flow's server too.
	q := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, other).UDP(5000, 9999).Payload([]byte("hi")).Bytes()
	if _, p, drop := r.send(0, q); p != 1 {
		t.Fatalf("udp: drop %v", drop)
	}
	ub := r.binding(17, mob, other, 5000, 9999)
	r.mustDrop(1, dptest.Frame().Eth(a1MAC, gwSrvMAC).IPv4(a1, key4).UDP(9999, ub.GwPort).Bytes(), dp.ReasonFiltered)
	quote := func(dst nat.Addr16) []byte {
		return dptest.IP(dptest.Frame().Eth(gwSrvMAC, xMAC).IPv4(key4, dst.Addr()).UDP(ub.GwPort, 9999).Payload([]byte("hi")).Bytes())
	}
	icmp := func(dst nat.Addr16) []byte {
		return dptest.Frame().Eth(xMAC, gwSrvMAC).IPv4(a2, key4).ICMPError(3, 3, 0, quote(dst)).Bytes()
	}
	r.mustDrop(1, icmp(nat.Addr16From(a1)), dp.ReasonFiltered)
	if _, p, drop := r.send(1, icmp(nat.Addr16From(other))); p != 0 {
		t.Errorf("ICMP error quoting the flow's packet: drop %v", drop)
	}
}

// TestGWRefusalLeavesNoRecord: a first packet that the gateway refuses
// leaves no T5 record (and no T7 count) behind.
func TestGWRefusalLeavesNoRecord(t *testing.T) {
	r := newGW(t, 65535)
	live := r.flows.Len()
	for _, tc := range []struct {
		name string
		f    []byte
		want dp.Reason
	}{
		{"no next hop", dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, addr("10.20.0.77")).UDP(5, 6).Bytes(), dp.ReasonNoNextHop},
		{"no server", dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(1, 99).Flags(header.FlagSYN).Bytes(), dp.ReasonNoServer},
		{"not a syn", dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(1, 80).Flags(header.FlagACK).Bytes(), dp.ReasonNoFlow},
		{"wrong family icmp", dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).Proto(58).Payload([]byte{128, 0, 0, 0, 0, 1, 0, 1}).Bytes(), dp.ReasonUnsupported},
	} {
		r.mustDrop(0, tc.f, tc.want)
		if n := r.flows.Len(); n != live {
			t.Errorf("%s: T5 holds %d records, %d before", tc.name, n, live)
		}
	}
}

// TestGWResumeMovesT12: a mobile that only receives sends nothing after
// a move; the session event of its resume at the new NAS names the LB,
// and down packets leave through it at once (R-GW-4). An up packet
// through yet another LB is newer still and wins, for every flow of the
// session, including one that only receives.
func TestGWResumeMovesT12(t *testing.T) {
	r := newGW(t, 65535)
	open := func(sport uint16) nat.Binding {
		syn := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(sport, 80).Flags(header.FlagSYN).Seq(100).Bytes()
		if _, p, drop := r.send(0, syn); p != 1 {
			t.Fatalf("SYN: drop %v", drop)
		}
		return r.binding(6, mob, rep, sport, 80)
	}
	b1, b2 := open(40000), open(40001)
	lbOf := func(b nat.Binding) [6]byte {
		t.Helper()
		srv, mac := a1, a1MAC
		if b.Server == nat.Addr16From(a2) {
			srv, mac = a2, a2MAC
		}
		f := dptest.Frame().Eth(mac, gwSrvMAC).IPv4(srv, key4).TCP(b.SPort, b.GwPort).Flags(header.FlagACK).Seq(5000).Ack(101).Payload([]byte("data")).Bytes()
		out, p, drop := r.send(1, f)
		if p != 0 {
			t.Fatalf("down: drop %v", drop)
		}
		return [6]byte(out[:6])
	}
	if lbOf(b1) != lb1MAC || lbOf(b2) != lb1MAC {
		t.Fatal("down packets do not leave through lb1 before any move")
	}
	s := testSession
	s.IP, s.Seq, s.LB = mob.As16(), 2, lb2MAC
	r.gw.Apply(dp.SessionEvent{Session: s})
	r.w.Poll()
	if got1, got2 := lbOf(b1), lbOf(b2); got1 != lb2MAC || got2 != lb2MAC {
		t.Errorf("after the resume behind lb2, down packets leave through %x and %x", got1, got2)
	}
	// An up packet on flow 1 through lb1 again: newer than the event, for
	// flow 2 too.
	ack := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK).Seq(101).Ack(5001).Bytes()
	if _, p, _ := r.send(0, ack); p != 1 {
		t.Fatal("ACK via lb1 not forwarded")
	}
	if got1, got2 := lbOf(b1), lbOf(b2); got1 != lb1MAC || got2 != lb1MAC {
		t.Errorf("after an up packet through lb1, down packets leave through %x and %x", got1, got2)
	}
	// A later event of the same session naming the same LB (an interim,
	// a resync) is no news and does not undo the up packet's move.
	s.Seq = 3
	r.gw.Apply(dp.SessionEvent{Session: s})
	r.w.Poll()
	if got := lbOf(b2); got != lb1MAC {
		t.Errorf("a repeat of the event's LB moved the flow to %x", got)
	}
	if n := r.gw.Stats().LBMoves.Load(); n != 2 {
		t.Errorf("LBMoves %d, want 2 (to lb2 by the event, back to lb1 by the packet)", n)
	}
}

// TestGWResumeHold: an up packet that arrives through the LB a session
// event just moved the session away from was sent before the move (it
// sat in the old path): within the hold it is forwarded but moves
// nothing, for its own flow and the others. An up packet through a third
// LB is news and moves the session at once.
func TestGWResumeHold(t *testing.T) {
	r := newGWConfig(t, 65535, func(c *dp.GWConfig) { c.ResumeHold = time.Hour })
	syn := func(from [6]byte, sport uint16) []byte {
		return dptest.Frame().Eth(from, gwLanMAC).IPv4(mob, rep).TCP(sport, 80).Flags(header.FlagSYN).Seq(100).Bytes()
	}
	for _, sp := range []uint16{40000, 40001} {
		if _, p, drop := r.send(0, syn(lb1MAC, sp)); p != 1 {
			t.Fatalf("SYN: drop %v", drop)
		}
	}
	b := r.binding(6, mob, rep, 40001, 80)
	lbOfB := func() [6]byte { t.Helper(); return r.downLB(t, b) }
	s := testSession
	s.IP, s.Seq, s.LB = mob.As16(), 2, lb2MAC
	r.gw.Apply(dp.SessionEvent{Session: s})
	r.w.Poll()
	late := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK).Seq(101).Bytes()
	if _, p, _ := r.send(0, late); p != 1 {
		t.Fatal("a late packet through lb1 is not forwarded")
	}
	if _, p, _ := r.send(0, syn(lb1MAC, 40002)); p != 1 { // a late SYN opens its flow behind lb2
		t.Fatal("a late SYN through lb1 is not forwarded")
	}
	if got := lbOfB(); got != lb2MAC {
		t.Errorf("late packets through the LB the session left moved it back: down to %x", got)
	}
	if n := r.gw.Stats().LBStale.Load(); n != 2 {
		t.Errorf("LBStale %d, want 2", n)
	}
	third := dptest.MAC("02:00:00:00:03:02")
	r.send(0, dptest.Frame().Eth(third, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK).Seq(102).Bytes())
	if got := lbOfB(); got != third {
		t.Errorf("an up packet through a third LB did not move the session: down to %x", got)
	}
}

// TestGWResumeHoldEndsAtDormant: the soak's quick double move. The
// session resumes behind lb2 (the hold starts against lb1), then goes
// dormant there (Stop Idle-Timeout at lb2's NAS) and the phone comes
// back through lb1 before its Start: that up packet is the newest word
// (R-GW-4) and moves the session at once, where the hold used to keep
// the down packets on lb2 until the Start arrived.
func TestGWResumeHoldEndsAtDormant(t *testing.T) {
	r := newGWConfig(t, 65535, func(c *dp.GWConfig) { c.ResumeHold = time.Hour })
	syn := dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagSYN).Seq(100).Bytes()
	if _, p, drop := r.send(0, syn); p != 1 {
		t.Fatalf("SYN: drop %v", drop)
	}
	b := r.binding(6, mob, rep, 40000, 80)
	lbOfB := func() [6]byte { t.Helper(); return r.downLB(t, b) }
	ack := func(seq uint32) []byte {
		return dptest.Frame().Eth(lb1MAC, gwLanMAC).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK).Seq(seq).Bytes()
	}
	s := testSession
	s.IP, s.Seq, s.LB = mob.As16(), 2, lb2MAC
	r.gw.Apply(dp.SessionEvent{Session: s})
	r.w.Poll()
	r.send(0, ack(101)) // late: held
	if got := lbOfB(); got != lb2MAC {
		t.Fatalf("a late packet moved the session back before it went dormant: down to %x", got)
	}
	s.Seq, s.Dormant = 3, true
	r.gw.Apply(dp.SessionEvent{Session: s})
	r.w.Poll()
	if _, p, _ := r.send(0, ack(102)); p != 1 {
		t.Fatal("the ACK of the move back is not forwarded")
	}
	if got := lbOfB(); got != lb1MAC {
		t.Errorf("after the session went dormant behind lb2, an up packet through lb1 did not move it back: down to %x", got)
	}
	if n := r.gw.Stats().LBStale.Load(); n != 1 {
		t.Errorf("LBStale %d, want 1 (only the packet before the dormant event)", n)
	}
	// Dormant again (a repeat) and active behind lb1: no hold against lb2
	// is left over from the first move.
	s.Seq, s.Dormant, s.LB = 4, false, lb1MAC
	r.gw.Apply(dp.SessionEvent{Session: s})
	r.w.Poll()
	if got := lbOfB(); got != lb1MAC {
		t.Errorf("the Start behind lb1 moved the flow to %x", got)
	}
}

// downLB sends a down ACK of b's TCP flow from its server and returns
// the LB MAC it leaves toward.
func (r *gwRig) downLB(t *testing.T, b nat.Binding) [6]byte {
	t.Helper()
	srv, mac := a1, a1MAC
	if b.Server == nat.Addr16From(a2) {
		srv, mac = a2, a2MAC
	}
	out, p, drop := r.send(1, dptest.Frame().Eth(mac, gwSrvMAC).IPv4(srv, key4).TCP(b.SPort, b.GwPort).Flags(header.FlagACK).Bytes())
	if p != 0 {
		t.Fatalf("down: drop %v", drop)
	}
	return [6]byte(out[:6])
}
