package linkem

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is one direction's behaviour.
type Config struct {
	Delay  time.Duration // one-way delay added to every frame
	Jitter time.Duration // uniform in [-Jitter, +Jitter] around Delay (never below 0)
	Loss   float64       // probability a frame is dropped, 0..1
	Rate   int64         // rate cap in bits per second of whole frames; 0 = none
	Burst  int           // token bucket depth in bytes (frames sent back to back at line speed)
	Queue  int           // backlog limit in bytes behind the rate cap; beyond it frames are dropped
	// Reorder lets jitter reorder frames (netem's default); off, a frame
	// never leaves before the one ahead of it, like a real radio link.
	Reorder bool
	Seed    uint64 // seed of the loss and jitter generator
}

// DefaultConfig is a clean link: no delay, no loss, no cap.
func DefaultConfig() Config {
	return Config{Burst: 3028, Queue: 256 << 10, Seed: 1}
}

// Validate checks c.
func (c Config) Validate() error {
	switch {
	case c.Delay < 0 || c.Jitter < 0:
		return errors.New("delay and jitter must be >= 0")
	case c.Delay > time.Minute:
		return errors.New("delay above one minute")
	case !(c.Loss >= 0 && c.Loss <= 1):
		return fmt.Errorf("loss %v: want 0..1", c.Loss)
	case c.Rate < 0:
		return errors.New("rate must be >= 0")
	case c.Rate > 0 && c.Burst < 1514:
		return fmt.Errorf("burst %d bytes: want at least one full frame (1514)", c.Burst)
	case c.Rate > 0 && c.Queue < 1514:
		return fmt.Errorf("queue %d bytes: want at least one full frame (1514)", c.Queue)
	}
	return nil
}

// Args renders c as `testbed linkem` flags (both directions get c).
func (c Config) Args() []string {
	a := []string{
		"--delay", c.Delay.String(), "--jitter", c.Jitter.String(),
		"--loss", strconv.FormatFloat(c.Loss, 'g', -1, 64),
		"--rate", strconv.FormatInt(c.Rate, 10),
		"--burst", strconv.Itoa(c.Burst), "--queue", strconv.Itoa(c.Queue),
		"--seed", strconv.FormatUint(c.Seed, 10),
	}
	if c.Reorder {
		a = append(a, "--reorder")
	}
	return a
}

// ParseRate reads a rate: a plain number of bits per second or one with a
// suffix kbit, mbit, gbit (decimal, as tc writes them).
func ParseRate(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad rate %q", s)
	}
	return int64(f * float64(mult)), nil
}
