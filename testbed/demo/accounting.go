package demo

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"layeh.com/radius/rfc2866"

	"samepath/dp/acct"
)

// AcctRow is one line of the demo's accounting summary: the final T10
// records the gateways wrote for one subscriber, service and URL
// (R-ACCT-1), summed.
type AcctRow struct {
	Gateway                int
	User, Device           string
	Service, ServiceType   string
	URL                    string
	Flows, Interims        int
	UpPackets, DownPackets uint64
	UpBytes, DownBytes     uint64
	UpPayload, DownPayload uint64
	Causes                 []string
}

// Logout ends mobile's session the way a subscriber hangs up: the NAS of
// its ingress point sends Accounting Stop with Acct-Terminate-Cause
// User-Request (FIG. 11: Act -> Close -> None); the session manager tells
// the owning gateway, which ends the mobile's flows (final accounting
// records, cause session-end) and forgets the session. Logout returns
// once the gateway's T3 no longer holds it.
func (s *System) Logout(ctx context.Context, mobile string) error {
	ms, _, err := s.mobile(mobile)
	if err != nil {
		return err
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	n := ms.nas
	if n == 0 {
		return fmt.Errorf("%s: not logged in at any NAS", mobile)
	}
	if err := s.sendStop(ctx, ms, n, rfc2866.AcctTerminateCause_Value_UserRequest); err != nil {
		return err
	}
	ms.aaaID = "" // the session is closed: the next Login starts another, named after its Start
	st, err := s.waitGWGone(ctx, ms)
	s.step(Step{Mobile: mobile, NAS: n, Request: "Stop User-Request", Result: ms.acctID, GW: ms.gw, GWState: st})
	return err
}

// waitGWGone waits until the gateway owning ms's address no longer holds
// a session for it.
func (s *System) waitGWGone(ctx context.Context, ms *mobileSession) (string, error) {
	c := s.GWs[ms.gw-1]
	deadline := time.Now().Add(5 * time.Second)
	for {
		seen := "none"
		ss, err := c.GWSessions(ctx)
		if err == nil {
			for _, r := range ss.Sessions {
				if r.IP == ms.ip.String() {
					seen = r.State
				}
			}
			if seen == "none" {
				return seen, nil
			}
		}
		if time.Now().After(deadline) {
			return seen, fmt.Errorf("gw%d: session of %s (%s) still %s after logout (%v)", ms.gw, ms.name, ms.ip, seen, err)
		}
		select {
		case <-ctx.Done():
			return seen, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// accounting logs every mobile out and reads the gateways' accounting
// logs back: final records summed per subscriber, service and URL.
func (s *System) accounting(ctx context.Context, o Options) ([]AcctRow, error) {
	for _, m := range s.TB.Plan.Mobiles {
		if err := s.Logout(ctx, m.Name); err != nil {
			return nil, err
		}
	}
	// The gateways pushed the final records before dropping the sessions;
	// their log writers append within a poll interval and sync within
	// SyncInterval.
	wait := 3 * o.GWAccounting.SyncInterval
	if wait == 0 {
		wait = 3 * acct.DefaultConfig("").SyncInterval
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(wait):
	}
	var rows []AcctRow
	for g := range s.GWs {
		path := o.GWAccounting.Path(g + 1)
		es, _, err := acct.Query(path, acct.Filter{})
		if err != nil {
			return nil, fmt.Errorf("gw%d accounting log: %w", g+1, err)
		}
		rows = append(rows, acctRows(g+1, es)...)
	}
	return rows, nil
}

// acctRows sums gateway g's final records per subscriber, service and URL
// and counts the interim records beside them.
func acctRows(g int, es []acct.Entry) []AcctRow {
	type key struct{ user, device, svc, st, url string }
	by := map[key]*AcctRow{}
	interims := map[key]int{}
	for _, e := range es {
		k := key{e.User, e.Device, e.Service, e.ServiceType, e.URL}
		if e.Kind != "final" {
			interims[k]++
			continue
		}
		r := by[k]
		if r == nil {
			r = &AcctRow{Gateway: g, User: e.User, Device: e.Device, Service: e.Service, ServiceType: e.ServiceType, URL: e.URL}
			by[k] = r
		}
		r.Flows++
		r.UpPackets += e.UpPackets
		r.DownPackets += e.DownPackets
		r.UpBytes += e.UpBytes
		r.DownBytes += e.DownBytes
		if e.UpPayload != nil {
			r.UpPayload += *e.UpPayload
		}
		if e.DownPayload != nil {
			r.DownPayload += *e.DownPayload
		}
		if !slices.Contains(r.Causes, e.Cause) {
			r.Causes = append(r.Causes, e.Cause)
		}
	}
	out := make([]AcctRow, 0, len(by))
	for k, r := range by {
		r.Interims = interims[k]
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b AcctRow) int {
		return cmp.Or(strings.Compare(a.User, b.User), strings.Compare(a.Service, b.Service), strings.Compare(a.URL, b.URL))
	})
	return out
}

// printAccounting writes the accounting summary table.
func printAccounting(w io.Writer, rows []AcctRow, logs string) {
	if len(rows) == 0 && logs == "" {
		return
	}
	fmt.Fprintf(w, "\n== proxy accounting (T10): final records of the gateways' logs after every mobile logged out (%s), per subscriber, service and URL\n", logs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "gw\tsubscriber\tdevice\tservice\ttype\tflows\tinterims\tup pkts\tup bytes\tdown pkts\tdown bytes\tpayload up/down\tend cause\tURL")
	for _, r := range rows {
		url := r.URL
		if url == "" {
			url = "-"
		}
		fmt.Fprintf(tw, "gw%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d/%d\t%s\t%s\n", r.Gateway, r.User, r.Device, r.Service, r.ServiceType,
			r.Flows, r.Interims, r.UpPackets, r.UpBytes, r.DownPackets, r.DownBytes, r.UpPayload, r.DownPayload, strings.Join(r.Causes, ","), url)
	}
	tw.Flush()
	fmt.Fprintln(w, "bytes count whole IP packets (headers included); payload counts TCP/UDP payload only")
}

// tempAccounting gives o the gateways' accounting logs in a fresh
// directory and returns its cleanup.
func tempAccounting(o *Options) (func(), error) {
	if o.GWAccounting.Log != "" {
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "samepath-demo-acct-")
	if err != nil {
		return nil, err
	}
	o.GWAccounting = GWAccounting{Log: dir + "/gw%d.acct", Interim: time.Second, SyncInterval: 100 * time.Millisecond}
	return func() { os.RemoveAll(dir) }, nil
}
