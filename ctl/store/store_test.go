package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGroupCommitDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var commits sync.Map
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k := []byte(fmt.Sprintf("k%03d", i))
			seq := s.Enqueue([]Op{Put(BucketSessions, k, []byte("v"))}, [][]byte{[]byte(fmt.Sprintf(`{"i":%d}`, i))}, func() { commits.Store(i, true) })
			if err := s.Wait(context.Background(), seq); err != nil {
				t.Error(err)
			}
			if _, ok := commits.Load(i); !ok {
				t.Errorf("onCommit of %d not run before Wait returned", i)
			}
		}(i)
	}
	wg.Wait()
	// Delete one, then reopen.
	if err := s.Wait(context.Background(), s.Enqueue([]Op{Del(BucketSessions, []byte("k007"))}, nil, nil)); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Ops != 201 || st.LogLines != 200 || st.Commits == 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(context.Background(), s.Enqueue(nil, nil, nil)); err != ErrClosed {
		t.Fatalf("enqueue after close: %v", err)
	}
	s, err = Open(DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	if err := s.ForEach(BucketSessions, func(k, v []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 199 {
		t.Fatalf("%d keys after reopen, want 199", n)
	}
	if v, _ := s.Get(BucketSessions, []byte("k007")); v != nil {
		t.Fatal("deleted key survived")
	}
	log, err := os.ReadFile(s.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if c := bytes.Count(log, []byte("\n")); c != 200 {
		t.Fatalf("%d log lines, want 200", c)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	s, err := Open(DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A seq far in the future never commits: Wait must return ctx's error.
	if err := s.Wait(ctx, 1<<40); err != context.Canceled {
		t.Fatalf("got %v", err)
	}
}
