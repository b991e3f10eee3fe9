package cli

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"samepath/ctl/api"
)

// riskTable prints the terminate-mode services' risk balancing (R-TCP-4)
// below the service table: settings, failovers before the response,
// resumes mid-response and the aborts (RST to the mobile) by cause.
func riskTable(w *tabwriter.Writer, s api.Services) {
	head := false
	for _, sv := range s.Services {
		r := sv.Risk
		if r == nil {
			continue
		}
		if !head {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "SERVICE\tREPLAY BUF\tHTTP\tRESUME\tFAILOVERS\tRESUMES\tABORTS")
			head = true
		}
		replay, resume := "-", "-"
		if r.ReplayBuffer != nil {
			replay = fmt.Sprint(*r.ReplayBuffer)
		}
		if r.Resume != nil {
			resume = map[bool]string{true: "on", false: "off"}[*r.Resume]
		}
		fo, re, ab := "-", "-", "-"
		if st := sv.RiskStats; st != nil {
			fo, re = fmt.Sprint(st.Failovers), fmt.Sprint(st.Resumes)
			var parts []string
			for k, v := range st.Aborts {
				parts = append(parts, fmt.Sprintf("%s=%d", k, v))
			}
			slices.Sort(parts)
			ab = strings.Join(parts, " ")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sv.Name, replay, map[bool]string{true: "yes", false: "no"}[r.HTTP], resume, fo, re, ab)
	}
}
