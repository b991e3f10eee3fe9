package lograte

import (
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(time.Minute, func() time.Time { return now })
	type step struct {
		advance    time.Duration
		key        string
		ok         bool
		suppressed uint64
	}
	for i, s := range []step{
		{0, "a", true, 0},
		{time.Second, "a", false, 0},
		{time.Second, "a", false, 0},
		{0, "b", true, 0}, // keys are independent
		{time.Minute, "a", true, 2},
		{0, "a", false, 0},
		{2 * time.Minute, "a", true, 1},
		{2 * time.Minute, "a", true, 0},
	} {
		now = now.Add(s.advance)
		ok, n := l.Allow(s.key)
		if ok != s.ok || n != s.suppressed {
			t.Fatalf("step %d (%s): Allow = %v, %d; want %v, %d", i, s.key, ok, n, s.ok, s.suppressed)
		}
	}
}

func TestManyKeysBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(time.Minute, func() time.Time { return now })
	for i := 0; i < 3*maxKeys; i++ {
		if ok, _ := l.Allow(string(rune(i + 1))); !ok {
			t.Fatalf("key %d held back: new keys past the bound must go through", i)
		}
	}
	if len(l.keys) > maxKeys {
		t.Fatalf("%d keys tracked, bound %d", len(l.keys), maxKeys)
	}
}
