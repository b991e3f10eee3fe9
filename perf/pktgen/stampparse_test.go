package pktgen

import (
	"testing"
)

func TestParseStamp(t *testing.T) {
	for name, s := range specs() {
		t.Run(name, func(t *testing.T) {
			tmpl, cfg, err := s.Build()
			if err != nil {
				t.Fatal(err)
			}
			st := newStamper(cfg, len(tmpl), 42)
			st.write(tmpl, 1234)
			stream, seq, ok := ParseStamp(tmpl)
			if ok != s.Stamped() || (ok && (stream != 42 || seq != 1234)) {
				t.Fatalf("ParseStamp = %d %d %v, want 42 1234 %v", stream, seq, ok, s.Stamped())
			}
			for cut := 0; cut < len(tmpl); cut++ {
				if _, _, ok := ParseStamp(tmpl[:cut]); ok && cut < s.StampOffset()+16 {
					t.Fatalf("truncated to %d bytes: stamp found", cut)
				}
			}
		})
	}
}

func TestSeqTracker(t *testing.T) {
	var tr seqTracker
	for _, seq := range []uint64{10, 11, 13, 12, 14, 17} {
		tr.add(3, seq)
	}
	tr.add(4, 0)
	got := Summarize(tr.streams())
	want := StreamSummary{Streams: 2, Expected: 8 + 1, Received: 7, Lost: 2, Late: 1}
	if got != want {
		t.Fatalf("summary %+v, want %+v", got, want)
	}
}

func FuzzParseStamp(f *testing.F) {
	for _, s := range specs() {
		tmpl, cfg, err := s.Build()
		if err != nil {
			f.Fatal(err)
		}
		st := newStamper(cfg, len(tmpl), 1)
		st.write(tmpl, 9)
		f.Add(tmpl)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { ParseStamp(b) })
}
