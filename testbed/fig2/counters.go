package fig2

import (
	"encoding/json"
	"fmt"
	"strings"

	"samepath/testbed/topo"
)

// PB is a packet and byte count.
type PB struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Sub returns c - o.
func (c PB) Sub(o PB) PB { return PB{c.Packets - o.Packets, c.Bytes - o.Bytes} }

// GatewayCounters is what one gateway forwarded, counted by nftables in its
// namespace (so it counts kernel forwarding; once the gateway role runs in
// samepathd, read samepathd's counters instead).
type GatewayCounters struct {
	Up     PB   `json:"up"`       // from LAN1 (mobiles -> servers)
	UpByLB []PB `json:"up_by_lb"` // [n-1]: up frames whose source MAC is LB n's
	Down   PB   `json:"down"`     // from LAN2 (servers -> mobiles)
}

// Sub returns c - o, field by field.
func (c GatewayCounters) Sub(o GatewayCounters) GatewayCounters {
	d := GatewayCounters{Up: c.Up.Sub(o.Up), Down: c.Down.Sub(o.Down), UpByLB: make([]PB, len(c.UpByLB))}
	for i := range c.UpByLB {
		if i < len(o.UpByLB) {
			d.UpByLB[i] = c.UpByLB[i].Sub(o.UpByLB[i])
		} else {
			d.UpByLB[i] = c.UpByLB[i]
		}
	}
	return d
}

// Counters reads gateway g's (1-based) counters.
func (tb *Testbed) Counters(g int) (GatewayCounters, error) {
	if g < 1 || g > len(tb.Plan.Gateways) {
		return GatewayCounters{}, fmt.Errorf("fig2: gateway %d: want 1..%d", g, len(tb.Plan.Gateways))
	}
	ns := tb.Plan.Gateways[g-1].NS
	out, err := topo.Command(ns, "nft", "-j", "list", "table", "inet", CountTable).Output()
	if err != nil {
		return GatewayCounters{}, fmt.Errorf("fig2: read counters of gw%d: %w", g, err)
	}
	return parseCounters(out, len(tb.Plan.Ingress))
}

// AllCounters reads every gateway's counters ([g-1] for gateway g).
func (tb *Testbed) AllCounters() ([]GatewayCounters, error) {
	var out []GatewayCounters
	for g := 1; g <= len(tb.Plan.Gateways); g++ {
		c, err := tb.Counters(g)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseCounters(js []byte, nLB int) (GatewayCounters, error) {
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Comment string            `json:"comment"`
				Expr    []json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return GatewayCounters{}, fmt.Errorf("fig2: parse nft output: %w", err)
	}
	c := GatewayCounters{UpByLB: make([]PB, nLB)}
	seen := 0
	for _, e := range doc.Nftables {
		if e.Rule == nil {
			continue
		}
		var pb PB
		found := false
		for _, x := range e.Rule.Expr {
			var ce struct {
				Counter *PB `json:"counter"`
			}
			if json.Unmarshal(x, &ce) == nil && ce.Counter != nil {
				pb, found = *ce.Counter, true
			}
		}
		if !found {
			continue
		}
		switch cm := e.Rule.Comment; {
		case cm == "up":
			c.Up = pb
		case cm == "down":
			c.Down = pb
		case strings.HasPrefix(cm, "up-lb"):
			var n int
			if _, err := fmt.Sscanf(cm, "up-lb%d", &n); err != nil || n < 1 || n > nLB {
				return c, fmt.Errorf("fig2: unexpected counter %q", cm)
			}
			c.UpByLB[n-1] = pb
		default:
			continue
		}
		seen++
	}
	if seen != nLB+2 {
		return c, fmt.Errorf("fig2: found %d of %d counters", seen, nLB+2)
	}
	return c, nil
}
