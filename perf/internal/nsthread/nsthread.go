// Package nsthread runs functions on dedicated OS threads that have joined a
// network namespace and, optionally, been pinned to one CPU. Switching the
// namespace of a shared thread would leak it to other goroutines, so the
// thread is locked for the whole call and thrown away afterwards (the
// goroutine exits without UnlockOSThread, which makes the runtime end the
// thread). Each call allocates a goroutine and a thread; none is for a hot path.
package nsthread

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Path returns the bind-mount path of a named namespace as `ip netns` makes
// it; an absolute path is returned unchanged, "" means the caller's namespace.
func Path(ns string) string {
	if ns == "" || ns[0] == '/' {
		return ns
	}
	return "/run/netns/" + ns
}

// Run calls fn on a fresh OS thread in network namespace ns ("" = stay in
// the current one), pinned to cpu when cpu >= 0, and returns fn's error.
func Run(ns string, cpu int, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread may sit in another namespace, so it
		// dies with this goroutine.
		if err := Enter(ns, cpu); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// Enter moves the calling thread, which must be locked with
// runtime.LockOSThread and must never be unlocked, into namespace ns and
// pins it to cpu (cpu < 0: no pinning).
func Enter(ns string, cpu int) error {
	if p := Path(ns); p != "" {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", p, err)
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("setns %s: %w", p, err)
		}
	}
	if cpu >= 0 {
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin thread to cpu %d: %w", cpu, err)
		}
	}
	return nil
}
