package xlat_test

import (
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

// hotShapes are the packets of the zero-allocation test and the
// benchmarks: every path of Translate.
func hotShapes() map[string][]byte {
	q4 := dptest.IP(v4(h4, s4).TTL(17).UDP(4000, 53).Payload(data).Bytes())
	q6 := dptest.IP(v6(s6, h6).TTL(17).TCP(53, 4000).Payload(data).Bytes())
	return map[string][]byte{
		"46 udp":       v4(s4, h4).UDP(53, 4000).Payload(big(1000)).Bytes(),
		"46 tcp":       v4(s4, h4).TCP(80, 4000).Payload(big(1400)).Bytes(),
		"46 echo":      v4(s4, h4).ICMPEcho(1, 2).Payload(data).Bytes(),
		"46 fragments": v4(s4, h4).UDP(53, 4000).Payload(big(3000)).Bytes(),
		"46 error":     v4(s4, h4).ICMPError(3, 3, 0, q4).Bytes(),
		"46 answer":    v4(s4, h4).DF().UDP(53, 4000).Payload(big(1480)).Bytes(),
		"64 udp":       v6(h6, s6).UDP(4000, 53).Payload(big(1000)).Bytes(),
		"64 tcp":       v6(h6, s6).TCP(4000, 80).Payload(big(1400)).Bytes(),
		"64 fragment":  v6(h6, s6).Fragment(0, true, 9).UDP(4000, 53).Payload(big(1000)).Bytes(),
		"64 error":     v6(h6, s6).ICMPError(2, 0, 1400, q6).Bytes(),
		"64 answer":    v6(h6, s6).TTL(1).UDP(1, 2).Bytes(),
		"66 hairpin":   v6(h6, a("64:ff9b::c000:206")).UDP(1, 2).Payload(data).Bytes(),
	}
}

// TestAllocs holds Decode and Translate to zero allocations on every
// path (STYLE.md rule 3).
func TestAllocs(t *testing.T) {
	tr := newT(t, nil)
	out := make([]byte, xlat.OutLen(4000))
	var d header.Decoded
	var r xlat.Result
	for name, f := range hotShapes() {
		o := xlat.NumOutcomes
		if n := testing.AllocsPerRun(200, func() {
			header.Decode(f, &d)
			o = tr.Translate(f, &d, out, &r)
		}); n != 0 {
			t.Errorf("%s (%v): %v allocations", name, o, n)
		}
		if o.Dropped() {
			t.Errorf("%s: %v, want a path that emits", name, o)
		}
	}
}

// BenchmarkXlat is the BENCHMARKS.md entry for dp/xlat: Translate alone
// (the frame decoded once before the loop), per shape.
func BenchmarkXlat(b *testing.B) {
	shapes := hotShapes()
	for _, name := range []string{"46 udp", "46 tcp", "46 fragments", "46 error", "64 udp", "64 tcp", "64 error", "66 hairpin"} {
		f := shapes[name]
		b.Run(name, func(b *testing.B) {
			tr := newT(b, nil)
			out := make([]byte, xlat.OutLen(len(f)))
			var d header.Decoded
			header.Decode(f, &d)
			var r xlat.Result
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				tr.Translate(f, &d, out, &r)
			}
		})
	}
}
