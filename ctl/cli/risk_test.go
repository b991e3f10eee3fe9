package cli

import (
	"bytes"
	"strings"
	"testing"
	"text/tabwriter"

	"samepath/ctl/api"
)

// gw services shows a terminate-mode service's risk settings and counts
// below the table; a NAT service gets no such line.
func TestServicesTableRisk(t *testing.T) {
	buf, res := 65536, true
	s := api.Services{Services: []api.Service{
		{Name: "web", Mode: "terminate", Risk: &api.Risk{ReplayBuffer: &buf, HTTP: true, Resume: &res},
			RiskStats: &api.RiskStats{Failovers: 3, Resumes: 1, Aborts: map[string]uint64{"no_server": 2, "mid_response": 0}}},
		{Name: "dns", Mode: "nat"},
	}}
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	servicesTable(s)(w)
	w.Flush()
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out[strings.Index(out, "REPLAY BUF"):]), "\n")
	if len(lines) != 2 {
		t.Fatalf("risk block %q: want a header and one line", lines)
	}
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "web 65536 yes on 3 1 mid_response=0 no_server=2" {
		t.Errorf("risk line %q", lines[1])
	}
}
