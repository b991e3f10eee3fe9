package xsk

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"
)

// The back-off of a bind retried on EBUSY: first sleep, and the most one
// sleep may last.
const (
	busyFirst = 10 * time.Millisecond
	busyMax   = 500 * time.Millisecond
)

// retryBusy runs bind until it succeeds, fails with anything but EBUSY, or
// its back-off sleeps add up to wait (the bound is on the sleeps, so it
// does not depend on the clock; the last sleep is cut to fit). Each retry is logged with its attempt
// number and error; the end of the wait is logged too. The
// error after the last attempt says how many there were and wraps the
// kernel's (errors.Is(err, unix.EBUSY) still holds).
func retryBusy(log *slog.Logger, port string, wait time.Duration, sleep func(time.Duration), bind func() error) error {
	var slept time.Duration
	d := busyFirst
	for attempt := 1; ; attempt++ {
		err := bind()
		busy := errors.Is(err, unix.EBUSY)
		if !busy && attempt > 1 {
			log.Info("xsk: queue no longer busy", "port", port, "attempts", attempt, "waited", slept, "err", err)
		}
		if !busy {
			return err
		}
		if slept >= wait {
			if attempt == 1 {
				return err
			}
			return fmt.Errorf("queue still busy after %d attempts over %v: %w", attempt, slept, err)
		}
		d = min(d, wait-slept)
		log.Warn("xsk: queue busy (a socket being released?), retrying bind", "port", port, "attempt", attempt, "retry_in", d, "err", err)
		sleep(d)
		slept += d
		d = min(2*d, busyMax)
	}
}

// setupRetry is setup with a busy queue's bind retried as
// Config.BindBusyWait says.
func (s *Socket) setupRetry(flags uint16, sharedFD int) error {
	return retryBusy(s.umem.log, s.name, s.cfg.BindBusyWait, time.Sleep, func() error { return s.setup(flags, sharedFD) })
}
