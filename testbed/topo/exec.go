package topo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Command returns a command that runs NAME ARGS inside namespace ns through
// `ip netns exec` (which also gives it its own /sys). The process is put in
// its own process group so that signals to the caller's group miss it.
func Command(ns, name string, args ...string) *exec.Cmd {
	return CommandContext(context.Background(), ns, name, args...)
}

// CommandContext is Command with a context that kills the process.
func CommandContext(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Dial connects to addr from inside namespace ns. The socket stays in ns.
func Dial(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens on addr inside namespace ns (TCP or unix).
func Listen(ns, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := Do(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// ListenPacket opens a packet socket (udp, udp4, udp6, ...) on addr inside
// namespace ns.
func ListenPacket(ns, network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := Do(ns, func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	return c, err
}

// Proc is a process found running inside one of our namespaces.
type Proc struct {
	PID  int
	NS   string
	Comm string
}

// Procs returns every process whose network namespace is one of the named
// namespaces starting with prefix (matched by namespace inode, so a process
// started by any means is found).
func Procs(prefix string) ([]Proc, error) {
	names, err := ListNetns(prefix)
	if err != nil {
		return nil, err
	}
	inodes := make(map[uint64]string, len(names))
	for _, n := range names {
		ino, err := NetnsInode(n)
		if err != nil {
			continue // removed meanwhile
		}
		inodes[ino] = n
	}
	if len(inodes) == 0 {
		return nil, nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	self := os.Getpid()
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name(), "ns/net"), &st) != nil {
			continue
		}
		ns, ok := inodes[st.Ino]
		if !ok {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if len(comm) > 0 && comm[len(comm)-1] == '\n' {
			comm = comm[:len(comm)-1]
		}
		out = append(out, Proc{PID: pid, NS: ns, Comm: string(comm)})
	}
	return out, nil
}

// KillProcs sends SIGTERM to every process inside a namespace starting with
// prefix, waits up to grace for them to exit, then SIGKILLs what is left and
// waits for it to disappear. It returns an error naming any survivor.
func KillProcs(prefix string, grace time.Duration) error {
	ps, err := Procs(prefix)
	if err != nil || len(ps) == 0 {
		return err
	}
	for _, p := range ps {
		unix.Kill(p.PID, unix.SIGTERM)
	}
	if waitGone(ps, grace) {
		return nil
	}
	for _, p := range ps {
		unix.Kill(p.PID, unix.SIGKILL)
	}
	if waitGone(ps, 2*time.Second) {
		return nil
	}
	var errs []error
	for _, p := range ps {
		if alive(p.PID) {
			errs = append(errs, fmt.Errorf("process %d (%s) in %s survives SIGKILL", p.PID, p.Comm, p.NS))
		}
	}
	return errors.Join(errs...)
}

func alive(pid int) bool {
	// A zombie still answers kill(0); treat it as gone (only its parent can reap it).
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3 (state) follows "pid (comm) "; comm may hold spaces, so find the last ')'.
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			return i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
		}
	}
	return true
}

func waitGone(ps []Proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		left := false
		for _, p := range ps {
			if alive(p.PID) {
				left = true
				break
			}
		}
		if !left {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
