package balance

// smoothWRR returns one full cycle of nginx's smooth weighted round robin
// over the given servers: on each step every server's current weight grows
// by its weight, the largest current weight wins and is lowered by the
// total. Over a cycle of sum(weights)/gcd(weights) steps each server is
// chosen exactly weight/gcd times and choices are interleaved (5,1,1 gives
// a a b a c a a). Ties go to the lower index so the cycle is deterministic.
//
// idx are the server indexes to place in the cycle, w their weights (>0).
// Cost is O(len(cycle) * len(idx)); Validate bounds the cycle by
// MaxServers*MaxWeight. Runs on the control path only.
func smoothWRR(idx []uint16, w []int) []uint16 {
	if len(idx) == 0 {
		return nil
	}
	g := 0
	for _, x := range w {
		g = gcd(g, x)
	}
	total := 0
	for i := range w {
		total += w[i] / g
	}
	cur := make([]int, len(idx))
	seq := make([]uint16, 0, total)
	for range total {
		best := -1
		for i := range idx {
			cur[i] += w[i] / g
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, idx[best])
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
