package demo

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"samepath/ctl/api"
	"samepath/testbed/fig2"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

// DemoDualStack is the mobile make demo gives both families (issue 15):
// after the IPv4 download it downloads over IPv6 from group A's IPv6
// representative address, moving between ingress points mid-transfer.
const DemoDualStack = "mob2"

// V6Summary is the IPv6 part of the demo: the dual-stack mobile's
// addresses, its download and which gateways held its flow per phase.
type V6Summary struct {
	Mobile     string
	IPv4       netip.Addr
	Prefix     netip.Prefix
	Address    netip.Addr // the mobile's address in Prefix
	Rep        netip.AddrPort
	Bytes      int64
	ChecksumOK bool
	Duration   time.Duration
	Phases     []V6Phase
	// To4 is the download the mobile makes at the same time over IPv6
	// from group A's IPv4 servers through the terminator (web-a64,
	// v64.go); nil when the gateways run no terminator.
	To4 *V6Download
}

// V6Download is a download over IPv6 from an IPv4 server group.
type V6Download struct {
	Service    string
	Rep        netip.AddrPort
	Bytes      int64
	ChecksumOK bool
	Duration   time.Duration
	Phases     []V6Phase
}

// V6Phase is one leg of the IPv6 download.
type V6Phase struct {
	Ingress int
	// Gateways carried the mobile's IPv6 flow by the phase's end (their
	// record of it counted packets); Copies hold only a synced copy of
	// it (gw.sync: a substitute's binding, no packet through it).
	Gateways []int
	Copies   []int
}

// dualStackDefaults makes DemoDualStack dual-stack in a demo run (Run
// only: tests choose their own Options.Stacks).
func dualStackDefaults(o *Options) {
	if o.Stacks == nil {
		o.Stacks = map[string]string{DemoDualStack: "dual"}
	}
}

// demoIPv6 downloads o.Size bytes over IPv6 to the dual-stack mobile from
// group A's IPv6 representative address, moving it to the next two
// ingress points at a third and two thirds of the transfer. With a
// terminator on the gateways it downloads a quarter of o.Size at a
// quarter of o.Rate (paced by the server; its last byte is read after
// the last phase was looked at) at the same time, over the same moves (each waits for both), from group A's IPv4 servers through web-a64
// (v64.go): the IPv6 -> IPv4 download, terminated.
func (s *System) demoIPv6(ctx context.Context, o Options) (*V6Summary, error) {
	v4, p6, err := s.MobileAddrs(DemoDualStack)
	if err != nil {
		return nil, err
	}
	if !p6.IsValid() {
		return nil, fmt.Errorf("%s: the AAA gave no IPv6 prefix", DemoDualStack)
	}
	p := s.TB.Plan
	m, err := p.Mobile(DemoDualStack)
	if err != nil {
		return nil, err
	}
	sum := &V6Summary{Mobile: m.Name, IPv4: v4, Prefix: p6, Address: m.IPv6, Rep: netip.AddrPortFrom(p.Groups[0].VIPv6, fig2.HTTPPort), Bytes: o.Size}
	fmt.Fprintf(s.out, "== IPv6: %s (dual stack: %s and %s, uses %s) downloads %d bytes from %s, moving mid-transfer\n",
		m.Name, v4, p6, m.IPv6, o.Size, sum.Rep)
	c := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return topo.Dial(ctx, m.NS, network, addr)
		}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/bytes/%d?rate=%d", sum.Rep, o.Size, o.Rate), nil)
	if err != nil {
		return nil, err
	}
	var got atomic.Int64
	done := make(chan error, 1)
	h := sha256.New()
	start := time.Now()
	get := func(req *http.Request, h io.Writer, got *atomic.Int64, done chan<- error) {
		resp, err := c.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		_, err = io.Copy(h, countingReader{resp.Body, got})
		done <- err
	}
	go get(req, h, &got, done)
	// The terminated IPv6 -> IPv4 download, over the same moves.
	var to4 *V6Download
	var got4 atomic.Int64
	release := make(chan struct{})
	var released sync.Once
	releaseLast := func() { released.Do(func() { close(release) }) }
	defer releaseLast()
	done4 := make(chan error, 1)
	h4 := sha256.New()
	if o.GWNAT.TermPortMin != 0 {
		to4 = &V6Download{Service: Term64Service, Rep: Term64Rep(p), Bytes: max(o.Size/4, 2)}
		sum.To4 = to4
		fmt.Fprintf(s.out, "== IPv6 to IPv4: %s also downloads %d bytes from %s (%s: terminated, servers on IPv4)\n", m.Name, to4.Bytes, to4.Rep, to4.Service)
		req4, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/bytes/%d?rate=%d", to4.Rep, to4.Bytes, max(o.Rate/4, 1)), nil)
		if err != nil {
			return nil, err
		}
		// A terminated flow's record ends with its connection: the last
		// byte is read (and the connection closed) only after the last
		// phase was looked at.
		go func() {
			resp, err := c.Do(req4)
			if err != nil {
				done4 <- err
				return
			}
			defer resp.Body.Close()
			body := countingReader{resp.Body, &got4}
			if _, err = io.CopyN(h4, body, to4.Bytes-1); err == nil {
				to4.Duration = time.Since(start)
				select {
				case <-release:
				case <-ctx.Done():
				}
				_, err = io.Copy(h4, body)
			}
			done4 <- err
		}()
	}
	holders := func(n int, service string) V6Phase {
		ph := V6Phase{Ingress: n}
		for i, g := range s.GWs {
			fs, err := g.FlowsMatching(ctx, 16, api.FlowFilter{Mobile: m.IPv6.String(), Service: service})
			if err != nil || fs.Total == 0 {
				continue
			}
			carried := false
			for _, f := range fs.Flows {
				carried = carried || f.UpPackets+f.DownPackets > 0
			}
			if carried {
				ph.Gateways = append(ph.Gateways, i+1)
			} else {
				ph.Copies = append(ph.Copies, i+1)
			}
		}
		return ph
	}
	phase := func(n int) {
		sum.Phases = append(sum.Phases, holders(n, "web-a6"))
		if to4 != nil {
			to4.Phases = append(to4.Phases, holders(n, to4.Service))
		}
	}
	// d1 is nil once the download ended; d4 (nil without to4) reports
	// the other's early end (it reads its last byte only after the last
	// phase).
	d1, d4 := done, done4
	var err1, err4 error
	if to4 == nil {
		d4 = nil
	}
	n := m.Ingress
	for k := 1; k <= 2; k++ {
		for got.Load() < int64(k)*o.Size/3 || to4 != nil && got4.Load() < int64(k)*to4.Bytes/3 {
			select {
			case err1 = <-d1:
				if d1 = nil; err1 != nil || got.Load() < o.Size {
					return sum, fmt.Errorf("IPv6 download ended after %d bytes: %v", got.Load(), err1)
				}
			case err4 = <-d4:
				return sum, fmt.Errorf("IPv6 to IPv4 download ended after %d bytes: %v", got4.Load(), err4)
			case <-ctx.Done():
				return sum, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		phase(n)
		n = n%fig2.NumIngress + 1
		if err := s.Move(ctx, m.Name, n); err != nil {
			return sum, err
		}
	}
	if d1 != nil {
		err1 = <-d1
	}
	if err1 != nil {
		return sum, fmt.Errorf("IPv6 download: %w after %d bytes", err1, got.Load())
	}
	sum.Duration = time.Since(start)
	sum.Phases = append(sum.Phases, holders(n, "web-a6"))
	if to4 != nil {
		for got4.Load() < to4.Bytes-1 {
			select {
			case err4 = <-d4:
				return sum, fmt.Errorf("IPv6 to IPv4 download ended after %d bytes: %v", got4.Load(), err4)
			case <-ctx.Done():
				return sum, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		to4.Phases = append(to4.Phases, holders(n, to4.Service))
		releaseLast()
		if err4 = <-d4; err4 != nil {
			return sum, fmt.Errorf("IPv6 to IPv4 download: %w after %d bytes", err4, got4.Load())
		}
	}
	var have [32]byte
	h.Sum(have[:0])
	sum.ChecksumOK = got.Load() == o.Size && have == servers.BytesSHA256(o.Size)
	if !sum.ChecksumOK {
		return sum, fmt.Errorf("IPv6 download: %d bytes, sha256 mismatch", got.Load())
	}
	if to4 != nil {
		var have4 [32]byte
		h4.Sum(have4[:0])
		to4.ChecksumOK = got4.Load() == to4.Bytes && have4 == servers.BytesSHA256(to4.Bytes)
		if !to4.ChecksumOK {
			return sum, fmt.Errorf("IPv6 to IPv4 download: %d bytes, sha256 mismatch", got4.Load())
		}
	}
	return sum, nil
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// printIPv6 is the summary's IPv6 part.
func printIPv6(w io.Writer, s *V6Summary) {
	if s == nil {
		return
	}
	fmt.Fprintf(w, "\n== IPv6: %s dual stack, IPv4 %s and IPv6 prefix %s (address %s) from one gateway\n", s.Mobile, s.IPv4, s.Prefix, s.Address)
	fmt.Fprintf(w, "%d bytes from %s in %v, sha256 %s\n", s.Bytes, s.Rep, s.Duration.Round(time.Millisecond), map[bool]string{true: "ok", false: "MISMATCH"}[s.ChecksumOK])
	for i, ph := range s.Phases {
		fmt.Fprintf(w, "  phase %d: ingress %d, %s\n", i+1, ph.Ingress, ph.carriers())
	}
	if d := s.To4; d != nil {
		fmt.Fprintf(w, "IPv6 to IPv4 (%s, terminated): %d bytes from %s in %v, sha256 %s\n", d.Service, d.Bytes, d.Rep, d.Duration.Round(time.Millisecond), map[bool]string{true: "ok", false: "MISMATCH"}[d.ChecksumOK])
		for i, ph := range d.Phases {
			fmt.Fprintf(w, "  phase %d: ingress %d, %s\n", i+1, ph.Ingress, ph.carriers())
		}
	}
}

// carriers says which gateways carried the phase's flow and which hold
// a synced copy only.
func (ph V6Phase) carriers() string {
	out := "flow carried by " + gwList(ph.Gateways)
	if len(ph.Copies) > 0 {
		out += " (a synced copy on " + gwList(ph.Copies) + ")"
	}
	return out
}

// gwList names gateways ("no gateway" for none).
func gwList(gws []int) string {
	var gs []string
	for _, g := range gws {
		gs = append(gs, fmt.Sprintf("gw%d", g))
	}
	if len(gs) == 0 {
		return "no gateway"
	}
	return strings.Join(gs, " ")
}
