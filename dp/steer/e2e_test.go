package steer_test

// End to end: the offload attached in native mode to two veths of an LB
// namespace, real frames through it.
//
//	 ns "nas" (NAS/router)       ns "lb" (samepath LB)            ns "gw" (gateways)
//	+-----------------+     +------------------------------+     +-----------------+
//	| nas0            |<--->| lbin          lbgw           |<--->| gw0             |
//	| MAC NextHopMAC  |veth | IngressMAC    GatewayMAC     |veth | MAC gwA         |
//	| XDP pass (NAPI) |     | steer_up      steer_down     |     | XDP pass (NAPI) |
//	| packet socket   |     | 10.0.0.1/24 (host, excluded) |     | packet socket   |
//	+-----------------+     +------------------------------+     +-----------------+
//
// The XDP pass programs give the peers NAPI, without which frames
// redirected into a veth are dropped (BENCH.md).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"samepath/dp"
	"samepath/dp/steer"
	"samepath/dp/steer/steertest"
	"samepath/nat"
	"samepath/testbed/privtest"
)

// attachPass attaches an XDP_PASS program to ifindex inside ns.
func attachPass(t *testing.T, ns *steertest.NS, ifindex int) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.XDP, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	var l link.Link
	if err := ns.Do(func() (err error) {
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
		return err
	}); err != nil {
		t.Fatalf("attach pass program in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { l.Close() })
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetSocket opens an AF_PACKET socket bound to ifindex inside ns.
func packetSocket(t *testing.T, ns *steertest.NS, ifindex int) int {
	t.Helper()
	fd := -1
	if err := ns.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
	}); err != nil {
		t.Fatalf("packet socket in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.Timeval{Usec: 100_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

func send(t *testing.T, fd int, f []byte) {
	t.Helper()
	if _, err := unix.Write(fd, f); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// collect reads frames holding marker until it has n or the socket has
// been silent past the deadline (a safety bound, not a measurement).
func collect(t *testing.T, fd int, marker []byte, n int) [][]byte {
	t.Helper()
	var got [][]byte
	buf := make([]byte, 2048)
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		m, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if bytes.Contains(buf[:m], marker) {
			got = append(got, append([]byte{}, buf[:m]...))
		}
	}
	return got
}

// drainMarked returns how many queued frames hold marker, without waiting.
func drainMarked(t *testing.T, fd int, marker []byte) int {
	t.Helper()
	n := 0
	buf := make([]byte, 2048)
	for {
		m, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			return n
		}
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if bytes.Contains(buf[:m], marker) {
			n++
		}
	}
}

func TestE2E(t *testing.T) {
	privtest.Require(t)
	nasNS, lbNS, gwNS := steertest.NewNS(t, "n"), steertest.NewNS(t, "l"), steertest.NewNS(t, "g")
	nasIf, inIf := steertest.Veth(t, nasNS, "nas0", nextHop, lbNS, "lbin", lbIn)
	gwIf, gw0If := steertest.Veth(t, lbNS, "lbgw", lbGw, gwNS, "gw0", gwA)
	attachPass(t, nasNS, nasIf)
	attachPass(t, gwNS, gw0If)

	hostIP := net.IPv4(10, 0, 0, 1)
	lbin, err := lbNS.Netlink().LinkByIndex(inIf)
	if err != nil {
		t.Fatal(err)
	}
	if err := lbNS.Netlink().AddrAdd(lbin, &netlink.Addr{IPNet: &net.IPNet{IP: hostIP, Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}

	cfg := steer.Config{
		IngressIfindex: inIf, GatewayIfindex: gwIf,
		IngressMAC: lbIn, GatewayMAC: lbGw, NextHopMAC: nextHop,
		Exclude: goldenExclude, // holds 10.0.0.1
	}
	var o *steer.Offload
	if err := lbNS.Do(func() (err error) {
		if o, err = steer.Load(cfg); err != nil {
			return err
		}
		return o.Attach()
	}); err != nil {
		t.Fatalf("load and attach: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	t4, err := nat.NewT4(goldenRows())
	if err != nil {
		t.Fatal(err)
	}
	if err := t4.OnChange(o.Sync); err != nil {
		t.Fatal(err)
	}

	// Native mode, as `ip link` shows it.
	for _, ifindex := range []int{inIf, gwIf} {
		l, err := lbNS.Netlink().LinkByIndex(ifindex)
		if err != nil {
			t.Fatal(err)
		}
		if x := l.Attrs().Xdp; x == nil || !x.Attached || x.AttachMode != nl.XDP_ATTACHED_DRV {
			t.Errorf("%s: xdp %+v, want attached in driver mode", l.Attrs().Name, x)
		}
	}
	if out, err := exec.Command("ip", "-n", lbNS.Name, "link", "show", "dev", "lbin").CombinedOutput(); err != nil {
		t.Errorf("ip link: %v: %s", err, out)
	} else if !strings.Contains(string(out), " xdp ") || strings.Contains(string(out), "xdpgeneric") {
		t.Errorf("ip link does not show native xdp:\n%s", out)
	}

	nasSock, gwSock := packetSocket(t, nasNS, nasIf), packetSocket(t, gwNS, gw0If)
	const n = 32
	upFrame := func(marker string) []byte {
		return ether(lbIn, nextHop, -1, 0x0800, ipv4("10.1.2.3", "198.51.100.7", 17, nil, udp(marker)))
	}
	counters := func() steer.Counters {
		c, err := o.Counters()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// upPhase sends n up frames and wants them all at gw0 addressed to want.
	upPhase := func(marker string, want nat.MAC) {
		t.Helper()
		before := counters()
		f := upFrame(marker)
		for range n {
			send(t, nasSock, f)
		}
		got := collect(t, gwSock, []byte(marker), n)
		if len(got) != n {
			t.Fatalf("%s: %d of %d frames reached the gateway side", marker, len(got), n)
		}
		for _, g := range got {
			if diff := cmp.Diff(rewrite(f, want, lbGw), g); diff != "" {
				t.Fatalf("%s: frame at gateway side (-want +got):\n%s", marker, diff)
			}
		}
		if d := delta(before, counters()); d.TxPackets != n || d.RxPackets != n {
			t.Errorf("%s: counters moved rx %d tx %d, want %d", marker, d.RxPackets, d.TxPackets, n)
		}
	}

	upPhase("primary-up", gwA)
	if _, err := t4.SetGatewayState(gwA, false); err != nil {
		t.Fatal(err)
	}
	upPhase("primary-down", gwB)
	if _, err := t4.SetGatewayState(gwB, false); err != nil {
		t.Fatal(err)
	}
	before := counters()
	for range n {
		send(t, nasSock, upFrame("all-down"))
	}
	// The program counts synchronously while the frame is received; once
	// all n are counted none can still be on its way.
	for deadline := time.Now().Add(5 * time.Second); delta(before, counters()).Drops[dp.ReasonAllDown] < n; {
		if time.Now().After(deadline) {
			t.Fatalf("all down: drops %+v", delta(before, counters()).Drops)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if leaked := drainMarked(t, gwSock, []byte("all-down")); leaked != 0 {
		t.Errorf("all gateways down: %d frames leaked to the gateway side", leaked)
	}
	if _, err := t4.SetGatewayState(gwA, true); err != nil {
		t.Fatal(err)
	}
	upPhase("restored", gwA)

	// Down direction: gateway -> NAS.
	down := ether(lbGw, gwA, -1, 0x0800, ipv4("198.51.100.7", "10.1.2.3", 17, nil, udp("down-dir")))
	for range n {
		send(t, gwSock, down)
	}
	got := collect(t, nasSock, []byte("down-dir"), n)
	if len(got) != n {
		t.Fatalf("down: %d of %d frames reached the ingress side", len(got), n)
	}
	if diff := cmp.Diff(rewrite(down, nextHop, lbIn), got[0]); diff != "" {
		t.Errorf("down frame (-want +got):\n%s", diff)
	}

	// Host traffic stays with the kernel: UDP to the LB's own address is
	// delivered to a socket, and the LB's kernel answers ARP.
	var uc *net.UDPConn
	if err := lbNS.Do(func() (err error) {
		uc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: hostIP, Port: 9})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	before = counters()
	send(t, nasSock, ether(lbIn, nextHop, -1, 0x0800, ipv4("10.0.0.2", "10.0.0.1", 17, nil, udp("to-host"))))
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if m, _, err := uc.ReadFromUDP(buf); err != nil || string(buf[:m]) != "to-host" {
		t.Errorf("udp to the LB host: %q, %v", buf[:m], err)
	}
	send(t, nasSock, ether(bcast, nextHop, -1, 0x0806, arpRequest(nextHop, "10.0.0.2", "10.0.0.1")))
	lbInMAC := lbIn
	arpReply := []byte{0, 1, 0x08, 0x00, 6, 4, 0, 2} // reply header
	arpReply = append(arpReply, lbInMAC[:]...)
	arpReply = append(arpReply, 10, 0, 0, 1)
	if got := collect(t, nasSock, arpReply, 1); len(got) != 1 {
		t.Error("no ARP reply from the LB host")
	} else if et := binary.BigEndian.Uint16(got[0][12:]); et != 0x0806 {
		t.Errorf("ARP reply ethertype %#x", et)
	}
	if d := delta(before, counters()); d.Passed < 2 || d.RxPackets != 0 {
		t.Errorf("host traffic: passed %d rx %d, want >= 2 passed and none handled", d.Passed, d.RxPackets)
	}

	// Close detaches.
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := lbNS.Netlink().LinkByIndex(inIf)
	if err != nil {
		t.Fatal(err)
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		t.Errorf("still attached after Close: %+v", x)
	}
}
