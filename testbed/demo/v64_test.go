package demo_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"samepath/dp/acct"
	"samepath/testbed/demo"
	"samepath/testbed/fig2"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

// The IPv6 -> IPv4 part of issue 15, on TestIPv6Subscribers's system
// (its gateways run a terminator: term64NAT): the IPv6-only mobile mob1
// reaches group A's IPv4 servers by UDP and ICMP echo through the
// translator (dns-a at NAT64Addr(10.30.0.1):53, dns-a64 at an IPv6 rep
// with IPv4 servers, a ping) and by TCP through the terminator (web-a64,
// curl, SHA-256 of the body); TCP in NAT mode through the translator
// is authorized like IPv4 (group B's video: mob1 served, mob2 refused);
// and gw2's accounting names mob1 for every one of them.

// term64NAT turns the gateways' terminator on, as make demo does.
var term64NAT = demo.GWNAT{PortMax: 59999, TermPortMin: 60000, TermPortMax: 65535}

// askTXT sends a DNS TXT query (id) over c and returns the answer's
// text: the testbed's DNS-like service answers its server's name.
func askTXT(c net.Conn, id uint16) (string, error) {
	q := binary.BigEndian.AppendUint16(nil, id)
	q = append(q, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0)
	q = append(q, 3, 'w', 'h', 'o', 4, 't', 'e', 's', 't', 0, 0, 16, 0, 1)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(q); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		a := buf[:n]
		if n < len(q)+13 || binary.BigEndian.Uint16(a) != id {
			continue
		}
		rd := a[len(q)+12:]
		rdlen := int(binary.BigEndian.Uint16(a[len(q)+10:]))
		if rdlen < 1 || len(rd) < rdlen || int(rd[0]) != rdlen-1 {
			return "", fmt.Errorf("dns answer with a bad TXT record: % x", a)
		}
		return string(rd[1:rdlen]), nil
	}
}

// v6ToV4 runs the checks while mob1 (IPv6 only, on gw2) and mob2 (dual
// stack, on gw1) are logged in.
func v6ToV4(ctx context.Context, t *testing.T, sys *demo.System, m1, m2 *fig2.Mobile) {
	t.Helper()
	p := sys.TB.Plan
	gA, gB := p.Groups[0], p.Groups[1]

	// UDP, translated, to an RFC 6052 address (dns-a) and to an IPv6 rep
	// whose servers are IPv4 (dns-a64): every answer from group A.
	for _, dns := range []netip.AddrPort{netip.AddrPortFrom(demo.NAT64Addr(gA.VIPv4), fig2.DNSPort), demo.DNS64Rep(p)} {
		c, err := topo.Dial(ctx, m1.NS, "udp", dns.String())
		if err != nil {
			t.Fatal(err)
		}
		for id := uint16(1); id <= 3; id++ {
			name, err := askTXT(c, id)
			if err != nil || !strings.HasPrefix(name, "a") {
				t.Errorf("mob1 UDP to %s: %q, %v; want a server of group A", dns, name, err)
			}
		}
		c.Close()
	}

	// ICMP echo, translated (ICMPv6 to ICMPv4 and back).
	ping := demo.NAT64Addr(gA.VIPv4).String()
	if out, err := topo.CommandContext(ctx, m1.NS, "ping", "-6", "-n", "-c", "2", "-W", "2", ping).CombinedOutput(); err != nil {
		t.Errorf("mob1 ping %s (NAT64 of group A): %v\n%s", ping, err, out)
	}

	// TCP, terminated: the mobile side IPv6, the server side IPv4.
	const size = 2 << 20
	url := fmt.Sprintf("http://%s/bytes/%d", demo.Term64Rep(p), size)
	cmd := topo.CommandContext(ctx, m1.NS, "curl", "-sS", "-g", "--max-time", "20", "-o", "-", url)
	h := sha256.New()
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = h, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mob1 curl %s: %v\n%s", url, err, stderr.String())
	}
	if sum := servers.BytesSHA256(size); string(h.Sum(nil)) != string(sum[:]) {
		t.Fatalf("mob1 curl %s: SHA-256 %x, want %x", url, h.Sum(nil), sum)
	}
	// TCP in NAT mode through the translator, authorized as for IPv4:
	// group B's video, which mob1's device has ordered and mob2's not.
	vid := "http://" + netip.AddrPortFrom(demo.NAT64Addr(gB.VIPv4), fig2.HTTPPort).String() + "/"
	if _, err := httpClient(m1, 5*time.Second).Get(vid); err != nil {
		t.Errorf("mob1 to %s (NAT64 of web-b): %v, want served", vid, err)
	}
	if _, err := httpClient(m2, 3*time.Second).Get(vid); err == nil {
		t.Errorf("mob2 to %s (NAT64 of web-b): served, want refused (video not ordered)", vid)
	}
}

// v6ToV4Accounting logs mob1 out and waits for gw2's final records of
// mob1's flows to IPv4 servers: the translated UDP (dns-a, dns-a64),
// the terminated TCP (web-a64) and the translated web-b.
func v6ToV4Accounting(ctx context.Context, t *testing.T, sys *demo.System, logs string) {
	t.Helper()
	if err := sys.Logout(ctx, "mob1"); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"dns-a": false, demo.DNS64Service: false, demo.Term64Service: false, "web-b": false}
	var es []acct.Entry
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		es, _, _ = acct.Query(filepath.Join(logs, "gw2.acct"), acct.Filter{User: "mob1"})
		for _, e := range es {
			if _, ok := want[e.Service]; ok && e.Kind == "final" && e.Device == "IMEI-mob1" {
				if srv, err := netip.ParseAddrPort(e.Server); err == nil && srv.Addr().Is4() {
					want[e.Service] = true
				}
			}
		}
		all := true
		for _, ok := range want {
			all = all && ok
		}
		if all {
			break
		}
	}
	for svc, ok := range want {
		if !ok {
			t.Errorf("gw2's accounting: no final record of mob1's %s to an IPv4 server; records %+v", svc, es)
		}
	}
}
