package lbsteer

import (
	"errors"
	"fmt"
	"net"
	"os"

	"samepath/perf/bench"
	"samepath/perf/internal/nsthread"
	"samepath/perf/xdpprog"
	"samepath/testbed/topo"
)

// The scenario runs on perf/bench's topology, runner and statistics.
type (
	Case     = bench.Case
	Config   = bench.Config
	Variant  = bench.Variant
	Sample   = bench.Sample
	Result   = bench.Result
	Env      = bench.Env
	Stat     = bench.Stat
	Topology = bench.Topology
)

// XDPRedirect is the in-kernel XDP_REDIRECT baseline: rewrite MACs for the
// sink and redirect In -> Out through a devmap.
func XDPRedirect() Variant {
	return Variant{
		Name: "xdp-redirect", Label: "kernel XDP_REDIRECT", Baseline: true, SinkOn: bench.SinkFar, InNAPICPU: 1,
		Detail: "perf/xdpprog fwd_redirect on In (native), devmap -> Out; In NAPI threaded on CPU1",
		Setup: func(t *Topology) (func() error, error) {
			// The devmap resolves the ifindex in the caller's namespace:
			// load it from a thread inside the DUT namespace.
			var f *xdpprog.Fwd
			err := nsthread.Run(t.DUT, -1, func() error {
				ifc, err := net.InterfaceByName(t.Out)
				if err != nil {
					return fmt.Errorf("interface %s/%s: %w", t.DUT, t.Out, err)
				}
				f, err = xdpprog.LoadFwd(t.SinkMAC, t.OutMAC, ifc.Index)
				return err
			})
			if err != nil {
				return nil, err
			}
			l, err := bench.Attach(t.DUT, t.In, f.Redirect())
			if err != nil {
				f.Close()
				return nil, err
			}
			return func() error { return errors.Join(l.Close(), f.Close()) }, nil
		},
	}
}

// XDPTx is the XDP_TX baseline: swap MACs and send back out of In; the sink
// counts in the generator's namespace.
func XDPTx() Variant {
	return Variant{
		Name: "xdp-tx", Label: "kernel XDP_TX", Baseline: true, SinkOn: bench.SinkGen, InNAPICPU: 1,
		Detail: "perf/xdpprog fwd_tx on In (native), frames return to Gen; In NAPI threaded on CPU1",
		Setup: func(t *Topology) (func() error, error) {
			f, err := xdpprog.LoadFwd(nil, nil, 0)
			if err != nil {
				return nil, err
			}
			l, err := bench.Attach(t.DUT, t.In, f.Tx())
			if err != nil {
				f.Close()
				return nil, err
			}
			return func() error { return errors.Join(l.Close(), f.Close()) }, nil
		},
	}
}

// KernelForward is plain kernel IPv4 forwarding with GRO on the ingress veth
// (which also gives it the NAPI that frames sent by XDP need).
func KernelForward() Variant {
	return Variant{
		Name: "kernel-fwd", Label: "kernel forwarding", Baseline: true, SinkOn: bench.SinkFar, InNAPICPU: 1,
		Detail: "ip_forward=1, GRO on In, static neighbour for the destination; In NAPI threaded on CPU1",
		Setup: func(t *Topology) (func() error, error) {
			if err := topo.Sysctl(t.DUT, "net/ipv4/ip_forward", "1"); err != nil {
				return nil, err
			}
			if err := topo.SetGRO(t.DUT, t.In, true); err != nil {
				return nil, err
			}
			return func() error {
				return errors.Join(topo.SetGRO(t.DUT, t.In, false), topo.Sysctl(t.DUT, "net/ipv4/ip_forward", "0"))
			}, nil
		},
	}
}

// Samepathd runs `bin/samepathd --config FILE` as the LB in the DUT
// namespace with the given steering ("afxdp" or "xdp"), one worker on CPU1.
func Samepathd(bin, steering string) Variant {
	var pid int
	napi := 1
	detail := "samepathd lb, steering: xdp (in-kernel offload); In NAPI threaded on CPU1"
	if steering == "afxdp" {
		napi = 0 // the poller owns CPU1; its RX queue's NAPI must not share it
		detail = "samepathd lb, steering: afxdp, 1 worker pinned to CPU1; In NAPI threaded on CPU0"
	}
	return Variant{
		Name: "samepathd-" + steering, Label: "samepathd " + steering, SinkOn: bench.SinkFar, InNAPICPU: napi,
		Detail: detail,
		Skip: func() error {
			if _, err := os.Stat(bin); err != nil {
				return fmt.Errorf("%s not built yet (%w)", bin, err)
			}
			return nil
		},
		Setup: func(t *Topology) (func() error, error) {
			return bench.StartSamepathd(t, bin, SamepathdConfig(t, steering), &pid)
		},
		Placement: func(fifo int) []string { return bench.ThreadPlacement("samepathd", pid, fifo) },
	}
}

// SamepathdConfig is the lb config the harness gives samepathd.
func SamepathdConfig(t *Topology, steering string) string {
	return fmt.Sprintf(`role: lb
api: 127.0.0.1:9180
steering: %s
lb:
  ingress: {iface: %s, next_hop_mac: "%s"}
  gateway_side: {iface: %s}
  t4:
    - range: 10.0.0.0/8
      gateways: [{mac: "%s", state: up}]
workers: {queues: 1, cpus: [1]}
`, steering, t.In, t.GenMAC, t.Out, t.SinkMAC)
}
