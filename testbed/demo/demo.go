// Package demo runs the FIG. 2 system in namespaces: the testbed network,
// a samepathd load balancer at each of the three ingress points (the
// kernel no longer forwards there), a download from a server to a mobile
// that moves across the three ingress points mid-transfer, and a summary
// of which LB and which gateway carried each phase. `make demo` runs it
// through cmd/samepath-demo; its test is the privileged end-to-end check
// of issue 3 with the real dataplane.
//
//	mob1 ~~radio~~ nas1 -- lb1 (samepathd) --+               +-- a1 a2
//	     ~~radio~~ nas2 -- lb2 (samepathd) --+-- LAN1 -- gw1 +-- LAN2
//	     ~~radio~~ nas3 -- lb3 (samepathd) --+        -- gw2 +-- b1 b2
//
// Every LB holds the same T4: gw1's range -> gw1 (substitute gw2), gw2's
// range -> gw2 (substitute gw1), so whichever ingress the mobile uses, its
// packets reach its own gateway.
package demo

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"samepath/ctl/api"
	"samepath/testbed"
	"samepath/testbed/fig2"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

// Options configure a demo run.
type Options struct {
	// Samepathd is the samepathd binary.
	Samepathd string
	// Steering is the LBs' steering mode: "afxdp" (default) or "xdp".
	Steering string
	// Size of the download in bytes (default 20 MiB); Rate paces the
	// mobile's reading so that the moves happen with data in flight.
	Size int64
	Rate int64
	// ServeArgv runs the testbed servers (default: this executable with
	// "serve", see fig2.Config).
	ServeArgv []string
	// Out receives progress and the summary.
	Out io.Writer
}

// Phase is one leg of the download: the ingress point in use and what
// each element counted while it lasted.
type Phase struct {
	Ingress int
	Bytes   int64
	// LBUp/LBDown: packets the phase's LB steered up and carried down.
	LBUp, LBDown uint64
	// Gateways[g]: up and down packets gateway g+1 forwarded.
	GwUp, GwDown []uint64
}

// Summary is the outcome of a run.
type Summary struct {
	Steering   string
	Bytes      int64
	ChecksumOK bool
	Duration   time.Duration
	Phases     []Phase
	// Drops by LB (1-based index) and reason over the whole run.
	Drops map[int]map[string]uint64
}

func (o *Options) defaults() {
	if o.Steering == "" {
		o.Steering = "afxdp"
	}
	if o.Size == 0 {
		o.Size = 20 << 20
	}
	if o.Rate == 0 {
		o.Rate = 10 << 20
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// Run builds the network, runs the demo and tears everything down, also
// when ctx is cancelled (Ctrl-C).
func Run(ctx context.Context, o Options) (sum *Summary, err error) {
	o.defaults()
	if _, err := os.Stat(o.Samepathd); err != nil {
		return nil, fmt.Errorf("samepathd binary: %w", err)
	}
	cfg := fig2.DefaultConfig(testbed.NewPrefix())
	cfg.ServeArgv = o.ServeArgv
	fmt.Fprintf(o.Out, "== building FIG. 2 in namespaces %s-*\n", cfg.Prefix)
	tb, err := fig2.Up(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		fmt.Fprintf(o.Out, "== tearing down %s-*\n", cfg.Prefix)
		if derr := tb.Down(); derr != nil && err == nil {
			err = derr
		}
	}()
	p := tb.Plan
	lbs, err := startLBs(ctx, tb, o)
	if err != nil {
		return nil, err
	}
	for n := 1; n <= fig2.NumIngress; n++ {
		if err := tb.SetLBForwarding(n, false); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(o.Out, "== samepathd (steering %s) runs in lb1..lb3; kernel forwarding there is off\n", o.Steering)
	for _, r := range p.Gateways {
		fmt.Fprintf(o.Out, "   T4: %v -> gw%d %s (substitute gw%d)\n", r.Ranges, r.Index, r.LAN1.MAC, 3-r.Index)
	}
	sum, err = download(ctx, tb, lbs, o)
	if err != nil {
		return sum, err
	}
	sum.Drops = map[int]map[string]uint64{}
	for i, c := range lbs {
		cs, err := c.Counters(ctx)
		if err != nil {
			return sum, err
		}
		d := map[string]uint64{}
		for _, q := range cs.Queues {
			for r, n := range q.Drops {
				d[r] += n
			}
		}
		sum.Drops[i+1] = d
	}
	Print(o.Out, sum, p)
	return sum, nil
}

// startLBs writes each LB's config, starts samepathd in its namespace and
// returns API clients reaching them over the management network.
func startLBs(ctx context.Context, tb *fig2.Testbed, o Options) ([]*api.Client, error) {
	p := tb.Plan
	tok := make([]byte, 16)
	rand.Read(tok)
	token := hex.EncodeToString(tok)
	tokFile := filepath.Join(tb.LogDir(), "api.token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		return nil, err
	}
	var t4 strings.Builder
	for _, g := range p.Gateways {
		other := p.Gateways[len(p.Gateways)-g.Index]
		for _, r := range g.Ranges {
			fmt.Fprintf(&t4, "    - range: %s\n      gateways: [{mac: %q, state: up}, {mac: %q, state: up}]\n", r, g.LAN1.MAC, other.LAN1.MAC)
		}
	}
	var clients []*api.Client
	for _, in := range p.Ingress {
		lb := in.LB
		conf := fmt.Sprintf(`role: lb
api: %s
api_token_file: %s
steering: %s
xsk: {frames: 4096, frame_size: 2048, ring_size: 1024, batch: 64}
workers: {queues: 1}
lb:
  ingress: {iface: %s, next_hop_mac: %q}
  gateway_side: {iface: %s}
  t4:
%s`, lb.ControlAPI, tokFile, o.Steering, lb.Ingress.Name, lb.NASMAC, lb.LAN.Name, t4.String())
		path := filepath.Join(tb.LogDir(), fmt.Sprintf("lb%d.yaml", in.Index))
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		d, err := tb.StartDaemon(lb.NS, fmt.Sprintf("samepathd-lb%d", in.Index), o.Samepathd, "--config", path)
		if err != nil {
			return nil, err
		}
		c := api.NewClient("http://" + lb.ControlAPI.String())
		c.Token = token
		ctlNS := p.Ctl.NS
		c.HTTP = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return topo.Dial(ctx, ctlNS, network, addr)
			},
		}}
		if err := waitAPI(ctx, c, d, tb, in.Index); err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	return clients, nil
}

func waitAPI(ctx context.Context, c *api.Client, d *fig2.Daemon, tb *fig2.Testbed, n int) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Status(ctx); err == nil {
			return nil
		}
		select {
		case <-d.Done():
			log, _ := os.ReadFile(filepath.Join(tb.LogDir(), fmt.Sprintf("samepathd-lb%d.log", n)))
			return fmt.Errorf("samepathd in lb%d exited: %v\n%s", n, d.Err(), log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("samepathd in lb%d: control API did not answer", n)
}

type snapshot struct {
	lb []api.Counters
	gw []fig2.GatewayCounters
}

func snap(ctx context.Context, tb *fig2.Testbed, lbs []*api.Client) (snapshot, error) {
	var s snapshot
	for _, c := range lbs {
		cs, err := c.Counters(ctx)
		if err != nil {
			return s, err
		}
		s.lb = append(s.lb, cs)
	}
	gw, err := tb.AllCounters()
	s.gw = gw
	return s, err
}

// lbPackets sums rx packets of the LB's ingress-side and gateway-side
// queues (up and down), or for the offload its single entry.
func lbPackets(c api.Counters, ingressIface string) (up, down uint64) {
	for _, q := range c.Queues {
		switch {
		case strings.HasSuffix(q.Port, "/xdp"):
			up += q.TxPackets // the offload counts both directions together
		case strings.HasPrefix(q.Port, ingressIface+"/"):
			up += q.RxPackets
		default:
			down += q.RxPackets
		}
	}
	return up, down
}

// download fetches Size bytes from server a1 to mob1 and moves mob1 to
// ingress 2 and 3 at a third and two thirds of the bytes.
func download(ctx context.Context, tb *fig2.Testbed, lbs []*api.Client, o Options) (*Summary, error) {
	p := tb.Plan
	mob, a1 := p.Mobiles[0], p.Servers[0]
	if err := tb.Move(mob.Name, 1); err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://%s/bytes/%d", netip.AddrPortFrom(a1.LAN.IPv4.Addr(), fig2.HTTPPort), o.Size)
	fmt.Fprintf(o.Out, "== %s downloads %d bytes from %s (%s), moving nas1 -> nas2 -> nas3\n", mob.Name, o.Size, a1.Name, url)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return topo.Dial(ctx, mob.NS, network, addr)
	}}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != o.Size {
		return nil, fmt.Errorf("download: Content-Length %d, want %d", resp.ContentLength, o.Size)
	}
	sum := &Summary{Steering: o.Steering}
	var starts, ends []snapshot
	s0, err := snap(ctx, tb, lbs)
	if err != nil {
		return nil, err
	}
	starts = append(starts, s0)
	h := sha256.New()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	buf := make([]byte, 32<<10)
	var got int64
	var phaseBytes []int64
	phaseStart := int64(0)
	start := time.Now()
	for {
		n, rerr := r.Read(buf)
		h.Write(buf[:n])
		got += int64(n)
		if phase := len(starts); phase < fig2.NumIngress && got >= int64(phase)*o.Size/fig2.NumIngress {
			e, err := snap(ctx, tb, lbs)
			if err != nil {
				return nil, err
			}
			ends = append(ends, e)
			phaseBytes = append(phaseBytes, got-phaseStart)
			phaseStart = got
			fmt.Fprintf(o.Out, "   %d bytes: %s moves to ingress %d\n", got, mob.Name, phase+1)
			if err := tb.Move(mob.Name, phase+1); err != nil {
				return nil, err
			}
			s, err := snap(ctx, tb, lbs)
			if err != nil {
				return nil, err
			}
			starts = append(starts, s)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("download broke after %d bytes: %w", got, rerr)
		}
		if ahead := time.Duration(float64(got)/float64(o.Rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	e, err := snap(ctx, tb, lbs)
	if err != nil {
		return nil, err
	}
	ends = append(ends, e)
	phaseBytes = append(phaseBytes, got-phaseStart)
	sum.Duration = time.Since(start)
	sum.Bytes = got
	sum.ChecksumOK = got == o.Size && [32]byte(h.Sum(nil)) == servers.BytesSHA256(o.Size)
	if len(starts) != len(ends) {
		return sum, errors.New("download ended before every move")
	}
	for k := range starts {
		ph := Phase{Ingress: k + 1, Bytes: phaseBytes[k]}
		u1, d1 := lbPackets(ends[k].lb[k], p.Ingress[k].LB.Ingress.Name)
		u0, d0 := lbPackets(starts[k].lb[k], p.Ingress[k].LB.Ingress.Name)
		ph.LBUp, ph.LBDown = u1-u0, d1-d0
		for g := range ends[k].gw {
			d := ends[k].gw[g].Sub(starts[k].gw[g])
			ph.GwUp = append(ph.GwUp, d.Up.Packets)
			ph.GwDown = append(ph.GwDown, d.Down.Packets)
		}
		sum.Phases = append(sum.Phases, ph)
	}
	return sum, nil
}

// Print writes the summary as a table.
func Print(w io.Writer, s *Summary, p *fig2.Plan) {
	fmt.Fprintf(w, "\n== summary: %d bytes in %v, sha256 %s\n", s.Bytes, s.Duration.Round(time.Millisecond), map[bool]string{true: "ok", false: "MISMATCH"}[s.ChecksumOK])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tingress\tLB\tbytes\tLB up pkts\tLB down pkts\tgw1 up/down\tgw2 up/down\tcarried by")
	for i, ph := range s.Phases {
		carrier := "-"
		for g := range ph.GwUp {
			if ph.GwUp[g] > 0 {
				carrier = fmt.Sprintf("gw%d", g+1)
			}
		}
		down := fmt.Sprint(ph.LBDown)
		if s.Steering == "xdp" {
			down = "(in up)" // the offload counts both directions together
		}
		fmt.Fprintf(tw, "%d\tnas%d\tlb%d\t%d\t%d\t%s\t%d/%d\t%d/%d\t%s\n", i+1, ph.Ingress, ph.Ingress, ph.Bytes, ph.LBUp, down,
			ph.GwUp[0], ph.GwDown[0], ph.GwUp[1], ph.GwDown[1], carrier)
	}
	tw.Flush()
	fmt.Fprintln(w, "\ndrops by reason (whole run):")
	for n := 1; n <= len(s.Drops); n++ {
		d := s.Drops[n]
		if len(d) == 0 {
			fmt.Fprintf(w, "  lb%d: none\n", n)
			continue
		}
		var keys []string
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, d[k]))
		}
		fmt.Fprintf(w, "  lb%d: %s\n", n, strings.Join(parts, " "))
	}
}
