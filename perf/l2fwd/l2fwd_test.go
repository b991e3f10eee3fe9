package l2fwd

import (
	"bytes"
	"strings"
	"testing"

	"samepath/dp"
	"samepath/dp/daemon"
)

func TestPipeline(t *testing.T) {
	p := &Pipeline{Dst: [6]byte{2, 0, 0, 0, 0, 4}, Src: [6]byte{2, 0, 0, 0, 0, 3}}
	frame := func() []byte {
		b := make([]byte, 60)
		copy(b, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, 0x45})
		return b
	}
	pkts := []dp.Packet{{Data: frame(), Out: -1}, {Data: frame()[:13], Out: -1}}
	p.Process(0, pkts)
	if pkts[0].Out != 1 || pkts[0].Drop != dp.ReasonNone {
		t.Fatalf("frame from port 0: out %d drop %v, want out 1", pkts[0].Out, pkts[0].Drop)
	}
	want := append([]byte{2, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 3, 8, 0, 0x45}, make([]byte, 45)...)
	if !bytes.Equal(pkts[0].Data, want) {
		t.Errorf("rewritten frame % x\nwant % x", pkts[0].Data[:16], want[:16])
	}
	if pkts[1].Out != -1 || pkts[1].Drop != dp.ReasonMalformed {
		t.Errorf("13-byte frame: out %d drop %v, want a malformed drop", pkts[1].Out, pkts[1].Drop)
	}
	back := []dp.Packet{{Data: frame(), Out: -1}}
	p.Process(1, back)
	if back[0].Out != -1 || back[0].Drop != dp.ReasonUnsupported {
		t.Errorf("frame from port 1: out %d drop %v, want an unsupported drop", back[0].Out, back[0].Drop)
	}
}

// With BackDst set, frames from port 1 go back to port 0 with their own
// pair of addresses (a TCP connection's ACKs cross the forwarder too).
func TestPipelineBothWays(t *testing.T) {
	p := &Pipeline{Dst: [6]byte{2, 0, 0, 0, 0, 4}, Src: [6]byte{2, 0, 0, 0, 0, 3},
		BackDst: [6]byte{2, 0, 0, 0, 0, 1}, BackSrc: [6]byte{2, 0, 0, 0, 0, 2}}
	frame := func() []byte {
		b := make([]byte, 60)
		copy(b, []byte{2, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 4, 8, 0, 0x45})
		return b
	}
	pkts := []dp.Packet{{Data: frame(), Out: -1}, {Data: frame()[:13], Out: -1}}
	p.Process(1, pkts)
	if pkts[0].Out != 0 || pkts[0].Drop != dp.ReasonNone {
		t.Fatalf("frame from port 1: out %d drop %v, want out 0", pkts[0].Out, pkts[0].Drop)
	}
	want := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0, 0x45}
	if !bytes.Equal(pkts[0].Data[:15], want) {
		t.Errorf("rewritten frame % x\nwant % x", pkts[0].Data[:15], want)
	}
	if pkts[1].Out != -1 || pkts[1].Drop != dp.ReasonMalformed {
		t.Errorf("13-byte frame from port 1: out %d drop %v, want a malformed drop", pkts[1].Out, pkts[1].Drop)
	}
	fwd := []dp.Packet{{Data: frame(), Out: -1}}
	p.Process(0, fwd)
	if fwd[0].Out != 1 || !bytes.Equal(fwd[0].Data[:12], []byte{2, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 3}) {
		t.Errorf("frame from port 0: out %d, addresses % x", fwd[0].Out, fwd[0].Data[:12])
	}
}

func TestValidate(t *testing.T) {
	ok := DefaultConfig("a", "b", [6]byte{2, 0, 0, 0, 0, 1})
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		mod        func(*Config)
	}{
		{"no out", "both interfaces", func(c *Config) { c.Out = "" }},
		{"same", "both a", func(c *Config) { c.Out = "a" }},
		{"no mac", "destination MAC", func(c *Config) { c.DstMAC = [6]byte{} }},
		{"ring", "power of two", func(c *Config) { c.RingSize = 1000 }},
		{"frames", "at least 4*ring", func(c *Config) { c.Frames = 2048 }},
		{"batch", "batch", func(c *Config) { c.Batch = 0 }},
	} {
		c := ok
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// The reference stands for samepathd's AF_XDP path only while it is sized
// as samepathd is by default.
func TestDefaultsAreSamepathd(t *testing.T) {
	c := DefaultConfig("a", "b", [6]byte{2, 0, 0, 0, 0, 1})
	x := daemon.DefaultConfig().XSK
	if c.Frames != x.Frames || c.FrameSize != x.FrameSize || c.RingSize != x.RingSize || c.Batch != x.Batch {
		t.Errorf("l2fwd defaults %d frames of %d B, rings %d, batch %d; samepathd's %d, %d, %d, %d",
			c.Frames, c.FrameSize, c.RingSize, c.Batch, x.Frames, x.FrameSize, x.RingSize, x.Batch)
	}
}

func TestPipelineAllocs(t *testing.T) {
	p := &Pipeline{Dst: [6]byte{2, 0, 0, 0, 0, 4}, Src: [6]byte{2, 0, 0, 0, 0, 3}}
	pkts := make([]dp.Packet, 64)
	for i := range pkts {
		pkts[i] = dp.Packet{Data: make([]byte, 64), Out: -1}
	}
	if n := testing.AllocsPerRun(100, func() { p.Process(0, pkts) }); n != 0 {
		t.Errorf("%v allocations per batch", n)
	}
}
