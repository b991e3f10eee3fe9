// Package nettest builds throw-away network namespaces, veth pairs and raw
// packet sockets for the privileged tests of ring/xsk and its XDP filter.
// Everything it makes is removed in t.Cleanup. It shells out to iproute2
// (ip), which every test box has.
//
// Namespaces are entered only on a locked, dedicated OS thread that is
// thrown away afterwards, so no other goroutine ever runs in them.
package nettest

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// NS is a named network namespace (ip netns).
type NS struct {
	Name string
}

// NewNS makes a namespace named name, with lo up, and removes it in cleanup.
func NewNS(t testing.TB, name string) *NS {
	t.Helper()
	Cmd(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	n := &NS{Name: name}
	n.Ip(t, "link", "set", "lo", "up")
	return n
}

// Cmd runs a command and fails t if it fails; it returns its output.
func Cmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Ip runs ip with args inside the namespace.
func (n *NS) Ip(t testing.TB, args ...string) string {
	t.Helper()
	return Cmd(t, "ip", append([]string{"-n", n.Name}, args...)...)
}

// Exec runs a command inside the namespace and returns its error and output.
func (n *NS) Exec(name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...).CombinedOutput()
	return string(out), err
}

// Do runs f on a fresh OS thread that has entered the namespace. The
// thread is never given back to the Go scheduler: it exits with the
// goroutine, so the namespace cannot leak to other goroutines.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with this goroutine.
		fd, err := unix.Open("/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", n.Name, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Veth makes a veth pair a (in na) <-> b (in nb) with queues RX and TX
// queues on each end, both up. Deleting the namespaces removes it.
func Veth(t testing.TB, na *NS, a string, nb *NS, b string, queues int) {
	t.Helper()
	q := fmt.Sprint(queues)
	Cmd(t, "ip", "link", "add", a, "netns", na.Name, "numtxqueues", q, "numrxqueues", q, "type", "veth",
		"peer", "name", b, "netns", nb.Name, "numtxqueues", q, "numrxqueues", q)
	na.Ip(t, "link", "set", a, "up")
	nb.Ip(t, "link", "set", b, "up")
}

// MAC returns an interface's hardware address inside the namespace.
func (n *NS) MAC(t testing.TB, ifname string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	if err := n.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}

// Packet is a raw AF_PACKET socket bound to one interface, for injecting
// and capturing whole Ethernet frames.
type Packet struct {
	fd int
}

// OpenPacket opens a raw packet socket on ifname in ns, receiving every
// protocol; it is closed in cleanup.
func OpenPacket(t testing.TB, ns *NS, ifname string) *Packet {
	t.Helper()
	p := &Packet{fd: -1}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind packet socket to %s: %w", ifname, err)
		}
		p.fd = fd
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p.fd) })
	return p
}

// Send transmits one frame.
func (p *Packet) Send(frame []byte) error {
	_, err := unix.Write(p.fd, frame)
	return err
}

// Recv returns the next frame received (not sent) on the interface that
// satisfies keep, or an error when none comes within timeout.
func (p *Packet) Recv(timeout time.Duration, keep func([]byte) bool) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65536)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errors.New("no frame before the deadline")
		}
		pfd := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
		ts := unix.NsecToTimespec(int64(left))
		if _, err := unix.Ppoll(pfd, &ts, nil); err != nil && err != unix.EINTR {
			return nil, err
		}
		n, from, err := unix.Recvfrom(p.fd, buf, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if keep == nil || keep(buf[:n]) {
			return append([]byte(nil), buf[:n]...), nil
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
