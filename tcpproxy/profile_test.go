package tcpproxy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// handshake is what a test reads off the wires for one connection: the
// SYN-ACK the terminator's mobile side sent and the SYN its server side
// sent.
type handshake struct {
	MobileMSS, ServerMSS uint16
	MobileWS, ServerWS   int
	MobileSACK           bool
	ServerSACK           bool
}

// lastHandshake reads the last SYN-ACK towards the mobile and the last SYN
// towards the server.
func (e *env) lastHandshake(t *testing.T) handshake {
	t.Helper()
	var h handshake
	var synAck, synSrv *syn
	for _, s := range e.mw.synsOf(1) {
		if s.ack {
			synAck = &s
		}
	}
	for _, s := range e.sw.synsOf(0) {
		if !s.ack {
			synSrv = &s
		}
	}
	if synAck == nil || synSrv == nil {
		t.Fatalf("SYN-ACK to the mobile %v, SYN to the server %v: want both", synAck, synSrv)
	}
	h.MobileMSS, h.MobileWS, h.MobileSACK = synAck.opts.MSS, synAck.opts.WS, synAck.opts.SACKPermitted
	h.ServerMSS, h.ServerWS, h.ServerSACK = synSrv.opts.MSS, synSrv.opts.WS, synSrv.opts.SACKPermitted
	return h
}

func exchange(t *testing.T, e *env) {
	t.Helper()
	c, _ := e.mustDial(client1, repAddr)
	c.Write([]byte("x"))
	sc := e.nextAccepted()
	if _, err := readN(sc.c, 1); err != nil {
		t.Fatalf("server read: %v", err)
	}
	c.Close()
	sc.c.Close()
	e.nextClosed()
}

// Each side's handshake carries its own profile's MSS and window scale, and
// a profile changed at run time applies to the next connection.
func TestProfileHandshake(t *testing.T) {
	e := newEnv(t, testConfig())
	exchange(t, e)
	// Wireless: MSS 1400, a 1.25 MB buffer -> scale 5. Wired: MSS 1460,
	// 4 MiB -> scale 7. Numbers written out, not computed.
	want := handshake{MobileMSS: 1400, MobileWS: 5, MobileSACK: true, ServerMSS: 1460, ServerWS: 7, ServerSACK: true}
	if diff := cmp.Diff(want, e.lastHandshake(t)); diff != "" {
		t.Errorf("default profiles' handshake (-want +got):\n%s", diff)
	}

	mob := Wireless()
	mob.Name = "narrow"
	mob.MSS = 1240
	mob.RecvBuf = BufRange{Min: 4096, Default: 60000, Max: 60000}
	mob.ModerateRecvBuf = false
	mob.SACK = false
	srv := Wired()
	srv.Name = "wide"
	srv.MSS = 1300
	srv.RecvBuf = BufRange{Min: 4096, Default: 1 << 20, Max: 64 << 20}
	for side, p := range map[Side]Profile{Mobile: mob, Server: srv} {
		if err := e.term.SetProfile(side, p); err != nil {
			t.Fatalf("SetProfile(%v): %v", side, err)
		}
	}
	if diff := cmp.Diff([]Profile{mob, srv}, e.term.Profiles()); diff != "" {
		t.Errorf("Profiles (-want +got):\n%s", diff)
	}
	exchange(t, e)
	// 60000 < 64 KiB -> scale 0; 64 MiB is just over 65535<<10 -> scale 11.
	want = handshake{MobileMSS: 1240, MobileWS: 0, MobileSACK: false, ServerMSS: 1300, ServerWS: 11, ServerSACK: true}
	if diff := cmp.Diff(want, e.lastHandshake(t)); diff != "" {
		t.Errorf("changed profiles' handshake (-want +got):\n%s", diff)
	}
	if got := (handshake{MobileWS: mob.WindowScale(), ServerWS: srv.WindowScale()}); got.MobileWS != 0 || got.ServerWS != 11 {
		t.Errorf("WindowScale mobile %d server %d, want 0 and 11", got.MobileWS, got.ServerWS)
	}
}

func TestProfileValidate(t *testing.T) {
	for _, p := range Builtin() {
		if err := p.Validate(); err != nil {
			t.Errorf("builtin %s: %v", p.Name, err)
		}
	}
	for _, tc := range []struct {
		field string
		mod   func(*Profile)
	}{
		{"name", func(p *Profile) { p.Name = "" }},
		{"mss", func(p *Profile) { p.MSS = 536 }},
		{"recv_buf", func(p *Profile) { p.RecvBuf.Max = p.RecvBuf.Default - 1 }},
		{"send_buf", func(p *Profile) { p.SendBuf.Min = 0 }},
		{"congestion", func(p *Profile) { p.Congestion = "bbr" }},
		{"keepalive", func(p *Profile) { p.Keepalive = Keepalive{Enabled: true} }},
		{"min_rto/max_rto", func(p *Profile) { p.MaxRTO = p.MinRTO / 2 }},
		{"max_retries", func(p *Profile) { p.MaxRetries = 0 }},
		{"syn_retries", func(p *Profile) { p.SynRetries = 0 }},
		{"time_wait", func(p *Profile) { p.TimeWait = 0 }},
		{"fin_wait2", func(p *Profile) { p.FinWait2 = -time.Second }},
	} {
		p := Wired()
		tc.mod(&p)
		err := p.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Validate = %v, want ErrConfig naming it", tc.field, err)
		}
	}
}

// A bad profile is refused at run time and the side keeps its old one.
func TestSetProfileRefused(t *testing.T) {
	e := newEnv(t, testConfig())
	bad := Wireless()
	bad.Congestion = "bbr"
	if err := e.term.SetProfile(Mobile, bad); !errors.Is(err, ErrConfig) {
		t.Fatalf("SetProfile(bbr) = %v, want ErrConfig", err)
	}
	if got := e.term.Profile(Mobile); got.Congestion != Wireless().Congestion || got.Name != "wireless" {
		t.Errorf("mobile profile after refusal %s/%s, want wireless/%s", got.Name, got.Congestion, Wireless().Congestion)
	}
	exchange(t, e)
}

// The window each side advertises follows its profile: about half the
// free receive buffer, scaled by the profile's window scale.
func TestProfileWindow(t *testing.T) {
	e := newEnv(t, testConfig())
	c, _ := e.mustDial(client1, repAddr)
	go c.Write(payload(2_000_000, 12))
	sc := e.nextAccepted()
	go sc.c.Write(payload(2_000_000, 13))
	readN(sc.c, 2_000_000)
	readN(c, 2_000_000)
	e.mw.mu.Lock()
	mobWin := int(e.mw.maxWindow[1]) << 5 // wireless: scale 5
	e.mw.mu.Unlock()
	e.sw.mu.Lock()
	srvWin := int(e.sw.maxWindow[0]) << 7 // wired: scale 7
	e.sw.mu.Unlock()
	t.Logf("largest window advertised: to the mobile %d, to the server %d", mobWin, srvWin)
	// Wireless: a 1.25 MB buffer from the start -> about 625 000.
	if mobWin < 600_000 || mobWin > 625_000 {
		t.Errorf("window to the mobile %d, want about 625 000 (half of 1.25 MB)", mobWin)
	}
	// Wired: 128 KiB to start (-> 64 KiB), auto-tuned up to 4 MiB (-> 2 MiB).
	if srvWin < 60_000 || srvWin > 2<<20 {
		t.Errorf("window to the server %d, want between 64 KiB and 2 MiB", srvWin)
	}
}
