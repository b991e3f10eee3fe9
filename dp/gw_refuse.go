package dp

import (
	"samepath/dp/header"
	"samepath/dp/rewrite"
)

// refuse answers a packet the gateway cannot carry: a RST for TCP, an
// ICMP destination unreachable (administratively prohibited) otherwise.
// The answer takes the packet's frame and goes back toward the LB, from
// the packet's destination; the caller sets the drop reason, which the
// engine counts although the frame leaves (as the reply).
func (g *GW) refuse(pk *Packet, d *header.Decoded) {
	b := pk.Data
	var n int
	if d.Proto == header.ProtoTCP {
		n = rewrite.TCPReset(b, &d.Parsed, g.scratch)
	} else {
		code := uint8(header.ICMPv4AdminProhibited)
		if d.IPVersion == 6 {
			code = header.ICMPv6AdminProhibited
		}
		n = rewrite.Unreachable(b, &d.Parsed, g.scratch, code)
	}
	if n == 0 || n > len(pk.Room) {
		return
	}
	copy(pk.Room, g.scratch[:n])
	e := header.Ethernet(pk.Room)
	e.SetSrc(g.cfg.LanMAC)
	pk.Desc.Len = uint32(n)
	pk.Out = g.cfg.Lan
	g.stats.Replies.Add(1)
}
