package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"samepath/testbed/topo"
)

// devStats reads `ethtool -S dev` in ns: the veth driver's per-queue XDP
// and drop counters, which show where frames were lost.
func devStats(ns, dev string) (map[string]uint64, error) {
	out, err := topo.Command(ns, "ethtool", "-S", dev).Output()
	if err != nil {
		return nil, fmt.Errorf("ethtool -S %s/%s: %w", ns, dev, err)
	}
	m := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		m[strings.TrimSpace(k)] = n
	}
	return m, nil
}

// lossCounters formats the non-zero changes of drop and error counters;
// on the sink device XDP drops are the sink's own verdict and are left out.
func lossCounters(dev string, a, b map[string]uint64, sink bool) string {
	var parts []string
	for k, v := range b {
		if sink && strings.HasSuffix(k, "_xdp_drops") {
			continue
		}
		if (strings.Contains(k, "drop") || strings.Contains(k, "err")) && v > a[k] {
			parts = append(parts, fmt.Sprintf("%s.%s +%d", dev, k, v-a[k]))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
