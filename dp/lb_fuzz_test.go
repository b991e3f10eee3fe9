package dp_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"samepath/dp"
	"samepath/ring/memport"
)

// FuzzLB runs fuzzed frames through the LB pipeline on memory ports, from
// either side. An input is up to 8 records [ctl][len:2][frame], ctl bit 0
// the side (0 ingress, 1 gateways). Properties, for every frame: no
// panic; forwarded or counted exactly once; and a forwarded frame is the
// frame it was but for its Ethernet addresses (the LB rewrites nothing
// else, R-LB-1, R-LB-3). Seeds: the LB's golden packets.
//
//	go test -run '^$' -fuzz '^FuzzLB$' -fuzztime 30s ./dp
func FuzzLB(f *testing.F) {
	for _, g := range lbGoldens() {
		f.Add(append([]byte{byte(g.InPort), byte(len(g.In) >> 8), byte(len(g.In))}, g.In...))
	}
	var (
		w     *dp.Worker
		ports [2]*memport.Port
	)
	f.Fuzz(func(t *testing.T, in []byte) {
		if w == nil {
			w, _, ports = newLBWorker(t, nasMAC)
		}
		for n := 0; n < 8 && len(in) >= 3; n++ {
			port, l := int(in[0]&1), int(binary.BigEndian.Uint16(in[1:]))
			in = in[3:]
			l = min(l, len(in), 2048)
			frame := append([]byte(nil), in[:l]...)
			in = in[l:]
			before := w.Counters(port).Snapshot()
			if !ports[port].Inject(frame) {
				t.Fatal("inject failed")
			}
			w.Poll()
			drops := w.Counters(port).Snapshot().Dropped() - before.Dropped()
			out := append(ports[0].TakeAll(), ports[1].TakeAll()...)
			switch {
			case len(out) == 0 && drops == 1:
			case len(out) == 1 && drops == 0:
				if len(out[0]) != len(frame) || (len(frame) > 12 && !bytes.Equal(out[0][12:], frame[12:])) {
					t.Fatalf("frame %x left as %x: more than its Ethernet addresses changed", frame, out[0])
				}
			default:
				t.Fatalf("frame %x: %d frames out and %d drops, want exactly one of them", frame, len(out), drops)
			}
		}
	})
}
