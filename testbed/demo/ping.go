package demo

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"samepath/testbed/topo"
)

// Ping is one mobile's ping of a representative address: the replies it
// got and the actual server its gateway sent the echo to (R-GW-1: an echo
// is balanced as the first service at that address with a server up).
type Ping struct {
	Mobile, Rep    string
	Sent, Received int
	Service        string
	Server         string // server name; "" if the gateway holds no echo record
}

var pingReceived = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// pings runs `ping` from every mobile to group A's representative address
// and reads the echo record on the mobile's gateway.
func (s *System) pings(ctx context.Context, ips map[string]netip.Addr) ([]Ping, error) {
	p := s.TB.Plan
	vip := p.Groups[0].VIPv4
	var out []Ping
	for _, m := range p.Mobiles {
		pg := Ping{Mobile: m.Name, Rep: vip.String()}
		b, err := topo.CommandContext(ctx, m.NS, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", vip.String()).CombinedOutput()
		mm := pingReceived.FindSubmatch(b)
		if mm == nil {
			return out, fmt.Errorf("ping %s from %s: %v: %s", vip, m.Name, err, b)
		}
		pg.Sent, _ = strconv.Atoi(string(mm[1]))
		pg.Received, _ = strconv.Atoi(string(mm[2]))
		if g := s.gatewayOf(ips[m.Name]); g > 0 {
			if pg.Service, pg.Server, err = s.echoServer(ctx, g, ips[m.Name], vip); err != nil {
				return out, err
			}
		}
		out = append(out, pg)
	}
	return out, nil
}

// echoServer finds the echo record of mobile to vip on gateway g: the
// gateway publishes new records to its API within a second or two.
func (s *System) echoServer(ctx context.Context, g int, mobile, vip netip.Addr) (service, server string, err error) {
	for end := time.Now().Add(3 * time.Second); ; {
		fs, err := s.GWs[g-1].Flows(ctx, 100000)
		if err != nil {
			return "", "", err
		}
		for _, f := range fs.Flows {
			mob, err1 := netip.ParseAddrPort(f.Mobile)
			dst, err2 := netip.ParseAddrPort(f.Dest)
			srv, err3 := netip.ParseAddrPort(f.Server)
			if f.Proto == "icmp" && err1 == nil && err2 == nil && err3 == nil && mob.Addr() == mobile && dst.Addr() == vip {
				return f.Service, s.TB.Plan.ServerName(srv.Addr()), nil
			}
		}
		if time.Now().After(end) {
			return "", "", nil
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
