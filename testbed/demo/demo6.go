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
}

// V6Phase is one leg of the IPv6 download.
type V6Phase struct {
	Ingress  int
	Gateways []int // gateways holding the mobile's IPv6 flow at the phase's end
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
// ingress points at a third and two thirds of the transfer.
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
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		_, err = io.Copy(h, countingReader{resp.Body, &got})
		done <- err
	}()
	holders := func() []int {
		var gs []int
		for i, g := range s.GWs {
			fs, err := g.FlowsMatching(ctx, 0, api.FlowFilter{Mobile: m.IPv6.String()})
			if err == nil && fs.Total > 0 {
				gs = append(gs, i+1)
			}
		}
		return gs
	}
	n := m.Ingress
	for k := 1; k <= 2; k++ {
		for got.Load() < int64(k)*o.Size/3 {
			select {
			case err := <-done:
				return sum, fmt.Errorf("IPv6 download ended after %d bytes: %v", got.Load(), err)
			case <-ctx.Done():
				return sum, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		sum.Phases = append(sum.Phases, V6Phase{Ingress: n, Gateways: holders()})
		n = n%fig2.NumIngress + 1
		if err := s.Move(ctx, m.Name, n); err != nil {
			return sum, err
		}
	}
	if err := <-done; err != nil {
		return sum, fmt.Errorf("IPv6 download: %w after %d bytes", err, got.Load())
	}
	sum.Phases = append(sum.Phases, V6Phase{Ingress: n, Gateways: holders()})
	sum.Duration = time.Since(start)
	var have [32]byte
	h.Sum(have[:0])
	sum.ChecksumOK = got.Load() == o.Size && have == servers.BytesSHA256(o.Size)
	if !sum.ChecksumOK {
		return sum, fmt.Errorf("IPv6 download: %d bytes, sha256 mismatch", got.Load())
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
		var gs []string
		for _, g := range ph.Gateways {
			gs = append(gs, fmt.Sprintf("gw%d", g))
		}
		held := strings.Join(gs, " ")
		if held == "" {
			held = "no gateway"
		}
		fmt.Fprintf(w, "  phase %d: ingress %d, flow held by %s\n", i+1, ph.Ingress, held)
	}
}
