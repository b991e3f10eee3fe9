package gwe2e

// Helpers shared by the tests: the system under test (testbed/demo's FIG. 2
// with samepathd LBs and gateways), HTTP keep-alive connections and
// DNS-like TXT queries that reveal which actual server answered, and
// counter and NAT-record readers over the daemons' control APIs.
//
//	mob1, mob2 ~~ nas1..3 -- lb1..3 -- LAN1 -- gw1, gw2 -- LAN2 -- a1 a2 b1 b2

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/systest"
	"samepath/testbed/topo"
)

// TestMain: systest.Main (the binary doubles as the servers; leak check).
func TestMain(m *testing.M) { systest.Main(m) }

// testCtx is a context bounded well beyond any step of a test; steps that
// wait for something poll with their own deadlines.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mobile(t *testing.T, sys *demo.System, name string) *fig2.Mobile {
	t.Helper()
	m, err := sys.TB.Plan.Mobile(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// rep is group g's (0: A, 1: B) representative IPv4 address with port.
func rep(sys *demo.System, g int, port uint16) string {
	return netip.AddrPortFrom(sys.TB.Plan.Groups[g].VIPv4, port).String()
}

// webConn is one HTTP/1.1 keep-alive connection from a mobile, spoken by
// hand so that the test knows it is exactly one TCP connection.
type webConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialWeb connects from namespace ns to addr; a connect not answered in
// 5 s (SYN and its retransmissions dropped) fails.
func dialWeb(ctx context.Context, ns, addr string) (*webConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := topo.Dial(ctx, ns, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &webConn{c: c, r: bufio.NewReader(c)}, nil
}

// get requests path and returns the body (for "/", the server's name).
func (w *webConn) get(path string) (string, error) {
	w.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(w.c, "GET %s HTTP/1.1\r\nHost: rep\r\n\r\n", path); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(w.r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

func (w *webConn) local() netip.AddrPort { return w.c.LocalAddr().(*net.TCPAddr).AddrPort() }

func (w *webConn) Close() error { return w.c.Close() }

// fetchName opens one connection, asks for "/" and closes it.
func fetchName(ctx context.Context, ns, addr string) (string, error) {
	w, err := dialWeb(ctx, ns, addr)
	if err != nil {
		return "", err
	}
	defer w.Close()
	return w.get("/")
}

// txtQuery is a DNS query (RFC 1035) for TXT of "who.test" with id.
func txtQuery(id uint16) []byte {
	q := binary.BigEndian.AppendUint16(nil, id)
	q = append(q, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD; one question
	q = append(q, 3, 'w', 'h', 'o', 4, 't', 'e', 's', 't', 0)
	return append(q, 0, 16, 0, 1) // TXT, IN
}

// askTXT sends one TXT query on a connected UDP socket and returns the
// answer's text: the testbed's DNS-like service answers its server name.
func askTXT(c net.Conn, id uint16, wait time.Duration) (string, error) {
	q := txtQuery(id)
	if _, err := c.Write(q); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		a := buf[:n]
		if n < 12 || binary.BigEndian.Uint16(a) != id {
			continue // a late answer to an earlier query
		}
		// Header, the question as sent, then one answer: name pointer,
		// type, class, TTL, RDLENGTH, RDATA = <len><text>.
		at := len(q)
		if binary.BigEndian.Uint16(a[6:]) != 1 || n < at+12 {
			return "", fmt.Errorf("dns answer without a record: % x", a)
		}
		rdlen := int(binary.BigEndian.Uint16(a[at+10:]))
		rd := a[at+12:]
		if rdlen < 1 || len(rd) < rdlen || int(rd[0]) != rdlen-1 {
			return "", fmt.Errorf("dns answer with a bad TXT record: % x", a)
		}
		return string(rd[1:rdlen]), nil
	}
}

// drops sums a daemon's drops of reason over its queues.
func drops(ctx context.Context, t *testing.T, c *api.Client, reason string) uint64 {
	t.Helper()
	cs, err := c.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, q := range cs.Queues {
		n += q.Drops[reason]
	}
	return n
}

// logDrops logs every daemon's non-zero drop counters (summed over its
// queues), for a failure's diagnosis.
func logDrops(ctx context.Context, t *testing.T, sys *demo.System) {
	t.Helper()
	var ds []*api.Client
	var names []string
	for i, c := range sys.LBs {
		ds, names = append(ds, c), append(names, fmt.Sprintf("lb%d", i+1))
	}
	for i, c := range sys.GWs {
		ds, names = append(ds, c), append(names, fmt.Sprintf("gw%d", i+1))
	}
	for i, c := range ds {
		cs, err := c.Counters(ctx)
		if err != nil {
			t.Logf("%s counters: %v", names[i], err)
			continue
		}
		sum := map[string]uint64{}
		for _, q := range cs.Queues {
			for r, n := range q.Drops {
				if n != 0 {
					sum[r] += n
				}
			}
		}
		t.Logf("%s drops: %v", names[i], sum)
	}
}

// lbCount is what one LB's afxdp workers received: up from its ingress
// (the NAS side), down from LAN1 (the gateways).
type lbCount struct{ Up, Down uint64 }

func lbCounts(ctx context.Context, t *testing.T, sys *demo.System) []lbCount {
	t.Helper()
	var out []lbCount
	for i, c := range sys.LBs {
		cs, err := c.Counters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var n lbCount
		ingress := sys.TB.Plan.Ingress[i].LB.Ingress.Name + "/"
		for _, q := range cs.Queues {
			if _, ok := q.Socket["rx_ring_full"]; !ok {
				t.Errorf("lb%d %s: no AF_XDP socket statistics in %+v", i+1, q.Port, q)
			}
			if strings.HasPrefix(q.Port, ingress) {
				n.Up += q.RxPackets
			} else {
				n.Down += q.RxPackets
			}
		}
		out = append(out, n)
	}
	return out
}

// flowsOf lists gateway c's NAT records of the mobile at ip.
func flowsOf(ctx context.Context, t *testing.T, c *api.Client, ip netip.Addr) []api.Flow {
	t.Helper()
	fs, err := c.Flows(ctx, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []api.Flow
	for _, f := range fs.Flows {
		if ap, err := netip.ParseAddrPort(f.Mobile); err == nil && ap.Addr() == ip {
			out = append(out, f)
		}
	}
	return out
}

// counterLag bounds how long a gateway's API may show a flow's counters
// behind its packets: nat.PortTable republishes them at most once per
// 2^30 ns period, in the expiry sweep, so at most two periods.
const counterLag = 2*(1<<30)*time.Nanosecond + 500*time.Millisecond

// settled polls ok until it holds or counterLag has passed and reports
// whether it held.
func settled(ok func() bool) bool {
	for end := time.Now().Add(counterLag); ; time.Sleep(50 * time.Millisecond) {
		if ok() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// flowFor finds the record of the mobile's flow from local (its own
// address and port) to dest.
func flowFor(fs []api.Flow, proto string, local netip.AddrPort, dest string) (api.Flow, bool) {
	for _, f := range fs {
		if f.Proto == proto && f.Mobile == local.String() && f.Dest == dest {
			return f, true
		}
	}
	return api.Flow{}, false
}

// eventually polls cond every 200 ms until it holds or d passes; it
// reports whether it held. Deadlines here bound waiting, they assert no
// timing.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sessionID is the gateway's T3 name for the session of the mobile at ip.
func sessionID(ctx context.Context, t *testing.T, c *api.Client, ip netip.Addr) (string, bool) {
	t.Helper()
	ss, err := c.GWSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss.Sessions {
		if s.IP == ip.String() {
			return s.SessionID, true
		}
	}
	return "", false
}

// endSession sends the session manager's "end" for the session of the
// mobile's address of family f (R-GW-7): the gateway drops its T3 row and
// every record of it.
func endSession(ctx context.Context, t *testing.T, sys *demo.System, m *fig2.Mobile, f family) {
	t.Helper()
	gw := sys.GWs[m.Gateway-1]
	ip := f.addr(m)
	id, ok := sessionID(ctx, t, gw, ip)
	if !ok {
		t.Fatalf("%s has no session of %s on gw%d", m.Name, ip, m.Gateway)
	}
	ev := api.SessionEvent{Event: api.EventEnd, SessionID: id, DeviceID: "IMEI-" + m.Name, IP: ip.String(), Seq: 1 << 32}
	if err := gw.SessionEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
}

// isRefused reports whether err is what a client sees when the gateway
// refuses: a TCP RST (connection refused or reset) or an ICMP destination
// unreachable (host/network unreachable, refused, or prohibited). Linux
// reports ICMPv4's administratively prohibited (code 13) as EHOSTUNREACH
// and ICMPv6's (code 1) as EACCES.
func isRefused(err error) bool {
	for _, e := range refusals {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

var refusals = []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.EACCES}
