package demo_test

import (
	"testing"

	"samepath/testbed/demo"
)

// checkRisk checks the risk-balancing part (R-TCP-4): the killed
// server's download completed byte for byte through one resume, with no
// abort and no failover counted on web-a.
func checkRisk(t *testing.T, sum *demo.Summary) {
	t.Helper()
	r := sum.Risk
	if r == nil {
		t.Fatal("no risk-balancing part")
	}
	if r.Killed == "" || r.KilledPID == 0 || r.KilledAt == 0 || !r.ChecksumOK {
		t.Errorf("risk part %+v: want a server killed mid-download and the body intact", r)
	}
	if r.Stats.Resumes != 1 || r.Stats.Failovers != 0 {
		t.Errorf("web-a counters %+v: want one resume", r.Stats)
	}
	for k, v := range r.Stats.Aborts {
		if v != 0 {
			t.Errorf("web-a abort %s = %d", k, v)
		}
	}
}
