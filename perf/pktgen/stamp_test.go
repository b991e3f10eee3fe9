package pktgen

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/perf/xdpprog"
	"samepath/testbed/privtest"
)

// The Go stamper produces valid frames for every flow and sequence.
func TestStamper(t *testing.T) {
	for name, s := range specs() {
		t.Run(name, func(t *testing.T) {
			pinTest(t)
			tmpl, cfg, err := s.Build()
			if err != nil {
				t.Fatal(err)
			}
			st := newStamper(cfg, len(tmpl), 77)
			f := make([]byte, len(tmpl))
			for seq := uint64(0); seq < 20100; seq += 67 {
				copy(f, tmpl)
				st.write(f, seq)
				src, port, stream, gotSeq, stamped := checkFrame(t, f)
				flow := int(seq) % s.Flows()
				if src != low32(s.SrcIP)+uint32(flow/s.SrcPorts) || port != s.SrcPort+uint16(flow%s.SrcPorts) {
					t.Fatalf("seq %d: src %#x port %d", seq, src, port)
				}
				if stamped != s.Stamped() || (stamped && (stream != 77 || gotSeq != seq)) {
					t.Fatalf("seq %d: stamp %v stream %d seq %d", seq, stamped, stream, gotSeq)
				}
			}
		})
	}
}

func TestStamperNoAllocs(t *testing.T) {
	s := specs()["v6udp99"]
	tmpl, cfg, err := s.Build()
	if err != nil {
		t.Fatal(err)
	}
	st := newStamper(cfg, len(tmpl), 1)
	seq := uint64(0)
	if n := testing.AllocsPerRun(1000, func() { st.write(tmpl, seq); seq++ }); n != 0 {
		t.Fatalf("%v allocs per frame", n)
	}
}

// The Go stamper and the kernel program write the same bytes.
func TestStamperMatchesProgram(t *testing.T) {
	privtest.Require(t)
	g, err := xdpprog.LoadGen()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for name, s := range specs() {
		t.Run(name, func(t *testing.T) {
			pinTest(t)
			tmpl, cfg, err := s.Build()
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Configure(cfg); err != nil {
				t.Fatal(err)
			}
			st := newStamper(cfg, len(tmpl), 9)
			in := s.WithStream(tmpl, 9)
			f := make([]byte, len(tmpl))
			for seq := uint64(0); seq < 50; seq++ {
				_, out := runOnce(t, g.Program(), in)
				copy(f, tmpl)
				st.write(f, seq)
				if d := cmp.Diff(out, f); d != "" {
					t.Fatalf("seq %d (-kernel +go):\n%s", seq, d)
				}
			}
		})
	}
}
