package gwe2e

// NAT64 through one gateway (R-TCP-3, issue 14), on a topology of its
// own (FIG. 2 has no IPv6 mobile):
//
//	ns mob (IPv6 only)        ns gw (samepathd role gw)          ns srv (IPv4 only)
//	[mob0] fd00:64::10/64 <-veth-> [lan0] fd00:64::1/64
//	                                [srv0] 10.20.0.254/24 <-veth-> [s0] 10.20.0.11/24
//	route 64:ff9b::/96 via fd00:64::1     NAT keys on 10.20.0.101
//
//	service dns4 10.30.0.1:53 udp packet unit rr -> 10.20.0.11:53 (service type dns)
//
// The mobile reaches the IPv4 service through the RFC 6052 address of its
// representative address, 64:ff9b::10.30.0.1 (64:ff9b::a1e:1), and the
// server answers; a ping6 to the RFC 6052 address of the representative
// address and to the server's own is answered by the IPv4 server's kernel.
// The gateway shows the flows as it shows IPv4 ones (GET /v1/flows),
// authorizes them by T9/T8 and writes their T10 records when the session
// ends.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"samepath/ctl/api"
	"samepath/dp/acct"
	"samepath/testbed/privtest"
	"samepath/testbed/systest"
	"samepath/testbed/topo"
)

var (
	x64Mobile = netip.MustParseAddr("fd00:64::10")
	x64GWLan  = netip.MustParseAddr("fd00:64::1")
	x64Rep    = netip.MustParseAddr("10.30.0.1")
	x64Server = netip.MustParseAddr("10.20.0.11")
	x64Key    = netip.MustParseAddr("10.20.0.101")
	// x64RepV6 and x64ServerV6 are the RFC 6052 addresses (64:ff9b::/96)
	// of the representative address and of the server.
	x64RepV6    = netip.MustParseAddr("64:ff9b::a1e:1")
	x64ServerV6 = netip.MustParseAddr("64:ff9b::a14:b")
)

const (
	x64LanMAC = "02:64:00:00:00:01"
	x64SrvMAC = "02:64:00:00:00:02"
	x64MobMAC = "02:64:00:00:00:10"
	x64SMAC   = "02:64:00:00:00:11"
	x64Device = "IMEI-mob6"
)

// xlatRig is the running topology: namespaces, samepathd and its API.
type xlatRig struct {
	mob, gw, srv string
	api          *api.Client
	acctLog      string
}

// sh runs a shell command line in namespace ns and fails t on error.
func sh(t *testing.T, ns, cmd string) string {
	t.Helper()
	out, err := topo.Command(ns, "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", ns, cmd, err, out)
	}
	return string(out)
}

func startXlat(t *testing.T) *xlatRig {
	t.Helper()
	privtest.Require(t)
	bin := systest.Samepathd(t)
	r := &xlatRig{mob: privtest.Name("spx", "m"), gw: privtest.Name("spx", "g"), srv: privtest.Name("spx", "s")}
	for _, ns := range []string{r.mob, r.gw, r.srv} {
		if err := topo.CreateNetns(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := topo.DeleteNetns(ns); err != nil {
				t.Errorf("delete %s: %v", ns, err)
			}
		})
		sh(t, ns, "ip link set lo up")
	}
	// Links: the veths go with their namespaces.
	for _, v := range []struct{ a, aName, aMAC, b, bName, bMAC string }{
		{r.mob, "mob0", x64MobMAC, r.gw, "lan0", x64LanMAC}, {r.gw, "srv0", x64SrvMAC, r.srv, "s0", x64SMAC}} {
		if err := veth(v.a, v.aName, v.aMAC, v.b, v.bName, v.bMAC); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, r.mob, fmt.Sprintf(`sysctl -qw net.ipv6.conf.mob0.accept_dad=0 &&
ip addr add %s/64 dev mob0 nodad && ip link set dev mob0 up &&
ip -6 neigh replace %s lladdr %s dev mob0 nud permanent &&
ip -6 route add 64:ff9b::/96 via %s dev mob0`, x64Mobile, x64GWLan, x64LanMAC, x64GWLan))
	sh(t, r.gw, fmt.Sprintf(`sysctl -qw net.ipv6.conf.lan0.accept_dad=0 &&
ip addr add %s/64 dev lan0 nodad && ip link set dev lan0 up &&
ip addr add 10.20.0.254/24 dev srv0 && ip link set dev srv0 up &&
ip neigh replace %s lladdr %s dev srv0 nud permanent &&
ip -6 neigh replace %s lladdr %s dev lan0 nud permanent`, x64GWLan, x64Server, x64SMAC, x64Mobile, x64MobMAC))
	sh(t, r.srv, fmt.Sprintf("ip addr add %s/24 dev s0 && ip link set dev s0 up", x64Server))
	// Full checksums from the hosts' kernels: with TX checksum offload a
	// veth hands the gateway's AF_XDP socket a partial one.
	for _, d := range [][2]string{{r.mob, "mob0"}, {r.srv, "s0"}} {
		if err := topo.SetTxChecksum(d[0], d[1], false); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	r.acctLog = filepath.Join(dir, "acct.log")
	conf := fmt.Sprintf(`role: gw
api: 127.0.0.1:9180
xsk: {frames: 4096, frame_size: 2048, ring_size: 1024, batch: 64}
workers: {queues: 1}
gw:
  lan: {iface: lan0}
  servers: {iface: srv0}
  nat: {addrs: [%s], capacity: 4096}
  xlat: {ipv6_address: %s}
  accounting: {log: %s, sync_interval: 100ms}
  authz:
    t9: [{rep: %s, service_type: dns}]
    t8: [{device: %s, service_type: dns, allowed: true}]
  services:
    - {name: dns4, rep: "%s:53", proto: udp, type: packet, policy: rr, service_type: dns,
       servers: [{addr: "%s:53", state: up}]}
`, x64Key, x64GWLan, r.acctLog, x64Rep, x64Device, x64Rep, x64Server)
	cfgPath := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "samepathd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := topo.Command(r.gw, bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	// Registered after the namespaces' cleanups, so it runs before them.
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("samepathd log:\n%s", b)
		}
	})
	gwNS := r.gw
	r.api = api.NewClient("http://127.0.0.1:9180")
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return topo.Dial(ctx, gwNS, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	r.api.HTTP = &http.Client{Timeout: 5 * time.Second, Transport: tr}
	ctx := testCtx(t, time.Minute)
	if !eventually(15*time.Second, func() bool {
		select {
		case <-done:
			return true
		default:
		}
		_, err := r.api.Status(ctx)
		return err == nil
	}) {
		t.Fatal("samepathd's API did not come up")
	}
	select {
	case <-done:
		b, _ := os.ReadFile(logPath)
		t.Fatalf("samepathd exited:\n%s", b)
	default:
	}
	return r
}

// veth links aName in namespace a with bName in b.
func veth(a, aName, aMAC, b, bName, bMAC string) error {
	na, err := topo.Open(a)
	if err != nil {
		return err
	}
	defer na.Close()
	nb, err := topo.Open(b)
	if err != nil {
		return err
	}
	defer nb.Close()
	ma, err := net.ParseMAC(aMAC)
	if err != nil {
		return err
	}
	mb, err := net.ParseMAC(bMAC)
	if err != nil {
		return err
	}
	return topo.Veth(na, aName, ma, nb, bName, mb)
}

// udpServer answers every datagram on addr in ns with "re:" + the
// datagram, and records each sender it saw, until t ends.
func udpServer(t *testing.T, ns string, addr netip.AddrPort) <-chan netip.AddrPort {
	t.Helper()
	pc, err := topo.ListenPacket(ns, "udp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	peers := make(chan netip.AddrPort, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			select {
			case peers <- from.(*net.UDPAddr).AddrPort():
			default:
			}
			pc.WriteTo(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return peers
}

// ask sends msg on c and waits up to wait for the answer.
func ask(c net.Conn, msg string, wait time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func TestNAT64(t *testing.T) {
	r := startXlat(t)
	ctx := testCtx(t, 2*time.Minute)
	peers := udpServer(t, r.srv, netip.AddrPortFrom(x64Server, 53))
	const sessID = "sess-mob6"
	if err := r.api.SessionEvent(ctx, api.SessionEvent{Event: api.EventStart, SessionID: sessID, DeviceID: x64Device,
		UserID: "mob6", IP: x64Mobile.String(), Seq: 1}); err != nil {
		t.Fatal(err)
	}
	dest := netip.AddrPortFrom(x64RepV6, 53)

	// (a) UDP to the RFC 6052 address of the representative address,
	// answered by the IPv4 server, counted in the flow's NAT record.
	var local netip.AddrPort
	const n = 5
	t.Run("udp", func(t *testing.T) {
		c, err := topo.Dial(ctx, r.mob, "udp6", dest.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		local = c.LocalAddr().(*net.UDPAddr).AddrPort()
		for i := 0; i < n; i++ {
			msg := fmt.Sprintf("q%d", i)
			var got string
			// The first datagram may meet a gateway whose worker is not
			// polling yet: retry that one only.
			tries := 1
			if i == 0 {
				tries = 10
			}
			for k := 0; k < tries; k++ {
				if got, err = ask(c, msg, time.Second); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("datagram %d to %s: %v", i, dest, err)
			}
			if got != "re:"+msg {
				t.Fatalf("datagram %d: answer %q, want %q", i, got, "re:"+msg)
			}
		}
		// The server saw the gateway's IPv4 key address, not the mobile.
		select {
		case p := <-peers:
			if p.Addr() != x64Key {
				t.Errorf("server saw the request from %v, want the key address %v", p, x64Key)
			}
		default:
			t.Error("the server recorded no sender")
		}
		var f api.Flow
		ok := settled(func() bool {
			var found bool
			f, found = flowFor(flowsOf(ctx, t, r.api, x64Mobile), "udp", local, dest.String())
			return found && f.UpPackets == n && f.DownPackets == n
		})
		if !ok {
			t.Fatalf("NAT record of %v -> %v: %+v (all: %+v), want %d packets each way", local, dest, f, flowsOf(ctx, t, r.api, x64Mobile), n)
		}
		gw, err := netip.ParseAddrPort(f.Gateway)
		if err != nil || gw.Addr() != x64Key {
			t.Errorf("record's gateway side %q, want a key port on %v", f.Gateway, x64Key)
		}
		if f.Server != netip.AddrPortFrom(x64Server, 53).String() || f.Service != "dns4" || f.Session == "" {
			t.Errorf("record %+v: want server %v:53, service dns4 and the session", f, x64Server)
		}
	})

	// (b) ping6 to RFC 6052 addresses: the representative address's
	// (balanced to the service's server) and the server's own.
	for _, dst := range []netip.Addr{x64RepV6, x64ServerV6} {
		t.Run("ping6_"+dst.String(), func(t *testing.T) {
			out, err := topo.CommandContext(ctx, r.mob, "ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", dst.String()).CombinedOutput()
			if err != nil {
				t.Fatalf("ping6 %s: %v\n%s", dst, err, out)
			}
			if !strings.Contains(string(out), "3 received") {
				t.Fatalf("ping6 %s: want 3 replies:\n%s", dst, out)
			}
			var echo []api.Flow
			settled(func() bool {
				echo = echo[:0]
				for _, f := range flowsOf(ctx, t, r.api, x64Mobile) {
					if strings.HasPrefix(f.Proto, "icmp") && strings.HasPrefix(f.Dest, "["+dst.String()+"]:") {
						echo = append(echo, f)
					}
				}
				return len(echo) == 1 && echo[0].DownPackets == 3
			})
			if len(echo) != 1 || echo[0].UpPackets != 3 || echo[0].DownPackets != 3 {
				t.Fatalf("echo records to %s: %+v, want one with 3 packets each way", dst, echo)
			}
			if srv, err := netip.ParseAddrPort(echo[0].Server); err != nil || srv.Addr() != x64Server {
				t.Errorf("echo to %s went to %q, want %v", dst, echo[0].Server, x64Server)
			}
		})
	}

	// Authorization (R-AUTH-1): T9 names the IPv4 representative address;
	// a device denied its service type is refused on the NAT64 path too.
	t.Run("authz_denied", func(t *testing.T) {
		az := api.Authz{T9: []api.T9Row{{Rep: x64Rep.String(), ServiceType: "dns"}},
			T8: []api.T8Row{{Device: x64Device, ServiceType: "dns", Allowed: false}}}
		if err := r.api.SetAuthz(ctx, az); err != nil {
			t.Fatal(err)
		}
		defer func() {
			az.T8[0].Allowed = true
			if err := r.api.SetAuthz(ctx, az); err != nil {
				t.Error(err)
			}
		}()
		before := drops(ctx, t, r.api, "denied")
		c, err := topo.Dial(ctx, r.mob, "udp6", dest.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, err := ask(c, "denied?", time.Second); err == nil {
			t.Fatalf("a denied device's datagram to %s was answered (%q)", dest, got)
		}
		if after := drops(ctx, t, r.api, "denied"); after <= before {
			t.Errorf("denied drops %d -> %d: want the datagram counted", before, after)
		}
		dl := c.LocalAddr().(*net.UDPAddr).AddrPort()
		if f, ok := flowFor(flowsOf(ctx, t, r.api, x64Mobile), "udp", dl, dest.String()); ok {
			t.Errorf("the refused flow has a record: %+v", f)
		}
	})

	// Accounting (T10): the session's end closes the flows with final
	// records naming the mobile's device, the service and its type, the
	// representative address the mobile sent to and the IPv4 server.
	t.Run("accounting", func(t *testing.T) {
		if local == (netip.AddrPort{}) {
			t.Skip("no UDP flow (subtest udp failed)")
		}
		if err := r.api.SessionEvent(ctx, api.SessionEvent{Event: api.EventEnd, SessionID: sessID, DeviceID: x64Device,
			IP: x64Mobile.String(), Seq: 2}); err != nil {
			t.Fatal(err)
		}
		var recs []acct.Entry
		ok := eventually(10*time.Second, func() bool {
			var err error
			recs, _, err = acct.Query(r.acctLog, acct.Filter{Device: x64Device, Kind: "final", Service: "dns4"})
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, e := range recs {
				if e.Proto == "udp" {
					return true
				}
			}
			return false
		})
		if !ok {
			all, _, _ := acct.Query(r.acctLog, acct.Filter{})
			t.Fatalf("no final udp record of %s in %s: %+v", x64Device, r.acctLog, all)
		}
		// One UDP flow opened (the denied one left no record).
		var udp []acct.Entry
		for _, e := range recs {
			if e.Proto == "udp" {
				udp = append(udp, e)
			}
		}
		if len(udp) != 1 {
			t.Fatalf("final udp records %+v, want one", udp)
		}
		e := udp[0]
		if e.ServiceType != "dns" || e.Rep != dest.String() || e.Server != netip.AddrPortFrom(x64Server, 53).String() ||
			e.UpPackets != n || e.DownPackets != n || e.AcctSessionID != sessID || e.User != "mob6" || e.Cause != "session-end" {
			t.Errorf("udp record %+v: want service type dns, rep %v, server %v:53, %d packets each way, session %s, user mob6, cause session-end",
				e, dest, x64Server, n, sessID)
		}
	})
}
