package nat

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// refModel is the reference for PortTable: plain maps under a mutex,
// written the obvious way. It does not predict which port the table
// picks (that is random), it checks that the pick is legal: in range,
// on an address of the server's family, not bound, not resting.
type refModel struct {
	mu       sync.Mutex
	cfg      PortTableConfig
	gw       []Addr16
	clock    int64
	byKey    map[FlowKey]uint32 // flow -> id
	bindings map[uint32]Binding // id -> binding
	owner    map[refPort]uint32 // bound port -> id
	freedAt  map[refPort]int64  // last time a port was freed
	created  uint64
	removed  [NumCauses]uint64
	exhaust  uint64
	full     uint64
	history  map[refIdentity]bool // every binding identity ever created
}

type refPort struct {
	gw    Addr16
	class int
	port  uint16
}

// refIdentity is the part of a binding fixed at Create.
type refIdentity struct {
	Flow           FlowKey
	GwAddr, Server Addr16
	GwPort, SPort  uint16
	Session        uint64
	Service        uint32
	Created        int64
}

func identity(b Binding) refIdentity {
	return refIdentity{b.Flow, b.GwAddr, b.Server, b.GwPort, b.SPort, b.Session, b.Service, b.Created}
}

func newRefModel(cfg PortTableConfig) *refModel {
	m := &refModel{
		cfg: cfg, clock: neverUsed,
		byKey: map[FlowKey]uint32{}, bindings: map[uint32]Binding{},
		owner: map[refPort]uint32{}, freedAt: map[refPort]int64{},
		history: map[refIdentity]bool{},
	}
	for _, a := range cfg.GwAddrs {
		m.gw = append(m.gw, Addr16From(a.Unmap()))
	}
	return m
}

func (m *refModel) tick(now int64) {
	if now > m.clock {
		m.clock = now
	}
}

func refClass(proto uint8) (int, bool) {
	switch proto {
	case ProtoTCP:
		return 0, true
	case ProtoUDP:
		return 1, true
	case ProtoICMP, ProtoICMPv6:
		return 2, true
	}
	return 0, false
}

// refTimeout is the idle timeout of b, restated from the Timeouts docs.
func (m *refModel) refTimeout(b Binding) time.Duration {
	to := m.cfg.Timeouts
	switch b.Flow.Proto {
	case ProtoUDP:
		return to.UDP
	case ProtoTCP:
		switch b.State {
		case TCPEstablished:
			return to.TCPEstablished
		case TCPTimeWait:
			return to.TCPTimeWait
		case TCPClosed:
			return to.TCPClosed
		}
		return to.TCPTransitory
	}
	return to.ICMP
}

func (m *refModel) expired(b Binding) bool {
	return m.clock-b.LastSeen >= int64(m.refTimeout(b))
}

func (m *refModel) available(gw Addr16, class int) int {
	n := 0
	for p := int(m.cfg.PortMin); p <= int(m.cfg.PortMax); p++ {
		k := refPort{gw, class, uint16(p)}
		if _, bound := m.owner[k]; bound {
			continue
		}
		if at, ok := m.freedAt[k]; ok && at > m.clock-int64(m.cfg.PortReuseDelay) {
			continue
		}
		n++
	}
	return n
}

// expectCreate returns the error Create must return.
func (m *refModel) expectCreate(k FlowKey, server Addr16) error {
	class, ok := refClass(k.Proto)
	if !ok {
		return ErrProto
	}
	fam := false
	for _, g := range m.gw {
		fam = fam || g.Is4() == server.Is4()
	}
	if !fam {
		return ErrFamily
	}
	if _, ok := m.byKey[k]; ok {
		return ErrExists
	}
	if len(m.bindings) == m.cfg.Capacity {
		return ErrFull
	}
	for _, g := range m.gw {
		if g.Is4() == server.Is4() && m.available(g, class) > 0 {
			return nil
		}
	}
	return ErrExhausted
}

// created checks a successful Create's choice and records it.
func (m *refModel) create(id uint32, got Binding, want Binding) error {
	class, _ := refClass(want.Flow.Proto)
	if got.GwAddr.Is4() != want.Server.Is4() {
		return fmt.Errorf("port on %s for a server %s: wrong family", got.GwAddr, want.Server)
	}
	if got.GwPort < m.cfg.PortMin || got.GwPort > m.cfg.PortMax {
		return fmt.Errorf("port %d outside %d-%d", got.GwPort, m.cfg.PortMin, m.cfg.PortMax)
	}
	known := false
	for _, g := range m.gw {
		known = known || g == got.GwAddr
	}
	if !known {
		return fmt.Errorf("port on %s, not a gateway address", got.GwAddr)
	}
	k := refPort{got.GwAddr, class, got.GwPort}
	if other, bound := m.owner[k]; bound {
		return fmt.Errorf("port %s/%d already bound to id %d", got.GwAddr, got.GwPort, other)
	}
	if at, ok := m.freedAt[k]; ok && at > m.clock-int64(m.cfg.PortReuseDelay) {
		return fmt.Errorf("port %s/%d handed out %v after it was freed", got.GwAddr, got.GwPort, time.Duration(m.clock-at))
	}
	if _, dup := m.bindings[id]; dup {
		return fmt.Errorf("id %d handed out twice", id)
	}
	want.GwAddr, want.GwPort = got.GwAddr, got.GwPort
	want.Created, want.LastSeen = m.clock, m.clock
	if d := cmp.Diff(want, got); d != "" {
		return fmt.Errorf("created binding (-want +got):\n%s", d)
	}
	m.byKey[want.Flow] = id
	m.bindings[id] = want
	m.owner[k] = id
	m.history[identity(want)] = true
	m.created++
	return nil
}

func (m *refModel) touch(id uint32, up bool, bytes int, flags uint8, now int64) {
	m.tick(now)
	b, ok := m.bindings[id]
	if !ok {
		return
	}
	if up {
		b.UpPackets++
		b.UpBytes += uint64(bytes)
	} else {
		b.DownPackets++
		b.DownBytes += uint64(bytes)
	}
	b.LastSeen = max(b.LastSeen, now)
	if b.Flow.Proto == ProtoTCP {
		b.State = b.State.Next(up, flags)
	}
	m.bindings[id] = b
}

func (m *refModel) remove(id uint32, c Cause) {
	b := m.bindings[id]
	class, _ := refClass(b.Flow.Proto)
	k := refPort{b.GwAddr, class, b.GwPort}
	delete(m.owner, k)
	m.freedAt[k] = m.clock
	delete(m.byKey, b.Flow)
	delete(m.bindings, id)
	m.removed[c]++
}

func (m *refModel) down(gw Addr16, port uint16, proto uint8) (uint32, bool) {
	class, ok := refClass(proto)
	if !ok {
		return 0, false
	}
	// A key port belongs to its class: ICMP and ICMPv6 share one (a NAT64
	// flow's ICMPv6 echo is answered by ICMP).
	id, ok := m.owner[refPort{gw, class, port}]
	return id, ok
}

func (m *refModel) stats() PortTableStats {
	return PortTableStats{Live: len(m.bindings), Created: m.created, Removed: m.removed, Exhausted: m.exhaust, Full: m.full}
}

// modelConfig is small enough that every error path is hit often: 2
// IPv4 and 1 IPv6 gateway addresses, 6 ports, capacity 24.
func modelConfig() PortTableConfig {
	return PortTableConfig{
		GwAddrs:  []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.2")},
		PortMin:  40000,
		PortMax:  40005,
		Capacity: 24,
		Timeouts: Timeouts{
			UDP: 30 * time.Second, ICMP: 20 * time.Second,
			TCPEstablished: 100 * time.Second, TCPTransitory: 40 * time.Second,
			TCPTimeWait: 15 * time.Second, TCPClosed: 12 * time.Second,
		},
		PortReuseDelay: 10 * time.Second,
	}
}

var (
	modelMobiles = []netip.Addr{
		netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"),
		netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"),
	}
	modelDsts = []netip.Addr{
		netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8:1::1"),
		netip.MustParseAddr("203.0.113.9"),
	}
	modelProtos = []uint8{ProtoTCP, ProtoTCP, ProtoUDP, ProtoUDP, ProtoICMP, ProtoICMPv6, 132}
	modelFlags  = []uint8{FlagSYN, FlagSYN | FlagACK, FlagACK, FlagACK, FlagFIN | FlagACK, FlagRST, FlagRST | FlagACK, 0}
)

func randKey(r *rand.Rand) FlowKey {
	return FlowKey{
		Src:   Addr16From(modelMobiles[r.IntN(len(modelMobiles))]),
		Dst:   Addr16From(modelDsts[r.IntN(len(modelDsts))]),
		SPort: uint16(1000 + r.IntN(4)), DPort: uint16(80 + r.IntN(2)),
		Proto: modelProtos[r.IntN(len(modelProtos))],
	}
}

// randSession returns a few sessions often (several flows each) and many
// sessions sometimes (collisions in the session index).
func randSession(r *rand.Rand) uint64 {
	if r.IntN(3) == 0 {
		return uint64(r.IntN(64))
	}
	return uint64(r.IntN(5))
}

// TestPortTableModel runs random interleavings of every operation on a
// PortTable and on refModel and compares them after each step.
func TestPortTableModel(t *testing.T) {
	steps := 20000
	if testing.Short() || raceEnabled {
		steps = 5000
	}
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runModel(t, seed, steps) })
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	cfg := modelConfig()
	tab, err := NewPortTable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := newRefModel(cfg)
	now := int64(time.Hour)
	liveID := func() (uint32, bool) {
		if len(m.bindings) == 0 {
			return 0, false
		}
		i := r.IntN(len(m.bindings))
		for id := range m.bindings {
			if i == 0 {
				return id, true
			}
			i--
		}
		panic("unreachable")
	}
	var ops [10]int
	for step := range steps {
		m.mu.Lock()
		op := r.IntN(100)
		switch {
		case op < 4: // time moves: mostly forward, sometimes far, sometimes back
			switch r.IntN(10) {
			case 0:
				now += int64(time.Duration(r.IntN(200)) * time.Second)
			case 1:
				now -= int64(time.Duration(r.IntN(5)) * time.Second)
			default:
				now += int64(time.Duration(r.IntN(5000)) * time.Millisecond)
			}
			ops[0]++
		case op < 30: // Create
			k := randKey(r)
			var server Addr16
			if r.IntN(3) == 0 { // balanced: another server of either family
				server = Addr16From(modelDsts[r.IntN(len(modelDsts))])
			} else {
				server = k.Dst
			}
			sport := k.DPort
			if k.Proto == ProtoICMP || k.Proto == ProtoICMPv6 {
				sport = 0
			}
			session := randSession(r) // 0: none
			service := uint32(r.IntN(3))
			m.tick(now)
			wantErr := m.expectCreate(k, server)
			id, err := tab.Create(&k, server, sport, session, service, now)
			if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
				t.Fatalf("step %d: Create(%+v) err = %v, want %v", step, k, err, wantErr)
			}
			switch {
			case err == nil:
				want := Binding{Flow: k, Server: server, SPort: sport, Session: session, Service: service}
				if e := m.create(id, *tab.Binding(id), want); e != nil {
					t.Fatalf("step %d: Create: %v", step, e)
				}
			case errors.Is(err, ErrExhausted):
				m.exhaust++
			case errors.Is(err, ErrFull):
				m.full++
			}
			ops[1]++
		case op < 33: // SetServer: a live binding to another server, or any id
			id := uint32(r.IntN(cfg.Capacity + 2))
			if lid, ok := liveID(); ok && r.IntN(4) != 0 {
				id = lid
			}
			server := Addr16From(modelDsts[r.IntN(len(modelDsts))])
			sport := uint16(80 + r.IntN(3))
			b, wok := m.bindings[id]
			wok = wok && server.Is4() == b.GwAddr.Is4()
			if got := tab.SetServer(id, server, sport); got != wok {
				t.Fatalf("step %d: SetServer(%d, %s) = %v, want %v", step, id, server, got, wok)
			}
			if wok {
				b.Server, b.SPort = server, sport
				m.bindings[id] = b
				m.history[identity(b)] = true
			}
			ops[9]++
		case op < 45: // Up, for a random key (hit or miss)
			k := randKey(r)
			id, ok := tab.Up(&k)
			wid, wok := m.byKey[k]
			if ok != wok || (ok && id != wid) {
				t.Fatalf("step %d: Up(%+v) = %d, %v; want %d, %v", step, k, id, ok, wid, wok)
			}
			ops[2]++
		case op < 55: // Down, for a bound port or a random one
			var gw Addr16
			var port uint16
			proto := modelProtos[r.IntN(len(modelProtos))]
			if id, ok := liveID(); ok && r.IntN(2) == 0 {
				b := m.bindings[id]
				gw, port = b.GwAddr, b.GwPort
				if r.IntN(3) != 0 {
					proto = b.Flow.Proto
				}
			} else {
				gw = m.gw[r.IntN(len(m.gw))]
				if r.IntN(8) == 0 {
					gw = Addr16From(modelDsts[0])
				}
				port = uint16(int(cfg.PortMin) - 1 + r.IntN(int(cfg.PortMax-cfg.PortMin)+3))
			}
			id, ok := tab.Down(gw, port, proto)
			wid, wok := m.down(gw, port, proto)
			if ok != wok || (ok && id != wid) {
				t.Fatalf("step %d: Down(%s, %d, %d) = %d, %v; want %d, %v", step, gw, port, proto, id, ok, wid, wok)
			}
			if ok {
				b := m.bindings[id]
				if _, ok := tab.DownFrom(gw, port, proto, b.Server, b.SPort); !ok {
					t.Fatalf("step %d: DownFrom the binding's own server failed", step)
				}
				if _, ok := tab.DownFrom(gw, port, proto, b.Server, b.SPort+1); ok {
					t.Fatalf("step %d: DownFrom another server port succeeded", step)
				}
			}
			ops[3]++
		case op < 80: // Touch
			id, ok := liveID()
			if !ok {
				break
			}
			up := r.IntN(2) == 0
			bytes := 40 + r.IntN(1460)
			flags := modelFlags[r.IntN(len(modelFlags))]
			tab.Touch(id, up, bytes, flags, now)
			m.touch(id, up, bytes, flags, now)
			ops[4]++
		case op < 86: // Delete, a live id or any id
			id := uint32(r.IntN(cfg.Capacity + 2))
			if lid, ok := liveID(); ok && r.IntN(3) != 0 {
				id = lid
			}
			c := Cause(r.IntN(int(NumCauses)))
			_, wok := m.bindings[id]
			if got := tab.Delete(id, c); got != wok {
				t.Fatalf("step %d: Delete(%d) = %v, want %v", step, id, got, wok)
			}
			if wok {
				m.remove(id, c)
			}
			ops[5]++
		case op < 95: // Expire with a small budget
			m.tick(now)
			budget := r.IntN(8)
			checkExpire(t, step, tab, m, now, budget)
			ops[6]++
		case op < 98: // DeleteSession
			s := randSession(r)
			m.tick(now)
			want := map[uint32]Binding{}
			if s != 0 {
				for id, b := range m.bindings {
					if b.Session == s {
						want[id] = b
					}
				}
			}
			got := map[uint32]Binding{}
			n := tab.DeleteSession(s, now, func(b *Binding, c Cause) {
				if c != SessionEnd {
					t.Errorf("DeleteSession cause %v", c)
				}
				id, _ := tab.Up(&b.Flow)
				got[id] = *b
			})
			if !maps.Equal(want, got) || n != len(want) {
				t.Fatalf("step %d: DeleteSession(%d) = %d (-want +got):\n%s", step, s, n, cmp.Diff(want, got))
			}
			for id := range want {
				m.remove(id, SessionEnd)
			}
			ops[7]++
		default: // a full expiry pass: nothing expired may remain
			now = max(now, m.clock) + 1<<30 // the next republish period
			m.tick(now)
			checkExpire(t, step, tab, m, now, 2*cfg.Capacity) // ends the pass
			checkExpire(t, step, tab, m, now, 2*cfg.Capacity) // a whole pass
			for id, b := range m.bindings {
				if m.expired(b) {
					t.Fatalf("step %d: binding %d (%+v) expired but survived a full pass", step, id, b)
				}
			}
			// After a full pass every binding is published: Snapshot
			// equals the model exactly.
			snap := map[uint32]Binding{}
			tab.Snapshot(func(b Binding) bool {
				id, _ := tab.Up(&b.Flow)
				snap[id] = b
				return true
			})
			if !maps.Equal(m.bindings, snap) {
				t.Fatalf("step %d: Snapshot after a full pass (-model +table):\n%s", step, cmp.Diff(m.bindings, snap))
			}
			ops[8]++
		}
		// Every step: the counters and every live binding agree.
		if ws, gs := m.stats(), tab.Stats(); ws != gs {
			t.Fatalf("step %d: Stats (-model +table):\n%s", step, cmp.Diff(ws, gs))
		}
		if step%16 == 0 {
			for id, want := range m.bindings {
				if got := *tab.Binding(id); got != want {
					t.Fatalf("step %d: Binding(%d) (-model +table):\n%s", step, id, cmp.Diff(want, got))
				}
			}
			for id := range uint32(cfg.Capacity) {
				if _, ok := m.bindings[id]; !ok && tab.Binding(id) != nil {
					t.Fatalf("step %d: Binding(%d) of a free slot is not nil", step, id)
				}
			}
		}
		m.mu.Unlock()
	}
	t.Logf("ops: time %d create %d set-server %d up %d down %d touch %d delete %d expire %d session %d full-pass %d; stats %+v",
		ops[0], ops[1], ops[9], ops[2], ops[3], ops[4], ops[5], ops[6], ops[7], ops[8], tab.Stats())
	// Reclaim everything: far in the future a full pass empties the
	// table and, after the reuse delay, every port is free again.
	now += int64(3 * time.Hour)
	tab.Expire(now, 2*cfg.Capacity, nil)
	tab.Expire(now, 2*cfg.Capacity, nil)
	assertEmpty(t, tab, now+int64(cfg.PortReuseDelay))
}

// checkExpire runs Expire and checks that it removed only expired
// bindings, with the right cause and the final binding in onEnd, and at
// most budget of them.
func checkExpire(t *testing.T, step int, tab *PortTable, m *refModel, now int64, budget int) {
	t.Helper()
	type end struct {
		b Binding
		c Cause
	}
	got := map[uint32]end{}
	n := tab.Expire(now, budget, func(b *Binding, c Cause) {
		id, _ := tab.Up(&b.Flow)
		got[id] = end{*b, c}
	})
	if n != len(got) || n > budget {
		t.Fatalf("step %d: Expire(budget %d) = %d, onEnd saw %d", step, budget, n, len(got))
	}
	for id, e := range got {
		want, ok := m.bindings[id]
		if !ok {
			t.Fatalf("step %d: Expire ended id %d, which the model does not hold", step, id)
		}
		if want != e.b {
			t.Fatalf("step %d: Expire onEnd binding (-model +table):\n%s", step, cmp.Diff(want, e.b))
		}
		if !m.expired(want) {
			t.Fatalf("step %d: Expire removed %+v, idle %v < %v", step, want, time.Duration(m.clock-want.LastSeen), m.refTimeout(want))
		}
		wc := IdleTimeout
		if want.Flow.Proto == ProtoTCP && want.State == TCPTimeWait {
			wc = TCPClose
		} else if want.Flow.Proto == ProtoTCP && want.State == TCPClosed {
			wc = TCPReset
		}
		if e.c != wc {
			t.Fatalf("step %d: Expire cause %v for %+v, want %v", step, e.c, want, wc)
		}
		m.remove(id, e.c)
	}
}

// assertEmpty checks that tab holds nothing and that at later, every
// port of every address and class can be handed out again.
func assertEmpty(t *testing.T, tab *PortTable, later int64) {
	t.Helper()
	if n := tab.Len(); n != 0 {
		t.Fatalf("Len = %d after reclaiming everything", n)
	}
	for i, e := range tab.up {
		if e != (upEnt{}) {
			t.Fatalf("up index cell %d still holds %+v", i, e)
		}
	}
	for i, e := range tab.sess {
		if e != (sessEnt{}) {
			t.Fatalf("session index cell %d still holds %+v", i, e)
		}
	}
	for i, v := range tab.down {
		if v != 0 {
			t.Fatalf("down index cell %d still holds %d", i, v)
		}
	}
	if len(tab.free) != tab.Capacity() || len(tab.live) != 0 {
		t.Fatalf("free slots %d of %d, live list %d", len(tab.free), tab.Capacity(), len(tab.live))
	}
	for i := range tab.rings {
		r := &tab.rings[i]
		if r.n != tab.nPorts {
			t.Fatalf("ring %d holds %d free ports of %d", i, r.n, tab.nPorts)
		}
		if rest := r.resting(later, tab.delay); rest != 0 {
			t.Fatalf("ring %d: %d ports still resting after the reuse delay", i, rest)
		}
		seen := map[uint16]bool{}
		for k := range r.n {
			p := r.ports[(r.head+k)%len(r.ports)]
			if seen[p] {
				t.Fatalf("ring %d holds port %d twice", i, p)
			}
			seen[p] = true
		}
	}
	n := 0
	tab.Snapshot(func(Binding) bool { n++; return true })
	if n != 0 {
		t.Fatalf("Snapshot shows %d bindings of an empty table", n)
	}
}
