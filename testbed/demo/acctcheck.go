package demo

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"samepath/dp/acct"
)

// FlowAcct is one flow's records across the gateways that carried it
// (issue 17, accounting across a takeover): state sync keeps the flow's
// id (Record.FlowID) on every gateway, and each gateway counts only
// what it carried itself.
type FlowAcct struct {
	Flow string
	// Records per gateway (its log's name), oldest first.
	Records map[string][]acct.Entry
}

// ReadFlowAcct reads the gateways' logs (name -> path) and groups their
// records by flow id; records without one are left out.
func ReadFlowAcct(logs map[string]string) (map[string]*FlowAcct, error) {
	out := map[string]*FlowAcct{}
	for name, path := range logs {
		_, err := acct.Scan(path, acct.Filter{}, func(e *acct.Entry) error {
			if e.Flow == "" {
				return nil
			}
			f := out[e.Flow]
			if f == nil {
				f = &FlowAcct{Flow: e.Flow, Records: map[string][]acct.Entry{}}
				out[e.Flow] = f
			}
			f.Records[name] = append(f.Records[name], *e)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return out, nil
}

// FindFlow returns the flow one of whose records has a URL containing
// url (the gateway where the request went sniffed it).
func FindFlow(flows map[string]*FlowAcct, url string) (*FlowAcct, error) {
	var found []*FlowAcct
	for _, f := range flows {
	gws:
		for _, rs := range f.Records {
			for _, e := range rs {
				if strings.Contains(e.URL, url) {
					found = append(found, f)
					break gws
				}
			}
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("flows with url %q: %d, want 1", url, len(found))
	}
	return found[0], nil
}

// Finals returns each gateway's final records of the flow.
func (f *FlowAcct) Finals() map[string][]acct.Entry {
	out := map[string][]acct.Entry{}
	for gw, rs := range f.Records {
		for _, e := range rs {
			if e.Kind == "final" {
				out[gw] = append(out[gw], e)
			}
		}
	}
	return out
}

// DownPayload sums the down payload of every final record of the flow,
// on every gateway: the flow's accounted download.
func (f *FlowAcct) DownPayload() uint64 {
	var n uint64
	for _, rs := range f.Finals() {
		for _, e := range rs {
			if e.DownPayload != nil {
				n += *e.DownPayload
			}
		}
	}
	return n
}

// Check checks the flow's accounting after a takeover against what the
// client received (TCP payload, headers included): each gateway of
// carriers (those that carried packets of it, either way) wrote exactly
// one final record of it (a second would count
// its bytes twice) and no other gateway wrote one; each gateway's
// records only grow (an interim or checkpoint record never counts more
// than the gateway's final one) and count no more payload than bytes;
// and the down payload summed over the gateways' final records is
// within [received-below, received+above]. Each gateway counts what it
// carried from zero, so the sum covers each byte once: a gateway that
// also counted its peer's part, or a record counted twice, puts the sum
// above the bound; bytes a crashed gateway carried after its last
// checkpoint are missing, which below bounds.
func (f *FlowAcct) Check(carriers []string, received, below, above uint64) error {
	var errs []error
	finals := f.Finals()
	for gw := range finals {
		if !slices.Contains(carriers, gw) {
			errs = append(errs, fmt.Errorf("flow %s: %d final records on %s, which did not carry it", f.Flow, len(finals[gw]), gw))
		}
	}
	for _, gw := range carriers {
		fs := finals[gw]
		if len(fs) != 1 {
			errs = append(errs, fmt.Errorf("flow %s: %d final records on %s, want 1", f.Flow, len(fs), gw))
			continue
		}
		fin := fs[0]
		if fin.DownPayload == nil || fin.UpPackets+fin.DownPackets == 0 {
			errs = append(errs, fmt.Errorf("flow %s: %s's final record counts nothing carried: %+v", f.Flow, gw, fin))
			continue
		}
		if *fin.DownPayload > fin.DownBytes {
			errs = append(errs, fmt.Errorf("flow %s: %s's final record: down payload %d above its down bytes %d", f.Flow, gw, *fin.DownPayload, fin.DownBytes))
		}
		for _, e := range f.Records[gw] {
			if e.Kind != "final" && (e.DownBytes > fin.DownBytes || e.DownPayload != nil && *e.DownPayload > *fin.DownPayload) {
				errs = append(errs, fmt.Errorf("flow %s: %s's %s record counts more (%d bytes) than its final one (%d)", f.Flow, gw, e.Kind, e.DownBytes, fin.DownBytes))
			}
		}
	}
	sum := f.DownPayload()
	if sum+below < received || sum > received+above {
		errs = append(errs, fmt.Errorf("flow %s: down payload %d over %d gateways (%s), the client received %d: want within -%d/+%d",
			f.Flow, sum, len(finals), f.Summary(), received, below, above))
	}
	return errors.Join(errs...)
}

// Summary names each gateway's final records: "gateway payload (cause)".
func (f *FlowAcct) Summary() string {
	var parts []string
	for gw, fs := range f.Finals() {
		for _, e := range fs {
			n := uint64(0)
			if e.DownPayload != nil {
				n = *e.DownPayload
			}
			parts = append(parts, fmt.Sprintf("%s %d (%s)", gw, n, e.Cause))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// Dump lists every record of the flow, per gateway, oldest first.
func (f *FlowAcct) Dump() string {
	var b strings.Builder
	gws := make([]string, 0, len(f.Records))
	for gw := range f.Records {
		gws = append(gws, gw)
	}
	slices.Sort(gws)
	for _, gw := range gws {
		for _, e := range f.Records[gw] {
			n := uint64(0)
			if e.DownPayload != nil {
				n = *e.DownPayload
			}
			fmt.Fprintf(&b, "  %s %s %s down %d payload %d (%d packets) url %q %s..%s\n", gw, e.Kind, e.Cause, e.DownBytes, n, e.DownPackets, e.URL,
				e.Start.Format("15:04:05.000"), e.End.Format("15:04:05.000"))
		}
	}
	return b.String()
}
