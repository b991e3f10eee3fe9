// Package osutil holds the few raw system calls the dataplane engine makes
// outside the AF_XDP wrapper: pinning the calling thread to a CPU.
package osutil

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// PinThread pins the calling OS thread to cpu. The caller must have called
// runtime.LockOSThread.
func PinThread(cpu int) error {
	var set unix.CPUSet
	set.Zero()
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin thread to cpu %d: %w", cpu, err)
	}
	return nil
}

// ThreadCPU reports the CPU the calling thread last ran on.
func ThreadCPU() int {
	var cpu, node uint32
	_, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(ptr(&cpu)), uintptr(ptr(&node)), 0)
	if errno != 0 {
		return -1
	}
	return int(cpu)
}
