package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"samepath/ctl/api"
	"samepath/dp/xlat"
)

// The gateway's translation endpoints (GET/PUT /v1/xlat) and metrics
// (samepath_xlat_packets_total). A change goes through the translator's
// xlat.Runtime: validated whole, then swapped in by one atomic pointer
// store that the worker loads per packet, so the packet path takes no
// lock and a packet is translated with one config from start to end.

// errXlatOff answers the endpoints of a gateway without a translator.
var errXlatOff = errors.New("ipv4/ipv6 translation is off on this gateway (gw.xlat.disabled, or no NAT address of a family)")

// XlatView is the API form of c.
func XlatView(c xlat.Config) api.XlatConfig {
	s := func(p netip.Prefix) string {
		if !p.IsValid() {
			return ""
		}
		return p.String()
	}
	a := func(x netip.Addr) string {
		if !x.IsValid() {
			return ""
		}
		return x.String()
	}
	v := api.XlatConfig{Pool6: s(c.Pool6), EAM: []api.XlatEAM{}, RFC6791v4: s(c.RFC6791v4), RFC6791v6: s(c.RFC6791v6),
		IPv4Address: a(c.IPv4Address), IPv6Address: a(c.IPv6Address),
		IPv4MTU: c.IPv4MTU, IPv6MTU: c.IPv6MTU, LowestIPv6MTU: c.LowestIPv6MTU}
	for _, e := range c.EAM {
		v.EAM = append(v.EAM, api.XlatEAM{IPv4: e.IPv4.String(), IPv6: e.IPv6.String()})
	}
	return v
}

// ApplyXlatChange sets the fields ch names in c. A parse error names the
// key; the caller validates the result (xlat.Config.Validate, through
// Runtime.Update), whose errors name the key too.
func ApplyXlatChange(c *xlat.Config, ch api.XlatChange) error {
	if ch == (api.XlatChange{}) {
		return errors.New("xlat: no field to change (pool6, eam, rfc6791v4, rfc6791v6, ipv4_mtu, ipv6_mtu, lowest_ipv6_mtu)")
	}
	prefix := func(key string, in *string, out *netip.Prefix) error {
		if in == nil {
			return nil
		}
		if *in == "" {
			*out = netip.Prefix{}
			return nil
		}
		p, err := netip.ParsePrefix(*in)
		if err != nil {
			return fmt.Errorf("xlat: %s: %w", key, err)
		}
		*out = p
		return nil
	}
	if err := prefix("pool6", ch.Pool6, &c.Pool6); err != nil {
		return err
	}
	if err := prefix("rfc6791v4", ch.RFC6791v4, &c.RFC6791v4); err != nil {
		return err
	}
	if err := prefix("rfc6791v6", ch.RFC6791v6, &c.RFC6791v6); err != nil {
		return err
	}
	if ch.EAM != nil {
		c.EAM = nil
		for i, e := range *ch.EAM {
			var m xlat.EAM
			var err error
			if m.IPv4, err = netip.ParsePrefix(e.IPv4); err != nil {
				return fmt.Errorf("xlat: eam[%d].ipv4: %w", i, err)
			}
			if m.IPv6, err = netip.ParsePrefix(e.IPv6); err != nil {
				return fmt.Errorf("xlat: eam[%d].ipv6: %w", i, err)
			}
			c.EAM = append(c.EAM, m)
		}
	}
	for _, f := range []struct {
		in  *int
		out *int
	}{{ch.IPv4MTU, &c.IPv4MTU}, {ch.IPv6MTU, &c.IPv6MTU}, {ch.LowestIPv6MTU, &c.LowestIPv6MTU}} {
		if f.in != nil {
			*f.out = *f.in
		}
	}
	return nil
}

// XlatOutcomes names every outcome's count in c (0 included).
func XlatOutcomes(c xlat.Counters) map[string]uint64 {
	m := make(map[string]uint64, len(c))
	for _, o := range xlat.Outcomes() {
		m[o.String()] = c[o]
	}
	return m
}

// XlatRoutes adds GET/PUT /v1/xlat for rt (nil: translation off) whose
// counters read returns, as samepathd role gw serves them.
func XlatRoutes(v1 *http.ServeMux, rt *xlat.Runtime, read func() xlat.Counters) {
	xlatRoutes(v1, rt, read)
}

// xlatRoutes adds GET/PUT /v1/xlat for the runtime rt whose counters
// read returns.
func xlatRoutes(v1 *http.ServeMux, rt *xlat.Runtime, read func() xlat.Counters) {
	v1.HandleFunc("GET /v1/xlat", func(w http.ResponseWriter, _ *http.Request) {
		if rt == nil {
			fail(w, http.StatusNotFound, errXlatOff)
			return
		}
		reply(w, api.Xlat{Config: XlatView(rt.Config()), Outcomes: XlatOutcomes(read())})
	})
	v1.HandleFunc("PUT /v1/xlat", func(w http.ResponseWriter, r *http.Request) {
		var ch api.XlatChange
		if !decode(w, r, &ch) {
			return
		}
		if rt == nil {
			fail(w, http.StatusNotFound, errXlatOff)
			return
		}
		if err := rt.Update(func(c *xlat.Config) error { return ApplyXlatChange(c, ch) }); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		reply(w, XlatView(rt.Config()))
	})
}

// xlatCollector exports the translator's counters per outcome, every
// outcome from the start (at 0).
type xlatCollector struct {
	read func() xlat.Counters
	pkts *prometheus.Desc
}

func newXlatCollector(read func() xlat.Counters) *xlatCollector {
	return &xlatCollector{read: read, pkts: prometheus.NewDesc("samepath_xlat_packets_total",
		"Packets the IPv4/IPv6 translator handled (R-TCP-3), by outcome: translated_* went out translated, answer_* were answered with the ICMP error RFC 7915 asks for, drop_* were dropped (dp/xlat.Outcome).",
		[]string{"outcome"}, nil)}
}

func (c *xlatCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.pkts }

func (c *xlatCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.read()
	for _, o := range xlat.Outcomes() {
		ch <- prometheus.MustNewConstMetric(c.pkts, prometheus.CounterValue, float64(n[o]), o.String())
	}
}

// xlatCounters reads the gateway's translator counters (zero without one).
func (s *gwState) xlatCounters() xlat.Counters {
	c, _ := s.gw.XlatCounters()
	return c
}

// registerXlat adds the translator's metrics to reg when the gateway
// translates.
func registerXlat(reg *prometheus.Registry, s *gwState) {
	if s.gw.XlatRuntime() != nil {
		reg.MustRegister(newXlatCollector(s.xlatCounters))
	}
}
