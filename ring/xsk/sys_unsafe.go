package xsk

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"samepath/ring"
)

// This file holds every unsafe operation of the package: struct-valued
// socket options x/sys/unix has no helper for, and the views of the
// mmap'd rings as Go pointers and slices.

func getsockopt(fd, name int, p unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(name), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	if uintptr(l) != size {
		return fmt.Errorf("getsockopt %d: kernel returned %d bytes, want %d", name, l, size)
	}
	return nil
}

func mmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	err := getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off))
	return off, err
}

func xdpStatistics(fd int) (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	err := getsockopt(fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st))
	return st, err
}

func xdpOptions(fd int) (uint32, error) {
	var o uint32
	err := getsockopt(fd, unix.XDP_OPTIONS, unsafe.Pointer(&o), unsafe.Sizeof(o))
	return o, err
}

// registerUmem registers mem with the socket fd (XDP_UMEM_REG). The kernel
// pins the pages; mem must stay mapped until every socket using it closed.
func registerUmem(fd int, mem []byte, frameSize, headroom uint32) error {
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem)))),
		Len:      uint64(len(mem)),
		Size:     frameSize,
		Headroom: headroom,
	}
	// The kernel accepts the struct with or without the trailing
	// tx_metadata_len; pass it whole.
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG, uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0)
	if e != 0 {
		return e
	}
	return nil
}

// ringView returns the producer, consumer and flags words of an mmap'd ring.
func ringView(m []byte, off unix.XDPRingOffset) (prod, cons, flags *uint32) {
	base := unsafe.Pointer(unsafe.SliceData(m))
	return (*uint32)(unsafe.Add(base, off.Producer)),
		(*uint32)(unsafe.Add(base, off.Consumer)),
		(*uint32)(unsafe.Add(base, off.Flags))
}

func addrEntries(m []byte, off unix.XDPRingOffset, n uint32) []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(m)), off.Desc)), n)
}

func descEntries(m []byte, off unix.XDPRingOffset, n uint32) []ring.Desc {
	return unsafe.Slice((*ring.Desc)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(m)), off.Desc)), n)
}

const (
	addrEntrySize = uint64(unsafe.Sizeof(uint64(0)))
	descEntrySize = uint64(unsafe.Sizeof(ring.Desc{}))
)

// kickTx asks the kernel to transmit what is on the TX ring. It returns
// the raw errno so that the hot path allocates nothing.
func kickTx(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

// kickRx asks the kernel to process the fill ring (need_wakeup) or to busy
// poll the queue.
func kickRx(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

// ring.Desc must be struct xdp_desc: 16 bytes (either line fails to compile
// otherwise).
var (
	_ [unsafe.Sizeof(ring.Desc{}) - 16]byte
	_ [16 - unsafe.Sizeof(ring.Desc{})]byte
)
