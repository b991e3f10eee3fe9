//go:build !race

package nat

// raceEnabled: the race detector slows the table ~20x; the largest
// tests shrink under it.
const raceEnabled = false
