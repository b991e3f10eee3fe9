package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"time"

	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/testbed/fig2"
)

// Service authorization in the demo (R-AUTH-1, FIG. 25-27): samepath-control
// owns T9 and T8 and pushes them to both gateways. Group A's
// representative addresses are service type "web", which every mobile
// has ordered; group B's are "video", which only the first mobile (mob1)
// has: the others hold an explicit "not allowed", so their connections
// to group B are answered by the gateway with a RST and never reach a
// server.
const (
	serviceGroupA = "web"
	serviceGroupB = "video"
)

// authzYAML renders samepath-control's authz section for the plan;
// devices are the mobiles' device ids, the first one ordering video.
func authzYAML(p *fig2.Plan, devices []string) string {
	var b strings.Builder
	b.WriteString("authz:\n  resync: 1s\n  t9:\n")
	for i, st := range []string{serviceGroupA, serviceGroupB} {
		g := p.Groups[i]
		for _, a := range []string{g.VIPv4.String(), g.VIPv6.String()} {
			fmt.Fprintf(&b, "    - {rep: %s, service_type: %s}\n", a, st)
		}
	}
	b.WriteString("  t8:\n")
	for i, d := range devices {
		fmt.Fprintf(&b, "    - {device: %q, service_type: %s, allowed: true}\n", d, serviceGroupA)
		fmt.Fprintf(&b, "    - {device: %q, service_type: %s, allowed: %v}\n", d, serviceGroupB, i == 0)
	}
	return b.String()
}

// waitAuthz waits until samepath-control's pushers have every gateway
// holding the current T8/T9.
func (s *System) waitAuthz(ctx context.Context) (control.AuthzStatus, error) {
	var st control.AuthzStatus
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := s.Control.Do(ctx, http.MethodGet, "/v1/authz/status", nil, &st)
		if err == nil && st.Managed && len(st.Gateways) == len(s.TB.Plan.Gateways) && allInSync(st) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("samepath-control: T8/T9 not on every gateway: %+v (%v)", st, err)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allInSync(st control.AuthzStatus) bool {
	for _, g := range st.Gateways {
		if !g.InSync {
			return false
		}
	}
	return true
}

// authzLine describes the tables the gateways hold, for the progress
// output.
func (s *System) authzLine(ctx context.Context, st control.AuthzStatus) string {
	var a api.Authz
	if err := s.Control.Do(ctx, http.MethodGet, "/v1/authz", nil, &a); err != nil {
		return err.Error()
	}
	var t9, t8, gws []string
	for _, r := range a.T9 {
		t9 = append(t9, r.Rep+" "+r.ServiceType)
	}
	for _, r := range a.T8 {
		t8 = append(t8, fmt.Sprintf("%s %s %s", r.Device, r.ServiceType, map[bool]string{true: "ok", false: "no"}[r.Allowed]))
	}
	for _, g := range st.Gateways {
		gws = append(gws, g.Name)
	}
	return fmt.Sprintf("T9 %s; T8 %s; version %d acknowledged by %s", strings.Join(t9, ", "), strings.Join(t8, ", "), st.Version, strings.Join(gws, ", "))
}

// refusal says whether err is how a client sees a gateway's refusal: a
// RST answering the SYN makes connect fail with "connection refused"
// (Linux reports ECONNREFUSED for a reset in SYN-SENT), a RST later gives
// "connection reset". Anything else (a timeout, say) is no refusal.
func refusal(err error) (string, bool) {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused: RST from the gateway (connection refused)", true
	case errors.Is(err, syscall.ECONNRESET):
		return "refused: RST from the gateway (connection reset)", true
	}
	return "", false
}

// deniedCounts reads every gateway's refusals per service type.
func deniedCounts(ctx context.Context, gws []*api.Client) (map[int]map[string]uint64, error) {
	out := map[int]map[string]uint64{}
	for i, c := range gws {
		a, err := c.Authz(ctx)
		if err != nil {
			return nil, fmt.Errorf("gw%d authz: %w", i+1, err)
		}
		out[i+1] = a.Denied
	}
	return out, nil
}

// printDenied writes the gateways' refusals per service type.
func printDenied(w io.Writer, denied map[int]map[string]uint64) {
	if len(denied) == 0 {
		return
	}
	fmt.Fprintln(w, "\nservice authorization refusals per service type (gateways' T8/T9 from samepath-control):")
	for g := 1; g <= len(denied); g++ {
		var keys []string
		for k := range denied[g] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, denied[g][k]))
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Fprintf(w, "  gw%d: %s\n", g, strings.Join(parts, " "))
	}
}

// pickList joins what the connections of one mobile to one service got,
// saying a refusal repeated for every connection once.
func pickList(got []string) string {
	if len(got) > 1 && strings.HasPrefix(got[0], "refused") {
		same := true
		for _, g := range got[1:] {
			same = same && g == got[0]
		}
		if same {
			return fmt.Sprintf("%s, all %d", got[0], len(got))
		}
	}
	return strings.Join(got, ", ")
}
