package demo

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"samepath/testbed/fig2"
	"samepath/testbed/mobility"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

// SyncPort is the gateways' state-sync port on the management network.
const SyncPort = 7800

// syncYAML is gateway g's gw.sync section when on: it syncs with the
// other gateway (each is the other's substitute in the demo's T4) over
// the management network.
func syncYAML(p *fig2.Plan, g int, on bool) string {
	if !on {
		return ""
	}
	me := p.Gateways[g-1]
	other := p.Gateways[len(p.Gateways)-g]
	return fmt.Sprintf(`  sync:
    name: gw%d
    listen: %s
    peers: [{name: gw%d, addr: %s, nat: [%s, %s]}]
    batch: 50ms
    wait: 5s
`, g, netip.AddrPortFrom(me.ControlAPI.Addr(), SyncPort), other.Index,
		netip.AddrPortFrom(other.ControlAPI.Addr(), SyncPort), NATAddr(other.Index), NATAddr6(other.Index))
}

// HAKillResult is what HAKill saw.
type HAKillResult struct {
	Mobile     string
	Bytes      int64
	ChecksumOK bool
	RSTs       uint64        // RST segments that reached the mobile
	LongestGap time.Duration // longest time the download received nothing
	KilledAt   int64         // bytes received when gw1 was killed
	Takeovers  uint64        // gw2's, after the kill
	Failbacks  uint64        // gw2's, after gw1's return
	BackIn     time.Duration // from gw1's restart until it was ready (synced)
}

// HAKill (issue 17): a subscriber of gw1 downloads size bytes at rate;
// gw1 is SIGKILLed (by PID) mid-way; gw2, which holds the flow's synced
// T5 binding, takes gw1's key address over and the download completes
// through it, with the right SHA-256 and no reset; then gw1 returns,
// gets its range's state back and is up again.
func (s *System) HAKill(ctx context.Context, o Options, size, rate int64) (*HAKillResult, error) {
	p := s.TB.Plan
	var mob *fig2.Mobile
	for i := range p.Mobiles {
		if p.Mobiles[i].Gateway == 1 {
			mob = &p.Mobiles[i]
			break
		}
	}
	if mob == nil {
		return nil, fmt.Errorf("hakill: no mobile in gw1's range")
	}
	res := &HAKillResult{Mobile: mob.Name}
	rst, err := mobility.NewRSTCounter(mob.NS)
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://%s/bytes/%d?rate=%d", netip.AddrPortFrom(p.Groups[0].VIPv4, fig2.HTTPPort), size, rate)
	fmt.Fprintf(o.Out, "== gateway crash: %s downloads %d bytes through gw1 from %s; gw1 is SIGKILLed mid-way\n", mob.Name, size, url)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return topo.Dial(ctx, mob.NS, network, addr)
		}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("hakill: download: %w", err)
	}
	defer resp.Body.Close()
	var got atomic.Int64
	type result struct {
		sum [32]byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		h := sha256.New()
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			h.Write(buf[:n])
			got.Add(int64(n))
			if err == io.EOF {
				done <- result{sum: [32]byte(h.Sum(nil))}
				return
			}
			if err != nil {
				done <- result{err: err}
				return
			}
		}
	}()
	killAt := size / 4
	var gap time.Duration
	last, at := int64(0), time.Now()
	killed := false
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var r result
wait:
	for {
		select {
		case r = <-done:
			break wait
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		n, now := got.Load(), time.Now()
		if n != last {
			if last != 0 && now.Sub(at) > gap {
				gap = now.Sub(at)
			}
			last, at = n, now
		}
		if !killed && n >= killAt {
			pid := s.gwd[0].Cmd.Process.Pid
			fmt.Fprintf(o.Out, "   %d bytes in: kill -KILL %d (samepathd gw1)\n", n, pid)
			if err := s.KillGateway(1); err != nil {
				return nil, err
			}
			killed, res.KilledAt = true, n
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("hakill: download after %d bytes: %w", got.Load(), r.err)
	}
	res.Bytes, res.LongestGap = got.Load(), gap
	res.ChecksumOK = res.Bytes == size && r.sum == servers.BytesSHA256(size)
	res.RSTs, _, _ = rst.Read()
	if st, err := s.GWs[1].GWSync(ctx); err == nil {
		res.Takeovers = st.Takeovers
	}
	fmt.Fprintf(o.Out, "   download complete through gw2: %d bytes, sha256 %s, RSTs at the mobile %d, longest stall %v, gw2 takeovers %d\n",
		res.Bytes, map[bool]string{true: "ok", false: "MISMATCH"}[res.ChecksumOK], res.RSTs, gap.Round(time.Millisecond), res.Takeovers)
	start := time.Now()
	if err := s.StartGateway(ctx, 1); err != nil {
		return nil, err
	}
	for {
		st, err := s.GWs[0].GWSync(ctx)
		if err == nil && st.Ready {
			res.BackIn = time.Since(start)
			break
		}
		if time.Since(start) > 15*time.Second {
			return nil, fmt.Errorf("hakill: gw1 not synced 15 s after its restart: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for time.Since(start) < 15*time.Second {
		if st, err := s.GWs[1].GWSync(ctx); err == nil && st.Failbacks > 0 {
			res.Failbacks = st.Failbacks
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(o.Out, "   gw1 restarted: synced from gw2 in %v, gw2 gave its key address back (failbacks %d)\n", res.BackIn.Round(time.Millisecond), res.Failbacks)
	if !res.ChecksumOK || res.RSTs != 0 {
		return res, fmt.Errorf("hakill: the download did not survive gw1's crash: %+v", res)
	}
	return res, nil
}
