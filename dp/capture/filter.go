package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"

	"samepath/dp/header"
)

// Filter says which frames a capture takes. Every set part must match;
// the zero Filter takes every frame.
type Filter struct {
	// InPorts has bit i set for frames received on the worker's port i;
	// 0 is every port. (Both pipelines have the same ports: 0 receives
	// the up direction, 1 the down direction.)
	InPorts uint64
	// BPF is a classic BPF program run on the frame as received (the
	// output of `tcpdump -ddd -y EN10MB EXPR`); it matches when it
	// returns non-zero. Empty: no program.
	BPF []bpf.RawInstruction
	// Tuple, if set, must match the frame as received.
	Tuple *Tuple
	// Drops takes only frames the pipeline dropped or refused; Reason,
	// if not 0, only those with that drop reason.
	Drops  bool
	Reason uint8
}

// Tuple matches IP packets by protocol, addresses and ports, in either
// orientation: a flow's packets both ways (source and destination
// swapped) match the same Tuple. Zero parts match anything.
type Tuple struct {
	Proto    uint8
	Src, Dst netip.Prefix
	SPort    uint16
	DPort    uint16
}

// ParseTuple reads a 5-tuple as "PROTO SRC[:PORT] DST[:PORT]" where
// PROTO is tcp, udp, icmp, a number or *, an address is an address, a
// prefix (10.0.0.0/8) or * and a port is a number or *; IPv6 addresses
// with a port are written [addr]:port.
func ParseTuple(s string) (Tuple, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Tuple{}, fmt.Errorf("tuple %q: want PROTO SRC[:PORT] DST[:PORT]", s)
	}
	var t Tuple
	switch f[0] {
	case "*", "any":
	case "tcp":
		t.Proto = header.ProtoTCP
	case "udp":
		t.Proto = header.ProtoUDP
	case "icmp":
		t.Proto = header.ProtoICMPv4
	case "icmp6":
		t.Proto = header.ProtoICMPv6
	default:
		n, err := strconv.ParseUint(f[0], 10, 8)
		if err != nil {
			return Tuple{}, fmt.Errorf("tuple %q: protocol %q: want tcp, udp, icmp, icmp6, a number or *", s, f[0])
		}
		t.Proto = uint8(n)
	}
	var err error
	if t.Src, t.SPort, err = parseEnd(f[1]); err != nil {
		return Tuple{}, fmt.Errorf("tuple %q: source: %w", s, err)
	}
	if t.Dst, t.DPort, err = parseEnd(f[2]); err != nil {
		return Tuple{}, fmt.Errorf("tuple %q: destination: %w", s, err)
	}
	return t, nil
}

func parseEnd(s string) (netip.Prefix, uint16, error) {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		h, p, ok := strings.Cut(s[1:], "]")
		if !ok || (p != "" && !strings.HasPrefix(p, ":")) {
			return netip.Prefix{}, 0, fmt.Errorf("%q: want [ADDR]:PORT", s)
		}
		host, port = h, strings.TrimPrefix(p, ":")
	} else if strings.Count(s, ":") == 1 {
		host, port, _ = strings.Cut(s, ":")
	}
	var pfx netip.Prefix
	switch {
	case host == "*" || host == "":
	case strings.Contains(host, "/"):
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return pfx, 0, err
		}
		pfx = p.Masked()
	default:
		a, err := netip.ParseAddr(host)
		if err != nil {
			return pfx, 0, err
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	var pn uint16
	if port != "" && port != "*" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return pfx, 0, fmt.Errorf("port %q: want 0..65535 or *", port)
		}
		pn = uint16(n)
	}
	return pfx, pn, nil
}

// String writes t as ParseTuple reads it.
func (t Tuple) String() string {
	proto := "*"
	switch t.Proto {
	case 0:
	case header.ProtoTCP:
		proto = "tcp"
	case header.ProtoUDP:
		proto = "udp"
	case header.ProtoICMPv4:
		proto = "icmp"
	case header.ProtoICMPv6:
		proto = "icmp6"
	default:
		proto = strconv.Itoa(int(t.Proto))
	}
	end := func(p netip.Prefix, port uint16) string {
		h := "*"
		if p.IsValid() {
			h = p.String()
			if p.IsSingleIP() {
				h = p.Addr().String()
			}
		}
		if port == 0 {
			return h
		}
		if p.IsValid() && p.Addr().Is6() {
			h = "[" + h + "]"
		}
		return h + ":" + strconv.Itoa(int(port))
	}
	return proto + " " + end(t.Src, t.SPort) + " " + end(t.Dst, t.DPort)
}

// matcher is a Filter made ready for the worker: the BPF program checked
// and loaded into a VM, the tuple's prefixes as 16-byte addresses.
type matcher struct {
	inPorts uint64
	vm      *bpf.VM
	tuple   bool
	t       tupleMatch
	drops   bool
	reason  uint8
}

type tupleMatch struct {
	proto        uint8
	src, dst     header.Addr16
	srcN, dstN   int // prefix lengths in the 16-byte form; -1: any
	sport, dport uint16
}

// ErrFilter is wrapped by every error about a filter.
var ErrFilter = errors.New("capture filter")

func newMatcher(f Filter) (*matcher, error) {
	m := &matcher{inPorts: f.InPorts, drops: f.Drops || f.Reason != 0, reason: f.Reason}
	if len(f.BPF) > 0 {
		ins, ok := bpf.Disassemble(f.BPF)
		if !ok {
			// Disassemble keeps what it cannot decode as raw, which the
			// VM would only refuse when it runs, with an error per frame.
			for i, in := range ins {
				if r, raw := in.(bpf.RawInstruction); raw {
					return nil, fmt.Errorf("%w: bpf program: instruction %d (op %#x): not classic BPF the VM runs", ErrFilter, i, r.Op)
				}
			}
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			return nil, fmt.Errorf("%w: bpf program: %w", ErrFilter, err)
		}
		m.vm = vm
	}
	if t := f.Tuple; t != nil {
		m.tuple = true
		m.t = tupleMatch{proto: t.Proto, sport: t.SPort, dport: t.DPort, srcN: -1, dstN: -1}
		set := func(p netip.Prefix, a *header.Addr16, n *int) {
			if !p.IsValid() {
				return
			}
			*a = header.Addr16From(p.Addr())
			*n = p.Bits()
			if p.Addr().Is4() {
				*n += 96
			}
		}
		set(t.Src, &m.t.src, &m.t.srcN)
		set(t.Dst, &m.t.dst, &m.t.dstN)
	}
	return m, nil
}

// match reports whether frame b matches the BPF program and the tuple.
// d is the caller's scratch decode. No allocation.
func (m *matcher) match(b []byte, d *header.Decoded) bool {
	if m.vm != nil {
		n, err := m.vm.Run(b)
		if err != nil || n == 0 {
			return false
		}
	}
	if m.tuple {
		if header.Decode(b, d) != header.OK || d.IPVersion == 0 {
			return false
		}
		t := &d.Tuple
		return m.t.oneWay(t.Proto, &t.Src, &t.Dst, t.SPort, t.DPort) ||
			m.t.oneWay(t.Proto, &t.Dst, &t.Src, t.DPort, t.SPort)
	}
	return true
}

func (t *tupleMatch) oneWay(proto uint8, src, dst *header.Addr16, sport, dport uint16) bool {
	return (t.proto == 0 || t.proto == proto) &&
		(t.sport == 0 || t.sport == sport) && (t.dport == 0 || t.dport == dport) &&
		inPrefix(src, &t.src, t.srcN) && inPrefix(dst, &t.dst, t.dstN)
}

// inPrefix reports whether the first n bits of a and p agree (n < 0: any).
func inPrefix(a, p *header.Addr16, n int) bool {
	if n < 0 {
		return true
	}
	i := 0
	for ; n >= 8; n, i = n-8, i+1 {
		if a[i] != p[i] {
			return false
		}
	}
	if n == 0 {
		return true
	}
	mask := byte(0xff) << (8 - n)
	return a[i]&mask == p[i]&mask
}

// keep reports whether a frame the filter matched is kept once its
// verdict is known: every one, or with Drops only the dropped or refused.
func (m *matcher) keep(dropped bool, reason uint8) bool {
	if !m.drops {
		return true
	}
	return dropped && (m.reason == 0 || m.reason == reason)
}

// ParseBPF reads a classic BPF program as `tcpdump -ddd` writes it: the
// instruction count, then one "code jt jf k" line per instruction.
func ParseBPF(s string) ([]bpf.RawInstruction, error) {
	lines := strings.FieldsFunc(strings.TrimSpace(s), func(r rune) bool { return r == '\n' || r == ',' })
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: bpf program: empty", ErrFilter)
	}
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n <= 0 || n != len(lines)-1 {
		return nil, fmt.Errorf("%w: bpf program: first line %q: want the count of the %d instructions that follow (tcpdump -ddd)", ErrFilter, lines[0], len(lines)-1)
	}
	out := make([]bpf.RawInstruction, 0, n)
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 4 {
			return nil, fmt.Errorf("%w: bpf program: instruction %d %q: want code jt jf k", ErrFilter, i, l)
		}
		var v [4]uint64
		for j, bits := range []int{16, 8, 8, 32} {
			if v[j], err = strconv.ParseUint(f[j], 10, bits); err != nil {
				return nil, fmt.Errorf("%w: bpf program: instruction %d %q: %w", ErrFilter, i, l, err)
			}
		}
		out = append(out, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	return out, nil
}
