package xsk_test

import (
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"samepath/ring"
)

// Benchmarks of the raw port loops on veth (BENCHMARKS.md "ring/xsk"):
//
//	go test -run '^$' -bench . -benchtime 3000000x ./ring/xsk
//
// Placement (BENCH.md): the generator (BPF_PROG_RUN live frames, XDP_TX
// out of a1) and a0's threaded NAPI (XDP filter + copy into the UMEM) on
// CPU 0, the poller alone on CPU 1. One b.N is one frame received.

type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// generate transmits frame out of ifname (in e.peer) from CPU cpu until
// stop is set, with BPF_PROG_RUN live frames and a program that returns
// XDP_TX. It returns the frames sent.
func generate(b *testing.B, e *env, ifname string, frame []byte, cpu int, stop *atomic.Bool) <-chan uint64 {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 3 /* XDP_TX */), asm.Return()},
	})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan uint64, 1)
	ready := make(chan error, 1)
	go func() {
		defer prog.Close()
		var sent uint64
		err := e.peer.Do(func() error {
			if err := pin(cpu); err != nil {
				return err
			}
			ifi, err := netInterface(ifname)
			if err != nil {
				return err
			}
			ready <- nil
			const rep = 1 << 16 // bounds one call: live runs ignore signals
			for !stop.Load() {
				if _, err := prog.Run(&ebpf.RunOptions{
					Data: frame, Repeat: rep, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES,
					Context: xdpMd{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifi)},
				}); err != nil {
					return err
				}
				sent += rep
			}
			return nil
		})
		if err != nil {
			ready <- err
		}
		done <- sent
	}()
	if err := <-ready; err != nil {
		b.Fatal(err)
	}
	return done
}

func pin(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

func netInterface(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}

// placeNAPI makes ifname's NAPI threaded and pins its thread to cpu.
func placeNAPI(b *testing.B, e *env, ifname string, cpu int) string {
	if out, err := e.dut.Exec("sh", "-c", "echo 1 > /sys/class/net/"+ifname+"/threaded"); err != nil {
		b.Fatalf("threaded napi on %s: %v %s", ifname, err, out)
	}
	comm := "napi/" + ifname + "-"
	if len(comm) > 15 {
		comm = comm[:15]
	}
	out, err := exec.Command("pgrep", "^"+comm).Output()
	pids := strings.Fields(string(out))
	if err != nil || len(pids) == 0 {
		b.Fatalf("no napi thread %q: %v", comm, err)
	}
	for _, pid := range pids {
		if out, err := exec.Command("taskset", "-pc", fmt.Sprint(cpu), pid).CombinedOutput(); err != nil {
			b.Fatalf("taskset %s: %v %s", pid, err, out)
		}
	}
	return fmt.Sprintf("%s (pids %s) on cpu %d", comm, strings.Join(pids, ","), cpu)
}

func BenchmarkRecvDrop(b *testing.B)    { runBench(b, false) }
func BenchmarkRecvForward(b *testing.B) { runBench(b, true) }

func runBench(b *testing.B, forward bool) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs 2 CPUs: generator and NAPI on one, the poller alone on the other")
	}
	e := newEnv(b, 1)
	napi := placeNAPI(b, e, e.a0, 0)
	frame := e.udpFrame(e.a0mac, "10.99.0.5", 0)
	var stop atomic.Bool
	done := generate(b, e, e.a1, frame, 0, &stop)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	unix.SchedGetaffinity(0, &old)
	if err := pin(1); err != nil {
		b.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &old)

	d := make([]ring.Desc, 64)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := threadCPU()
	start := time.Now()
	got, sent, idle := 0, 0, 0
	for got < b.N {
		n, _ := e.sa.Recv(d)
		if n == 0 {
			if idle++; idle%(1<<22) == 0 && time.Since(start) > 30*time.Second {
				stop.Store(true)
				b.Fatalf("received %d of %d frames in 30s", got, b.N)
			}
			continue
		}
		got += n
		if forward {
			k, _ := e.sb.Send(d[:n])
			sent += k
			e.sa.Release(d[k:n])
			e.sb.Flush()
		} else {
			e.sa.Release(d[:n])
		}
	}
	el := time.Since(start)
	busy := threadCPU() - cpu0
	b.StopTimer()
	stop.Store(true)
	gen := <-done
	st, _ := e.sa.Stats()
	b.ReportMetric(float64(got)/el.Seconds()/1e6, "Mpps")
	// The poller busy-polls: on a quiet box its CPU share is ~1. Much less
	// means other work shared its core and the figure is not ours.
	b.ReportMetric(busy.Seconds()/el.Seconds(), "poller-cpu-share")
	if forward {
		b.ReportMetric(float64(sent)/el.Seconds()/1e6, "fwd-Mpps")
	}
	b.Logf("placement: generator cpu 0, %s, poller cpu 1; frame %d B, batch 64, mode %v; generator sent %d, rx %d, kernel drops %+v",
		napi, len(frame), e.umem.Mode(), gen, got, st)
}

// threadCPU is the CPU time (user+system) of the calling OS thread.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
