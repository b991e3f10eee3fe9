package acct

import "samepath/nat"

// SetFlow copies a NAT binding's flow into r: the user session, protocol,
// representative address (the mobile's destination), actual server,
// start (first packet) and end (latest packet) and the counters. epoch
// is the unix time in nanoseconds of the worker clock's zero
// (nat.Binding's Created and LastSeen are on the worker clock). For an
// interim record the caller sets End to the report time afterwards. The
// mobile's own address is not copied: the record names the subscriber
// (SetUser, SetDevice from T3) instead (step S79). Allocation-free.
func (r *Record) SetFlow(b *nat.Binding, epoch int64) {
	r.Session = b.Session
	r.Proto = b.Flow.Proto
	r.Rep, r.RepPort = [16]byte(b.Flow.Dst), b.Flow.DPort
	r.Server, r.ServerPort = [16]byte(b.Server), b.SPort
	r.Start, r.End = epoch+b.Created, epoch+b.LastSeen
	r.UpPackets, r.UpBytes = b.UpPackets, b.UpBytes
	r.DownPackets, r.DownBytes = b.DownPackets, b.DownBytes
}
