//go:build !race

package tcpproxy

// raceEnabled: under the race detector sync.Pool drops items at random,
// so allocation tests cannot hold.
const raceEnabled = false
