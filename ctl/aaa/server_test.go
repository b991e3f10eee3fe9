package aaa

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
)

type recAcct struct {
	mu   sync.Mutex
	reqs []AcctRequest
}

func (r *recAcct) list() []AcctRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]AcctRequest(nil), r.reqs...)
}

func (r *recAcct) Account(a *AcctRequest) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.SessionID == "" {
		return 0, fmt.Errorf("no Acct-Session-Id")
	}
	r.reqs = append(r.reqs, *a)
	return 0, nil
}

type testServer struct {
	srv   *Server
	pool  *Pool
	users *Users
	acct  *recAcct
}

func startServer(t *testing.T, mut func(*ServerConfig)) *testServer {
	t.Helper()
	st := newTestStore(t, t.TempDir())
	pool := NewPool(st, time.Now, time.Minute)
	users := NewUsers(st, 1000)
	cfg := DefaultServerConfig()
	cfg.AuthAddr, cfg.AcctAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Clients = []ClientConfig{{Prefix: "127.0.0.0/8", Secret: "testing123"}}
	cfg.SessionTimeout, cfg.AcctInterimInterval = time.Hour, 5*time.Minute
	if mut != nil {
		mut(&cfg)
	}
	acct := &recAcct{}
	srv, err := NewServer(cfg, users, pool, acct, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testServer{srv: srv, pool: pool, users: users, acct: acct}
}

// radclient runs FreeRADIUS's radclient with attrs on stdin and returns its output.
func radclient(t *testing.T, addr net.Addr, kind, attrs string) string {
	t.Helper()
	if _, err := exec.LookPath("radclient"); err != nil {
		t.Fatalf("radclient not installed (apt-get install freeradius-utils): %v", err)
	}
	cmd := exec.Command("radclient", "-x", "-r", "1", "-t", "2", addr.String(), kind, "testing123")
	cmd.Stdin = strings.NewReader(attrs)
	out, _ := cmd.CombinedOutput() // exit status 1 on reject or no reply; the output says which
	return string(out)
}

func TestRadclientAccessAcceptReject(t *testing.T) {
	ts := startServer(t, nil)
	if _, err := ts.pool.PutGateway(GatewayConfig{Name: "gw1", Range: "10.20.0.0/30"}); err != nil {
		t.Fatal(err)
	}
	ts.users.Put(User{ID: "alice", Password: "alicepw", DeviceID: "dev-a"})
	ts.users.Put(User{ID: "bob", Password: "bobpw", CHAP: true})
	ts.users.Put(User{ID: "carol", Password: "carolpw"})
	ma := ",Message-Authenticator=0x00"
	for _, tc := range []struct {
		name, attrs string
		want        []string
	}{
		{"pap accept", "User-Name=alice,User-Password=alicepw,Calling-Station-Id=dev-a" + ma,
			[]string{"Received Access-Accept", "Framed-IP-Address = 10.20.0.1", "Session-Timeout = 3600", "Acct-Interim-Interval = 300", "Message-Authenticator"}},
		{"same device keeps its address", "User-Name=alice,User-Password=alicepw,Calling-Station-Id=dev-a" + ma,
			[]string{"Received Access-Accept", "Framed-IP-Address = 10.20.0.1"}},
		{"chap accept", "User-Name=bob,CHAP-Password=bobpw,Calling-Station-Id=dev-b" + ma,
			[]string{"Received Access-Accept", "Framed-IP-Address = 10.20.0.2"}},
		{"bad password", "User-Name=alice,User-Password=nope,Calling-Station-Id=dev-a" + ma,
			[]string{"Received Access-Reject", `Reply-Message = "authentication failed: unknown user or wrong password"`}},
		{"wrong device", "User-Name=alice,User-Password=alicepw,Calling-Station-Id=dev-x" + ma,
			[]string{"Received Access-Reject", "does not match"}},
		{"range exhausted", "User-Name=carol,User-Password=carolpw,Calling-Station-Id=dev-c" + ma,
			[]string{"Received Access-Reject", `Reply-Message = "no address: address ranges of all healthy gateways are full"`}},
		{"missing Message-Authenticator dropped", "User-Name=alice,User-Password=alicepw,Calling-Station-Id=dev-a",
			[]string{"No reply from server"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := radclient(t, ts.srv.AuthAddr(), "auth", tc.attrs)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	c := ts.srv.C.Snapshot()
	if c["accepts"] != 3 || c["rejects"] != 3 || c["missing_message_authenticator"] < 1 {
		t.Fatalf("counters %v", c)
	}
}

func TestRadclientAccounting(t *testing.T) {
	ts := startServer(t, nil)
	out := radclient(t, ts.srv.AcctAddr(), "acct", "Acct-Status-Type=Stop,Acct-Session-Id=s1,Calling-Station-Id=dev-a,Framed-IP-Address=10.20.0.1,Acct-Terminate-Cause=Idle-Timeout,Acct-Input-Octets=10")
	if !strings.Contains(out, "Received Accounting-Response") {
		t.Fatalf("no Accounting-Response:\n%s", out)
	}
	reqs := ts.acct.list()
	if len(reqs) != 1 {
		t.Fatalf("%d accounting requests recorded", len(reqs))
	}
	r := reqs[0]
	if r.Status != rfc2866.AcctStatusType_Value_Stop || r.Cause != rfc2866.AcctTerminateCause_Value_IdleTimeout || r.SessionID != "s1" || r.IP.String() != "10.20.0.1" || r.InOctets != 10 || r.NAS != "127.0.0.1" {
		t.Fatalf("recorded %+v", r)
	}
	// Not recorded (no session id): no answer.
	out = radclient(t, ts.srv.AcctAddr(), "acct", "Acct-Status-Type=Start,Calling-Station-Id=dev-a")
	if !strings.Contains(out, "No reply") {
		t.Fatalf("answered an unrecorded request:\n%s", out)
	}
}

// exchange sends raw bytes from conn and waits for one answer.
func exchange(t *testing.T, conn *net.UDPConn, to net.Addr, b []byte) []byte {
	t.Helper()
	if _, err := conn.WriteTo(b, to); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func accessRequest(t *testing.T, secret, user, pw, dev string) []byte {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, []byte(secret))
	rfc2865.UserName_SetString(p, user)
	rfc2865.UserPassword_SetString(p, pw)
	rfc2865.CallingStationID_SetString(p, dev)
	b, err := EncodeRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDuplicateAndSecurity(t *testing.T) {
	ts := startServer(t, nil)
	ts.pool.PutGateway(GatewayConfig{Name: "gw1", Range: "10.30.0.0/24"})
	ts.users.Put(User{ID: "u", Password: "pw"})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := accessRequest(t, "testing123", "u", "pw", "d1")
	a1 := exchange(t, conn, ts.srv.AuthAddr(), req)
	a2 := exchange(t, conn, ts.srv.AuthAddr(), req)
	if a1 == nil || !bytes.Equal(a1, a2) {
		t.Fatalf("retransmission answered differently:\n%x\n%x", a1, a2)
	}
	resp, err := radius.Parse(a1, []byte("testing123"))
	if err != nil || resp.Code != radius.CodeAccessAccept || !radius.IsAuthenticResponse(a1, req, []byte("testing123")) {
		t.Fatalf("answer %v %v", resp, err)
	}
	if !VerifyResponseMessageAuthenticator(a1, req[4:20], []byte("testing123")) {
		t.Fatal("answer's Message-Authenticator does not verify")
	}
	c := ts.srv.C.Snapshot()
	if c["auth_requests"] != 1 || c["dup_answered"] != 1 || ts.pool.Counters().Assigned != 1 {
		t.Fatalf("processed twice: %v %+v", c, ts.pool.Counters())
	}
	// Wrong secret: the Message-Authenticator fails, no answer.
	if exchange(t, conn, ts.srv.AuthAddr(), accessRequest(t, "other", "u", "pw", "d1")) != nil {
		t.Fatal("answered a request with a wrong secret")
	}
	// Truncated and garbage datagrams are counted, never crash.
	for _, junk := range [][]byte{{1, 2, 3}, append([]byte{1, 9, 0, 30}, make([]byte, 26)...), append([]byte{1, 10, 0, 22}, make([]byte, 18)...)} {
		conn.WriteTo(junk, ts.srv.AuthAddr())
	}
	// A request sent to the accounting port is the wrong code.
	conn.WriteTo(req, ts.srv.AcctAddr())
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		c = ts.srv.C.Snapshot()
		if c["bad_message_authenticator"] == 1 && c["malformed"] == 3 && c["wrong_code"] == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("counters %v", c)
}

func TestUnknownClientIgnored(t *testing.T) {
	ts := startServer(t, func(c *ServerConfig) { c.Clients = []ClientConfig{{Prefix: "192.0.2.0/24", Secret: "x"}} })
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if exchange(t, conn, ts.srv.AuthAddr(), accessRequest(t, "x", "u", "pw", "d")) != nil {
		t.Fatal("unknown client answered")
	}
	if n := ts.srv.C.UnknownClient.Load(); n != 1 {
		t.Fatalf("unknown_client = %d", n)
	}
}

var _ = rfc2869.AcctInterimInterval_Get

// TestStatusServer (RFC 5997): radclient's status probe is answered with
// Access-Accept on the authentication port and Accounting-Response on
// the accounting port, whose authenticators and Message-Authenticator
// verify; without Message-Authenticator it is silently discarded; no
// user, address or session is touched.
func TestStatusServer(t *testing.T) {
	ts := startServer(t, nil)
	ma := "Message-Authenticator=0x00"
	if out := radclient(t, ts.srv.AuthAddr(), "status", ma); !strings.Contains(out, "Received Access-Accept") {
		t.Fatalf("status on the auth port:\n%s", out)
	}
	if out := radclient(t, ts.srv.AcctAddr(), "status", ma); !strings.Contains(out, "Received Accounting-Response") {
		t.Fatalf("status on the acct port:\n%s", out)
	}
	// The same, checked here: a Status-Server of our own making.
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	secret := []byte("testing123")
	p := radius.New(radius.CodeStatusServer, secret)
	p.Attributes = radius.Attributes{{Type: attrMessageAuth, Attribute: make(radius.Attribute, messageAuthLen)}}
	req, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(md5.New, secret)
	m.Write(req)
	m.Sum(req[22:22:38])
	for _, port := range []net.Addr{ts.srv.AuthAddr(), ts.srv.AcctAddr()} {
		req[1]++ // a new identifier: not a retransmission
		m := hmac.New(md5.New, secret)
		clear(req[22:38])
		m.Write(req)
		m.Sum(req[22:22:38])
		a := exchange(t, conn, port, req)
		if a == nil || !radius.IsAuthenticResponse(a, req, secret) || !statusAnswerMA(a, req[4:20], secret) {
			t.Fatalf("status to %v: answer %x does not verify", port, a)
		}
	}
	noMA, _ := radius.New(radius.CodeStatusServer, secret).MarshalBinary()
	if exchange(t, conn, ts.srv.AuthAddr(), noMA) != nil {
		t.Fatal("Status-Server without Message-Authenticator answered")
	}
	c := ts.srv.C.Snapshot()
	if c["status_server"] != 5 || c["auth_requests"] != 0 || c["acct_requests"] != 0 || ts.pool.Counters().Assigned != 0 || len(ts.acct.list()) != 0 {
		t.Fatalf("counters %v, pool %+v", c, ts.pool.Counters())
	}
}

// statusAnswerMA checks the Message-Authenticator of an answer to a
// Status-Server, computed over the request's authenticator whatever the
// answer's code (RFC 5997 3), at its usual place (the first attribute).
func statusAnswerMA(a, reqAuth, secret []byte) bool {
	if len(a) < 38 || a[20] != attrMessageAuth {
		return false
	}
	c := bytes.Clone(a)
	copy(c[4:20], reqAuth)
	clear(c[22:38])
	m := hmac.New(md5.New, secret)
	m.Write(c)
	return hmac.Equal(m.Sum(nil), a[22:38])
}

// TestDisconnectRequestEncoding: the Disconnect-Request is authentic under
// the shared secret (Request Authenticator as for Accounting-Request), and
// only an answer signed with the same secret and request is accepted.
func TestDisconnectRequestEncoding(t *testing.T) {
	secret := []byte("s3cret")
	req, err := EncodeDisconnectRequest(Disconnect{AcctSessionID: "A1", User: "u", Device: "d", IP: netip.MustParseAddr("10.0.0.9")}, secret)
	if err != nil {
		t.Fatal(err)
	}
	if req[0] != byte(radius.CodeDisconnectRequest) || !radius.IsAuthenticRequest(req, secret) || radius.IsAuthenticRequest(req, []byte("other")) {
		t.Fatalf("request %x not authentic under its secret only", req)
	}
	if present, ok := VerifyRequestMessageAuthenticator(req, secret); !present || !ok {
		t.Fatalf("Message-Authenticator present %v, verifies %v", present, ok)
	}
	if _, ok := VerifyRequestMessageAuthenticator(req, []byte("other")); ok {
		t.Fatal("Message-Authenticator verifies under another secret")
	}
	ack := func(secret []byte, reqAuth []byte) []byte {
		a := []byte{byte(radius.CodeDisconnectACK), req[1], 0, 20}
		a = append(a, make([]byte, 16)...)
		h := md5.New()
		h.Write(a[:4])
		h.Write(reqAuth)
		h.Write(secret)
		h.Sum(a[4:4:20])
		return a
	}
	if !authenticDAEResponse(ack(secret, req[4:20]), req, secret) {
		t.Fatal("a good ACK refused")
	}
	if authenticDAEResponse(ack([]byte("other"), req[4:20]), req, secret) || authenticDAEResponse(ack(secret, make([]byte, 16)), req, secret) {
		t.Fatal("a forged ACK accepted")
	}
}

// TestAccountingLBMAC: an Accounting-Request carries the lb_mac of the
// RADIUS client it came from (normalised), none for a client without one;
// a malformed lb_mac is refused naming the key.
func TestAccountingLBMAC(t *testing.T) {
	ts := startServer(t, func(c *ServerConfig) {
		c.Clients = []ClientConfig{
			{Prefix: "127.0.0.1", Secret: "testing123", LBMAC: "02:73:70:03:01:0A"},
			{Prefix: "127.0.0.2", Secret: "testing123"},
		}
	})
	for _, tc := range []struct{ from, want string }{{"127.0.0.1", "02:73:70:03:01:0a"}, {"127.0.0.2", ""}} {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(tc.from)})
		if err != nil {
			t.Fatal(err)
		}
		p := radius.New(radius.CodeAccountingRequest, []byte("testing123"))
		rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
		rfc2866.AcctSessionID_SetString(p, "s-"+tc.from)
		rfc2865.CallingStationID_SetString(p, "dev-a")
		b, err := EncodeRequest(p)
		if err != nil {
			t.Fatal(err)
		}
		resp := exchange(t, conn, ts.srv.AcctAddr(), b)
		conn.Close()
		if len(resp) == 0 || resp[0] != byte(radius.CodeAccountingResponse) {
			t.Fatalf("from %s: no Accounting-Response", tc.from)
		}
		reqs := ts.acct.list()
		if r := reqs[len(reqs)-1]; r.SessionID != "s-"+tc.from || r.LBMAC != tc.want {
			t.Fatalf("from %s: recorded session %q lb_mac %q, want %q", tc.from, r.SessionID, r.LBMAC, tc.want)
		}
	}
	for _, bad := range []string{"02:73:70", "nonsense", "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01"} {
		cfg := DefaultServerConfig()
		cfg.Clients = []ClientConfig{{Prefix: "127.0.0.1", Secret: "s", LBMAC: bad}}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "lb_mac") {
			t.Errorf("lb_mac %q: %v, want an error naming lb_mac", bad, err)
		}
	}
}

// syncBuf is a bytes.Buffer safe for the server's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuf) lines() []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(w.b.String()), "\n") {
		m := map[string]any{}
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestRefusalsLogged (issue 18): a reject, a wrong secret and an unknown
// client each give one warning with the reason; repeats within
// RejectLogEvery are held back, not logged per request.
func TestRefusalsLogged(t *testing.T) {
	var buf syncBuf
	ts := startServer(t, func(c *ServerConfig) {
		c.Clients = []ClientConfig{{Prefix: "127.0.0.1/32", Secret: "testing123", Name: "nas1"}}
		c.Log = slog.New(slog.NewJSONHandler(&buf, nil))
	})
	ts.pool.PutGateway(GatewayConfig{Name: "gw1", Range: "10.30.0.0/24"})
	ts.users.Put(User{ID: "u", Password: "pw"})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 3; i++ {
		if exchange(t, conn, ts.srv.AuthAddr(), accessRequest(t, "testing123", "u", "wrong", "d1")) == nil {
			t.Fatal("no Access-Reject")
		}
	}
	exchange(t, conn, ts.srv.AuthAddr(), accessRequest(t, "other", "u", "pw", "d1"))
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	exchange(t, other, ts.srv.AuthAddr(), accessRequest(t, "testing123", "u", "pw", "d1"))
	deadline := time.Now().Add(2 * time.Second)
	for ts.srv.C.UnknownClient.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := map[string]int{}
	for _, l := range buf.lines() {
		if l["level"] != "WARN" {
			continue
		}
		key := l["msg"].(string)
		if r, ok := l["reason"].(string); ok {
			key += ": " + r
		}
		got[key]++
		if l["msg"] == "radius reject" && (l["user"] != "u" || l["client"] != "nas1") {
			t.Errorf("reject line without user or client: %v", l)
		}
	}
	want := map[string]int{
		"radius reject: authentication failed: unknown user or wrong password": 1, // 3 rejects, 1 line
		"bad Message-Authenticator (wrong secret?)":                            1,
		"unknown client": 1,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("warnings (-want +got):\n%s\nlog:\n%s", d, buf.b.String())
	}
}
