package mobility

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"samepath/testbed/topo"
)

// rstTable is the nftables table RSTCounter installs.
const rstTable = "samepath_rst"

// RSTCounter counts TCP segments with RST set that a namespace receives
// (input) and sends (output), with nftables named counters: a reset from
// anywhere on the path, or from the mobile's own stack, shows up here
// whatever the application makes of it.
type RSTCounter struct{ ns string }

// NewRSTCounter installs the counters in namespace ns (replacing any
// left there).
func NewRSTCounter(ns string) (*RSTCounter, error) {
	rules := fmt.Sprintf(`table inet %[1]s {
 counter rst_in {}
 counter rst_out {}
 chain in { type filter hook input priority 0; policy accept; tcp flags & rst == rst counter name "rst_in"; }
 chain out { type filter hook output priority 0; policy accept; tcp flags & rst == rst counter name "rst_out"; }
}
`, rstTable)
	topo.Command(ns, "nft", "delete", "table", "inet", rstTable).Run() // absent: fine
	cmd := topo.Command(ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, errors.Join(fmt.Errorf("mobility: nft in %s: %w", ns, err), errors.New(string(out)))
	}
	return &RSTCounter{ns: ns}, nil
}

// Read returns the resets received and sent so far.
func (c *RSTCounter) Read() (in, out uint64, err error) {
	b, err := topo.Command(c.ns, "nft", "-j", "list", "table", "inet", rstTable).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("mobility: nft list in %s: %w", c.ns, err)
	}
	cs, err := parseCounters(b)
	if err != nil {
		return 0, 0, fmt.Errorf("mobility: nft list in %s: %w", c.ns, err)
	}
	in, okIn := cs["rst_in"]
	out, okOut := cs["rst_out"]
	if !okIn || !okOut {
		return 0, 0, fmt.Errorf("mobility: nft list in %s: counters missing: %v", c.ns, cs)
	}
	return in, out, nil
}

// parseCounters returns the packet counts of the named counters in nft's
// JSON listing.
func parseCounters(b []byte) (map[string]uint64, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, o := range doc.Nftables {
		raw, ok := o["counter"]
		if !ok {
			continue
		}
		var c struct {
			Name    string `json:"name"`
			Packets uint64 `json:"packets"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		out[c.Name] = c.Packets
	}
	return out, nil
}
