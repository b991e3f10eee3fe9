package balance

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fig33Table: every service round robin over 3 servers, so choices are
// predictable: each service hands out 0, 1, 2, 0, ...
func fig33Table(t testing.TB) *Table {
	udp := func(c ServiceConfig) ServiceConfig { c.Proto = ProtoUDP; return c }
	return newTable(t,
		svcCfg("L", "192.0.2.1:80", RoundRobin, LoginUnit, group(3)),
		svcCfg("L2", "192.0.2.2:80", RoundRobin, LoginUnit, group(3)),
		svcCfg("S", "192.0.2.3:80", RoundRobin, ServiceUnit, group(3)),
		svcCfg("S2", "192.0.2.4:80", RoundRobin, ServiceUnit, group(3)),
		udp(svcCfg("P", "192.0.2.5:53", RoundRobin, PacketUnit, group(3))),
		svcCfg("C", "192.0.2.6:80", RoundRobin, ConnectionUnit, group(3)),
	)
}

type step struct {
	op   string // "decide", "down", "end" (FlowEnd), "logout"
	sess uint64
	svc  string
	ev   Event
	idx  int // decide: want server; end: the flow's server
	// rec: after the step, the recorded server of (sess, svc); -1: none.
	rec int
	// other: records of other (session, service) pairs that must hold
	// after the step, "sess/svc" -> server (-1: none).
	other map[string]int
	// conns: active-flow counts of svc's servers after the step (nil: not checked).
	conns []int64
}

func runSteps(t *testing.T, tb *Table, d *Dist, steps []step) {
	t.Helper()
	id := func(name string) uint32 {
		i, ok := tb.ID(name)
		if !ok {
			t.Fatalf("no service %s", name)
		}
		return i
	}
	for n, s := range steps {
		svc := id(s.svc)
		switch s.op {
		case "decide":
			got, ok := d.Decide(s.sess, svc, s.ev)
			if !ok || got != s.idx {
				t.Fatalf("step %d: Decide(%d, %s, %v) = %d,%v; want %d", n, s.sess, s.svc, s.ev, got, ok, s.idx)
			}
		case "down":
			d.Down(s.sess, svc)
		case "end":
			d.FlowEnd(s.sess, svc, s.idx)
		case "logout":
			d.EndSession(s.sess)
		default:
			t.Fatalf("step %d: bad op %q", n, s.op)
		}
		check := func(sess uint64, name string, want int) {
			got, ok := d.Lookup(sess, id(name))
			if !ok {
				got = -1
			}
			if got != want {
				t.Fatalf("step %d (%s %d %s %v): record %d/%s = %d, want %d", n, s.op, s.sess, s.svc, s.ev, sess, name, got, want)
			}
		}
		check(s.sess, s.svc, s.rec)
		for k, want := range s.other {
			var sess uint64
			var name string
			fmt.Sscanf(k, "%d/%s", &sess, &name)
			check(sess, name, want)
		}
		if s.conns != nil {
			var got []int64
			for _, v := range tb.Status()[svc].Servers {
				got = append(got, v.Conns)
			}
			if d := cmp.Diff(s.conns, got); d != "" {
				t.Fatalf("step %d: conns of %s (-want +got):\n%s", n, s.svc, d)
			}
		}
	}
}

// TestFig33 walks each user session type through FIG. 33's record and
// release points (and the branches of FIGS. 36-40).
func TestFig33(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"login unit", []step{
			{op: "decide", sess: 1, svc: "L", ev: FlowStart, idx: 0, rec: 0, conns: []int64{1, 0, 0}},
			{op: "decide", sess: 1, svc: "L", ev: UpPacket, idx: 0, rec: 0},
			{op: "decide", sess: 1, svc: "L", ev: FlowStart, idx: 0, rec: 0, conns: []int64{2, 0, 0}},          // second connection, same server
			{op: "decide", sess: 1, svc: "L2", ev: FlowStart, idx: 0, rec: 0, other: map[string]int{"1/L": 0}}, // another service: both kept (S143)
			{op: "decide", sess: 2, svc: "L", ev: FlowStart, idx: 1, rec: 1},
			{op: "end", sess: 1, svc: "L", idx: 0, rec: 0},
			{op: "end", sess: 1, svc: "L", idx: 0, rec: 0, conns: []int64{0, 1, 0}}, // all flows ended: still kept
			{op: "decide", sess: 1, svc: "L", ev: FlowStart, idx: 0, rec: 0},
			{op: "down", sess: 1, svc: "L", rec: 0},
			{op: "logout", sess: 1, svc: "L", rec: -1, other: map[string]int{"1/L2": -1, "2/L": 1}},
			{op: "end", sess: 1, svc: "L", idx: 0, rec: -1, conns: []int64{0, 1, 0}}, // flow reclaimed after logout
			{op: "decide", sess: 1, svc: "L", ev: UpPacket, idx: 2, rec: 2},          // after a new login: a new choice
		}},
		{"service unit", []step{
			{op: "decide", sess: 1, svc: "S", ev: FlowStart, idx: 0, rec: 0},
			{op: "decide", sess: 1, svc: "S", ev: FlowStart, idx: 0, rec: 0},
			{op: "decide", sess: 1, svc: "S", ev: UpPacket, idx: 0, rec: 0},
			{op: "decide", sess: 2, svc: "S", ev: FlowStart, idx: 1, rec: 1},
			// A login or connection unit service in between does not release it.
			{op: "decide", sess: 1, svc: "L", ev: FlowStart, idx: 0, rec: 0, other: map[string]int{"1/S": 0}},
			{op: "decide", sess: 1, svc: "C", ev: FlowStart, idx: 0, rec: 0, other: map[string]int{"1/S": 0}},
			// Another service-unit service: S is released, S2 chosen (S145-S146).
			{op: "decide", sess: 1, svc: "S2", ev: FlowStart, idx: 0, rec: 0, other: map[string]int{"1/S": -1, "2/S": 1, "1/L": 0}},
			{op: "decide", sess: 1, svc: "S2", ev: UpPacket, idx: 0, rec: 0},
			// Back to S: a new choice, and S2 goes.
			{op: "decide", sess: 1, svc: "S", ev: FlowStart, idx: 2, rec: 2, other: map[string]int{"1/S2": -1}},
			{op: "end", sess: 1, svc: "S", idx: 0, rec: 2}, // old flows on 0 end: count back, record stays
			{op: "end", sess: 1, svc: "S", idx: 0, rec: 2},
			{op: "end", sess: 1, svc: "S", idx: 2, rec: 2, conns: []int64{0, 1, 0}},
			{op: "logout", sess: 1, svc: "S", rec: -1, other: map[string]int{"2/S": 1}},
		}},
		{"packet unit", []step{
			{op: "decide", sess: 1, svc: "P", ev: FlowStart, idx: 0, rec: 0, conns: []int64{1, 0, 0}},
			{op: "decide", sess: 1, svc: "P", ev: UpPacket, idx: 1, rec: 1, conns: []int64{0, 1, 0}}, // every up packet: new choice
			{op: "down", sess: 1, svc: "P", rec: -1, conns: []int64{0, 0, 0}},                        // down packet releases
			{op: "down", sess: 1, svc: "P", rec: -1, conns: []int64{0, 0, 0}},                        // a second reply: nothing left
			{op: "decide", sess: 1, svc: "P", ev: UpPacket, idx: 2, rec: 2},
			{op: "decide", sess: 2, svc: "P", ev: UpPacket, idx: 0, rec: 0, other: map[string]int{"1/P": 2}},
			{op: "end", sess: 1, svc: "P", idx: 0, rec: 2, conns: []int64{1, 0, 1}}, // UDP flow timeout: no effect on packet unit
			{op: "down", sess: 1, svc: "P", rec: -1, other: map[string]int{"2/P": 0}},
			{op: "logout", sess: 2, svc: "P", rec: -1, conns: []int64{0, 0, 0}}, // logout gives the outstanding pick back
		}},
		{"connection unit", []step{
			{op: "decide", sess: 1, svc: "C", ev: FlowStart, idx: 0, rec: 0},
			{op: "decide", sess: 1, svc: "C", ev: UpPacket, idx: 0, rec: 0},
			{op: "decide", sess: 1, svc: "C", ev: FlowStart, idx: 1, rec: 1, conns: []int64{1, 1, 0}}, // a second connection: chosen at its SYN
			{op: "down", sess: 1, svc: "C", rec: 1},
			{op: "end", sess: 1, svc: "C", idx: 0, rec: 1, conns: []int64{0, 1, 0}},  // one connection still open
			{op: "end", sess: 1, svc: "C", idx: 1, rec: -1, conns: []int64{0, 0, 0}}, // FIN of the last: released
			{op: "decide", sess: 1, svc: "C", ev: FlowStart, idx: 2, rec: 2},
			{op: "decide", sess: 1, svc: "C", ev: FlowEnd, idx: 2, rec: -1, conns: []int64{0, 0, 0}}, // Decide(FlowEnd) = FlowEnd with the record
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := fig33Table(t)
			d, err := NewDist(tb, 64)
			if err != nil {
				t.Fatal(err)
			}
			runSteps(t, tb, d, tt.steps)
		})
	}
}

// TestFig41 is the multi-window case (R-GW-8): login-unit services A
// (TCP A:a) and B (TCP B:b); each mobile keeps one actual server per
// service from login to logout while both windows open and close
// connections in any order.
func TestFig41(t *testing.T) {
	tb := newTable(t,
		svcCfg("A", "192.0.2.10:8080", RoundRobin, LoginUnit, group(3)),
		svcCfg("B", "[2001:db8::b]:443", LeastConn, LoginUnit, group6(4)))
	d, err := NewDist(tb, 64)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := tb.ID("A")
	b, _ := tb.ID("B")
	rng := rand.New(rand.NewPCG(41, 41))
	type flow struct {
		sess uint64
		svc  uint32
		idx  int
	}
	for round := range 3 {
		kept := map[[2]uint64]int{}
		var open []flow
		for range 400 {
			sess := uint64(1 + rng.IntN(5))
			svc := a
			if rng.IntN(2) == 0 {
				svc = b
			}
			ev := UpPacket
			if rng.IntN(3) == 0 {
				ev = FlowStart
			}
			idx, ok := d.Decide(sess, svc, ev)
			if !ok {
				t.Fatal("no server")
			}
			k := [2]uint64{sess, uint64(svc)}
			if w, seen := kept[k]; seen && w != idx {
				t.Fatalf("round %d: session %d service %d moved from server %d to %d", round, sess, svc, w, idx)
			}
			kept[k] = idx
			if ev == FlowStart {
				open = append(open, flow{sess, svc, idx})
			}
			if len(open) > 0 && rng.IntN(4) == 0 {
				f := open[0]
				open = open[1:]
				d.FlowEnd(f.sess, f.svc, f.idx)
			}
		}
		// Both windows of every session are recorded.
		if got := d.Stats().Records; got != len(kept) {
			t.Errorf("round %d: %d records, want %d", round, got, len(kept))
		}
		for _, f := range open {
			d.FlowEnd(f.sess, f.svc, f.idx)
		}
		for s := range uint64(6) {
			d.EndSession(s)
		}
		if r := d.Stats().Records; r != 0 {
			t.Fatalf("after logout of all: %d records", r)
		}
		for _, st := range tb.Status() {
			for _, v := range st.Servers {
				if v.Conns != 0 {
					t.Fatalf("service %s server %v: %d conns after all flows ended", st.Name, v.Addr, v.Conns)
				}
			}
		}
	}
}

func TestDistFailover(t *testing.T) {
	tb := fig33Table(t)
	d, _ := NewDist(tb, 8)
	L, _ := tb.ID("L")
	srv := tb.Services()[L].Servers
	if i, _ := d.Decide(1, L, FlowStart); i != 0 {
		t.Fatalf("first choice %d", i)
	}
	tb.SetServerHealth("L", srv[0].Addr, false)
	i, ok := d.Decide(1, L, UpPacket)
	if !ok || i == 0 {
		t.Fatalf("kept server down: Decide = %d,%v", i, ok)
	}
	tb.SetServerHealth("L", srv[0].Addr, true)
	if j, _ := d.Decide(1, L, UpPacket); j != i {
		t.Errorf("after recovery moved back: %d, want %d", j, i)
	}
	if s := d.Stats(); s.Repicks != 1 {
		t.Errorf("repicks = %d", s.Repicks)
	}
	// Replacing the service invalidates indexes: chosen anew.
	cfg := tb.Services()[L]
	cfg.Servers = append([]Server{{Addr: ap("10.9.0.1:80"), Up: true}}, cfg.Servers...)
	if _, err := tb.Put(cfg); err != nil {
		t.Fatal(err)
	}
	d.Decide(1, L, UpPacket)
	if s := d.Stats(); s.Repicks != 2 {
		t.Errorf("repicks after replace = %d", s.Repicks)
	}
	// All down: not ok, counted; the record stays for when they return.
	for _, s := range tb.Services()[L].Servers {
		tb.SetServerState("L", s.Addr, false)
	}
	if _, ok := d.Decide(1, L, UpPacket); ok {
		t.Error("all down: ok")
	}
	if _, ok := d.Decide(1, 99, UpPacket); ok {
		t.Error("unknown service: ok")
	}
	if s := d.Stats(); s.NoServer != 2 {
		t.Errorf("no_server = %d", s.NoServer)
	}
}

func TestDistFull(t *testing.T) {
	tb := fig33Table(t)
	d, _ := NewDist(tb, 2)
	L, _ := tb.ID("L")
	P, _ := tb.ID("P")
	for s := range uint64(3) {
		if _, ok := d.Decide(s, L, FlowStart); !ok {
			t.Fatal("full table must still choose")
		}
	}
	if _, ok := d.Decide(9, P, UpPacket); !ok {
		t.Fatal("full table must still choose")
	}
	st := d.Stats()
	if st.Records != 2 || st.Full != 2 {
		t.Errorf("stats %+v, want 2 records, 2 full", st)
	}
	// The unrecorded packet-unit pick was given back.
	for _, v := range tb.Status()[P].Servers {
		if v.Conns != 0 {
			t.Errorf("packet unit pick leaked on a full table: %+v", v)
		}
	}
	d.EndSession(0)
	if _, ok := d.Decide(2, L, UpPacket); !ok || d.Stats().Records != 2 {
		t.Errorf("freed record not reused: %+v", d.Stats())
	}
	if _, err := NewDist(tb, 0); !errors.Is(err, ErrBadCapacity) {
		t.Errorf("capacity 0: %v", err)
	}
}

func TestDistSnapshot(t *testing.T) {
	tb := fig33Table(t)
	d, _ := NewDist(tb, 16)
	at := time.Unix(1700000000, 0)
	d.SetNow(at)
	L, _ := tb.ID("L")
	C, _ := tb.ID("C")
	d.Decide(7, L, FlowStart)
	d.Decide(7, C, FlowStart)
	d.Decide(7, C, FlowStart)
	got := d.Snapshot()
	want := []Record{
		{Session: 7, Service: L, Name: "L", Type: LoginUnit, ServerIdx: 0, Server: ap("10.1.0.1:80"), Flows: 1, Since: at},
		{Session: 7, Service: C, Name: "C", Type: ConnectionUnit, ServerIdx: 1, Server: ap("10.1.0.2:80"), Flows: 2, Since: at},
	}
	opt := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
	if d := cmp.Diff(want, got, opt); d != "" {
		t.Errorf("Snapshot (-want +got):\n%s", d)
	}
}

// TestDistModel drives Dist with random operations over many sessions
// (index collisions, backward-shift deletes, free-list reuse) and checks
// every record and every active-flow count against a plain map model.
func TestDistModel(t *testing.T) {
	tb := fig33Table(t)
	const sessions, services = 200, 6
	d, err := NewDist(tb, sessions*services)
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		sess uint64
		svc  uint32
	}
	type mrec struct {
		server, flows int
		typ           UnitType
		pending       bool
	}
	model := map[key]*mrec{}
	conns := map[key]int64{} // (server, svc) as key{server, svc}
	type flow struct {
		k   key
		idx int
	}
	var open []flow
	rng := rand.New(rand.NewPCG(1, 2))
	types := make([]UnitType, services)
	for i := range types {
		types[i], _ = tb.Type(uint32(i))
	}
	remove := func(k key) {
		if r := model[k]; r != nil && r.pending {
			conns[key{uint64(r.server), k.svc}]--
		}
		delete(model, k)
	}
	for op := range 20000 {
		k := key{uint64(rng.IntN(sessions)) * 0x9e3779b9, uint32(rng.IntN(services))}
		typ := types[k.svc]
		switch x := rng.IntN(100); {
		case x < 50:
			ev := UpPacket
			if rng.IntN(2) == 0 {
				ev = FlowStart
			}
			idx, ok := d.Decide(k.sess, k.svc, ev)
			if !ok {
				t.Fatal("no server")
			}
			r := model[k]
			switch typ {
			case LoginUnit, ServiceUnit:
				if r != nil && r.server != idx {
					t.Fatalf("op %d: %v kept %d, Decide gave %d", op, k, r.server, idx)
				}
				if r == nil {
					if typ == ServiceUnit {
						for o, or := range model {
							if o.sess == k.sess && or.typ == ServiceUnit {
								remove(o)
							}
						}
					}
					r = &mrec{server: idx, typ: typ}
					model[k] = r
				}
				if ev == FlowStart {
					r.flows++
					conns[key{uint64(idx), k.svc}]++
					open = append(open, flow{k, idx})
				}
			case PacketUnit:
				remove(k)
				model[k] = &mrec{server: idx, typ: typ, pending: true}
				conns[key{uint64(idx), k.svc}]++
				if ev == FlowStart {
					open = append(open, flow{k, idx})
				}
			case ConnectionUnit:
				if ev == FlowStart {
					if r == nil {
						r = &mrec{typ: typ}
						model[k] = r
					}
					r.server = idx
					r.flows++
					conns[key{uint64(idx), k.svc}]++
					open = append(open, flow{k, idx})
				} else if r != nil && r.server != idx {
					t.Fatalf("op %d: connection unit up packet: %d, recorded %d", op, idx, r.server)
				}
			}
		case x < 65:
			d.Down(k.sess, k.svc)
			if r := model[k]; r != nil && r.typ == PacketUnit {
				remove(k)
			}
		case x < 95:
			if len(open) == 0 {
				continue
			}
			i := rng.IntN(len(open))
			f := open[i]
			open[i] = open[len(open)-1]
			open = open[:len(open)-1]
			d.FlowEnd(f.k.sess, f.k.svc, f.idx)
			if types[f.k.svc] == PacketUnit {
				continue
			}
			conns[key{uint64(f.idx), f.k.svc}]--
			if r := model[f.k]; r != nil {
				if r.flows > 0 {
					r.flows--
				}
				if r.typ == ConnectionUnit && r.flows == 0 {
					remove(f.k)
				}
			}
		default:
			d.EndSession(k.sess)
			for o := range model {
				if o.sess == k.sess {
					remove(o)
				}
			}
		}
		if op%97 == 0 || op > 19900 {
			if got := d.Stats().Records; got != len(model) {
				t.Fatalf("op %d: %d records, model %d", op, got, len(model))
			}
			for k, r := range model {
				if got, ok := d.Lookup(k.sess, k.svc); !ok || got != r.server {
					t.Fatalf("op %d: record %v = %d,%v; model %d", op, k, got, ok, r.server)
				}
			}
			for id, st := range tb.Status() {
				for i, v := range st.Servers {
					if want := conns[key{uint64(i), uint32(id)}]; v.Conns != want {
						t.Fatalf("op %d: service %s server %d conns %d, model %d", op, st.Name, i, v.Conns, want)
					}
				}
			}
			if n := len(d.Snapshot()); n != len(model) {
				t.Fatalf("op %d: snapshot %d records, model %d", op, n, len(model))
			}
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	for _, name := range []string{"L", "S", "P", "C"} {
		b.Run(name, func(b *testing.B) {
			tb := fig33Table(b)
			d, _ := NewDist(tb, 1<<16)
			id, _ := tb.ID(name)
			b.ReportAllocs()
			var sess uint64
			for b.Loop() {
				sess++
				s := sess & 4095
				i, _ := d.Decide(s, id, FlowStart)
				d.Decide(s, id, UpPacket)
				d.Down(s, id)
				d.FlowEnd(s, id, i)
			}
		})
	}
}

// TestDistIndexWrap churns a tiny session index (16 slots, 8 sessions at
// most) so probes wrap around its end and deletions shift entries back
// across it.
func TestDistIndexWrap(t *testing.T) {
	tb := fig33Table(t)
	d, _ := NewDist(tb, 8)
	L, _ := tb.ID("L")
	live := map[uint64]int{}
	rng := rand.New(rand.NewPCG(3, 4))
	for op := range 50000 {
		s := uint64(rng.IntN(40))
		if _, ok := live[s]; ok || len(live) == 8 {
			if !ok {
				for s = range live {
					break
				}
			}
			d.EndSession(s)
			delete(live, s)
		} else {
			i, _ := d.Decide(s, L, UpPacket)
			live[s] = i
		}
		for s, i := range live {
			if got, ok := d.Lookup(s, L); !ok || got != i {
				t.Fatalf("op %d: session %d = %d,%v want %d", op, s, got, ok, i)
			}
		}
		if r := d.Stats().Records; r != len(live) {
			t.Fatalf("op %d: %d records, want %d", op, r, len(live))
		}
	}
}
