package xsk

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// retryBusy against a bind that fails as scripted; the sleeps are recorded,
// not slept.
func TestRetryBusy(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name       string
		wait       time.Duration
		errs       []error // what the bind returns, call by call; then nil
		wantErr    error   // errors.Is target; nil: success
		wantCalls  int
		wantSleeps []time.Duration
		wantLogs   int // retry warnings
	}{
		{name: "free at once", wait: 3 * time.Second, wantCalls: 1},
		{name: "busy twice", wait: 3 * time.Second, errs: []error{unix.EBUSY, unix.EBUSY},
			wantCalls: 3, wantSleeps: []time.Duration{10 * ms, 20 * ms}, wantLogs: 2},
		{name: "wrapped busy is retried", wait: time.Second, errs: []error{fmt.Errorf("x: %w", unix.EBUSY)},
			wantCalls: 2, wantSleeps: []time.Duration{10 * ms}, wantLogs: 1},
		{name: "other error not retried", wait: 3 * time.Second, errs: []error{unix.EINVAL},
			wantErr: unix.EINVAL, wantCalls: 1},
		{name: "busy then other error", wait: 3 * time.Second, errs: []error{unix.EBUSY, unix.ENODEV},
			wantErr: unix.ENODEV, wantCalls: 2, wantSleeps: []time.Duration{10 * ms}, wantLogs: 1},
		{name: "no wait: no retry", wait: 0, errs: []error{unix.EBUSY},
			wantErr: unix.EBUSY, wantCalls: 1},
		{name: "bounded", wait: 3 * time.Second, errs: repeat(unix.EBUSY, 100), wantErr: unix.EBUSY,
			wantCalls: 12, wantLogs: 11,
			// 10+20+40+80+160+320+500*4 = 2630 ms, the last cut to 370 ms.
			wantSleeps: []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 500 * ms, 500 * ms, 500 * ms, 500 * ms, 370 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			var sleeps []time.Duration
			calls := 0
			err := retryBusy(log, "in/q0", tc.wait, func(d time.Duration) { sleeps = append(sleeps, d) }, func() error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if calls != tc.wantCalls {
				t.Errorf("%d binds, want %d", calls, tc.wantCalls)
			}
			if diff := cmp.Diff(tc.wantSleeps, sleeps); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
			var total time.Duration
			for _, d := range sleeps {
				total += d
			}
			if total > tc.wait {
				t.Errorf("slept %v in all, more than the %v bound", total, tc.wait)
			}
			if n := strings.Count(logs.String(), "retrying bind"); n != tc.wantLogs {
				t.Errorf("%d retry log lines, want %d:\n%s", n, tc.wantLogs, logs.String())
			}
			for i := 1; i <= tc.wantLogs; i++ {
				if !strings.Contains(logs.String(), fmt.Sprintf("attempt=%d ", i)) {
					t.Errorf("no log line for attempt %d:\n%s", i, logs.String())
				}
			}
			if tc.wantLogs > 0 && !errors.Is(err, unix.EBUSY) && !strings.Contains(logs.String(), "no longer busy") {
				t.Errorf("end of the wait not logged:\n%s", logs.String())
			}
		})
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}
