package dp

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"samepath/dp/acct"
	"samepath/dp/header"
	"samepath/nat"
)

// Proxy accounting (R-ACCT-1, FIG. 28-29): the gateway counts every user
// session flow's packets and bytes both ways (the NAT record does) and
// its TCP/UDP payload bytes, takes an attribute from the first up
// segment that carries payload (HTTP host/path or TLS SNI), and hands a
// T10 record naming the subscriber and service type to the accounting
// log when the flow ends, and every AcctInterim while it lasts. All of it
// runs on the worker without allocation; records leave through the
// producer's lock-free ring (a full ring loses the record and counts it).
// When the gateway stops, EndAll closes every open flow with a final
// record (cause "shutdown"), so a restart loses no usage.
//
// A crash (R-ACCT-2): every CheckpointInterval (the log's fsync batch)
// acctTick sweeps the flow table, a bounded number of slots per round,
// and pushes a Checkpoint record for each live flow whose packet count
// changed since its last checkpoint or interim record (idle flows cost
// nothing). The log keeps each flow's latest one; after a crash the
// restarted gateway's acct.Open writes a final record (cause
// "gateway-restart") from it for each flow the crash ended. Every record
// names its flow (Boot, Seq), so a checkpoint is superseded by the
// flow's later records, never counted with them.

// acctState is the per-flow accounting state, indexed by binding id.
type acctState struct {
	upPay, downPay []uint64
	sniffed        []bool
	lastReport     []int64 // worker clock of the flow's start or last interim record
	// startWall is each flow's start in unix ns, fixed when it starts so
	// that all its records carry one start time, whatever wall0 does later.
	startWall []int64
	// Attributes live in a bounded slab of slots: only flows whose first
	// payload names a host take one.
	attrOf   []int32 // slot, -1 none
	attr     []byte  // slots * acct.AttrSize
	attrLen  []uint8
	attrKind []uint8
	free     []int32
	noSlot   atomic.Uint64 // attributes lost for want of a slot

	// Flow names (acct.Record Boot, Seq): boot is drawn at start, seq[id]
	// is the flow's number, from nextSeq.
	boot    uint64
	nextSeq uint64
	seq     []uint64
	// bootOf[id] is the boot of a flow another gateway named (state
	// sync, gw_sync.go), 0 for this worker's own: a flow carried across
	// a takeover keeps one name in every gateway's records.
	bootOf []uint64
	// Checkpoints: ckptPkts[id] is the flow's packet count (both ways)
	// at its last checkpoint or interim record; a sweep examines
	// ckptLeft more slots from ckptCursor; the next starts at ckptNext.
	ckptPkts   []uint64
	ckptCursor uint32
	ckptLeft   uint32
	ckptNext   int64

	wall0 int64 // unix ns at worker clock 0
	// waitUntil, set by EndAll, lets final records wait for room in the
	// log's ring until then instead of being lost.
	waitUntil time.Time
	cursor    uint32
	rec       acct.Record

	// Usage per subscriber and per service type, from the records:
	// reported[id] is what earlier records of the flow already added.
	repUp, repDown []uint64
	usage          Usage
}

// Usage aggregates the accounted bytes and packets per subscriber and per
// service type (issue 6: counters on the metrics endpoint). The worker
// adds under the mutex once per record, never per packet.
type Usage struct {
	mu        sync.Mutex
	bySub     map[SubscriberKey]*UsageCount
	byService map[string]*UsageCount
}

// SubscriberKey names a subscriber.
type SubscriberKey struct{ User, Device string }

// UsageCount is bytes (whole IP packets) each way and records.
type UsageCount struct {
	UpBytes, DownBytes uint64
	Records            uint64
}

func (u *Usage) add(user, device, st string, up, down uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bySub == nil {
		u.bySub, u.byService = map[SubscriberKey]*UsageCount{}, map[string]*UsageCount{}
	}
	k := SubscriberKey{user, device}
	c := u.bySub[k]
	if c == nil {
		c = &UsageCount{}
		u.bySub[k] = c
	}
	c.UpBytes, c.DownBytes, c.Records = c.UpBytes+up, c.DownBytes+down, c.Records+1
	c = u.byService[st]
	if c == nil {
		c = &UsageCount{}
		u.byService[st] = c
	}
	c.UpBytes, c.DownBytes, c.Records = c.UpBytes+up, c.DownBytes+down, c.Records+1
}

// Usage returns copies of the per-subscriber and per-service-type counts.
func (g *GW) Usage() (bySub map[SubscriberKey]UsageCount, byService map[string]UsageCount) {
	bySub, byService = map[SubscriberKey]UsageCount{}, map[string]UsageCount{}
	if g.acct == nil {
		return
	}
	u := &g.acct.usage
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, v := range u.bySub {
		bySub[k] = *v
	}
	for k, v := range u.byService {
		byService[k] = *v
	}
	return
}

func newAcctState(flows, slots int) *acctState {
	a := &acctState{
		upPay: make([]uint64, flows), downPay: make([]uint64, flows),
		sniffed: make([]bool, flows), lastReport: make([]int64, flows),
		startWall: make([]int64, flows),
		attrOf:    make([]int32, flows),
		attr:      make([]byte, slots*acct.AttrSize), attrLen: make([]uint8, slots), attrKind: make([]uint8, slots),
		free:  make([]int32, 0, slots),
		repUp: make([]uint64, flows), repDown: make([]uint64, flows),
		seq: make([]uint64, flows), ckptPkts: make([]uint64, flows), bootOf: make([]uint64, flows),
	}
	var b [8]byte
	for a.boot == 0 {
		rand.Read(b[:]) // never fails (crypto/rand)
		a.boot = binary.LittleEndian.Uint64(b[:])
	}
	for i := slots - 1; i >= 0; i-- {
		a.free = append(a.free, int32(i))
	}
	for i := range a.attrOf {
		a.attrOf[i] = -1
	}
	return a
}

// acctStart resets a new flow's accounting state.
func (g *GW) acctStart(id uint32) {
	a := g.acct
	if a == nil {
		return
	}
	a.upPay[id], a.downPay[id], a.sniffed[id], a.lastReport[id] = 0, 0, false, g.now
	a.startWall[id] = a.wall0 + g.now
	a.repUp[id], a.repDown[id] = 0, 0
	a.attrOf[id] = -1
	a.nextSeq++
	a.seq[id], a.ckptPkts[id] = a.nextSeq, 0
	a.bootOf[id] = 0
	g.cfg.Flows.SetTag(id, [2]uint64{a.boot, a.nextSeq})
}

// acctName gives flow id the name another gateway gave it (state sync).
func (g *GW) acctName(id uint32, tag [2]uint64) {
	if a := g.acct; a != nil && tag[0] != 0 {
		a.bootOf[id], a.seq[id] = tag[0], tag[1]
	}
}

// payload returns the TCP or UDP payload of the parsed packet.
func payload(b []byte, p *header.Parsed) []byte {
	switch p.Proto {
	case header.ProtoTCP:
		t := p.TCP(b)
		if off := t.DataOffset(); off <= len(t) {
			return t[off:]
		}
	case header.ProtoUDP:
		u := p.L4(b)
		if len(u) >= header.UDPLen {
			return u[header.UDPLen:]
		}
	}
	return nil
}

// acctPacket counts a forwarded packet's payload and, for the first up
// segment with payload, sniffs the attribute. Call before rewriting.
func (g *GW) acctPacket(id uint32, b []byte, p *header.Parsed, up bool) {
	a := g.acct
	if a == nil {
		return
	}
	pl := payload(b, p)
	if !up {
		a.downPay[id] += uint64(len(pl))
		return
	}
	a.upPay[id] += uint64(len(pl))
	if len(pl) == 0 || a.sniffed[id] || p.Proto != header.ProtoTCP {
		return
	}
	a.sniffed[id] = true
	g.acctAttr(id, pl)
}

// acctAttr sniffs flow id's attribute (URL, SNI) from pl, the first bytes
// of its up stream, and keeps it in a slot.
func (g *GW) acctAttr(id uint32, pl []byte) {
	a := g.acct
	r := &a.rec
	r.AttrLen, r.AttrKind = 0, acct.AttrNone
	if kind := r.Sniff(pl); kind == acct.AttrNone {
		return
	}
	n := len(a.free)
	if n == 0 {
		a.noSlot.Add(1)
		return
	}
	slot := a.free[n-1]
	a.free = a.free[:n-1]
	copy(a.attr[int(slot)*acct.AttrSize:], r.Attr[:r.AttrLen])
	a.attrLen[slot], a.attrKind[slot] = r.AttrLen, r.AttrKind
	a.attrOf[id] = slot
}

// acctReport pushes a record for flow id: final (with cause) or interim.
func (g *GW) acctReport(id uint32, b *nat.Binding, final bool, cause nat.Cause) {
	a := g.acct
	r := &a.rec
	var user, device, stype string
	if final {
		user, device, stype = g.acctRecord(id, b, acct.Final, acct.Cause(cause))
	} else {
		user, device, stype = g.acctRecord(id, b, acct.Interim, acct.CauseInterim)
	}
	var ok bool
	if a.waitUntil.IsZero() {
		ok = g.cfg.Acct.Push(r)
	} else {
		ok = g.cfg.Acct.PushWait(r, a.waitUntil) // EndAll: the poll loop has stopped
	}
	if ok && !final {
		a.ckptPkts[id] = b.UpPackets + b.DownPackets // the interim record is a checkpoint too
	}
	a.usage.add(user, device, stype, b.UpBytes-a.repUp[id], b.DownBytes-a.repDown[id])
	a.repUp[id], a.repDown[id] = b.UpBytes, b.DownBytes
	if final {
		if slot := a.attrOf[id]; slot >= 0 {
			a.free = append(a.free, slot)
			a.attrOf[id] = -1
		}
	}
}

// acctRecord fills the worker's record for flow id and returns the
// subscriber and service type it names.
func (g *GW) acctRecord(id uint32, b *nat.Binding, kind acct.Kind, cause acct.Cause) (user, device, stype string) {
	a := g.acct
	r := &a.rec
	*r = acct.Record{}
	r.Kind, r.Cause = kind, cause
	if s, _, ok := g.session(b.Flow.Src); ok && s.ID == b.Session {
		user, device = s.UserID, s.DeviceID
		r.SetAcctSession(s.AcctSessionID)
	}
	if b.Service != 0 {
		if name, st, ok := g.cfg.Services.Labels(b.Service - 1); ok {
			r.SetService(name)
			stype = st
		}
	}
	if g.cfg.Authz != nil {
		if st := g.cfg.Authz.ServiceType([16]byte(b.Flow.Dst)); st != "" {
			stype = st // T9 names the service type (FIG. 27)
		}
	}
	r.SetUser(user)
	r.SetDevice(device)
	r.SetServiceType(stype)
	r.SetFlow(b, a.wall0)
	// The server of the latest up packet (packet-unit flows change it),
	// the start fixed when the flow started, the time of the report.
	r.Server, r.ServerPort = [16]byte(g.flowAddr[id]), g.flowPort[id]
	r.Start, r.End = a.startWall[id], a.wall0+g.now
	if slot := a.attrOf[id]; slot >= 0 {
		r.AttrLen, r.AttrKind = a.attrLen[slot], a.attrKind[slot]
		copy(r.Attr[:], a.attr[int(slot)*acct.AttrSize:int(slot)*acct.AttrSize+int(r.AttrLen)])
	}
	r.HasPayload, r.UpPayload, r.DownPayload = true, a.upPay[id], a.downPay[id]
	if g.flowConn != nil && g.flowConn[id] != nil {
		// A terminated flow (gw_term.go): the mobile connection's own
		// payload counts, without retransmissions.
		st := g.flowConn[id].Stats()
		r.UpPayload, r.DownPayload = st.MobileRx, st.MobileTx
	}
	r.Boot, r.Seq, r.Slot = a.boot, a.seq[id], id
	if b := a.bootOf[id]; b != 0 {
		r.Boot = b
	}
	return user, device, stype
}

// acctTick runs the checkpoint sweep (acctCheckpoint) and writes interim
// records for flows that have run AcctInterim since their start or last
// report, examining a bounded number of slots per round.
func (g *GW) acctTick() {
	a := g.acct
	if a == nil {
		return
	}
	g.acctCheckpoint()
	if g.cfg.AcctInterim <= 0 {
		return
	}
	every := int64(g.cfg.AcctInterim)
	n := uint32(len(a.lastReport))
	for i := 0; i < 64; i++ {
		id := a.cursor
		if a.cursor++; a.cursor >= n {
			a.cursor = 0
		}
		b := g.cfg.Flows.Binding(id)
		if b == nil || g.now-a.lastReport[id] < every {
			continue
		}
		a.lastReport[id] = g.now
		if !carried(b) && g.cfg.Flows.IsPeer(id) {
			continue // held for a peer (gw_sync.go), carried nothing here
		}
		g.acctReport(id, b, false, 0)
	}
}

// Checkpoint sweep bounds per poll round: slots examined, records pushed.
const (
	ckptScan = 256
	ckptPush = 32
)

// acctCheckpoint runs the checkpoint sweep: every CheckpointInterval it
// passes once over the table's slots, ckptScan a round, and pushes a
// Checkpoint record (at most ckptPush a round) for each live flow whose
// packet count changed since its last checkpoint or interim record.
// When the log's ring is half full it stops and resumes at the same slot
// next round. A flow's usage since its last checkpoint reaches the
// checkpoint file within one interval plus one sweep.
func (g *GW) acctCheckpoint() {
	a := g.acct
	every := int64(g.cfg.Acct.CheckpointInterval())
	if every <= 0 {
		return
	}
	n := uint32(len(a.seq))
	if a.ckptLeft == 0 {
		if g.now < a.ckptNext {
			return
		}
		a.ckptNext, a.ckptLeft = g.now+every, n
	}
	pushed := 0
	for i := 0; i < ckptScan && a.ckptLeft > 0; i++ {
		id := a.ckptCursor
		if b := g.cfg.Flows.Binding(id); b != nil {
			if pk := b.UpPackets + b.DownPackets; pk != a.ckptPkts[id] {
				if pushed == ckptPush {
					return
				}
				g.acctRecord(id, b, acct.Checkpoint, acct.CauseInterim)
				if !g.cfg.Acct.Checkpoint(&a.rec) {
					return // the ring is half full: this slot again next round
				}
				a.ckptPkts[id] = pk
				pushed++
			}
		}
		a.ckptLeft--
		if a.ckptCursor++; a.ckptCursor >= n {
			a.ckptCursor = 0
		}
	}
}

// AttributesLost is how many flows' attributes were not kept for want of
// a slot.
func (g *GW) AttributesLost() uint64 {
	if g.acct == nil {
		return 0
	}
	return g.acct.noSlot.Load()
}

func wallAt(now int64) int64 { return time.Now().UnixNano() - now }
